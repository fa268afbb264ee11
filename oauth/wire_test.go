package oauth_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/linetoken/linetoken/oauth"
)

const (
	issueV21Body   = `{"access_token":"eyJhbGciOiJIUz.....","token_type":"Bearer","expires_in":2592000,"key_id":"sDTOzw5wIfxxxxPEzcmeQA"}`
	issueShortBody = `{"access_token":"W1TeHCgfH2Liwa.....","expires_in":2592000,"token_type":"Bearer"}`
	statelessBody  = `{"token_type":"Bearer","access_token":"eyJhbGciOiJIUz.....","expires_in":899}`
	verifyV21Body  = `{"client_id":"1573163733","expires_in":2591659,"scope":"profile chat_message.write"}`
	verifyLongBody = `{"client_id":"1350031035","expires_in":3138007490,"scope":"P CM"}`
	kidsBody       = `{"kids":["U_gdnFYKTWRxxxxDVZexGg","sDTOzw5wIfWxxxxzcmeQA","73hDyp3PxGfxxxxD6U5qYA"]}`
)

// wireCase is one operation: how to call it, what must leave the process,
// and LINE's documented 200 answer.
type wireCase struct {
	name        string
	call        func(ctx context.Context, c *oauth.Client) error
	method      string
	path        string
	formFields  []string // exact form fields for a POST
	queryFields []string // exact query fields
	values      map[string]string
	answer      string
	assertion   string // the field holding a JWT assertion, checked separately
}

func wireCases(key *oauth.AssertionKey) []wireCase {
	_ = key
	return []wireCase{
		{
			name:   "IssueToken",
			call:   func(ctx context.Context, c *oauth.Client) error { _, err := c.IssueToken(ctx, 0); return err },
			method: http.MethodPost, path: "/oauth2/v2.1/token",
			formFields: []string{"grant_type", "client_assertion_type", "client_assertion"},
			values: map[string]string{"grant_type": "client_credentials",
				"client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
			answer: issueV21Body, assertion: "client_assertion",
		},
		{
			name:   "VerifyToken",
			call:   func(ctx context.Context, c *oauth.Client) error { _, err := c.VerifyToken(ctx, "tok-v21"); return err },
			method: http.MethodGet, path: "/oauth2/v2.1/verify",
			queryFields: []string{"access_token"},
			values:      map[string]string{"access_token": "tok-v21"},
			answer:      verifyV21Body,
		},
		{
			name:   "RevokeToken",
			call:   func(ctx context.Context, c *oauth.Client) error { return c.RevokeToken(ctx, "tok-v21") },
			method: http.MethodPost, path: "/oauth2/v2.1/revoke",
			formFields: []string{"client_id", "client_secret", "access_token"},
			values:     map[string]string{"client_id": testChannelID, "client_secret": testSecret, "access_token": "tok-v21"},
			answer:     "",
		},
		{
			name:   "ValidKeyIDs",
			call:   func(ctx context.Context, c *oauth.Client) error { _, err := c.ValidKeyIDs(ctx); return err },
			method: http.MethodGet, path: "/oauth2/v2.1/tokens/kid",
			queryFields: []string{"client_assertion_type", "client_assertion"},
			values:      map[string]string{"client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
			answer:      kidsBody, assertion: "client_assertion",
		},
		{
			name:   "IssueShortLivedToken",
			call:   func(ctx context.Context, c *oauth.Client) error { _, err := c.IssueShortLivedToken(ctx); return err },
			method: http.MethodPost, path: "/v2/oauth/accessToken",
			formFields: []string{"grant_type", "client_id", "client_secret"},
			values:     map[string]string{"grant_type": "client_credentials", "client_id": testChannelID, "client_secret": testSecret},
			answer:     issueShortBody,
		},
		{
			name: "VerifyShortLivedToken",
			call: func(ctx context.Context, c *oauth.Client) error {
				_, err := c.VerifyShortLivedToken(ctx, "tok-short")
				return err
			},
			method: http.MethodPost, path: "/v2/oauth/verify",
			formFields: []string{"access_token"},
			values:     map[string]string{"access_token": "tok-short"},
			answer:     verifyLongBody,
		},
		{
			name:   "RevokeShortLivedToken",
			call:   func(ctx context.Context, c *oauth.Client) error { return c.RevokeShortLivedToken(ctx, "tok-short") },
			method: http.MethodPost, path: "/v2/oauth/revoke",
			formFields: []string{"access_token"},
			values:     map[string]string{"access_token": "tok-short"},
			answer:     "",
		},
		{
			name:   "IssueStatelessToken/jwt",
			call:   func(ctx context.Context, c *oauth.Client) error { _, err := c.IssueStatelessToken(ctx); return err },
			method: http.MethodPost, path: "/oauth2/v3/token",
			formFields: []string{"grant_type", "client_assertion_type", "client_assertion"},
			values: map[string]string{"grant_type": "client_credentials",
				"client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
			answer: statelessBody, assertion: "client_assertion",
		},
	}
}

// statelessSecretCase is the stateless form by channel secret: a client
// without a Key.
var statelessSecretCase = wireCase{
	name:   "IssueStatelessToken/secret",
	call:   func(ctx context.Context, c *oauth.Client) error { _, err := c.IssueStatelessToken(ctx); return err },
	method: http.MethodPost, path: "/oauth2/v3/token",
	formFields: []string{"grant_type", "client_id", "client_secret"},
	values:     map[string]string{"grant_type": "client_credentials", "client_id": testChannelID, "client_secret": testSecret},
	answer:     statelessBody,
}

// TestWireFormat checks, for every operation, the method, path, content
// type, the exact set of form or query fields and their values, and that no
// Authorization header is sent.
func TestWireFormat(t *testing.T) {
	key := mustKey(t)
	cases := append(wireCases(key), statelessSecretCase)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ts := newTestServer(t, jsonAnswer(http.StatusOK, tc.answer))
			cfg := oauth.Config{ChannelID: testChannelID, ChannelSecret: testSecret, Key: key, BaseURL: ts.URL,
				Clock: func() time.Time { return fixedNow }}
			if tc.name == statelessSecretCase.name {
				cfg.Key = nil
			}
			c, err := oauth.NewClient(cfg)
			if err != nil {
				t.Fatal(err)
			}
			if err := tc.call(context.Background(), c); err != nil {
				t.Fatalf("call: %v", err)
			}
			if n := ts.count(); n != 1 {
				t.Fatalf("sent %d requests, want 1", n)
			}
			r := ts.last(t)
			if r.Method != tc.method || r.Path != tc.path {
				t.Errorf("request = %s %s, want %s %s", r.Method, r.Path, tc.method, tc.path)
			}
			if got := r.Header.Get("Authorization"); got != "" {
				t.Errorf("Authorization header sent: token endpoints take none")
			}
			if ua := r.Header.Get("User-Agent"); ua == "" || ua == "Go-http-client/1.1" {
				t.Errorf("User-Agent = %q, want linetoken's", ua)
			}
			fields := r.Form
			if tc.method == http.MethodGet {
				if r.RawBody != "" || r.ContentType != "" {
					t.Errorf("GET carries a body (%d bytes) or content type %q", len(r.RawBody), r.ContentType)
				}
				fields = r.Query
				sameKeys(t, "query", r.Query, tc.queryFields...)
			} else {
				if r.ContentType != "application/x-www-form-urlencoded" {
					t.Errorf("Content-Type = %q, want application/x-www-form-urlencoded", r.ContentType)
				}
				if len(r.Query) != 0 {
					t.Errorf("POST carries query fields %v", keys(r.Query))
				}
				sameKeys(t, "form", r.Form, tc.formFields...)
			}
			for k, want := range tc.values {
				if got := fields.Get(k); got != want {
					t.Errorf("field %s = %q, want %q", k, got, want)
				}
			}
			if tc.assertion != "" {
				wantLifetime := time.Duration(0)
				if tc.name == "IssueToken" {
					wantLifetime = oauth.MaxTokenLifetime
				}
				checkAssertion(t, fields.Get(tc.assertion), key, wantLifetime, fixedNow)
			}
		})
	}
}

// TestIssueTokenLifetime checks that the requested lifetime reaches
// token_exp in whole seconds, and that out-of-range lifetimes are refused
// before any request.
func TestIssueTokenLifetime(t *testing.T) {
	ts := newTestServer(t, jsonAnswer(http.StatusOK, issueV21Body))
	c := newClient(t, ts.URL)
	if _, err := c.IssueToken(context.Background(), 36*time.Hour); err != nil {
		t.Fatal(err)
	}
	checkAssertion(t, ts.last(t).Form.Get("client_assertion"), mustKey(t), 36*time.Hour, fixedNow)

	for _, d := range []time.Duration{-time.Second, time.Millisecond, oauth.MaxTokenLifetime + time.Second} {
		before := ts.count()
		_, err := c.IssueToken(context.Background(), d)
		if !errorsIs(err, oauth.ErrInvalidInput) {
			t.Errorf("IssueToken(%v) error = %v, want ErrInvalidInput", d, err)
		}
		if ts.count() != before {
			t.Errorf("IssueToken(%v) sent a request", d)
		}
	}
	if _, err := c.IssueToken(context.Background(), oauth.MaxTokenLifetime); err != nil {
		t.Errorf("IssueToken(30 days) = %v, want success at the exact maximum", err)
	}
}
