package ci

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/rhysd/actionlint"
	"go.yaml.in/yaml/v4"

	"github.com/linetoken/linetoken/internal/upstream"
)

const (
	repoRoot    = "../.."
	workflowDir = repoRoot + "/.github/workflows"
	commitFile  = repoRoot + "/api/line-openapi-commit"
)

// workflows are the project's workflow files.
var workflows = []string{"ci.yml", "spec-drift.yml"}

func workflowPath(name string) string { return filepath.Join(workflowDir, name) }

// lint runs actionlint (without shellcheck, which `make lint-workflows` adds
// where it is installed) on files and returns its findings.
func lint(t *testing.T, files ...string) []*actionlint.Error {
	t.Helper()
	var out bytes.Buffer
	linter, err := actionlint.NewLinter(&out, &actionlint.LinterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	errs, err := linter.LintFiles(files, nil)
	if err != nil {
		t.Fatalf("actionlint: %v", err)
	}
	return errs
}

func TestActionlintPassesOnWorkflows(t *testing.T) {
	entries, err := os.ReadDir(workflowDir)
	if err != nil {
		t.Fatal(err)
	}
	var found []string
	for _, e := range entries {
		found = append(found, e.Name())
	}
	if !slices.Equal(found, workflows) {
		t.Errorf("%s holds %v, want %v (update this test and the Makefile's WORKFLOWS)", workflowDir, found, workflows)
	}
	var paths []string
	for _, w := range workflows {
		paths = append(paths, workflowPath(w))
	}
	for _, e := range lint(t, paths...) {
		t.Errorf("%s:%d:%d: %s [%s]", e.Filepath, e.Line, e.Column, e.Message, e.Kind)
	}
}

// TestActionlintCatchesMistakes: the lint above can fail.
func TestActionlintCatchesMistakes(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.yml")
	const text = "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n" +
		"      - uses: actions/setup-go@v5\n        with:\n          go-version-fil: go.mod\n" +
		"      - run: echo ${{ steps.nope.outputs.x }}\n"
	if err := os.WriteFile(bad, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	if errs := lint(t, bad); len(errs) < 2 {
		t.Errorf("actionlint found %d problems in a workflow with an unknown input and an unknown step, want 2: %v", len(errs), errs)
	}
}

// workflow is the part of a workflow file these tests read.
type workflow struct {
	// On is the trigger: an event name, a list of them, or a map from
	// event to its settings.
	On          any               `yaml:"on"`
	Permissions map[string]string `yaml:"permissions"`
	Jobs        map[string]struct {
		Steps []struct {
			Name string            `yaml:"name"`
			Uses string            `yaml:"uses"`
			Run  string            `yaml:"run"`
			Env  map[string]string `yaml:"env"`
			With map[string]string `yaml:"with"`
		} `yaml:"steps"`
	} `yaml:"jobs"`
}

func readWorkflow(t *testing.T, path string) workflow {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return parseWorkflow(t, path, data)
}

func parseWorkflow(t *testing.T, name string, data []byte) workflow {
	t.Helper()
	var w workflow
	if err := yaml.Unmarshal(data, &w); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return w
}

// makeCall finds make invocations in a shell script: "make" in command
// position, its arguments up to the end of the command.
var makeCall = regexp.MustCompile(`(?m)(?:^|[;&|(!]|\bif|\bthen|\belse|\bdo)\s*make\b([^;&|)\n]*)`)

// bashScript finds scripts a step runs with "bash FILE".
var bashScript = regexp.MustCompile(`(?m)(?:^|[;&|(]|\bif|\bthen)\s*bash\s+([^\s;&|)]+)`)

// makeTargets returns the targets named by make calls in script, skipping
// options (and the argument of -C, -f, -j) and VAR=value assignments.
func makeTargets(script string) []string {
	var targets []string
	for _, m := range makeCall.FindAllStringSubmatch(stripComments(script), -1) {
		args := shellWords(m[1])
		for i := 0; i < len(args); i++ {
			switch a := args[i]; {
			case a == "-C" || a == "-f" || a == "-j" || a == "-o" || a == "-W":
				i++
			case strings.HasPrefix(a, "-"), strings.Contains(a, "="), a == "":
			default:
				targets = append(targets, a)
			}
		}
	}
	return targets
}

// stripComments drops shell comments: a # at a word's start, to the end of
// its line (a # inside quotes is not one; the scripts here have none).
func stripComments(script string) string {
	lines := strings.Split(script, "\n")
	for i, line := range lines {
		for j := 0; j < len(line); j++ {
			if line[j] == '#' && (j == 0 || line[j-1] == ' ' || line[j-1] == '\t') {
				lines[i] = line[:j]
				break
			}
		}
	}
	return strings.Join(lines, "\n")
}

// shellWords splits s into words as the shell does for plain and quoted
// words (no expansions): `a "b c"` is [a, b c].
func shellWords(s string) []string {
	var words []string
	var word strings.Builder
	inWord := false
	var quote rune
	for _, r := range s {
		switch {
		case quote != 0 && r == quote:
			quote = 0
		case quote != 0:
			word.WriteRune(r)
		case r == '"' || r == '\'':
			quote, inWord = r, true
		case r == ' ' || r == '\t':
			if inWord {
				words = append(words, word.String())
				word.Reset()
				inWord = false
			}
		default:
			word.WriteRune(r)
			inWord = true
		}
	}
	if inWord {
		words = append(words, word.String())
	}
	return words
}

// missingMakeTargets returns the targets that a workflow's run steps, and
// the scripts they run with bash, name but root's Makefile lacks.
func missingMakeTargets(root string, w workflow) ([]string, error) {
	var scripts []string
	for _, job := range w.Jobs {
		for _, s := range job.Steps {
			scripts = append(scripts, s.Run)
			for _, m := range bashScript.FindAllStringSubmatch(s.Run, -1) {
				data, err := os.ReadFile(filepath.Join(root, m[1]))
				if err != nil {
					return nil, fmt.Errorf("a step runs bash %s: %w", m[1], err)
				}
				scripts = append(scripts, string(data))
			}
		}
	}
	var missing []string
	for _, script := range scripts {
		for _, target := range makeTargets(script) {
			if slices.Contains(missing, target) {
				continue
			}
			// -n: print, run nothing; -q would still build nothing but
			// cannot tell an unknown target from an out-of-date one.
			out, err := exec.Command("make", "-C", root, "-n", target).CombinedOutput()
			switch {
			case err == nil:
			case bytes.Contains(out, []byte("No rule to make target")):
				missing = append(missing, target)
			default:
				return nil, fmt.Errorf("make -n %s: %v\n%s", target, err, out)
			}
		}
	}
	return missing, nil
}

func TestWorkflowMakeTargetsExist(t *testing.T) {
	if _, err := exec.LookPath("make"); err != nil {
		t.Fatalf("make is needed to check the workflows' make targets: %v", err)
	}
	for _, name := range workflows {
		missing, err := missingMakeTargets(repoRoot, readWorkflow(t, workflowPath(name)))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(missing) > 0 {
			t.Errorf("%s runs make targets the Makefile lacks: %v", name, missing)
		}
	}
}

// TestMakeTargetCheckCatchesMissing: the check above can fail, and sees
// through options, assignments, conditions and bash scripts.
func TestMakeTargetCheckCatchesMissing(t *testing.T) {
	if got, want := makeTargets("if make -s spec-drift SPECDIFF_FLAGS=\"-report x\"; then\n  make -C . test lint # all\nfi\n! make nope && true"),
		[]string{"spec-drift", "test", "lint", "nope"}; !slices.Equal(got, want) {
		t.Errorf("makeTargets = %q, want %q", got, want)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "Makefile"), []byte("test:\n\t@echo test\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "run.sh"), []byte("make test no-such-in-script\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var w workflow
	if err := yaml.Unmarshal([]byte("jobs:\n  a:\n    steps:\n      - run: make test\n      - run: |\n          make no-such-target\n          bash run.sh\n"), &w); err != nil {
		t.Fatal(err)
	}
	missing, err := missingMakeTargets(dir, w)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(missing)
	if want := []string{"no-such-in-script", "no-such-target"}; !slices.Equal(missing, want) {
		t.Errorf("missing = %q, want %q", missing, want)
	}
}

// events returns a workflow's trigger events, each with its settings (nil
// for none), whichever of the three forms "on:" takes.
func events(w workflow) map[string]any {
	out := map[string]any{}
	switch on := w.On.(type) {
	case string:
		out[on] = nil
	case []any:
		for _, e := range on {
			out[fmt.Sprint(e)] = nil
		}
	case map[string]any:
		maps.Copy(out, on)
	}
	return out
}

// weeklyCron matches a cron schedule that fires once a week: a fixed
// minute, hour and weekday, any day of the month and month.
var weeklyCron = regexp.MustCompile(`^[0-9]{1,2} [0-9]{1,2} \* \* ([0-7]|(?i:sun|mon|tue|wed|thu|fri|sat))$`)

// ciProblems says how ci.yml departs from issue 10: it runs on push and
// pull_request; sets Go up from go.mod; checks out line/line-openapi at the
// pinned commit; runs .ci/run with CI=true and UPSTREAM_DIR there.
func ciProblems(w workflow) []string {
	var problems []string
	on := events(w)
	for _, e := range []string{"push", "pull_request"} {
		if _, ok := on[e]; !ok {
			problems = append(problems, "does not run on "+e)
		}
	}
	var runsCI, setsGo, checksOutUpstream bool
	for _, s := range w.Jobs["test"].Steps {
		switch {
		case strings.HasPrefix(s.Uses, "actions/setup-go@"):
			setsGo = strings.HasSuffix(s.With["go-version-file"], "go.mod")
		case strings.HasPrefix(s.Uses, "actions/checkout@") && s.With["repository"] == "line/line-openapi":
			checksOutUpstream = strings.Contains(s.With["ref"], "steps.upstream.outputs.commit")
		case s.Run == "bash .ci/run":
			runsCI = strings.HasSuffix(s.Env[upstream.DirEnv], "/line-openapi") && s.Env[upstream.CIEnvVar] == "true"
		}
	}
	if !runsCI {
		problems = append(problems, "job test does not run bash .ci/run with UPSTREAM_DIR (the line-openapi checkout) and CI=true")
	}
	if !setsGo {
		problems = append(problems, "job test does not set Go up from go.mod (go-version-file)")
	}
	if !checksOutUpstream {
		problems = append(problems, "job test does not check out line/line-openapi at the pinned commit")
	}
	return problems
}

// driftProblems says how spec-drift.yml departs from issue 10: it runs on
// one weekly schedule and workflow_dispatch, nothing else, with permissions
// contents: read and issues: write only. The problems are sorted.
func driftProblems(w workflow) []string {
	var problems []string
	on := events(w)
	if _, ok := on["workflow_dispatch"]; !ok {
		problems = append(problems, "does not run on workflow_dispatch")
	}
	schedule, _ := on["schedule"].([]any)
	if len(schedule) != 1 {
		problems = append(problems, fmt.Sprintf("has %d schedules, want one weekly cron", len(schedule)))
	}
	for _, entry := range schedule {
		cron, _ := entry.(map[string]any)["cron"].(string)
		if !weeklyCron.MatchString(cron) {
			problems = append(problems, fmt.Sprintf("schedule cron %q is not weekly", cron))
		}
	}
	for e := range on {
		if e != "schedule" && e != "workflow_dispatch" {
			problems = append(problems, "also runs on "+e)
		}
	}
	if want := map[string]string{"contents": "read", "issues": "write"}; !maps.Equal(w.Permissions, want) {
		problems = append(problems, fmt.Sprintf("permissions %v, want exactly %v", w.Permissions, want))
	}
	slices.Sort(problems) // map order
	return problems
}

// TestWorkflowsAsSpecified pins what issue 10 asks of the two workflows
// beyond what actionlint checks.
func TestWorkflowsAsSpecified(t *testing.T) {
	if p := ciProblems(readWorkflow(t, workflowPath("ci.yml"))); len(p) > 0 {
		t.Errorf("ci.yml: %q", p)
	}
	if p := driftProblems(readWorkflow(t, workflowPath("spec-drift.yml"))); len(p) > 0 {
		t.Errorf("spec-drift.yml: %q", p)
	}
}

// TestWorkflowChecksCatchMutations: the checks above fail on each way a
// workflow could depart from the issue (an exact edit of the real file),
// and accept other spellings of the same triggers.
func TestWorkflowChecksCatchMutations(t *testing.T) {
	const (
		ciOn    = "on:\n  push:\n  pull_request:\n"
		driftOn = "  schedule:\n    - cron: \"23 5 * * 1\" # Mondays 05:23 UTC\n  workflow_dispatch:\n"
	)
	tests := []struct {
		file, name, old, new string
		check                func(workflow) []string
		want                 []string // nil: no problem
	}{
		{"ci.yml", "list form", ciOn, "on: [push, pull_request]\n", ciProblems, nil},
		{"ci.yml", "push to main only is still push", ciOn, "on:\n  push: {branches: [main]}\n  pull_request:\n", ciProblems, nil},
		{"ci.yml", "no push", ciOn, "on:\n  pull_request:\n", ciProblems, []string{"does not run on push"}},
		{"ci.yml", "no pull_request", ciOn, "on: push\n", ciProblems, []string{"does not run on pull_request"}},
		{"ci.yml", "manual only", ciOn, "on: workflow_dispatch\n", ciProblems, []string{"does not run on push", "does not run on pull_request"}},
		{"ci.yml", "Go not from go.mod", "go-version-file: linetoken/go.mod", "go-version: stable", ciProblems,
			[]string{"job test does not set Go up from go.mod (go-version-file)"}},
		{"ci.yml", "upstream at main", "ref: ${{ steps.upstream.outputs.commit }}", "ref: main", ciProblems,
			[]string{"job test does not check out line/line-openapi at the pinned commit"}},
		{"ci.yml", "no CI=true", `CI: "true"`, `CI: "false"`, ciProblems,
			[]string{"job test does not run bash .ci/run with UPSTREAM_DIR (the line-openapi checkout) and CI=true"}},
		{"spec-drift.yml", "weekday by name", `cron: "23 5 * * 1"`, `cron: "23 5 * * MON"`, driftProblems, nil},
		{"spec-drift.yml", "daily", `cron: "23 5 * * 1"`, `cron: "23 5 * * *"`, driftProblems,
			[]string{`schedule cron "23 5 * * *" is not weekly`}},
		{"spec-drift.yml", "twice a week", `cron: "23 5 * * 1"`, `cron: "23 5 * * 1,4"`, driftProblems,
			[]string{`schedule cron "23 5 * * 1,4" is not weekly`}},
		{"spec-drift.yml", "hourly on Mondays", `cron: "23 5 * * 1"`, `cron: "23 * * * MON"`, driftProblems,
			[]string{`schedule cron "23 * * * MON" is not weekly`}},
		{"spec-drift.yml", "two schedules", "    - cron: \"23 5 * * 1\"", "    - cron: \"0 0 * * 3\"\n    - cron: \"23 5 * * 1\"", driftProblems,
			[]string{"has 2 schedules, want one weekly cron"}},
		{"spec-drift.yml", "no schedule", driftOn, "  workflow_dispatch:\n", driftProblems,
			[]string{"has 0 schedules, want one weekly cron"}},
		{"spec-drift.yml", "no workflow_dispatch", "  workflow_dispatch:\n", "", driftProblems,
			[]string{"does not run on workflow_dispatch"}},
		{"spec-drift.yml", "also on push", driftOn, driftOn + "  push:\n", driftProblems, []string{"also runs on push"}},
		{"spec-drift.yml", "more permissions", "  issues: write\n", "  issues: write\n  pull-requests: write\n", driftProblems,
			[]string{"permissions map[contents:read issues:write pull-requests:write], want exactly map[contents:read issues:write]"}},
	}
	for _, tt := range tests {
		t.Run(tt.file+"/"+tt.name, func(t *testing.T) {
			data, err := os.ReadFile(workflowPath(tt.file))
			if err != nil {
				t.Fatal(err)
			}
			if n := strings.Count(string(data), tt.old); n != 1 {
				t.Fatalf("%q occurs %d times in %s, want 1", tt.old, n, tt.file)
			}
			mutated := strings.Replace(string(data), tt.old, tt.new, 1)
			if got := tt.check(parseWorkflow(t, tt.file, []byte(mutated))); !slices.Equal(got, tt.want) {
				t.Errorf("problems %q, want %q", got, tt.want)
			}
		})
	}
}

// commitPattern is a full git commit hash.
var commitPattern = regexp.MustCompile(`^[0-9a-f]{40}$`)

// TestUpstreamCommitFile: api/line-openapi-commit names one commit, the one
// the upstream folder's ORIGIN names where it has one (the project's
// workspace copy; a checkout has none).
func TestUpstreamCommitFile(t *testing.T) {
	data, err := os.ReadFile(commitFile)
	if err != nil {
		t.Fatal(err)
	}
	commit := strings.TrimSpace(string(data))
	if !commitPattern.MatchString(commit) || string(data) != commit+"\n" {
		t.Fatalf("%s = %q, want one line holding a 40-hex commit", commitFile, data)
	}
	origin, err := os.ReadFile(upstream.File(repoRoot, "ORIGIN"))
	switch {
	case errors.Is(err, os.ErrNotExist):
		t.Logf("no ORIGIN in %s (a line/line-openapi checkout): nothing to cross-check", upstream.Dir(repoRoot))
	case err != nil:
		t.Fatal(err)
	case !bytes.Contains(origin, []byte("commit "+commit)):
		t.Errorf("%s names %s, but %s says:\n%s", commitFile, commit, upstream.File(repoRoot, "ORIGIN"), origin)
	}
}
