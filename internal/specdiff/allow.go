package specdiff

import (
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v4"
)

// Field names of the allow-list file.
const (
	allowListField = "allow"
	keyField       = "key"
	patternField   = "pattern"
	reasonField    = "reason"

	// nullTag is the YAML tag of an empty value.
	nullTag = "!!null"

	// patternAnchorFormat makes a pattern match a whole key.
	patternAnchorFormat = `^(?:%s)$`
)

// AllowList is the reviewed list of intentional deviations from upstream, read
// from a YAML file such as api/spec-diff-allow.yml:
//
//	allow:
//	  - key: "operation issueChannelToken: response 200 field expires_in: format int32 -> int64"
//	    reason: Long-lived tokens report expires_in values beyond int32.
//	  - pattern: 'operation \w+: response (400|404|429): only in ours'
//	    reason: Every operation declares the error responses LINE sends.
//
// Each entry gives exactly one of key (a difference key, matched exactly) or
// pattern (a Go regular expression that must match a whole key), and a
// non-empty reason. An entry that matches no difference is stale: [Outcome]
// reports it, so that the list only ever holds deviations that still exist.
type AllowList struct {
	// Entries are the list's entries in file order.
	Entries []AllowEntry
}

// AllowEntry is one reviewed deviation.
type AllowEntry struct {
	// Key is the exact difference key allowed, or "" when Pattern is set.
	Key string
	// Pattern is a regular expression matching whole difference keys, or ""
	// when Key is set.
	Pattern string
	// Reason says why we deviate from upstream.
	Reason string
	// Line is the entry's line in its file.
	Line int

	re *regexp.Regexp
}

// Matches reports whether the entry allows the difference key.
func (e AllowEntry) Matches(key string) bool {
	if e.re != nil {
		return e.re.MatchString(key)
	}
	return e.Key == key
}

// String describes the entry by its key or pattern: `key "..."`.
func (e AllowEntry) String() string {
	if e.Pattern != "" {
		return patternField + " " + strconv.Quote(e.Pattern)
	}
	return keyField + " " + strconv.Quote(e.Key)
}

// LoadAllowList reads and checks an allow-list file.
func LoadAllowList(path string) (*AllowList, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("specdiff: allow-list: %w", err)
	}
	list, err := parseAllowList(data)
	if err != nil {
		return nil, fmt.Errorf("specdiff: allow-list %s: %w", path, err)
	}
	return list, nil
}

// ParseAllowList parses and checks an allow-list's YAML text.
func ParseAllowList(data []byte) (*AllowList, error) {
	list, err := parseAllowList(data)
	if err != nil {
		return nil, fmt.Errorf("specdiff: allow-list: %w", err)
	}
	return list, nil
}

func parseAllowList(data []byte) (*AllowList, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, err
	}
	list := &AllowList{}
	if len(doc.Content) == 0 {
		return list, nil // an empty file allows nothing
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("line %d: want a mapping with an %q list", root.Line, allowListField)
	}
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		if k.Value != allowListField {
			return nil, fmt.Errorf("line %d: unknown field %q (want %q)", k.Line, k.Value, allowListField)
		}
		if v.Kind == yaml.ScalarNode && v.Tag == nullTag {
			continue
		}
		if v.Kind != yaml.SequenceNode {
			return nil, fmt.Errorf("line %d: %q must be a list", v.Line, allowListField)
		}
		for _, item := range v.Content {
			entry, err := parseEntry(item)
			if err != nil {
				return nil, err
			}
			list.Entries = append(list.Entries, entry)
		}
	}
	seen := map[string]int{}
	for _, e := range list.Entries {
		id := e.Key + "\x00" + e.Pattern
		if line, dup := seen[id]; dup {
			return nil, fmt.Errorf("line %d: entry repeats the one on line %d", e.Line, line)
		}
		seen[id] = e.Line
	}
	return list, nil
}

func parseEntry(n *yaml.Node) (AllowEntry, error) {
	e := AllowEntry{Line: n.Line}
	if n.Kind != yaml.MappingNode {
		return e, fmt.Errorf("line %d: an entry must be a mapping with %s (or %s) and %s", n.Line, keyField, patternField, reasonField)
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if seen[k.Value] {
			return e, fmt.Errorf("line %d: %s given twice", k.Line, k.Value)
		}
		seen[k.Value] = true
		if v.Kind != yaml.ScalarNode {
			return e, fmt.Errorf("line %d: %s must be a string", v.Line, k.Value)
		}
		switch k.Value {
		case keyField:
			e.Key = v.Value
		case patternField:
			e.Pattern = v.Value
		case reasonField:
			e.Reason = strings.TrimSpace(v.Value)
		default:
			return e, fmt.Errorf("line %d: unknown field %q (want %s, %s, %s)", k.Line, k.Value, keyField, patternField, reasonField)
		}
	}
	switch {
	case (e.Key == "") == (e.Pattern == ""):
		return e, fmt.Errorf("line %d: an entry needs exactly one of %s and %s", n.Line, keyField, patternField)
	case e.Reason == "":
		return e, fmt.Errorf("line %d: an entry needs a %s", n.Line, reasonField)
	}
	if e.Pattern != "" {
		re, err := regexp.Compile(fmt.Sprintf(patternAnchorFormat, e.Pattern))
		if err != nil {
			return e, fmt.Errorf("line %d: bad %s: %w", n.Line, patternField, err)
		}
		e.re = re
	}
	return e, nil
}

// Outcome sorts a comparison's differences by an allow-list.
type Outcome struct {
	// Allowed are the differences some entry allows.
	Allowed []Difference
	// AllowedBy holds, for each of Allowed, the first entry that allows it.
	AllowedBy []AllowEntry
	// Unexplained are the differences no entry allows.
	Unexplained []Difference
	// Stale are the entries that match no difference.
	Stale []AllowEntry
}

// Clean reports whether every difference is allowed and every entry is used.
func (o Outcome) Clean() bool { return len(o.Unexplained) == 0 && len(o.Stale) == 0 }

// Apply sorts diffs into allowed and unexplained ones and finds the stale
// entries. A nil list allows nothing.
func (l *AllowList) Apply(diffs []Difference) Outcome {
	var entries []AllowEntry
	if l != nil {
		entries = l.Entries
	}
	used := make([]bool, len(entries))
	var out Outcome
	for _, d := range diffs {
		by := -1
		for i, e := range entries {
			if e.Matches(d.Key) {
				used[i] = true
				if by < 0 {
					by = i
				}
			}
		}
		if by >= 0 {
			out.Allowed = append(out.Allowed, d)
			out.AllowedBy = append(out.AllowedBy, entries[by])
		} else {
			out.Unexplained = append(out.Unexplained, d)
		}
	}
	for i, e := range entries {
		if !used[i] {
			out.Stale = append(out.Stale, e)
		}
	}
	return out
}
