package main

import (
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/linetoken/linetoken/internal/specdiff"
	"github.com/linetoken/linetoken/internal/testkit"
	"github.com/linetoken/linetoken/internal/upstream"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current output")

// certHost is a name the httptest TLS certificate is valid for; the
// injected resolver maps it to the test server.
const certHost = "example.com"

// Secrets a URL may carry (UPSTREAM_URL in CI); no output shows them.
const (
	secretUser  = "ghp-user-token"
	secretPass  = "s3cret-password"
	secretQuery = "s3cret-query-token"
)

// withSecrets is base (scheme and host) with path, a user name and password
// and a ?token= that must never be shown.
func withSecrets(base, path string) string {
	scheme, host, _ := strings.Cut(base, "://")
	return scheme + "://" + secretUser + ":" + secretPass + "@" + host + path + "?token=" + secretQuery
}

// assertNoSecret fails if any text shows a secret of withSecrets.
func assertNoSecret(t *testing.T, texts ...string) {
	t.Helper()
	for _, text := range texts {
		for _, secret := range []string{secretUser, secretPass, secretQuery} {
			if strings.Contains(text, secret) {
				t.Errorf("output shows the URL's secret %q:\n%s", secret, text)
			}
		}
	}
}

// tlsUpstream starts an httptest TLS server with handler and returns a
// client that trusts it and resolves certHost to it (every other name is
// "no such host", answered without DNS), and the server's https:// base URL
// under certHost.
func tlsUpstream(t *testing.T, handler http.Handler) (*http.Client, string) {
	return tlsUpstreamWithin(t, handler, 0)
}

// tlsUpstreamWithin is tlsUpstream with the client's fetch timeout (0: the
// default).
func tlsUpstreamWithin(t *testing.T, handler http.Handler, timeout time.Duration) (*http.Client, string) {
	t.Helper()
	srv := httptest.NewTLSServer(handler)
	t.Cleanup(srv.Close)
	client := specdiff.NewHTTPClient(specdiff.ClientOptions{
		Resolver: testkit.HostResolver{certHost: {"127.0.0.1"}},
		TLS:      srv.Client().Transport.(*http.Transport).TLSClientConfig,
		Timeout:  timeout,
	})
	_, port, _ := strings.Cut(strings.TrimPrefix(srv.URL, "https://"), ":")
	return client, "https://" + certHost + ":" + port
}

// serveText answers every request 200 with body as text/plain, as a raw file
// host does, and counts the requests.
func serveText(body string, requests *int) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		*requests++
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprint(w, body)
	})
}

// TestRunURLEqualsFile: a fetched spec is compared exactly like the same
// file, with and without differences, and with either output format.
func TestRunURLEqualsFile(t *testing.T) {
	f := newFixture(t)
	allow := f.write("allow.yml", "allow:\n  - key: \""+formatKey+"\"\n    reason: int64 everywhere.\n")
	drifted := strings.Replace(spec, "in: query, required: true", "in: query, required: false", 1)
	for _, tc := range []struct {
		name, upstream string
		wantCode       int
	}{
		{"allowed difference only", spec, exitOK},
		{"upstream drifted", drifted, exitDifferences},
	} {
		t.Run(tc.name, func(t *testing.T) {
			requests := 0
			client, base := tlsUpstream(t, serveText(tc.upstream, &requests))
			file := f.write("up.yml", tc.upstream)
			url := base + "/line/line-openapi/main/channel-access-token.yml"
			ours := f.write("ours.yml", strings.Replace(spec, "int32", "int64", 1))
			for _, format := range []string{formatText, formatMarkdown} {
				fileCode, fileOut, fileErr := runCmd("-ours", ours, "-upstream", file, "-allow", allow, "-format", format)
				urlCode, urlOut, urlErr := runWith(client, "-ours", ours, "-upstream", url, "-allow", allow, "-format", format)
				if fileCode != tc.wantCode || urlCode != tc.wantCode {
					t.Fatalf("%s: exit file %d, URL %d; want %d\nfile stderr %q\nURL stderr %q", format, fileCode, urlCode, tc.wantCode, fileErr, urlErr)
				}
				if got := strings.ReplaceAll(urlOut, url, file); got != fileOut {
					t.Errorf("%s: URL output (upstream name replaced by the file's):\n%s\nwant the file's:\n%s", format, got, fileOut)
				}
			}
			if requests != 2 {
				t.Errorf("server got %d requests, want 2 (one per run)", requests)
			}
		})
	}
}

// TestRunURLFailures: each way a fetch fails is exit 2 with a message naming
// it, and writes no report. The URL carries a user name, password and
// ?token=, which no message shows.
func TestRunURLFailures(t *testing.T) {
	f := newFixture(t)
	ours := f.write("ours.yml", spec)
	big := strings.Repeat("#", specdiff.MaxSpecBytes+1)
	// stallTimeout is the client's timeout in the stall cases: long enough
	// for a TLS handshake on a loaded machine, short for the test.
	const stallTimeout = 500 * time.Millisecond
	tests := []struct {
		name       string
		handler    http.HandlerFunc
		host       string // default certHost
		stall      bool   // after handler, block until the test ends
		wantStderr string
	}{
		{"DNS failure", nil, "raw.invalid", false, "cannot resolve raw.invalid (DNS): is the network up?"},
		{"not found", func(w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) },
			"", false, "HTTP 404 Not Found, want 200 OK: check the URL (UPSTREAM_URL)"},
		{"server error", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "down", http.StatusBadGateway) },
			"", false, "HTTP 502 Bad Gateway, want 200 OK"},
		{"HTML by content type", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			fmt.Fprint(w, "<p>Sign in</p>")
		}, "", false, "the server sent an HTML page, not the YAML spec"},
		{"HTML by content", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/plain")
			fmt.Fprint(w, "\n  <!DOCTYPE html>\n<html><body>blob view</body></html>")
		}, "", false, "the server sent an HTML page, not the YAML spec"},
		{"too large by length", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", strconv.Itoa(len(big)))
			fmt.Fprint(w, big)
		}, "", false, fmt.Sprintf("the body is larger than 4 MiB (%d bytes)", len(big))},
		{"too large, streamed", func(w http.ResponseWriter, r *http.Request) {
			for i := 0; i < len(big); i += 64 << 10 {
				fmt.Fprint(w, big[i:min(i+64<<10, len(big))])
				w.(http.Flusher).Flush() // chunked: no Content-Length
			}
		}, "", false, "the body is larger than 4 MiB (more than that)"},
		{"redirect to plain http", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, withSecrets("http://example.com", "/channel-access-token.yml"), http.StatusFound)
		}, "", false, "redirected to http://xxxxx@example.com/channel-access-token.yml?token=xxxxx: http:// is allowed only to a loopback host"},
		{"not a spec", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "hello: world\n") },
			"", false, "not an OpenAPI 3 document"},
		{"no answer", func(http.ResponseWriter, *http.Request) {}, "", true,
			fmt.Sprintf("timed out: no complete answer within %s", stallTimeout)},
		{"body stalls", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", strconv.Itoa(len(spec)))
			fmt.Fprint(w, spec[:len(spec)/2])
			w.(http.Flusher).Flush()
		}, "", true, fmt.Sprintf("timed out: no complete answer within %s", stallTimeout)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			requests := 0
			release := make(chan struct{})
			timeout := time.Duration(0) // the default
			if tt.stall {
				timeout = stallTimeout
			}
			client, base := tlsUpstreamWithin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				requests++
				tt.handler(w, r)
				if tt.stall {
					<-release
				}
			}), timeout)
			t.Cleanup(func() { close(release) }) // before the server's Close, which waits for the handler
			if tt.host != "" {
				base = "https://" + tt.host
			}
			report := f.path("report.md")
			code, stdout, stderr := runWith(client, "-ours", ours, "-upstream", withSecrets(base, "/channel-access-token.yml"), "-report", report)
			assertNoSecret(t, stdout, stderr)
			if code != exitUsage || stdout != "" {
				t.Errorf("exit %d, stdout %q; want exit %d and no output", code, stdout, exitUsage)
			}
			if !strings.HasPrefix(stderr, "specdiff: fetch ") && tt.wantStderr != "not an OpenAPI 3 document" {
				t.Errorf("stderr = %q, want a fetch error", stderr)
			}
			if !strings.Contains(stderr, tt.wantStderr) {
				t.Errorf("stderr = %q, want it to contain %q", stderr, tt.wantStderr)
			}
			if tt.handler == nil && requests != 0 {
				t.Errorf("server got %d requests, want none", requests)
			}
			if _, err := os.Stat(report); !os.IsNotExist(err) {
				t.Errorf("report file: %v; want none written", err)
			}
		})
	}
}

// TestRunPlainHTTPToLoopback: http:// is accepted for a loopback host (tests).
func TestRunPlainHTTPToLoopback(t *testing.T) {
	f := newFixture(t)
	requests := 0
	srv := httptest.NewServer(serveText(spec, &requests))
	defer srv.Close()
	code, stdout, stderr := runWith(specdiff.NewHTTPClient(specdiff.ClientOptions{}), "-ours", f.write("ours.yml", spec), "-upstream", srv.URL+"/spec.yml", "-allow", "")
	if code != exitOK || requests != 1 || !strings.HasPrefix(stdout, "spec-diff: ok: 1 operations compared with "+srv.URL) {
		t.Errorf("exit %d, %d requests, stdout %q, stderr %q; want exit 0 after one request", code, requests, stdout, stderr)
	}
}

// TestRunURLSecretsNotShown: a URL's user name, password and ?token= reach
// the server but no output: not the ok line, the drift report (stdout and
// -report), nor the error for a URL refused before any request.
func TestRunURLSecretsNotShown(t *testing.T) {
	f := newFixture(t)
	ours := f.write("ours.yml", spec)
	drifted := strings.Replace(spec, "in: query, required: true", "in: query, required: false", 1)
	for _, tc := range []struct {
		name, upstream string
		args           []string
		wantCode       int
		wantStdout     string // with %s for the base URL
	}{
		{"clean", spec, nil, exitOK, "compared with https://xxxxx@%s/spec.yml?token=xxxxx;"},
		{"drift, markdown report", drifted, []string{"-format", "markdown"}, exitDifferences,
			"against `https://xxxxx@%s/spec.yml?token=xxxxx`"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var gotUser, gotPass, gotQuery string
			client, base := tlsUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				gotUser, gotPass, _ = r.BasicAuth()
				gotQuery = r.URL.Query().Get("token")
				fmt.Fprint(w, tc.upstream)
			}))
			report := f.path("report.md")
			args := append([]string{"-ours", ours, "-upstream", withSecrets(base, "/spec.yml"), "-allow", "", "-report", report}, tc.args...)
			code, stdout, stderr := runWith(client, args...)
			written, _ := os.ReadFile(report) // absent when clean
			assertNoSecret(t, stdout, stderr, string(written))
			if gotUser != secretUser || gotPass != secretPass || gotQuery != secretQuery {
				t.Errorf("server got user %q, password %q, token %q; want the URL's", gotUser, gotPass, gotQuery)
			}
			want := fmt.Sprintf(tc.wantStdout, strings.TrimPrefix(base, "https://"))
			if code != tc.wantCode || !strings.Contains(stdout, want) {
				t.Errorf("exit %d, stdout:\n%s\nstderr %q; want exit %d and %q", code, stdout, stderr, tc.wantCode, want)
			}
		})
	}
	for _, tc := range []struct{ name, url, wantStderr string }{
		{"unparsable", "https://" + secretUser + ":" + secretPass + "/x@example.com/spec.yml",
			"specdiff: upstream URL: not a valid URL (not shown: it may hold a password"},
		{"bad scheme", "ftp://" + secretUser + ":" + secretPass + "@example.com/spec.yml?token=" + secretQuery,
			"specdiff: upstream URL ftp://xxxxx@example.com/spec.yml?token=xxxxx: scheme \"ftp\": want https://"},
		{"plain http to a remote host", "http://" + secretUser + ":" + secretPass + "@example.com/spec.yml?token=" + secretQuery,
			"specdiff: upstream URL http://xxxxx@example.com/spec.yml?token=xxxxx: http:// is allowed only to a loopback host"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runCmd("-ours", ours, "-upstream", tc.url)
			assertNoSecret(t, stdout, stderr)
			if code != exitUsage || !strings.HasPrefix(stderr, tc.wantStderr) {
				t.Errorf("exit %d, stderr %q; want exit %d and %q", code, stderr, exitUsage, tc.wantStderr)
			}
		})
	}
}

// upstreamMutations are changes LINE could make to its file; each is an
// exact text edit of channel-access-token.yml that must occur once.
var upstreamMutations = []struct{ name, old, new, wantKey string }{
	{"path moved", `"/oauth2/v2.1/verify":`, `"/oauth2/v2.2/verify":`,
		"operation verifyChannelTokenByJWT: path /oauth2/v2.2/verify -> /oauth2/v2.1/verify"},
	{"operation renamed", "operationId: revokeChannelToken\n", "operationId: revokeChannelTokenV3\n",
		"operation revokeChannelTokenV3: only in upstream"},
	{"response field no longer required", "        - token_type\n        - key_id\n", "        - token_type\n",
		"operation issueChannelTokenByJWT: response 200 field key_id: optional -> required"},
	{"request field renamed", "                client_assertion:\n                  type: string\n                  description: \"A JSON Web Token",
		"                assertion:\n                  type: string\n                  description: \"A JSON Web Token",
		"operation issueChannelTokenByJWT: request body field assertion: only in upstream"},
	{"error field added", "      type: object\n      properties:\n        error:\n", "      type: object\n      properties:\n        error_code:\n          type: string\n        error:\n",
		"schema ErrorResponse field error_code: only in upstream"},
}

// TestRunCatchesUpstreamMutations: every planted change to LINE's real file
// is drift (exit 1, named in the report), through a file and through a URL
// alike.
func TestRunCatchesUpstreamMutations(t *testing.T) {
	up := testkit.RequireUpstream(t, repoFromHere, upstream.TokenSpec)
	original, err := os.ReadFile(up)
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t)
	for _, m := range upstreamMutations {
		t.Run(m.name, func(t *testing.T) {
			if n := strings.Count(string(original), m.old); n != 1 {
				t.Fatalf("%q occurs %d times in %s, want 1", m.old, n, up)
			}
			mutated := strings.Replace(string(original), m.old, m.new, 1)
			file := f.write("mutated.yml", mutated)
			requests := 0
			client, base := tlsUpstream(t, serveText(mutated, &requests))
			for _, source := range []string{file, base + "/channel-access-token.yml"} {
				code, stdout, stderr := runWith(client, "-ours", realOurs, "-upstream", source, "-allow", realAllow)
				if code != exitDifferences || !strings.Contains(stdout, "\n"+m.wantKey+"\n") {
					t.Errorf("%s: exit %d, want %d and the line %q\nstdout:\n%s\nstderr:\n%s", source, code, exitDifferences, m.wantKey, stdout, stderr)
				}
			}
			if requests != 1 {
				t.Errorf("server got %d requests, want 1", requests)
			}
		})
	}
}

// TestRunMarkdownGolden: -format markdown prints the report as a table, and
// -report writes the same text, on drift only.
func TestRunMarkdownGolden(t *testing.T) {
	f := newFixture(t)
	pkgDir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join(pkgDir, "testdata", "report.md.golden")
	t.Chdir(f.dir) // relative names in the report
	f.write("allow.yml", "allow:\n"+
		"  - key: \""+formatKey+"\"\n    reason: Long-lived tokens report values beyond int32 | so int64.\n"+
		"  - pattern: 'operation \\w+: response 429: only in ours'\n    reason: LINE sends 429s it does not document.\n"+
		"  - key: \"operation gone: only in upstream\"\n    reason: Stale on purpose.\n")
	ours := strings.Replace(spec, "int32", "int64", 1)
	ours = strings.Replace(ours, "        \"200\":\n", "        \"429\": {description: Too many}\n        \"200\":\n", 1)
	ours = strings.Replace(ours, "in: query, required: true", "in: query, required: false", 1)
	f.write("ours.yml", ours)
	f.write("up.yml", spec)

	code, stdout, stderr := runCmd("-ours", "ours.yml", "-upstream", "up.yml", "-allow", "allow.yml", "-format", "markdown", "-report", "report.md")
	if code != exitDifferences {
		t.Fatalf("exit %d, want %d; stderr %q", code, exitDifferences, stderr)
	}
	if *update {
		if err := os.WriteFile(golden, []byte(stdout), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -run TestRunMarkdownGolden -update to create it)", err)
	}
	if stdout != string(want) {
		t.Errorf("markdown output differs from %s (rerun with -update after review):\n%s", golden, stdout)
	}
	written, err := os.ReadFile("report.md")
	if err != nil || string(written) != stdout {
		t.Errorf("report.md = %q, %v; want the markdown output", written, err)
	}

	// A clean comparison writes no report.
	if err := os.Remove("report.md"); err != nil {
		t.Fatal(err)
	}
	code, _, stderr = runCmd("-ours", "up.yml", "-upstream", "up.yml", "-allow", "", "-report", "report.md")
	if _, err := os.Stat("report.md"); code != exitOK || !os.IsNotExist(err) {
		t.Errorf("clean run: exit %d (stderr %q), report file %v; want exit 0 and no report", code, stderr, err)
	}
}
