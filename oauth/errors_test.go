package oauth_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/linetoken/linetoken/oauth"
)

var allSentinels = []error{oauth.ErrTokenLimitReached, oauth.ErrKeyNotRegistered, oauth.ErrInvalidCredentials,
	oauth.ErrInvalidToken, oauth.ErrRateLimited, oauth.ErrInvalidInput, oauth.ErrMalformedResponse}

// callByOp calls the operation named by its upstream operationId.
func callByOp(ctx context.Context, c *oauth.Client, op string) error {
	var err error
	switch op {
	case "issueChannelTokenByJWT":
		_, err = c.IssueToken(ctx, time.Hour)
	case "verifyChannelTokenByJWT":
		_, err = c.VerifyToken(ctx, "tok")
	case "revokeChannelTokenByJWT":
		err = c.RevokeToken(ctx, "tok")
	case "getsAllValidChannelAccessTokenKeyIds":
		_, err = c.ValidKeyIDs(ctx)
	case "issueChannelToken":
		_, err = c.IssueShortLivedToken(ctx)
	case "verifyChannelToken":
		_, err = c.VerifyShortLivedToken(ctx, "tok")
	case "revokeChannelToken":
		err = c.RevokeShortLivedToken(ctx, "tok")
	case "issueStatelessChannelToken":
		_, err = c.IssueStatelessToken(ctx)
	default:
		panic(op)
	}
	return err
}

var allOps = []string{"issueChannelTokenByJWT", "verifyChannelTokenByJWT", "revokeChannelTokenByJWT",
	"getsAllValidChannelAccessTokenKeyIds", "issueChannelToken", "verifyChannelToken", "revokeChannelToken",
	"issueStatelessChannelToken"}

// TestDocumentedErrors: every documented error body becomes an *APIError
// with LINE's texts and exactly the right sentinel.
func TestDocumentedErrors(t *testing.T) {
	cases := []struct {
		op     string
		status int
		body   string
		want   error // nil: no sentinel but *APIError
	}{
		{"issueChannelTokenByJWT", 400, `{"error":"invalid_client","error_description":"iss and clientId of key do not match"}`, oauth.ErrInvalidCredentials},
		{"issueChannelTokenByJWT", 400, `{"message":"The maximum number of access tokens has already been issued"}`, oauth.ErrTokenLimitReached},
		{"issueChannelTokenByJWT", 404, `{"message":"Cannot find channel key that satisfies the conditions"}`, oauth.ErrKeyNotRegistered},
		{"getsAllValidChannelAccessTokenKeyIds", 404, `{"message":"Cannot find channel key that satisfies the conditions"}`, oauth.ErrKeyNotRegistered},
		{"issueStatelessChannelToken", 404, `{"message":"Cannot find channel key that satisfies the conditions"}`, oauth.ErrKeyNotRegistered},
		{"getsAllValidChannelAccessTokenKeyIds", 400, `{"error":"invalid_client","error_description":"Invalid exp"}`, oauth.ErrInvalidCredentials},
		{"verifyChannelTokenByJWT", 400, `{"error":"invalid_request","error_description":"The access token expired"}`, oauth.ErrInvalidToken},
		{"verifyChannelTokenByJWT", 400, `{"error":"invalid_request","error_description":"The access token not JWS"}`, oauth.ErrInvalidToken},
		{"revokeChannelTokenByJWT", 400, `{"error":"invalid_request","error_description":"The access token not JWS"}`, oauth.ErrInvalidToken},
		{"revokeChannelTokenByJWT", 400, `{"error":"invalid_request","error_description":"The access token malformed"}`, oauth.ErrInvalidToken},
		{"revokeChannelTokenByJWT", 400, `{"error":"invalid_client","error_description":"invalid client_secret"}`, oauth.ErrInvalidCredentials},
		{"issueChannelToken", 400, `{"error":"invalid_client","error_description":"invalid client_id"}`, oauth.ErrInvalidCredentials},
		{"issueChannelToken", 400, `{"error":"invalid_client","error_description":"invalid client_secret"}`, oauth.ErrInvalidCredentials},
		{"issueChannelToken", 429, `{"message":"Too many requests"}`, oauth.ErrRateLimited},
		{"verifyChannelToken", 400, `{"error":"invalid_request","error_description":"access_token invalid"}`, oauth.ErrInvalidToken},
		{"verifyChannelToken", 400, `{"error":"invalid_request","error_description":"access_token in invalid format"}`, oauth.ErrInvalidToken},
		{"revokeChannelToken", 400, `{"error":"invalid_request"}`, oauth.ErrInvalidToken},
		{"issueStatelessChannelToken", 400, `{"error":"invalid_request","error_description":"Invalid 'client_credentials'."}`, oauth.ErrInvalidCredentials},
		{"issueChannelToken", 400, `{"error":"invalid_request","error_description":"some parameters missed or invalid"}`, nil},
		{"issueChannelToken", 500, `{"message":"Internal Server Error"}`, nil},
		{"verifyChannelToken", 400, `{"error":"invalid_request","error_description":"some parameters missed or invalid"}`, nil},
		{"verifyChannelToken", 503, ``, nil},
	}
	for _, tc := range cases {
		t.Run(tc.op+"/"+tc.body, func(t *testing.T) {
			ts := newTestServer(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("X-Line-Request-Id", "req-123")
				jsonAnswer(tc.status, tc.body)(w, r)
			})
			err := callByOp(context.Background(), newClient(t, ts.URL), tc.op)
			var ae *oauth.APIError
			if !errors.As(err, &ae) {
				t.Fatalf("error = %v, want *APIError", err)
			}
			if ae.Operation != tc.op || ae.StatusCode != tc.status || ae.RequestID != "req-123" {
				t.Errorf("APIError = %+v", ae)
			}
			for _, s := range allSentinels {
				if got, want := errors.Is(err, s), s == tc.want; got != want {
					t.Errorf("errors.Is(%v) = %t, want %t", s, got, want)
				}
			}
			if tc.body != "" && !strings.Contains(err.Error(), strings.Trim(strings.SplitN(tc.body, `":"`, 2)[1], `"}`)[:5]) {
				t.Errorf("error %q does not carry LINE's text", err)
			}
			if got, want := ae.Temporary(), tc.status >= 500 || tc.status == 429; got != want {
				t.Errorf("Temporary() = %t, want %t", got, want)
			}
		})
	}
}

func TestErrorBodyShapes(t *testing.T) {
	t.Run("oauth shape", func(t *testing.T) {
		ts := newTestServer(t, jsonAnswer(400, `{"error":"invalid_client","error_description":"invalid client_secret"}`))
		err := callByOp(context.Background(), newClient(t, ts.URL), "issueChannelToken")
		var ae *oauth.APIError
		if !errors.As(err, &ae) || ae.Code != "invalid_client" || ae.Description != "invalid client_secret" || ae.Message != "" {
			t.Errorf("APIError = %+v", ae)
		}
	})
	t.Run("message shape", func(t *testing.T) {
		ts := newTestServer(t, jsonAnswer(400, `{"message":"The maximum number of access tokens has already been issued"}`))
		err := callByOp(context.Background(), newClient(t, ts.URL), "issueChannelTokenByJWT")
		var ae *oauth.APIError
		if !errors.As(err, &ae) || ae.Code != "" || ae.Message != "The maximum number of access tokens has already been issued" {
			t.Errorf("APIError = %+v", ae)
		}
	})
	t.Run("HTML 502", func(t *testing.T) {
		ts := newTestServer(t, func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(502)
			_, _ = w.Write([]byte("<html><body><h1>502 Bad Gateway</h1></body></html>"))
		})
		err := callByOp(context.Background(), newClient(t, ts.URL), "verifyChannelToken")
		var ae *oauth.APIError
		if !errors.As(err, &ae) || ae.StatusCode != 502 || !ae.Temporary() || ae.Code+ae.Description+ae.Message != "" {
			t.Fatalf("error = %v, want a temporary 502 APIError with no texts", err)
		}
		if !strings.Contains(err.Error(), "non-JSON body, text/html") || strings.Contains(err.Error(), "<html>") {
			t.Errorf("error %q should say the body was HTML without quoting it", err)
		}
		for _, s := range allSentinels {
			if errors.Is(err, s) {
				t.Errorf("502 matches %v", s)
			}
		}
	})
	t.Run("empty 400", func(t *testing.T) {
		ts := newTestServer(t, jsonAnswer(400, ""))
		err := callByOp(context.Background(), newClient(t, ts.URL), "issueChannelToken")
		var ae *oauth.APIError
		if !errors.As(err, &ae) || ae.StatusCode != 400 || !strings.Contains(err.Error(), "empty body") {
			t.Errorf("error = %v", err)
		}
	})
	t.Run("redirect is not followed", func(t *testing.T) {
		ts := newTestServer(t, func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "http://127.0.0.1:1/elsewhere", http.StatusFound)
		})
		err := callByOp(context.Background(), newClient(t, ts.URL), "issueChannelToken")
		var ae *oauth.APIError
		if !errors.As(err, &ae) || ae.StatusCode != 302 || ts.count() != 1 {
			t.Errorf("error = %v after %d requests, want a 302 APIError and no second request", err, ts.count())
		}
	})
}

// TestHugeErrorBody: a 10 MiB error body is cut at the cap; memory stays
// bounded and the sentinel follows the status alone, never text beyond the
// cap: the 400's body starts as the token-limit message, which read whole
// would be ErrTokenLimitReached.
func TestHugeErrorBody(t *testing.T) {
	cases := []struct {
		name   string
		op     string
		status int
		prefix string
		want   error // the one sentinel matched; nil: none
	}{
		{"400 token-limit prefix", "issueChannelTokenByJWT", 400,
			`{"message":"The maximum number of access tokens has already been issued`, nil},
		{"429", "issueChannelToken", 429, `{"message":"Too many requests`, oauth.ErrRateLimited},
		{"500", "issueChannelToken", 500, `{"message":"Internal Server Error`, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ts := newTestServer(t, func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(tc.status)
				writeHuge(w, tc.prefix, 'x', hugeBody, `"}`)
			})
			c := newClient(t, ts.URL)
			var err error
			alloc, _ := memDelta(func() { err = callByOp(context.Background(), c, tc.op) })
			var ae *oauth.APIError
			if !errors.As(err, &ae) || ae.StatusCode != tc.status || !strings.Contains(err.Error(), "size cap") {
				t.Fatalf("error = %v, want a %d APIError saying the body was over the cap", err, tc.status)
			}
			if ae.Message != "" || ae.Code != "" || ae.Description != "" {
				t.Errorf("APIError kept text from a body over the cap: %+v", ae)
			}
			for _, s := range allSentinels {
				if got, want := errors.Is(err, s), s == tc.want; got != want {
					t.Errorf("errors.Is(%v) = %t, want %t", s, got, want)
				}
			}
			if n := ts.count(); n != 1 {
				t.Errorf("%d requests, want 1 (issue is not retried by default)", n)
			}
			if len(err.Error()) > 2048 {
				t.Errorf("error string is %d bytes", len(err.Error()))
			}
			// The test server's own writes are in this process too; the
			// client must not have read anything near the 10 MiB.
			if alloc > hugeAllocBudget {
				t.Errorf("allocated %d bytes reading a %d-byte error body", alloc, hugeBody)
			}
			t.Logf("allocated %d KiB", alloc>>10)
		})
	}
}

func TestRetryAfter(t *testing.T) {
	for _, tc := range []struct {
		header string
		want   time.Duration
	}{
		{"", 0},
		{"7", 7 * time.Second},
		{fixedNow.Add(90 * time.Second).UTC().Format(http.TimeFormat), 90 * time.Second},
		{"soon", 0},
		{"-3", 0},
		{"99999999", 24 * time.Hour},
	} {
		ts := newTestServer(t, func(w http.ResponseWriter, r *http.Request) {
			if tc.header != "" {
				w.Header().Set("Retry-After", tc.header)
			}
			jsonAnswer(429, `{"message":"Too many requests"}`)(w, r)
		})
		err := callByOp(context.Background(), newClient(t, ts.URL), "issueChannelToken")
		var ae *oauth.APIError
		if !errors.As(err, &ae) || ae.RetryAfter != tc.want || !errors.Is(err, oauth.ErrRateLimited) {
			t.Errorf("Retry-After %q: error = %v (RetryAfter %v), want %v", tc.header, err, ae, tc.want)
		}
	}
}

// TestRefusedBeforeSending: missing inputs are ErrInvalidInput and no
// request leaves the process.
func TestRefusedBeforeSending(t *testing.T) {
	ts := newTestServer(t, jsonAnswer(200, "{}"))
	bare, err := oauth.NewClient(oauth.Config{BaseURL: ts.URL})
	if err != nil {
		t.Fatal(err)
	}
	full := newClient(t, ts.URL)
	ctx := context.Background()
	checks := map[string]func() error{
		"IssueToken without key":       func() error { _, err := bare.IssueToken(ctx, 0); return err },
		"ValidKeyIDs without key":      func() error { _, err := bare.ValidKeyIDs(ctx); return err },
		"IssueShortLived without id":   func() error { _, err := bare.IssueShortLivedToken(ctx); return err },
		"Stateless without anything":   func() error { _, err := bare.IssueStatelessToken(ctx); return err },
		"RevokeToken without secret":   func() error { return bare.RevokeToken(ctx, "tok") },
		"VerifyToken empty token":      func() error { _, err := full.VerifyToken(ctx, ""); return err },
		"VerifyShortLived blank token": func() error { _, err := full.VerifyShortLivedToken(ctx, "  "); return err },
		"RevokeToken empty token":      func() error { return full.RevokeToken(ctx, "") },
		"RevokeShortLived empty token": func() error { return full.RevokeShortLivedToken(ctx, "") },
		"IssueToken 31 days":           func() error { _, err := full.IssueToken(ctx, 31*24*time.Hour); return err },
	}
	for name, call := range checks {
		if err := call(); !errors.Is(err, oauth.ErrInvalidInput) {
			t.Errorf("%s: error = %v, want ErrInvalidInput", name, err)
		}
	}
	if n := ts.count(); n != 0 {
		t.Errorf("%d requests were sent for refused calls", n)
	}
	_, err = bare.IssueShortLivedToken(ctx)
	if !strings.Contains(err.Error(), "LINE_CHANNEL_ID") || !strings.Contains(err.Error(), "LINE_CHANNEL_SECRET") {
		t.Errorf("error %q should name both missing settings", err)
	}
}

func TestNewClientValidation(t *testing.T) {
	key := mustKey(t)
	cases := []struct {
		name string
		cfg  oauth.Config
		want string // "" = valid
	}{
		{"zero", oauth.Config{}, ""},
		{"https", oauth.Config{BaseURL: "https://api.line.me/"}, ""},
		{"loopback http", oauth.Config{BaseURL: "http://127.0.0.1:8080"}, ""},
		{"localhost http", oauth.Config{BaseURL: "http://localhost:8080"}, ""},
		{"ipv6 loopback", oauth.Config{BaseURL: "http://[::1]:8080"}, ""},
		{"remote http", oauth.Config{BaseURL: "http://fake.internal:8080"}, "BaseURL"},
		{"remote http allowed", oauth.Config{BaseURL: "http://fake.internal:8080", InsecureAllowHTTP: true}, ""},
		{"ftp", oauth.Config{BaseURL: "ftp://api.line.me"}, "scheme"},
		{"no host", oauth.Config{BaseURL: "https://"}, "host"},
		{"query", oauth.Config{BaseURL: "https://api.line.me/?x=1"}, "query"},
		{"user info", oauth.Config{BaseURL: "https://user:pw@api.line.me"}, "user info"},
		{"bad channel", oauth.Config{ChannelID: "my-channel"}, "ChannelID"},
		{"secret with newline", oauth.Config{ChannelSecret: "abc\n"}, "ChannelSecret"},
		{"key without channel", oauth.Config{Key: key}, "ChannelID"},
		{"key without kid", oauth.Config{ChannelID: "1", Key: &oauth.AssertionKey{PrivateKey: key.PrivateKey}}, "Config.Key"},
		{"key without private key", oauth.Config{ChannelID: "1", Key: &oauth.AssertionKey{KeyID: "k"}}, "Config.Key"},
	}
	for _, tc := range cases {
		_, err := oauth.NewClient(tc.cfg)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: error = %v, want one naming %q", tc.name, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "pw@") {
			t.Errorf("%s: error leaks user info: %v", tc.name, err)
		}
	}
}
