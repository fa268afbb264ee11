// Command specdiff compares linetoken's OpenAPI spec structurally with LINE's
// upstream one and fails on any difference that the reviewed allow-list does
// not explain, or on an allow-list entry that no longer matches anything.
// `make spec-diff` runs it from the repository root.
//
// Usage:
//
//	specdiff [-ours FILE] [-upstream FILE] [-allow FILE]
//
// Exit status: 0 when every difference is allowed (or the upstream file is
// absent outside CI), 1 on unexplained differences or stale allow-list
// entries, 2 on usage or load errors (and on an absent upstream file when
// CI=true).
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"

	"github.com/linetoken/linetoken/internal/specdiff"
)

const (
	exitOK          = 0
	exitDifferences = 1
	exitUsage       = 2

	programName = "spec-diff"

	defaultOurs     = "api/channel-access-token.yml"
	defaultUpstream = "../shared/upstream/channel-access-token.yml"
	defaultAllow    = "api/spec-diff-allow.yml"

	// noAllowListHint names the allow-list in the hint when none was given.
	noAllowListHint = "an allow-list given with -allow"
	// reasonPlaceholder is the reason suggested in the hint for a new entry.
	reasonPlaceholder = "why linetoken deviates from upstream (reviewed)"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run is the whole command; it returns the exit status.
func run(args []string, stdout, stderr io.Writer) int {
	flags := flag.NewFlagSet(programName, flag.ContinueOnError)
	flags.SetOutput(stderr)
	ours := flags.String("ours", defaultOurs, "our OpenAPI spec")
	upstream := flags.String("upstream", defaultUpstream, "LINE's upstream OpenAPI spec; when absent the comparison is skipped, except with CI=true")
	allow := flags.String("allow", defaultAllow, "reviewed allow-list of intentional differences (empty: none)")
	flags.Usage = func() {
		fmt.Fprintf(stderr, "usage: %s [-ours FILE] [-upstream FILE] [-allow FILE]\n", programName)
		flags.PrintDefaults()
	}
	if err := flags.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if flags.NArg() > 0 {
		fmt.Fprintf(stderr, "specdiff: unexpected arguments %q\n", flags.Args())
		flags.Usage()
		return exitUsage
	}
	if *ours == "" || *upstream == "" {
		fmt.Fprintln(stderr, "specdiff: -ours and -upstream must not be empty")
		flags.Usage()
		return exitUsage
	}

	if _, err := os.Stat(*upstream); err != nil {
		switch {
		case !specdiff.IsNotExist(err):
			fmt.Fprintf(stderr, "specdiff: upstream spec: %v\n", err)
			return exitUsage
		case specdiff.RunningInCI():
			fmt.Fprintf(stderr, "specdiff: %s not found, and %s=true: the upstream spec must be present in CI\n", *upstream, specdiff.CIEnvVar)
			return exitUsage
		default:
			fmt.Fprintf(stdout, "%s: skipped: %s not found (it exists only in the project's CI workspace)\n", programName, *upstream)
			return exitOK
		}
	}

	var allowList *specdiff.AllowList
	if *allow != "" {
		var err error
		if allowList, err = specdiff.LoadAllowList(*allow); err != nil {
			fmt.Fprintln(stderr, err)
			return exitUsage
		}
	}
	result, err := specdiff.CompareFiles(*ours, *upstream)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitUsage
	}
	outcome := allowList.Apply(result.Differences)
	if outcome.Clean() {
		entries := 0
		if allowList != nil {
			entries = len(allowList.Entries)
		}
		fmt.Fprintf(stdout, "%s: ok: %d operations compared with %s; no unexplained differences, %d allowed deviations (%d entries in %s)\n",
			programName, result.Operations, *upstream, len(outcome.Allowed), entries, orNone(*allow))
		return exitOK
	}
	report(stdout, *ours, *allow, outcome)
	return exitDifferences
}

// report prints the unexplained differences and stale entries, one per line,
// and how to resolve them.
func report(w io.Writer, ours, allow string, o specdiff.Outcome) {
	if len(o.Unexplained) > 0 {
		fmt.Fprintf(w, "%s: %d unexplained differences (A -> B reads upstream -> ours):\n", programName, len(o.Unexplained))
		for _, d := range o.Unexplained {
			fmt.Fprintln(w, d.Key)
		}
	}
	if len(o.Stale) > 0 {
		fmt.Fprintf(w, "%s: %d stale allow-list entries (they match no difference; delete or correct them):\n", programName, len(o.Stale))
		for _, e := range o.Stale {
			fmt.Fprintf(w, "%s:%d: %s\n", allow, e.Line, e)
		}
	}
	if len(o.Unexplained) > 0 {
		target := allow
		if target == "" {
			target = noAllowListHint
		}
		fmt.Fprintf(w, "%s: fix %s to match upstream, or, if a difference is intentional, add a reviewed entry to %s:\n", programName, ours, target)
		fmt.Fprintf(w, "  - key: %s\n    reason: %s\n", strconv.Quote(o.Unexplained[0].Key), reasonPlaceholder)
	}
}

func orNone(path string) string {
	if path == "" {
		return "(no allow-list)"
	}
	return path
}
