package oauth

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// TestDefaultHTTPClient: a nil Config.HTTPClient gets a client of our own,
// never http.DefaultClient: bounded, proxy-aware, not following redirects.
func TestDefaultHTTPClient(t *testing.T) {
	hc := newDefaultHTTPClient()
	if hc == http.DefaultClient {
		t.Fatal("newDefaultHTTPClient returned http.DefaultClient")
	}
	if hc.Timeout <= 0 || hc.Timeout != defaultTimeout {
		t.Errorf("Timeout = %v, want %v", hc.Timeout, defaultTimeout)
	}
	tr, ok := hc.Transport.(*http.Transport)
	if !ok {
		t.Fatalf("Transport is %T, want *http.Transport", hc.Transport)
	}
	if tr == http.DefaultTransport {
		t.Error("Transport is http.DefaultTransport itself: its settings are shared with every package")
	}
	if tr.Proxy == nil {
		t.Error("Transport.Proxy is nil: HTTPS_PROXY would be ignored")
	}
	if hc.CheckRedirect == nil {
		t.Fatal("CheckRedirect is nil: redirects would be followed with the credentials")
	}
	req := httptest.NewRequest(http.MethodPost, "https://api.line.me/v2/oauth/accessToken", nil)
	if err := hc.CheckRedirect(req, []*http.Request{req}); !errors.Is(err, http.ErrUseLastResponse) {
		t.Errorf("CheckRedirect = %v, want http.ErrUseLastResponse", err)
	}
	if hc2 := newDefaultHTTPClient(); hc2 == hc || hc2.Transport == hc.Transport {
		t.Error("each call must build its own client and transport")
	}

	c, err := NewClient(Config{})
	if err != nil {
		t.Fatal(err)
	}
	if c.hc == nil || c.hc == http.DefaultClient || c.hc.Timeout != defaultTimeout || c.hc.CheckRedirect == nil {
		t.Errorf("NewClient(Config{}) uses %+v, want the default client", c.hc)
	}
	mine := &http.Client{}
	if c, err := NewClient(Config{HTTPClient: mine}); err != nil || c.hc != mine {
		t.Errorf("Config.HTTPClient was not used (%v)", err)
	}
}

// TestUserAgent: the User-Agent sent is Config.UserAgent followed by
// linetoken's own product token, on GET and POST endpoints alike.
func TestUserAgent(t *testing.T) {
	var (
		mu  sync.Mutex
		got []string
	)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, r.Header.Get("User-Agent"))
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"client_id":"1","expires_in":60}`))
	}))
	defer ts.Close()

	cases := []struct {
		userAgent, want string
	}{
		{"", libraryUserAgent},
		{"mybot/1.2", "mybot/1.2 " + libraryUserAgent},
		{"  mybot/1.2 (+https://example.com)\t", "mybot/1.2 (+https://example.com) " + libraryUserAgent},
	}
	for _, tc := range cases {
		c, err := NewClient(Config{BaseURL: ts.URL, UserAgent: tc.userAgent})
		if err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		got = nil
		mu.Unlock()
		if _, err := c.VerifyToken(context.Background(), "tok"); err != nil { // GET
			t.Fatal(err)
		}
		if _, err := c.VerifyShortLivedToken(context.Background(), "tok"); err != nil { // POST
			t.Fatal(err)
		}
		mu.Lock()
		sent := append([]string(nil), got...)
		mu.Unlock()
		if len(sent) != 2 {
			t.Fatalf("UserAgent %q: %d requests, want 2", tc.userAgent, len(sent))
		}
		for _, ua := range sent {
			if ua != tc.want {
				t.Errorf("UserAgent %q: sent %q, want %q", tc.userAgent, ua, tc.want)
			}
			if !strings.HasPrefix(libraryUserAgent, "linetoken/") || !strings.Contains(ua, "linetoken/") {
				t.Errorf("User-Agent %q lacks linetoken's product token", ua)
			}
			if tc.userAgent != "" && !strings.HasPrefix(ua, strings.TrimSpace(tc.userAgent)+" ") {
				t.Errorf("User-Agent %q does not start with the configured %q", ua, tc.userAgent)
			}
		}
	}
}
