package testkit

import (
	"errors"
	"io/fs"
	"os"
	"testing"

	"github.com/linetoken/linetoken/internal/upstream"
)

// RequireUpstream returns the path of LINE's upstream file name (see
// [upstream.File]; root is the repository root as seen from the test's
// package). When the file is absent it skips tb, or fails it under CI=true;
// any other error reading it fails tb.
func RequireUpstream(tb testing.TB, root, name string) string {
	tb.Helper()
	path := upstream.File(root, name)
	_, err := os.Stat(path)
	switch {
	case err == nil:
		return path
	case !errors.Is(err, fs.ErrNotExist):
		tb.Fatalf("upstream file: %v", err)
	case upstream.RunningInCI():
		tb.Fatalf("%s not found, and %s=true: the upstream files must be present in CI (set %s to a line/line-openapi checkout)", path, upstream.CIEnvVar, upstream.DirEnv)
	default:
		tb.Skipf("%s not found (LINE's upstream files live outside the repository; set %s to a line/line-openapi checkout); set %s=true to make this a failure", path, upstream.DirEnv, upstream.CIEnvVar)
	}
	return ""
}
