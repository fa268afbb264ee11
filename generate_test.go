package linetoken_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strings"
	"testing"

	"github.com/linetoken/linetoken/gen"
)

// TestGeneratedFormBodies guards the generated client that users may import:
// each typed form method sends exactly its form's fields. In particular the
// stateless body, a oneOf in LINE's upstream spec that oapi-codegen encodes
// as an EMPTY form, is one flat object in ours: each form sends its three
// fields and no others.
func TestGeneratedFormBodies(t *testing.T) {
	var got url.Values
	var gotPath, gotType string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		got, _ = url.ParseQuery(string(body))
		gotPath, gotType = r.URL.Path, r.Header.Get("Content-Type")
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()
	c, err := gen.NewClient(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	ptr := func(s string) *string { return &s }
	jwtType := gen.IssueStatelessChannelTokenRequestClientAssertionType("urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
	ctx := context.Background()
	cases := []struct {
		name string
		send func() (*http.Response, error)
		path string
		want string // sorted field names
	}{
		{"stateless by secret", func() (*http.Response, error) {
			return c.IssueStatelessChannelTokenWithFormdataBody(ctx, gen.IssueStatelessChannelTokenRequest{
				GrantType: gen.ClientCredentials, ClientId: ptr("1"), ClientSecret: ptr("s")})
		}, "/oauth2/v3/token", "client_id,client_secret,grant_type"},
		{"stateless by JWT", func() (*http.Response, error) {
			return c.IssueStatelessChannelTokenWithFormdataBody(ctx, gen.IssueStatelessChannelTokenRequest{
				GrantType: gen.ClientCredentials, ClientAssertionType: &jwtType, ClientAssertion: ptr("a.b.c")})
		}, "/oauth2/v3/token", "client_assertion,client_assertion_type,grant_type"},
		{"short-lived issue", func() (*http.Response, error) {
			return c.IssueChannelTokenWithFormdataBody(ctx, gen.IssueChannelTokenFormdataRequestBody{
				GrantType: "client_credentials", ClientId: "1", ClientSecret: "s"})
		}, "/v2/oauth/accessToken", "client_id,client_secret,grant_type"},
		{"v2.1 issue", func() (*http.Response, error) {
			return c.IssueChannelTokenByJWTWithFormdataBody(ctx, gen.IssueChannelTokenByJWTFormdataRequestBody{
				GrantType: "client_credentials", ClientAssertionType: string(jwtType), ClientAssertion: "a.b.c"})
		}, "/oauth2/v2.1/token", "client_assertion,client_assertion_type,grant_type"},
		{"v2.1 revoke", func() (*http.Response, error) {
			return c.RevokeChannelTokenByJWTWithFormdataBody(ctx, gen.RevokeChannelTokenByJWTFormdataRequestBody{
				ClientId: "1", ClientSecret: "s", AccessToken: "t"})
		}, "/oauth2/v2.1/revoke", "access_token,client_id,client_secret"},
		{"v2 verify", func() (*http.Response, error) {
			return c.VerifyChannelTokenWithFormdataBody(ctx, gen.VerifyChannelTokenFormdataRequestBody{AccessToken: "t"})
		}, "/v2/oauth/verify", "access_token"},
		{"v2 revoke", func() (*http.Response, error) {
			return c.RevokeChannelTokenWithFormdataBody(ctx, gen.RevokeChannelTokenFormdataRequestBody{AccessToken: "t"})
		}, "/v2/oauth/revoke", "access_token"},
	}
	for _, tc := range cases {
		got = nil
		resp, err := tc.send()
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		resp.Body.Close()
		var names []string
		for k := range got {
			names = append(names, k)
		}
		sort.Strings(names)
		if strings.Join(names, ",") != tc.want || gotPath != tc.path || gotType != "application/x-www-form-urlencoded" {
			t.Errorf("%s: sent %s %q fields [%s], want %s [%s]", tc.name, gotPath, gotType, strings.Join(names, ","), tc.path, tc.want)
		}
	}
}
