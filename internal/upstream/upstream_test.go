package upstream

import (
	"path/filepath"
	"testing"
)

func TestDir(t *testing.T) {
	abs := filepath.Join(t.TempDir(), "line-openapi")
	for _, tc := range []struct{ env, root, want string }{
		{"", ".", "../shared/upstream"},
		{"", "../..", "../../../shared/upstream"},
		{abs, "../..", abs},
		{"checkouts/line-openapi", "../..", "../../checkouts/line-openapi"},
	} {
		t.Setenv(DirEnv, tc.env)
		if got := Dir(tc.root); got != tc.want {
			t.Errorf("%s=%q: Dir(%q) = %q, want %q", DirEnv, tc.env, tc.root, got, tc.want)
		}
	}
	t.Setenv(DirEnv, abs)
	if got, want := File(".", TokenSpec), filepath.Join(abs, "channel-access-token.yml"); got != want {
		t.Errorf("File = %q, want %q", got, want)
	}
}

func TestRunningInCI(t *testing.T) {
	for env, want := range map[string]bool{"true": true, "": false, "1": false, "false": false} {
		t.Setenv(CIEnvVar, env)
		if got := RunningInCI(); got != want {
			t.Errorf("CI=%q: RunningInCI() = %v, want %v", env, got, want)
		}
	}
}
