package specdiff

import (
	"slices"
	"testing"

	"github.com/linetoken/linetoken/internal/testkit"
	"github.com/linetoken/linetoken/internal/upstream"
)

// Paths from this package's directory.
const (
	repoFromHere  = "../.."
	ourSpecPath   = repoFromHere + "/api/channel-access-token.yml"
	allowListPath = repoFromHere + "/api/spec-diff-allow.yml"
)

// TestRealSpecsHaveNoUnexplainedDifferences runs the real comparison of our
// spec against LINE's upstream file with the project's allow-list.
func TestRealSpecsHaveNoUnexplainedDifferences(t *testing.T) {
	upstreamSpecPath := testkit.RequireUpstream(t, repoFromHere, upstream.TokenSpec)
	result, err := CompareFiles(ourSpecPath, upstreamSpecPath)
	if err != nil {
		t.Fatal(err)
	}
	list, err := LoadAllowList(allowListPath)
	if err != nil {
		t.Fatal(err)
	}
	out := list.Apply(result.Differences)
	for _, d := range out.Unexplained {
		t.Errorf("unexplained difference: %s", d.Key)
	}
	for _, e := range out.Stale {
		t.Errorf("stale allow-list entry, line %d: %s", e.Line, e)
	}

	const wantOperations = 8
	if result.Operations != wantOperations {
		t.Errorf("Operations = %d, want %d", result.Operations, wantOperations)
	}
	// The comparison really sees the documented deviations.
	allowed := keysOf(out.Allowed)
	for _, key := range []string{
		"operation issueChannelToken: response 200 field expires_in: format int32 -> int64",
		"operation issueChannelTokenByJWT: response 200 field expires_in: format int32 -> int64",
		"operation issueStatelessChannelToken: response 200 field expires_in: format int32 -> int64",
		"operation issueStatelessChannelToken: request body: shape oneOf(2) -> object",
		"operation verifyChannelToken: response 429: only in ours",
		"schema ErrorResponse field message: only in ours",
	} {
		if !slices.Contains(allowed, key) {
			t.Errorf("allowed differences lack %q", key)
		}
	}
}
