package specdiff

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func diffs(keys ...string) []Difference {
	out := make([]Difference, len(keys))
	for i, k := range keys {
		out[i] = Difference{Key: k}
	}
	return out
}

func keysOf(ds []Difference) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.Key
	}
	return out
}

const (
	formatKey    = "operation issueChannelToken: response 200 field expires_in: format int32 -> int64"
	response429  = "operation verifyChannelToken: response 429: only in ours"
	response404  = "operation issueChannelTokenByJWT: response 404: only in ours"
	newOperation = "operation newThing: only in upstream"
)

func TestAllowListApply(t *testing.T) {
	list, err := ParseAllowList([]byte(`
allow:
  - key: "` + formatKey + `"
    reason: int64 everywhere.
  - pattern: 'operation \w+: response (404|429): only in ours'
    reason: We declare the error responses.
  - key: "operation gone: only in upstream"
    reason: No longer true.
`))
	if err != nil {
		t.Fatal(err)
	}
	out := list.Apply(diffs(formatKey, newOperation, response404, response429))
	if got, want := keysOf(out.Allowed), []string{formatKey, response404, response429}; !slices.Equal(got, want) {
		t.Errorf("Allowed = %q, want %q", got, want)
	}
	if got, want := keysOf(out.Unexplained), []string{newOperation}; !slices.Equal(got, want) {
		t.Errorf("Unexplained = %q, want %q", got, want)
	}
	const staleLine = 7 // the text starts with a newline
	if len(out.Stale) != 1 || out.Stale[0].Key != "operation gone: only in upstream" || out.Stale[0].Line != staleLine {
		t.Errorf("Stale = %+v, want the entry on line %d", out.Stale, staleLine)
	}
	if out.Clean() {
		t.Error("Clean() = true with unexplained differences and a stale entry")
	}
}

func TestAllowListCleanWhenEverythingIsExplained(t *testing.T) {
	list, err := ParseAllowList([]byte("allow:\n  - key: \"" + formatKey + "\"\n    reason: int64 everywhere.\n"))
	if err != nil {
		t.Fatal(err)
	}
	out := list.Apply(diffs(formatKey))
	if !out.Clean() || len(out.Allowed) != 1 {
		t.Errorf("outcome = %+v, want clean with one allowed difference", out)
	}
}

func TestAllowListStaleWhenNothingDiffers(t *testing.T) {
	list, err := ParseAllowList([]byte("allow:\n  - pattern: 'operation \\w+: response 429: only in ours'\n    reason: r\n"))
	if err != nil {
		t.Fatal(err)
	}
	out := list.Apply(nil)
	if out.Clean() || len(out.Stale) != 1 {
		t.Errorf("outcome = %+v, want the pattern entry stale", out)
	}
}

func TestAllowListPatternMatchesWholeKeys(t *testing.T) {
	list, err := ParseAllowList([]byte("allow:\n  - pattern: 'response 429: only in ours'\n    reason: too loose\n"))
	if err != nil {
		t.Fatal(err)
	}
	out := list.Apply(diffs(response429))
	if len(out.Unexplained) != 1 || len(out.Stale) != 1 {
		t.Errorf("outcome = %+v, want a partial match ignored", out)
	}
}

func TestNilAllowListAllowsNothing(t *testing.T) {
	var list *AllowList
	out := list.Apply(diffs(formatKey))
	if len(out.Unexplained) != 1 || len(out.Allowed) != 0 || len(out.Stale) != 0 {
		t.Errorf("outcome = %+v, want the difference unexplained", out)
	}
}

func TestEmptyAllowListFile(t *testing.T) {
	for _, text := range []string{"", "# nothing yet\n", "allow:\n", "allow: []\n"} {
		list, err := ParseAllowList([]byte(text))
		if err != nil || len(list.Entries) != 0 {
			t.Errorf("ParseAllowList(%q) = %+v, %v; want no entries", text, list, err)
		}
	}
}

func TestParseAllowListErrors(t *testing.T) {
	tests := []struct{ name, text, want string }{
		{"not a mapping", "- key: x\n", "want a mapping"},
		{"unknown top-level field", "allowed: []\n", `unknown field "allowed"`},
		{"list not a list", "allow: yes\n", "must be a list"},
		{"entry not a mapping", "allow:\n  - just a key\n", "must be a mapping"},
		{"both key and pattern", "allow:\n  - key: a\n    pattern: b\n    reason: r\n", "exactly one of key and pattern"},
		{"neither key nor pattern", "allow:\n  - reason: r\n", "exactly one of key and pattern"},
		{"no reason", "allow:\n  - key: a\n", "needs a reason"},
		{"blank reason", "allow:\n  - key: a\n    reason: \"  \"\n", "needs a reason"},
		{"unknown entry field", "allow:\n  - key: a\n    reason: r\n    note: n\n", `unknown field "note"`},
		{"field twice", "allow:\n  - key: a\n    key: b\n    reason: r\n", "key given twice"},
		{"reason not a string", "allow:\n  - key: a\n    reason: [r]\n", "reason must be a string"},
		{"bad pattern", "allow:\n  - pattern: '('\n    reason: r\n", "bad pattern"},
		{"repeated entry", "allow:\n  - key: a\n    reason: r\n  - key: a\n    reason: s\n", "line 4: entry repeats the one on line 2"},
		{"bad YAML", "allow: [\n", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseAllowList([]byte(tt.text))
			if err == nil {
				t.Fatal("ParseAllowList succeeded, want an error")
			}
			if !strings.HasPrefix(err.Error(), "specdiff: allow-list: ") || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %q, want prefix %q and %q", err, "specdiff: allow-list: ", tt.want)
			}
		})
	}
}

func TestLoadAllowListNamesTheFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "allow.yml")
	if err := os.WriteFile(path, []byte("allow:\n  - key: a\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := LoadAllowList(path)
	if err == nil || !strings.HasPrefix(err.Error(), "specdiff: allow-list "+path+": line 2: ") {
		t.Errorf("err = %v, want it to name %s and the line", err, path)
	}
	if _, err := LoadAllowList(filepath.Join(t.TempDir(), "absent.yml")); !IsNotExist(err) {
		t.Errorf("err = %v, want not-exist", err)
	}
}

func TestAllowEntryString(t *testing.T) {
	if got, want := (AllowEntry{Key: "k"}).String(), `key "k"`; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	if got, want := (AllowEntry{Pattern: `a\w`}).String(), `pattern "a\\w"`; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}

// TestProjectAllowList checks the project's reviewed list is well-formed and
// every entry gives a reason.
func TestProjectAllowList(t *testing.T) {
	list, err := LoadAllowList("../../api/spec-diff-allow.yml")
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Entries) == 0 {
		t.Fatal("the project's allow-list has no entries")
	}
	for _, e := range list.Entries {
		if e.Reason == "" {
			t.Errorf("line %d: no reason", e.Line)
		}
	}
}
