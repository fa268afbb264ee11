package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/linetoken/linetoken/oauth"
)

// TestBaseURLSettingNotEchoed: a secret pasted into LINE_API_BASE_URL or
// --base-url (the slip TestNoSecretPrinted plants for the key file
// variable) must not be printed back, as the CLI clips every other
// misplaced argument (see clip). The base URL reaches stderr through
// oauth.NewClient's error, which used to quote the whole value when it had
// no host, a fragment or did not parse (found by the leak audit, fixed in
// b4ce78b: errors quote at most the URL's origin).
func TestBaseURLSettingNotEchoed(t *testing.T) {
	f := newFixture(t)
	secret := f.ch.Secret
	for name, base := range map[string]string{
		"bare":      secret,
		"fragment":  "https://api.line.me/#" + secret,
		"unparsed":  "%" + secret,
		"user info": "https://" + f.ch.ID + ":" + secret + "@api.line.me",
		"query":     "https://api.line.me/?client_secret=" + secret,
	} {
		for _, args := range [][]string{
			{"issue", "--type", "short-lived"},
			{"verify", "not-a-jws"},
		} {
			// In the environment, and as the flag.
			runs := []result{
				cli(t, with(f.env, oauth.EnvBaseURL, base), "", args...),
				cli(t, f.env, "", append(args, "--base-url", base)...),
			}
			for i, r := range runs {
				if r.code != exitUsage {
					t.Errorf("%s, %s, run %d: exit %d, want %d", name, args[0], i, r.code, exitUsage)
				}
				if strings.Contains(r.stdout+r.stderr, secret) || strings.Contains(r.stdout+r.stderr, secret[:16]) {
					t.Errorf("%s, %s, run %d: the channel secret given as the base URL is printed: %s", name, args[0], i,
						strings.ReplaceAll(r.stderr, secret, "<SECRET>"))
				}
			}
		}
	}
}

// leakAuditTests are the tests TESTING.md's CLI leak audit command must run.
var leakAuditTests = []string{"TestNoSecretPrinted", "TestBaseURLSettingNotEchoed", "TestAgentNoSecretPrinted", "TestAgentProxyNoSecretPrinted"}

// TestLeakAuditCommandRunsTheAudit: the command TESTING.md gives for the
// CLI's leak audit selects the audit's tests (it once said -run
// 'Leak|BaseURL', which skipped TestNoSecretPrinted), and they exist.
func TestLeakAuditCommandRunsTheAudit(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "TESTING.md"))
	if err != nil {
		t.Fatal(err)
	}
	var pattern string
	for _, line := range strings.Split(string(doc), "\n") {
		if strings.HasPrefix(line, "go test ") && strings.Contains(line, "./cmd/linetoken/") && strings.Contains(line, "-run '") {
			_, rest, _ := strings.Cut(line, "-run '")
			pattern, _, _ = strings.Cut(rest, "'")
		}
	}
	if pattern == "" {
		t.Fatal("TESTING.md gives no go test -run command for ./cmd/linetoken/")
	}
	re, err := regexp.Compile(pattern)
	if err != nil {
		t.Fatalf("TESTING.md's -run %q: %v", pattern, err)
	}
	var sources strings.Builder
	files, _ := filepath.Glob("*_test.go")
	for _, name := range files {
		src, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		sources.Write(src)
	}
	for _, name := range leakAuditTests {
		if !re.MatchString(name) {
			t.Errorf("TESTING.md's -run %q does not run %s", pattern, name)
		}
		if !strings.Contains(sources.String(), "\nfunc "+name+"(t *testing.T) {") {
			t.Errorf("%s is gone: update leakAuditTests and TESTING.md's command", name)
		}
	}
}
