package ci

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// fakeMake stands in for `make spec-drift`: FAKE_MAKE says what happens.
// "drift" writes a report to the -report file given in SPECDIFF_FLAGS and
// fails as make does (exit 2), "network" fails the same way without a
// report, anything else succeeds. It logs its arguments.
const fakeMake = `#!/usr/bin/env bash
echo "make $*" >> "$FAKE_LOG"
for a in "$@"; do
  case "$a" in SPECDIFF_FLAGS=-report\ *) report="${a#SPECDIFF_FLAGS=-report }";; esac
done
case "$FAKE_MAKE" in
  drift) printf '## spec-diff: drift\n| a | b |\n' > "$report"; exit 2;;
  network) echo "specdiff: fetch ...: cannot resolve" >&2; exit 2;;
esac
`

// fakeGh stands in for the gh CLI: it logs its arguments and, for
// "issue list", prints FAKE_ISSUES (tab-separated number and title lines),
// and for --body-file copies the body to FAKE_BODY.
const fakeGh = `#!/usr/bin/env bash
echo "gh $*" >> "$FAKE_LOG"
prev=""
for a in "$@"; do
  [ "$prev" = --body-file ] && cp "$a" "$FAKE_BODY"
  prev="$a"
done
[ "$1 $2" = "issue list" ] && printf '%b' "$FAKE_ISSUES"
exit 0
`

// driftStep returns the run script and env of spec-drift.yml's step that
// runs make spec-drift.
func driftStep(t *testing.T) (string, map[string]string) {
	t.Helper()
	for _, job := range readWorkflow(t, workflowPath("spec-drift.yml")).Jobs {
		for _, s := range job.Steps {
			if strings.Contains(s.Run, "make spec-drift") {
				return s.Run, s.Env
			}
		}
	}
	t.Fatal("spec-drift.yml has no step running make spec-drift")
	return "", nil
}

// TestSpecDriftStep runs the workflow step's own script with bash, a fake
// make and a fake gh: drift opens the issue or updates the open one of the
// same title; no drift and any other failure file nothing, and the other
// failure fails the step.
func TestSpecDriftStep(t *testing.T) {
	script, stepEnv := driftStep(t)
	const title = "LINE's channel access token spec changed"
	if stepEnv["ISSUE_TITLE"] != title {
		t.Fatalf("ISSUE_TITLE = %q, want %q", stepEnv["ISSUE_TITLE"], title)
	}
	tests := []struct {
		name, make, issues string
		wantCode           int
		wantGh             []string // gh calls after "issue list", by prefix
	}{
		{"no drift", "ok", "", 0, nil},
		{"network failure", "network", "", 1, nil},
		{"drift, no issue yet", "drift", `3\tAnother issue\n`, 0, []string{"gh issue create --title " + title + " --body-file "}},
		{"drift, issue open", "drift", `3\tAnother issue\n12\t` + title + `\n`, 0, []string{"gh issue edit 12 --body-file "}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			bin := filepath.Join(dir, "bin")
			if err := os.Mkdir(bin, 0o755); err != nil {
				t.Fatal(err)
			}
			for name, text := range map[string]string{"make": fakeMake, "gh": fakeGh} {
				if err := os.WriteFile(filepath.Join(bin, name), []byte(text), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			log, body := filepath.Join(dir, "log"), filepath.Join(dir, "body")
			cmd := exec.Command("bash", "-e", "-c", script)
			cmd.Env = append(os.Environ(),
				"PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"),
				"RUNNER_TEMP="+dir, "RUN_URL=https://ci.example/runs/1", "ISSUE_TITLE="+title,
				"FAKE_MAKE="+tt.make, "FAKE_ISSUES="+tt.issues, "FAKE_LOG="+log, "FAKE_BODY="+body)
			out, err := cmd.CombinedOutput()
			code := cmd.ProcessState.ExitCode()
			if code != tt.wantCode {
				t.Fatalf("exit %d (%v), want %d; output:\n%s", code, err, tt.wantCode, out)
			}
			logText, _ := os.ReadFile(log)
			calls := strings.Split(strings.TrimSpace(string(logText)), "\n")
			if calls[0] != "make spec-drift SPECDIFF_FLAGS=-report "+filepath.Join(dir, "spec-drift.md") {
				t.Errorf("first call %q, want make spec-drift with the report flag", calls[0])
			}
			var gh []string
			for _, c := range calls[1:] {
				if !strings.HasPrefix(c, "gh issue list ") {
					gh = append(gh, c)
				}
			}
			if len(gh) != len(tt.wantGh) {
				t.Fatalf("gh calls %q, want %q", gh, tt.wantGh)
			}
			for i, want := range tt.wantGh {
				if !strings.HasPrefix(gh[i], want) {
					t.Errorf("gh call %q, want prefix %q", gh[i], want)
				}
			}
			if tt.wantGh != nil {
				filed, err := os.ReadFile(body)
				if err != nil || !strings.HasPrefix(string(filed), "## spec-diff: drift\n| a | b |\n") || !strings.Contains(string(filed), "Found by https://ci.example/runs/1") {
					t.Errorf("issue body %q (%v), want the report and the run's link", filed, err)
				}
			}
		})
	}
}
