package main

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/linetoken/linetoken/internal/specdiff"
	"github.com/linetoken/linetoken/internal/testkit"
	"github.com/linetoken/linetoken/internal/upstream"
)

const spec = `openapi: 3.0.0
info: {title: t, version: "1"}
paths:
  /v2/oauth/verify:
    get:
      operationId: verifyChannelToken
      parameters:
        - {name: access_token, in: query, required: true, schema: {type: string}}
      responses:
        "200":
          description: OK
          content:
            application/json:
              schema:
                type: object
                properties:
                  expires_in: {type: integer, format: int32}
`

const formatKey = "operation verifyChannelToken: response 200 field expires_in: format int32 -> int64"

// fixture is a directory holding the files one run reads.
type fixture struct {
	t   *testing.T
	dir string
}

func newFixture(t *testing.T) fixture {
	t.Setenv(specdiff.CIEnvVar, "") // a local run unless a test says otherwise
	t.Setenv(upstream.DirEnv, "")   // the default upstream folder unless a test says otherwise
	return fixture{t: t, dir: t.TempDir()}
}

func (f fixture) write(name, text string) string {
	f.t.Helper()
	path := filepath.Join(f.dir, name)
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		f.t.Fatal(err)
	}
	return path
}

func (f fixture) path(name string) string { return filepath.Join(f.dir, name) }

// runCmd runs the command with a client that refuses every request (these
// runs read files only) and returns its exit status, stdout and stderr.
func runCmd(args ...string) (int, string, string) {
	return runWith(noNetwork, args...)
}

// runWith runs the command with client and returns its exit status, stdout
// and stderr.
func runWith(client *http.Client, args ...string) (int, string, string) {
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), args, &stdout, &stderr, client)
	return code, stdout.String(), stderr.String()
}

// noNetwork is an HTTP client whose every request fails.
var noNetwork = &http.Client{Transport: refuse{}}

type refuse struct{}

func (refuse) RoundTrip(*http.Request) (*http.Response, error) {
	return nil, errors.New("test: no request expected")
}

func TestRunNoDifferences(t *testing.T) {
	f := newFixture(t)
	code, stdout, stderr := runCmd("-ours", f.write("ours.yml", spec), "-upstream", f.write("up.yml", spec), "-allow", "")
	if code != exitOK {
		t.Fatalf("exit %d, want %d; stderr %q", code, exitOK, stderr)
	}
	if !strings.HasPrefix(stdout, "spec-diff: ok: 1 operations compared") || !strings.Contains(stdout, "0 allowed deviations") {
		t.Errorf("stdout = %q, want the summary", stdout)
	}
}

func TestRunAllowedDifference(t *testing.T) {
	f := newFixture(t)
	allow := f.write("allow.yml", "allow:\n  - key: \""+formatKey+"\"\n    reason: int64 everywhere.\n")
	code, stdout, stderr := runCmd("-ours", f.write("ours.yml", strings.Replace(spec, "int32", "int64", 1)),
		"-upstream", f.write("up.yml", spec), "-allow", allow)
	if code != exitOK {
		t.Fatalf("exit %d, want %d; stdout %q stderr %q", code, exitOK, stdout, stderr)
	}
	if !strings.Contains(stdout, "1 operations compared") || !strings.Contains(stdout, "1 allowed deviations (1 entries in "+allow+")") {
		t.Errorf("stdout = %q, want 1 operation and 1 allowed deviation", stdout)
	}
}

func TestRunUnexplainedDifference(t *testing.T) {
	f := newFixture(t)
	allow := f.write("allow.yml", "allow: []\n")
	ours := f.write("ours.yml", strings.Replace(spec, "int32", "int64", 1))
	code, stdout, _ := runCmd("-ours", ours, "-upstream", f.write("up.yml", spec), "-allow", allow)
	if code != exitDifferences {
		t.Fatalf("exit %d, want %d; stdout %q", code, exitDifferences, stdout)
	}
	lines := strings.Split(stdout, "\n")
	if !slices.Contains(lines, formatKey) {
		t.Errorf("stdout lacks the line %q:\n%s", formatKey, stdout)
	}
	wantHint := "add a reviewed entry to " + allow
	if !strings.Contains(stdout, wantHint) || !slices.Contains(lines, `  - key: "`+formatKey+`"`) {
		t.Errorf("stdout lacks the allow-list hint %q:\n%s", wantHint, stdout)
	}
}

func TestRunStaleAllowListEntry(t *testing.T) {
	f := newFixture(t)
	allow := f.write("allow.yml", "allow:\n  - key: \""+formatKey+"\"\n    reason: int64 everywhere.\n")
	code, stdout, _ := runCmd("-ours", f.write("ours.yml", spec), "-upstream", f.write("up.yml", spec), "-allow", allow)
	if code != exitDifferences {
		t.Fatalf("exit %d, want %d; stdout %q", code, exitDifferences, stdout)
	}
	want := allow + `:2: key "` + formatKey + `"`
	if !slices.Contains(strings.Split(stdout, "\n"), want) || !strings.Contains(stdout, "stale allow-list entries") {
		t.Errorf("stdout lacks the stale entry %q:\n%s", want, stdout)
	}
}

func TestRunUpstreamAbsent(t *testing.T) {
	f := newFixture(t)
	ours := f.write("ours.yml", spec)
	absent := f.path("absent.yml")

	code, stdout, stderr := runCmd("-ours", ours, "-upstream", absent)
	want := "spec-diff: skipped: " + absent + " not found; " + liveCheckHint + "\n"
	if code != exitOK || stdout != want || stderr != "" {
		t.Errorf("outside CI: exit %d, stdout %q, stderr %q; want exit %d and %q", code, stdout, stderr, exitOK, want)
	}

	t.Setenv(specdiff.CIEnvVar, "true")
	code, stdout, stderr = runCmd("-ours", ours, "-upstream", absent)
	if code != exitUsage || stdout != "" || !strings.HasPrefix(stderr, "specdiff: "+absent+" not found, and CI=true") {
		t.Errorf("in CI: exit %d, stdout %q, stderr %q; want exit %d and a CI failure", code, stdout, stderr, exitUsage)
	}
}

func TestRunDefaultUpstreamMessage(t *testing.T) {
	newFixture(t)
	// From this package's directory the default upstream path does not exist.
	code, stdout, _ := runCmd()
	const want = "spec-diff: skipped: ../shared/upstream/channel-access-token.yml not found; " +
		"LINE's upstream files live outside the repository: set UPSTREAM_DIR to a line/line-openapi checkout, " +
		"or compare with LINE's current file: make spec-drift\n"
	if code != exitOK || stdout != want {
		t.Errorf("exit %d, stdout %q; want exit %d and %q", code, stdout, exitOK, want)
	}
}

func TestRunUpstreamDirSetting(t *testing.T) {
	f := newFixture(t)
	f.write(upstream.TokenSpec, spec)
	t.Setenv(upstream.DirEnv, f.dir)
	code, stdout, stderr := runCmd("-ours", f.write("ours.yml", spec), "-allow", "")
	want := "1 operations compared with " + filepath.Join(f.dir, upstream.TokenSpec)
	if code != exitOK || !strings.Contains(stdout, want) {
		t.Errorf("exit %d, stdout %q, stderr %q; want exit %d and %q", code, stdout, stderr, exitOK, want)
	}
}

func TestRunUsageAndLoadErrors(t *testing.T) {
	f := newFixture(t)
	ours, up := f.write("ours.yml", spec), f.write("up.yml", spec)
	badAllow := f.write("bad-allow.yml", "allow:\n  - key: x\n")
	notSpec := f.write("not-spec.yml", "hello: world\n")
	tests := []struct {
		name       string
		args       []string
		wantStderr string
	}{
		{"unknown flag", []string{"-bogus"}, "flag provided but not defined"},
		{"extra argument", []string{"-ours", ours, "-upstream", up, "extra"}, `specdiff: unexpected arguments ["extra"]`},
		{"empty -ours", []string{"-ours", "", "-upstream", up}, "specdiff: -ours and -upstream must not be empty"},
		{"missing ours", []string{"-ours", f.path("absent.yml"), "-upstream", up, "-allow", ""}, "specdiff: load "},
		{"ours not a spec", []string{"-ours", notSpec, "-upstream", up, "-allow", ""}, "not an OpenAPI 3 document"},
		{"upstream not a spec", []string{"-ours", ours, "-upstream", notSpec, "-allow", ""}, "not an OpenAPI 3 document"},
		{"missing allow-list", []string{"-ours", ours, "-upstream", up, "-allow", f.path("absent-allow.yml")}, "specdiff: allow-list: "},
		{"bad allow-list", []string{"-ours", ours, "-upstream", up, "-allow", badAllow}, "specdiff: allow-list " + badAllow + ": line 2: an entry needs a reason"},
		{"bad format", []string{"-ours", ours, "-upstream", up, "-format", "html"}, `specdiff: -format "html": want text or markdown`},
		{"plain http to a remote host", []string{"-ours", ours, "-upstream", "http://example.com/spec.yml"}, "http:// is allowed only to a loopback host; use https://"},
		{"other scheme", []string{"-ours", ours, "-upstream", "ftp://example.com/spec.yml"}, `specdiff: upstream URL ftp://example.com/spec.yml: scheme "ftp": want https://`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runCmd(tt.args...)
			if code != exitUsage {
				t.Errorf("exit %d, want %d; stdout %q", code, exitUsage, stdout)
			}
			if !strings.Contains(stderr, tt.wantStderr) {
				t.Errorf("stderr = %q, want it to contain %q", stderr, tt.wantStderr)
			}
		})
	}
}

func TestRunHelp(t *testing.T) {
	newFixture(t)
	code, _, stderr := runCmd("-h")
	if code != exitOK || !strings.Contains(stderr, "usage: spec-diff") || !strings.Contains(stderr, "-allow") {
		t.Errorf("exit %d, stderr %q; want exit %d and the usage", code, stderr, exitOK)
	}
}

// The project's files, from this package's directory.
const (
	repoFromHere = "../../.."
	realOurs     = repoFromHere + "/api/channel-access-token.yml"
	realAllow    = repoFromHere + "/api/spec-diff-allow.yml"
)

// TestRunRealSpecs runs the command as `make spec-diff` does, on the project's
// files; LINE's upstream file exists only in the CI workspace.
func TestRunRealSpecs(t *testing.T) {
	up := testkit.RequireUpstream(t, repoFromHere, upstream.TokenSpec)
	code, stdout, stderr := runCmd("-ours", realOurs, "-upstream", up, "-allow", realAllow)
	if code != exitOK {
		t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, exitOK, stdout, stderr)
	}
	if !strings.HasPrefix(stdout, "spec-diff: ok: 8 operations compared") {
		t.Errorf("stdout = %q, want the summary of 8 operations", stdout)
	}
}
