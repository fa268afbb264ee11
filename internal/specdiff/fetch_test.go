package specdiff

import (
	"testing"
	"time"
)

func TestRedact(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"../shared/upstream/channel-access-token.yml", "../shared/upstream/channel-access-token.yml"},
		{"https://raw.githubusercontent.com/line/line-openapi/main/channel-access-token.yml",
			"https://raw.githubusercontent.com/line/line-openapi/main/channel-access-token.yml"},
		{"https://user:pass@example.com/spec.yml", "https://xxxxx@example.com/spec.yml"},
		{"https://ghp_token@example.com/spec.yml", "https://xxxxx@example.com/spec.yml"},
		{"https://example.com/spec.yml?token=abc&ref=main", "https://example.com/spec.yml?token=xxxxx&ref=xxxxx"},
		{"https://example.com/spec.yml?abc", "https://example.com/spec.yml?xxxxx"},
		{"https://user:pa/ss@example.com/spec.yml", "(an unparsable URL, not shown)"},
	} {
		if got := Redact(tc.in); got != tc.want {
			t.Errorf("Redact(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestHTTPClientTimeout: the client's timeout is FetchTimeout (30 s) unless
// ClientOptions.Timeout says otherwise.
func TestHTTPClientTimeout(t *testing.T) {
	if got := NewHTTPClient(ClientOptions{}).Timeout; got != 30*time.Second {
		t.Errorf("default timeout %s, want 30s", got)
	}
	if got := NewHTTPClient(ClientOptions{Timeout: time.Second}).Timeout; got != time.Second {
		t.Errorf("timeout %s, want the option's 1s", got)
	}
}
