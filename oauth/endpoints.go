package oauth

import (
	"context"
	"net/http"
	"strings"

	"github.com/linetoken/linetoken/gen"
)

// endpoints holds each operation's URL, taken once from the generated
// request builders, so the paths come from api/channel-access-token.yml
// while each call builds its request without re-parsing them.
type endpoints struct {
	issueV21, verifyV21, revokeV21, keyIDs string
	issueShort, verifyShort, revokeShort   string
	stateless                              string
}

func newEndpoints(base string) (endpoints, error) {
	var e endpoints
	server := base + "/" // the generated builders resolve "./path" against it
	builders := []struct {
		dst   *string
		build func() (*http.Request, error)
	}{
		{&e.issueV21, func() (*http.Request, error) {
			return gen.NewIssueChannelTokenByJWTRequestWithBody(server, contentTypeForm, nil)
		}},
		{&e.verifyV21, func() (*http.Request, error) {
			return gen.NewVerifyChannelTokenByJWTRequest(server, &gen.VerifyChannelTokenByJWTParams{})
		}},
		{&e.revokeV21, func() (*http.Request, error) {
			return gen.NewRevokeChannelTokenByJWTRequestWithBody(server, contentTypeForm, nil)
		}},
		{&e.keyIDs, func() (*http.Request, error) {
			return gen.NewGetsAllValidChannelAccessTokenKeyIdsRequest(server, &gen.GetsAllValidChannelAccessTokenKeyIdsParams{})
		}},
		{&e.issueShort, func() (*http.Request, error) {
			return gen.NewIssueChannelTokenRequestWithBody(server, contentTypeForm, nil)
		}},
		{&e.verifyShort, func() (*http.Request, error) {
			return gen.NewVerifyChannelTokenRequestWithBody(server, contentTypeForm, nil)
		}},
		{&e.revokeShort, func() (*http.Request, error) {
			return gen.NewRevokeChannelTokenRequestWithBody(server, contentTypeForm, nil)
		}},
		{&e.stateless, func() (*http.Request, error) {
			return gen.NewIssueStatelessChannelTokenRequestWithBody(server, contentTypeForm, nil)
		}},
	}
	for _, b := range builders {
		req, err := b.build()
		if err != nil {
			return endpoints{}, err
		}
		u := *req.URL
		u.RawQuery, u.ForceQuery = "", false
		*b.dst = u.String()
	}
	return e, nil
}

// post sends a form POST with the headers every request carries.
func (c *Client) post(ctx context.Context, url, body string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header["Content-Type"] = c.hdrForm
	req.Header["User-Agent"] = c.ua
	req.Header["Accept"] = c.hdrAccept
	return c.hc.Do(req)
}

// get sends a GET with the headers every request carries.
func (c *Client) get(ctx context.Context, url string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header["User-Agent"] = c.ua
	req.Header["Accept"] = c.hdrAccept
	return c.hc.Do(req)
}
