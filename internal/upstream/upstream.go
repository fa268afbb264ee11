// Package upstream locates LINE's upstream files (line/line-openapi's
// OpenAPI descriptions), which are reference data kept outside this
// repository. Their folder is one setting, the environment variable
// UPSTREAM_DIR (default ../shared/upstream, beside the repository); every
// use reads from there: `make spec-diff`, the specdiff tests and the Prism
// contract test.
//
// A user's clone has no such folder: callers skip with a message saying
// so, except under CI=true, where its absence is a failure.
package upstream

import (
	"os"
	"path/filepath"
)

const (
	// DirEnv names the environment variable holding the upstream folder.
	DirEnv = "UPSTREAM_DIR"
	// DefaultDir is the upstream folder when DirEnv is unset or empty,
	// relative to the repository root: the project's workspace keeps it
	// beside the repository.
	DefaultDir = "../shared/upstream"
	// TokenSpec is LINE's description of the Channel Access Token API.
	TokenSpec = "channel-access-token.yml"

	// CIEnvVar is the environment variable that marks a CI run.
	CIEnvVar = "CI"
	// ciEnvValue is the value of CIEnvVar that marks a CI run.
	ciEnvValue = "true"
)

// RunningInCI reports whether the environment marks a CI run (CI=true),
// where the upstream files must be present.
func RunningInCI() bool { return os.Getenv(CIEnvVar) == ciEnvValue }

// Dir returns the upstream folder: $UPSTREAM_DIR, else DefaultDir. A
// relative folder is relative to the repository root, which root names as
// seen from the working directory ("." from the root, "../.." from a
// package two levels down).
func Dir(root string) string {
	dir := os.Getenv(DirEnv)
	if dir == "" {
		dir = DefaultDir
	}
	if filepath.IsAbs(dir) {
		return dir
	}
	return filepath.Join(root, dir)
}

// File returns the path of the upstream file name, see [Dir].
func File(root, name string) string { return filepath.Join(Dir(root), name) }
