package specdiff

import (
	"fmt"
	"io"
	"strings"
)

// Words of the Markdown report.
const (
	notAllowedCell = "**no**"
	allowedCell    = "yes: %s"
)

// Report names what an [Outcome] compared, for [Outcome.Markdown].
type Report struct {
	// Ours and Upstream name the two specs (a file or a URL).
	Ours, Upstream string
	// Allow names the allow-list file, or is empty when none was used.
	Allow string
	// Operations is how many operations both specs have.
	Operations int
}

// Markdown writes the outcome as a Markdown report ready to paste into an
// issue: a summary, one table row per difference (its key, upstream's value,
// ours, and whether the allow-list allows it, with the reason), unexplained
// differences first, then the stale allow-list entries and what to do.
func (o Outcome) Markdown(w io.Writer, r Report) error {
	var b strings.Builder
	fmt.Fprintf(&b, "## spec-diff: `%s` against `%s`\n\n", r.Ours, r.Upstream)
	fmt.Fprintf(&b, "%d unexplained differences, %d stale allow-list entries, %d allowed deviations; %d operations compared. \"A -> B\" in a key reads upstream -> ours.\n",
		len(o.Unexplained), len(o.Stale), len(o.Allowed), r.Operations)
	if len(o.Unexplained)+len(o.Allowed) > 0 {
		b.WriteString("\n| difference | upstream | ours | allowed? |\n|---|---|---|---|\n")
		for _, d := range o.Unexplained {
			row(&b, d, notAllowedCell)
		}
		for i, d := range o.Allowed {
			row(&b, d, fmt.Sprintf(allowedCell, o.AllowedBy[i].Reason))
		}
	}
	if len(o.Stale) > 0 {
		b.WriteString("\nStale allow-list entries (they match no difference; delete or correct them):\n\n")
		for _, e := range o.Stale {
			fmt.Fprintf(&b, "- `%s:%d`: %s\n", r.Allow, e.Line, cell(e.String()))
		}
	}
	if len(o.Unexplained) > 0 {
		target := r.Allow
		if target == "" {
			target = "an allow-list"
		}
		fmt.Fprintf(&b, "\nFix `%s` to match upstream, or, if a difference is intentional, add a reviewed entry with its reason to `%s`.\n", r.Ours, target)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func row(b *strings.Builder, d Difference, allowed string) {
	fmt.Fprintf(b, "| `%s` | %s | %s | %s |\n", cell(d.Key), cell(d.Upstream), cell(d.Ours), cell(allowed))
}

// cell makes text safe inside one table cell: one line, no unescaped pipe.
func cell(text string) string {
	return strings.NewReplacer("|", `\|`, "\r", " ", "\n", " ").Replace(text)
}
