package bench

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestClientsAgree runs each contender against the fake and checks they all
// read the same, documented answer, over one kept-alive connection each.
// It is what a plain `go test ./...` runs, in well under a second.
func TestClientsAgree(t *testing.T) {
	f := newFake(t)
	ctx := context.Background()
	wantInfo := tokenInfo{ClientID: channelID, ExpiresIn: wantVerifyExpiresIn, Scope: wantScope}
	wantIssued := issued{AccessToken: accessToken, ExpiresIn: wantIssueExpiresIn, TokenType: "Bearer"}
	cs := contenders(t, f.URL())
	for _, c := range cs {
		t.Run(c.name, func(t *testing.T) {
			for range 3 {
				got, err := c.verify(ctx, accessToken)
				if err != nil {
					t.Fatalf("verify: %v", err)
				}
				if got != wantInfo {
					t.Errorf("verify = %+v, want %+v", got, wantInfo)
				}
				tok, err := c.issue(ctx)
				if err != nil {
					t.Fatalf("issue: %v", err)
				}
				if tok != wantIssued {
					t.Errorf("issue = %+v, want %+v", tok, wantIssued)
				}
			}
		})
	}
	// Six calls each, one connection each: keep-alive works for everyone,
	// so no contender pays a dial per call in the benchmarks.
	if n := f.conns.Load(); n != int64(len(cs)) {
		t.Errorf("fake accepted %d connections for %d clients; want one each (keep-alive broken?)", n, len(cs))
	}
}

// TestClientsRejected checks the fake is strict enough to matter: a wrong
// token fails every contender's verify.
func TestClientsRejected(t *testing.T) {
	f := newFake(t)
	for _, c := range contenders(t, f.URL()) {
		if _, err := c.verify(context.Background(), accessToken+"x"); err == nil {
			t.Errorf("%s: verify of a wrong token succeeded", c.name)
		}
	}
}

// TestFakeValidates checks the fake answers 400 to requests that are
// almost right: wrong or missing fields, an extra field, a wrong
// Content-Type or method.
func TestFakeValidates(t *testing.T) {
	f := newFake(t)
	hc := newHTTPClient()
	good := url.Values{"grant_type": {"client_credentials"}, "client_id": {channelID}, "client_secret": {channelSecret}}
	for _, tc := range []struct {
		name, method, path, ctype, body string
		want                            int
	}{
		{"issue ok", http.MethodPost, issuePath, formType, good.Encode(), 200},
		{"verify ok", http.MethodPost, verifyPath, formType, "access_token=" + url.QueryEscape(accessToken), 200},
		{"issue wrong secret", http.MethodPost, issuePath, formType, "grant_type=client_credentials&client_id=" + channelID + "&client_secret=x", 400},
		{"issue missing grant_type", http.MethodPost, issuePath, formType, "client_id=" + channelID + "&client_secret=" + channelSecret, 400},
		{"issue extra field", http.MethodPost, issuePath, formType, good.Encode() + "&scope=x", 400},
		{"issue repeated field", http.MethodPost, issuePath, formType, good.Encode() + "&client_id=" + channelID, 400},
		{"verify wrong token", http.MethodPost, verifyPath, formType, "access_token=nope", 400},
		{"verify JSON body", http.MethodPost, verifyPath, "application/json", `{"access_token":"` + accessToken + `"}`, 400},
		{"verify GET", http.MethodGet, verifyPath + "?access_token=" + url.QueryEscape(accessToken), formType, "", 400},
		{"unknown path", http.MethodPost, "/v2/oauth/revoke", formType, "access_token=x", 404},
	} {
		req, err := http.NewRequest(tc.method, f.URL()+tc.path, strings.NewReader(tc.body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", tc.ctype)
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("%s: status %d, want %d", tc.name, resp.StatusCode, tc.want)
		}
	}
}
