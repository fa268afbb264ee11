// Command specdiff compares linetoken's OpenAPI spec structurally with LINE's
// upstream one and fails on any difference that the reviewed allow-list does
// not explain, or on an allow-list entry that no longer matches anything.
// `make spec-diff` runs it from the repository root on the upstream file in
// UPSTREAM_DIR; `make spec-drift` runs it on LINE's current file, fetched.
//
// Usage:
//
//	specdiff [-ours FILE] [-upstream FILE|URL] [-allow FILE] [-format text|markdown] [-report FILE]
//
// -upstream is a file, or an https:// URL (http:// only to a loopback host)
// fetched within 30 seconds and 4 MiB; a fetched spec is compared exactly
// like a file. Output and errors show a URL without its userinfo or query
// values, which may hold a token. Its default is channel-access-token.yml
// in $UPSTREAM_DIR (default ../shared/upstream).
//
// Exit status: 0 when every difference is allowed (or the upstream file is
// absent outside CI), 1 on unexplained differences or stale allow-list
// entries (drift), 2 on usage, load or fetch errors (and on an absent
// upstream file when CI=true). Only status 1 writes the -report file.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/linetoken/linetoken/internal/specdiff"
	"github.com/linetoken/linetoken/internal/upstream"
)

const (
	exitOK          = 0
	exitDifferences = 1
	exitUsage       = 2

	programName = "spec-diff"

	defaultOurs  = "api/channel-access-token.yml"
	defaultAllow = "api/spec-diff-allow.yml"
	// repoRoot is the repository root as seen from where the command runs.
	repoRoot = "."

	formatText     = "text"
	formatMarkdown = "markdown"

	// reportMode is the -report file's mode: it is a plain report.
	reportMode = 0o644

	// noAllowListHint names the allow-list in the hint when none was given.
	noAllowListHint = "an allow-list given with -allow"
	// reasonPlaceholder is the reason suggested in the hint for a new entry.
	reasonPlaceholder = "why linetoken deviates from upstream (reviewed)"
	// liveCheckHint tells a user without the upstream folder how to compare.
	liveCheckHint = "LINE's upstream files live outside the repository: set " + upstream.DirEnv +
		" to a line/line-openapi checkout, or compare with LINE's current file: make spec-drift"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr,
		specdiff.NewHTTPClient(specdiff.ClientOptions{Proxy: http.ProxyFromEnvironment}))
	stop()
	os.Exit(code)
}

// run is the whole command; it returns the exit status. client fetches an
// upstream URL.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, client *http.Client) int {
	flags := flag.NewFlagSet(programName, flag.ContinueOnError)
	flags.SetOutput(stderr)
	defaultUpstream := upstream.File(repoRoot, upstream.TokenSpec)
	ours := flags.String("ours", defaultOurs, "our OpenAPI spec")
	up := flags.String("upstream", defaultUpstream, "LINE's upstream OpenAPI spec: a file (when absent the comparison is skipped, except with CI=true) or an https:// URL")
	allow := flags.String("allow", defaultAllow, "reviewed allow-list of intentional differences (empty: none)")
	format := flags.String("format", formatText, "report format: text, or markdown (a table to paste into an issue)")
	reportFile := flags.String("report", "", "on drift (exit 1) also write the Markdown report to this file")
	flags.Usage = func() {
		fmt.Fprintf(stderr, "usage: %s [-ours FILE] [-upstream FILE|URL] [-allow FILE] [-format text|markdown] [-report FILE]\n", programName)
		flags.PrintDefaults()
	}
	if err := flags.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	switch {
	case flags.NArg() > 0:
		fmt.Fprintf(stderr, "specdiff: unexpected arguments %q\n", flags.Args())
	case *ours == "" || *up == "":
		fmt.Fprintln(stderr, "specdiff: -ours and -upstream must not be empty")
	case *format != formatText && *format != formatMarkdown:
		fmt.Fprintf(stderr, "specdiff: -format %q: want %s or %s\n", *format, formatText, formatMarkdown)
	default:
		return compare(ctx, stdout, stderr, client, options{ours: *ours, upstream: *up, allow: *allow, format: *format, report: *reportFile})
	}
	flags.Usage()
	return exitUsage
}

// options are run's checked flags.
type options struct {
	ours, upstream, allow, format, report string
}

func compare(ctx context.Context, stdout, stderr io.Writer, client *http.Client, o options) int {
	shown := specdiff.Redact(o.upstream) // a URL without its userinfo or query values
	upstreamDoc, skip, err := loadUpstream(ctx, client, o.upstream)
	switch {
	case err != nil:
		fmt.Fprintln(stderr, err)
		return exitUsage
	case skip:
		fmt.Fprintf(stdout, "%s: skipped: %s not found; %s\n", programName, o.upstream, liveCheckHint)
		return exitOK
	}

	var allowList *specdiff.AllowList
	if o.allow != "" {
		if allowList, err = specdiff.LoadAllowList(o.allow); err != nil {
			fmt.Fprintln(stderr, err)
			return exitUsage
		}
	}
	oursDoc, err := specdiff.Load(o.ours)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitUsage
	}
	result, err := specdiff.Compare(oursDoc, upstreamDoc)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitUsage
	}
	outcome := allowList.Apply(result.Differences)
	report := specdiff.Report{Ours: o.ours, Upstream: shown, Allow: o.allow, Operations: result.Operations}
	if o.format == formatMarkdown {
		if err := outcome.Markdown(stdout, report); err != nil {
			fmt.Fprintf(stderr, "specdiff: %v\n", err)
			return exitUsage
		}
	}
	if outcome.Clean() {
		if o.format == formatText {
			entries := 0
			if allowList != nil {
				entries = len(allowList.Entries)
			}
			fmt.Fprintf(stdout, "%s: ok: %d operations compared with %s; no unexplained differences, %d allowed deviations (%d entries in %s)\n",
				programName, result.Operations, shown, len(outcome.Allowed), entries, orNone(o.allow))
		}
		return exitOK
	}
	if o.format == formatText {
		reportText(stdout, o.ours, o.allow, outcome)
	}
	if o.report != "" {
		if err := writeReport(o.report, outcome, report); err != nil {
			fmt.Fprintf(stderr, "specdiff: -report: %v\n", err)
			return exitUsage
		}
	}
	return exitDifferences
}

// loadUpstream fetches and loads a URL, or loads a file; skip is true when
// the file is absent outside CI.
func loadUpstream(ctx context.Context, client *http.Client, source string) (doc *openapi3.T, skip bool, err error) {
	if specdiff.IsURL(source) {
		data, err := specdiff.Fetch(ctx, client, source)
		if err != nil {
			return nil, false, err
		}
		doc, err = specdiff.LoadData(specdiff.Redact(source), data)
		return doc, false, err
	}
	if _, err := os.Stat(source); err != nil {
		switch {
		case !specdiff.IsNotExist(err):
			return nil, false, fmt.Errorf("specdiff: upstream spec: %w", err)
		case specdiff.RunningInCI():
			return nil, false, fmt.Errorf("specdiff: %s not found, and %s=true: the upstream spec must be present in CI (set %s)", source, specdiff.CIEnvVar, upstream.DirEnv)
		default:
			return nil, true, nil
		}
	}
	doc, err = specdiff.Load(source)
	return doc, false, err
}

// writeReport writes the Markdown report to path.
func writeReport(path string, o specdiff.Outcome, r specdiff.Report) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, reportMode)
	if err != nil {
		return err
	}
	if err := o.Markdown(f, r); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// reportText prints the unexplained differences and stale entries, one per
// line, and how to resolve them.
func reportText(w io.Writer, ours, allow string, o specdiff.Outcome) {
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
