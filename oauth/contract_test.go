//go:build unix

package oauth_test

// Contract test: every operation of the client, sent to Stoplight Prism
// (an independent OpenAPI mock that validates each request) serving LINE's
// upstream description of the Channel Access Token API. An operation passes
// only when Prism answers 2xx without an sl-violations header; Prism flags
// a request that breaks the spec with a 422, or with the spec's 400 example
// plus sl-violations.
//
// Needs Node.js and the pinned Prism (cd contract && SCARF_ANALYTICS=false
// npm ci), and LINE's upstream spec in $UPSTREAM_DIR (default
// ../shared/upstream beside the repo). Without them it skips, unless
// CI=true, when it fails.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/linetoken/linetoken/internal/prism"
	"github.com/linetoken/linetoken/internal/upstream"
	"github.com/linetoken/linetoken/oauth"
)

const (
	contractRepoRoot    = ".."             // the repository root, from the oauth package dir
	contractCallTimeout = 10 * time.Second // Prism can stall on a request it cannot parse
	contractChannelID   = "1234567890"
	contractSecret      = "0123456789abcdef0123456789abcdef"
	contractKeyID       = "test-kid"
	contractAccessToken = "contract-test-access-token"
)

// contractExchange is one request the client sent and Prism's verdict.
type contractExchange struct {
	method, path string
	form         url.Values // the urlencoded request body, if any
	status       int
	violations   string // the sl-violations response header
	body         string // the response body, kept only when not 2xx
}

func (e contractExchange) String() string {
	s := fmt.Sprintf("%s %s -> %d", e.method, e.path, e.status)
	if e.violations != "" {
		s += " sl-violations: " + e.violations
	}
	if e.body != "" {
		s += " body: " + e.body
	}
	return s
}

// contractRecorder is an http.RoundTripper that records every exchange.
type contractRecorder struct {
	next http.RoundTripper
	mu   sync.Mutex
	log  []contractExchange
}

func (r *contractRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	ex := contractExchange{method: req.Method, path: req.URL.Path}
	if req.Body != nil && req.Body != http.NoBody {
		data, err := io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, err
		}
		req = req.Clone(req.Context())
		req.Body = io.NopCloser(bytes.NewReader(data))
		req.ContentLength = int64(len(data))
		if f, err := url.ParseQuery(string(data)); err == nil {
			ex.form = f
		}
	}
	resp, err := r.next.RoundTrip(req)
	if err == nil {
		ex.status = resp.StatusCode
		ex.violations = resp.Header.Get("sl-violations")
		if resp.StatusCode < 200 || resp.StatusCode > 299 {
			// Keep the body of a rejection (Prism's 422 lists the
			// violations there) and hand the client an intact copy.
			data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
			resp.Body = io.NopCloser(bytes.NewReader(data))
			ex.body = string(data)
		}
	}
	r.mu.Lock()
	r.log = append(r.log, ex)
	r.mu.Unlock()
	return resp, err
}

func (r *contractRecorder) since(n int) []contractExchange {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.log[n:])
}

func (r *contractRecorder) len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.log)
}

func TestContract(t *testing.T) {
	base := prism.Start(t, contractRepoRoot, upstream.TokenSpec)

	privJWK, _, err := oauth.GenerateAssertionKey()
	if err != nil {
		t.Fatal(err)
	}
	key, err := oauth.ParseAssertionKey(privJWK, contractKeyID)
	if err != nil {
		t.Fatal(err)
	}
	rec := &contractRecorder{next: http.DefaultTransport.(*http.Transport).Clone()}
	hc := &http.Client{Transport: rec, Timeout: contractCallTimeout}
	newClient := func(k *oauth.AssertionKey) *oauth.Client {
		c, err := oauth.NewClient(oauth.Config{
			ChannelID:     contractChannelID,
			ChannelSecret: contractSecret,
			Key:           k,
			BaseURL:       base,
			HTTPClient:    hc,
		})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	withKey := newClient(key)    // JWT assertions where an operation takes one
	withoutKey := newClient(nil) // stateless issue by client_id and client_secret

	checkToken := func(tok *oauth.Token, err error) error {
		if err != nil {
			return err
		}
		if tok.AccessToken == "" || tok.ExpiresIn <= 0 {
			return fmt.Errorf("incomplete token %v", tok)
		}
		return nil
	}
	checkInfo := func(info *oauth.TokenInfo, err error) error {
		if err != nil {
			return err
		}
		if info.ClientID == "" || info.ExpiresIn <= 0 {
			return fmt.Errorf("incomplete token info %+v", info)
		}
		return nil
	}

	tests := []struct {
		name, method, path string
		formHas            []string // body fields the request must carry
		call               func(ctx context.Context) error
	}{
		{"IssueToken", http.MethodPost, "/oauth2/v2.1/token",
			[]string{"grant_type", "client_assertion_type", "client_assertion"},
			func(ctx context.Context) error {
				tok, err := withKey.IssueToken(ctx, time.Hour)
				if err := checkToken(tok, err); err != nil {
					return err
				}
				if tok.KeyID == "" {
					return errors.New("token has no key ID")
				}
				return nil
			}},
		{"VerifyToken", http.MethodGet, "/oauth2/v2.1/verify", nil,
			func(ctx context.Context) error { return checkInfo(withKey.VerifyToken(ctx, contractAccessToken)) }},
		{"RevokeToken", http.MethodPost, "/oauth2/v2.1/revoke",
			[]string{"client_id", "client_secret", "access_token"},
			func(ctx context.Context) error { return withKey.RevokeToken(ctx, contractAccessToken) }},
		{"ValidKeyIDs", http.MethodGet, "/oauth2/v2.1/tokens/kid", nil,
			func(ctx context.Context) error {
				kids, err := withKey.ValidKeyIDs(ctx)
				if err == nil && len(kids) == 0 {
					err = errors.New("no key IDs")
				}
				return err
			}},
		{"IssueShortLivedToken", http.MethodPost, "/v2/oauth/accessToken",
			[]string{"grant_type", "client_id", "client_secret"},
			func(ctx context.Context) error { return checkToken(withKey.IssueShortLivedToken(ctx)) }},
		{"VerifyShortLivedToken", http.MethodPost, "/v2/oauth/verify",
			[]string{"access_token"},
			func(ctx context.Context) error {
				return checkInfo(withKey.VerifyShortLivedToken(ctx, contractAccessToken))
			}},
		{"RevokeShortLivedToken", http.MethodPost, "/v2/oauth/revoke",
			[]string{"access_token"},
			func(ctx context.Context) error { return withKey.RevokeShortLivedToken(ctx, contractAccessToken) }},
		{"IssueStatelessToken/JWT", http.MethodPost, "/oauth2/v3/token",
			[]string{"grant_type", "client_assertion_type", "client_assertion"},
			func(ctx context.Context) error { return checkToken(withKey.IssueStatelessToken(ctx)) }},
		{"IssueStatelessToken/ClientSecret", http.MethodPost, "/oauth2/v3/token",
			[]string{"grant_type", "client_id", "client_secret"},
			func(ctx context.Context) error { return checkToken(withoutKey.IssueStatelessToken(ctx)) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := rec.len()
			ctx, cancel := context.WithTimeout(t.Context(), 2*contractCallTimeout)
			defer cancel()
			callErr := tt.call(ctx)
			sent := rec.since(n)
			if len(sent) != 1 {
				t.Fatalf("client sent %d requests, want 1: %v (call error: %v)", len(sent), sent, callErr)
			}
			ex := sent[0]
			if ex.method != tt.method || ex.path != tt.path {
				t.Errorf("sent %s %s, want %s %s", ex.method, ex.path, tt.method, tt.path)
			}
			for _, k := range tt.formHas {
				if !ex.form.Has(k) {
					t.Errorf("request body has no %s field (fields: %v)", k, slices.Sorted(maps.Keys(ex.form)))
				}
			}
			if ex.status < 200 || ex.status > 299 {
				t.Errorf("Prism answered %d, want 2xx: %v", ex.status, ex)
			}
			if ex.violations != "" {
				t.Errorf("Prism found the request breaks the spec: %s", ex.violations)
			}
			if callErr != nil {
				t.Errorf("call failed: %v", callErr)
			}
		})
	}

	// Negative control: requests that break the spec must be flagged, or
	// the checks above could pass vacuously.
	controls := []struct {
		name, path, body string
	}{
		{"EmptyShortLivedIssue", "/v2/oauth/accessToken", ""},
		{"StatelessWithoutSecret", "/oauth2/v3/token", "grant_type=client_credentials&client_id=" + contractChannelID},
		{"RevokeWithoutToken", "/oauth2/v2.1/revoke", "client_id=" + contractChannelID + "&client_secret=" + contractSecret},
	}
	for _, c := range controls {
		t.Run("NegativeControl/"+c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 2*contractCallTimeout)
			defer cancel()
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+c.path, strings.NewReader(c.body))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("Accept", "application/json")
			resp, err := (&http.Client{Timeout: contractCallTimeout}).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			v := resp.Header.Get("sl-violations")
			if resp.StatusCode != http.StatusUnprocessableEntity && v == "" {
				t.Errorf("Prism accepted an invalid request: HTTP %d, no sl-violations, body %q", resp.StatusCode, body)
			}
			if resp.StatusCode >= 200 && resp.StatusCode <= 299 {
				t.Errorf("Prism answered an invalid request with HTTP %d", resp.StatusCode)
			}
		})
	}
}
