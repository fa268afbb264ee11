package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/line/line-bot-sdk-go/v8/linebot/channel_access_token"
	"github.com/linetoken/linetoken/oauth"
)

// tokenInfo and issued are what every contender reads back, in one shape,
// so TestClientsAgree can compare them. Both are returned by value: the
// adapters add no allocation of their own.
type tokenInfo struct {
	ClientID  string
	ExpiresIn int64 // seconds
	Scope     string
}

type issued struct {
	AccessToken string
	ExpiresIn   int64 // seconds
	TokenType   string
}

// contender is one client under test, as two calls.
type contender struct {
	name   string
	verify func(ctx context.Context, token string) (tokenInfo, error)
	issue  func(ctx context.Context) (issued, error)
}

// contenders builds the three clients against base, each on its own
// newHTTPClient. The names are the sub-benchmark names.
func contenders(tb testing.TB, base string) []contender {
	tb.Helper()
	return []contender{linetokenClient(tb, base), linebotsdkClient(tb, base), nethttpClient(base)}
}

// linetokenClient is ours: oauth.Client.
func linetokenClient(tb testing.TB, base string) contender {
	c, err := oauth.NewClient(oauth.Config{
		ChannelID:     channelID,
		ChannelSecret: channelSecret,
		BaseURL:       base,
		HTTPClient:    newHTTPClient(),
	})
	if err != nil {
		tb.Fatal(err)
	}
	return contender{
		name: "linetoken",
		verify: func(ctx context.Context, token string) (tokenInfo, error) {
			r, err := c.VerifyShortLivedToken(ctx, token)
			if err != nil {
				return tokenInfo{}, err
			}
			return tokenInfo{ClientID: r.ClientID, ExpiresIn: int64(r.ExpiresIn / time.Second), Scope: r.Scope}, nil
		},
		issue: func(ctx context.Context) (issued, error) {
			t, err := c.IssueShortLivedToken(ctx)
			if err != nil {
				return issued{}, err
			}
			return issued{AccessToken: t.AccessToken, ExpiresIn: int64(t.ExpiresIn / time.Second), TokenType: t.TokenType}, nil
		},
	}
}

// linebotsdkClient is the peer: line-bot-sdk-go v8's channel_access_token
// client. It takes no context per call (only a client-wide WithContext,
// which mutates the client), so ctx is not passed.
func linebotsdkClient(tb testing.TB, base string) contender {
	c, err := channel_access_token.NewChannelAccessTokenAPI(
		channel_access_token.WithHTTPClient(newHTTPClient()),
		channel_access_token.WithEndpoint(base),
	)
	if err != nil {
		tb.Fatal(err)
	}
	return contender{
		name: "linebotsdk",
		verify: func(_ context.Context, token string) (tokenInfo, error) {
			r, err := c.VerifyChannelToken(token)
			if err != nil {
				return tokenInfo{}, err
			}
			return tokenInfo{ClientID: r.ClientId, ExpiresIn: r.ExpiresIn, Scope: r.Scope}, nil
		},
		issue: func(_ context.Context) (issued, error) {
			t, err := c.IssueChannelToken("client_credentials", channelID, channelSecret)
			if err != nil {
				return issued{}, err
			}
			return issued{AccessToken: t.AccessToken, ExpiresIn: int64(t.ExpiresIn), TokenType: t.TokenType}, nil
		},
	}
}

// nethttpClient is the floor: a hand-built form POST and a JSON decode,
// with the status check and body drain any correct caller needs.
func nethttpClient(base string) contender {
	hc := newHTTPClient()
	verifyURL, issueURL := base+verifyPath, base+issuePath
	issueForm := "grant_type=client_credentials&client_id=" + url.QueryEscape(channelID) +
		"&client_secret=" + url.QueryEscape(channelSecret)
	return contender{
		name: "nethttp",
		verify: func(ctx context.Context, token string) (tokenInfo, error) {
			var r struct {
				ClientID  string `json:"client_id"`
				ExpiresIn int64  `json:"expires_in"`
				Scope     string `json:"scope"`
			}
			err := postForm(ctx, hc, verifyURL, "access_token="+url.QueryEscape(token), &r)
			return tokenInfo{ClientID: r.ClientID, ExpiresIn: r.ExpiresIn, Scope: r.Scope}, err
		},
		issue: func(ctx context.Context) (issued, error) {
			var r struct {
				AccessToken string `json:"access_token"`
				ExpiresIn   int64  `json:"expires_in"`
				TokenType   string `json:"token_type"`
			}
			err := postForm(ctx, hc, issueURL, issueForm, &r)
			return issued{AccessToken: r.AccessToken, ExpiresIn: r.ExpiresIn, TokenType: r.TokenType}, err
		},
	}
}

func postForm(ctx context.Context, hc *http.Client, u, form string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader(form))
	if err != nil {
		return err
	}
	req.Header["Content-Type"] = []string{formType}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, resp.Body)
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body) // to EOF, so the connection is reused
	return nil
}
