package oauth

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"strings"
	"time"

	"github.com/linetoken/linetoken/gen"
)

// Wire constants (LINE reference, "Channel access token").
const (
	grantClientCredentials = "client_credentials"
	assertionTypeJWTBearer = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
	contentTypeForm        = "application/x-www-form-urlencoded"
	// maxResponseBody caps what is read of any response: LINE's token
	// responses are under 2 KiB; an error page or a hostile server gets
	// cut here and memory stays bounded.
	maxResponseBody = 256 << 10
	// maxExpiresIn caps expires_in (seconds) before it becomes a Duration:
	// long-lived tokens report about 99 years; 250 years stays inside
	// time.Duration's range.
	maxExpiresIn = 250 * 365 * 24 * 3600
	// initialReadBuffer fits every documented success body in one read.
	initialReadBuffer = 1024
	// defaultTokenType is assumed when an issue response omits token_type.
	defaultTokenType = "Bearer"
)

// Client calls LINE's Channel Access Token API. It is safe for concurrent
// use. Create it with [NewClient].
type Client struct {
	cfg  Config
	base string
	urls endpoints
	hc   *http.Client
	ua   []string // the User-Agent header value, shared read-only
	// hdrForm and hdrAccept are header values shared read-only by every
	// request (net/http only reads them).
	hdrForm, hdrAccept []string
	now                func() time.Time
	// shortBody is the issue-short-lived form, fixed by the config.
	shortBody string
}

// NewClient validates cfg and returns a Client. An error names the field
// that is wrong. Which fields each operation needs is said on it; a missing
// one is reported by the call, before any request.
func NewClient(cfg Config) (*Client, error) {
	base, err := cfg.validate()
	if err != nil {
		return nil, err
	}
	hc := cfg.HTTPClient
	if hc == nil {
		hc = newDefaultHTTPClient()
	}
	ua := libraryUserAgent
	if cfg.UserAgent != "" {
		ua = strings.TrimSpace(cfg.UserAgent) + " " + libraryUserAgent
	}
	urls, err := newEndpoints(base)
	if err != nil {
		return nil, fmt.Errorf("oauth: Config.BaseURL: %w", err)
	}
	now := cfg.Clock
	if now == nil {
		now = time.Now
	}
	return &Client{cfg: cfg, base: base, urls: urls, hc: hc, ua: []string{ua}, now: now,
		hdrForm: []string{contentTypeForm}, hdrAccept: []string{"application/json"},
		shortBody: formBody("grant_type", grantClientCredentials, "client_id", cfg.ChannelID, "client_secret", cfg.ChannelSecret),
	}, nil
}

// String describes c without secrets.
func (c *Client) String() string {
	if c == nil {
		return "oauth.Client(nil)"
	}
	return "oauth.Client{" + c.cfg.String() + "}"
}

// Format prints [Client.String] under every verb, %#v included.
func (c *Client) Format(f fmt.State, _ rune) { writeString(f, c.String()) }

// IssueToken issues a channel access token v2.1 valid for lifetime (0 means
// 30 days, the maximum), authenticated by a JWT assertion signed with
// Config.Key. It needs Config.ChannelID and Config.Key. The returned
// token's KeyID identifies it in [Client.ValidKeyIDs]. At 30 active tokens
// LINE refuses ([ErrTokenLimitReached]).
//
// LINE reference: "Issue channel access token v2.1" (POST /oauth2/v2.1/token).
func (c *Client) IssueToken(ctx context.Context, lifetime time.Duration) (*Token, error) {
	const op = operationIssueV21
	if lifetime == 0 {
		lifetime = MaxTokenLifetime
	}
	if _, err := lifetimeSeconds(lifetime); err != nil {
		return nil, fmt.Errorf("oauth: %s: %w", op, err)
	}
	assertion, err := c.assertion(op, lifetime)
	if err != nil {
		return nil, err
	}
	body := formBody("grant_type", grantClientCredentials, "client_assertion_type", assertionTypeJWTBearer, "client_assertion", assertion)
	data, arrived, err := c.roundTrip(ctx, op, func() (*http.Response, error) {
		return c.post(ctx, c.urls.issueV21, body)
	}, assertion)
	if err != nil {
		return nil, err
	}
	var r gen.IssueChannelAccessTokenResponse
	if err := decode(op, data, &r); err != nil {
		return nil, err
	}
	if r.KeyId == "" {
		return nil, malformed(op, "key_id is missing")
	}
	return newToken(op, r.AccessToken, r.TokenType, r.KeyId, r.ExpiresIn, arrived)
}

// VerifyToken asks LINE whether a v2.1 access token is valid and reports
// its channel, scope and remaining lifetime. An expired, revoked or
// unknown token is [ErrInvalidToken]. It needs no credentials.
//
// LINE reference: "Verify the validity of a channel access token v2.1"
// (GET /oauth2/v2.1/verify). The token travels in the query string; it
// never appears in an error.
func (c *Client) VerifyToken(ctx context.Context, accessToken string) (*TokenInfo, error) {
	const op = operationVerifyV21
	if err := requireToken(op, accessToken); err != nil {
		return nil, err
	}
	data, arrived, err := c.roundTrip(ctx, op, func() (*http.Response, error) {
		return c.get(ctx, c.urls.verifyV21+"?"+formBody("access_token", accessToken))
	}, accessToken)
	if err != nil {
		return nil, err
	}
	return decodeTokenInfo(op, data, arrived)
}

// RevokeToken revokes a v2.1 access token, freeing its slot. LINE needs the
// channel ID and secret for this (no JWT, despite the operation's name):
// Config.ChannelID and Config.ChannelSecret. A malformed token is
// [ErrInvalidToken]; an unknown but well-formed one succeeds.
//
// LINE reference: "Revoke channel access token v2.1" (POST /oauth2/v2.1/revoke).
func (c *Client) RevokeToken(ctx context.Context, accessToken string) error {
	const op = operationRevokeV21
	if err := requireToken(op, accessToken); err != nil {
		return err
	}
	if err := c.requireSecret(op); err != nil {
		return err
	}
	body := formBody("client_id", c.cfg.ChannelID, "client_secret", c.cfg.ChannelSecret, "access_token", accessToken)
	_, _, err := c.roundTrip(ctx, op, func() (*http.Response, error) {
		return c.post(ctx, c.urls.revokeV21, body)
	}, c.cfg.ChannelSecret, accessToken)
	return err
}

// ValidKeyIDs lists the key IDs of the channel's active v2.1 tokens, which
// tells how many of its 30 slots are taken. It needs Config.ChannelID and
// Config.Key.
//
// LINE reference: "Get all valid channel access token key IDs v2.1"
// (GET /oauth2/v2.1/tokens/kid).
func (c *Client) ValidKeyIDs(ctx context.Context) ([]string, error) {
	const op = operationKeyIDs
	assertion, err := c.assertion(op, 0)
	if err != nil {
		return nil, err
	}
	data, _, err := c.roundTrip(ctx, op, func() (*http.Response, error) {
		return c.get(ctx, c.urls.keyIDs+"?"+formBody("client_assertion_type", assertionTypeJWTBearer, "client_assertion", assertion))
	}, assertion)
	if err != nil {
		return nil, err
	}
	var r gen.ChannelAccessTokenKeyIdsResponse
	if err := decode(op, data, &r); err != nil {
		return nil, err
	}
	if r.Kids == nil {
		return nil, malformed(op, "kids is missing")
	}
	return r.Kids, nil
}

// IssueShortLivedToken issues a short-lived channel access token, valid for
// 30 days. It needs Config.ChannelID and Config.ChannelSecret. LINE keeps
// at most 30 per channel: issuing a 31st silently revokes the oldest, so
// reuse tokens rather than issuing one per request.
//
// LINE reference: "Issue short-lived channel access token"
// (POST /v2/oauth/accessToken).
func (c *Client) IssueShortLivedToken(ctx context.Context) (*Token, error) {
	const op = operationIssueShort
	if err := c.requireSecret(op); err != nil {
		return nil, err
	}
	data, arrived, err := c.roundTrip(ctx, op, func() (*http.Response, error) {
		return c.post(ctx, c.urls.issueShort, c.shortBody)
	}, c.cfg.ChannelSecret)
	if err != nil {
		return nil, err
	}
	var r gen.IssueShortLivedChannelAccessTokenResponse
	if err := decode(op, data, &r); err != nil {
		return nil, err
	}
	return newToken(op, r.AccessToken, r.TokenType, "", r.ExpiresIn, arrived)
}

// VerifyShortLivedToken asks LINE whether a short-lived or long-lived
// access token is valid. An invalid one is [ErrInvalidToken]. It needs no
// credentials.
//
// LINE reference: "Verify the validity of short-lived and long-lived
// channel access tokens" (POST /v2/oauth/verify).
func (c *Client) VerifyShortLivedToken(ctx context.Context, accessToken string) (*TokenInfo, error) {
	const op = operationVerifyShort
	if err := requireToken(op, accessToken); err != nil {
		return nil, err
	}
	body := formBody("access_token", accessToken)
	data, arrived, err := c.roundTrip(ctx, op, func() (*http.Response, error) {
		return c.post(ctx, c.urls.verifyShort, body)
	}, accessToken)
	if err != nil {
		return nil, err
	}
	return decodeTokenInfo(op, data, arrived)
}

// RevokeShortLivedToken revokes a short-lived or long-lived access token.
// It needs no credentials. LINE answers 200 for an unknown token and
// [ErrInvalidToken] for a malformed one.
//
// LINE reference: "Revoke short-lived or long-lived channel access token"
// (POST /v2/oauth/revoke).
func (c *Client) RevokeShortLivedToken(ctx context.Context, accessToken string) error {
	const op = operationRevokeShort
	if err := requireToken(op, accessToken); err != nil {
		return err
	}
	body := formBody("access_token", accessToken)
	_, _, err := c.roundTrip(ctx, op, func() (*http.Response, error) {
		return c.post(ctx, c.urls.revokeShort, body)
	}, accessToken)
	return err
}

// IssueStatelessToken issues a stateless channel access token: valid for 15
// minutes, unlimited in number, not revocable. With Config.Key it
// authenticates by JWT assertion (grant_type, client_assertion_type,
// client_assertion); without, by Config.ChannelID and Config.ChannelSecret
// (grant_type, client_id, client_secret). Only the chosen form's fields are
// sent.
//
// LINE reference: "Issue stateless channel access token" (POST /oauth2/v3/token).
func (c *Client) IssueStatelessToken(ctx context.Context) (*Token, error) {
	const op = operationIssueStateless
	var body, secret string
	if c.cfg.Key != nil {
		assertion, err := c.assertion(op, 0)
		if err != nil {
			return nil, err
		}
		body = formBody("grant_type", grantClientCredentials, "client_assertion_type", assertionTypeJWTBearer, "client_assertion", assertion)
		secret = assertion
	} else {
		if err := c.requireSecret(op); err != nil {
			return nil, err
		}
		body = c.shortBody // the same three fields as short-lived issue
		secret = c.cfg.ChannelSecret
	}
	data, arrived, err := c.roundTrip(ctx, op, func() (*http.Response, error) {
		return c.post(ctx, c.urls.stateless, body)
	}, secret)
	if err != nil {
		return nil, err
	}
	var r gen.IssueStatelessChannelAccessTokenResponse
	if err := decode(op, data, &r); err != nil {
		return nil, err
	}
	return newToken(op, r.AccessToken, r.TokenType, "", r.ExpiresIn, arrived)
}

// assertion signs a JWT assertion with Config.Key, refusing before any
// request when there is no key.
func (c *Client) assertion(op string, lifetime time.Duration) (string, error) {
	if c.cfg.Key == nil {
		return "", fmt.Errorf("oauth: %s: %w", op, invalidInput("Config.Key is required (the assertion signing key and its kid; LINE_PRIVATE_KEY and LINE_KEY_ID)"))
	}
	if c.cfg.ChannelID == "" {
		return "", fmt.Errorf("oauth: %s: %w", op, invalidInput("Config.ChannelID is required"))
	}
	s, err := c.cfg.Key.signAssertion(c.cfg.ChannelID, lifetime, c.now())
	if err != nil {
		return "", fmt.Errorf("oauth: %s: %w", op, err)
	}
	return s, nil
}

// requireSecret refuses before any request when the channel ID or secret is
// missing.
func (c *Client) requireSecret(op string) error {
	var missing []string
	if c.cfg.ChannelID == "" {
		missing = append(missing, "Config.ChannelID (LINE_CHANNEL_ID)")
	}
	if c.cfg.ChannelSecret == "" {
		missing = append(missing, "Config.ChannelSecret (LINE_CHANNEL_SECRET)")
	}
	if len(missing) > 0 {
		return fmt.Errorf("oauth: %s: %w", op, invalidInput("%s required", strings.Join(missing, " and ")))
	}
	return nil
}

func requireToken(op, accessToken string) error {
	if strings.TrimSpace(accessToken) == "" {
		return fmt.Errorf("oauth: %s: %w", op, invalidInput("access token is empty"))
	}
	return nil
}

// roundTrip sends one request through send and returns the body of a 2xx
// answer and when it arrived. A non-2xx answer is an [*APIError]; a
// transport failure is an error with every secret value scrubbed and its
// URL's query redacted, that still matches context.Canceled and
// context.DeadlineExceeded.
func (c *Client) roundTrip(ctx context.Context, op string, send func() (*http.Response, error), secrets ...string) ([]byte, time.Time, error) {
	return c.withRetries(ctx, op, func() ([]byte, time.Time, error) {
		return c.roundTripOnce(ctx, op, send, secrets)
	})
}

// roundTripOnce is one attempt of roundTrip.
func (c *Client) roundTripOnce(ctx context.Context, op string, send func() (*http.Response, error), secrets []string) ([]byte, time.Time, error) {
	if err := ctx.Err(); err != nil {
		return nil, time.Time{}, &requestError{msg: "oauth: " + op + ": " + err.Error(), errs: []error{err}}
	}
	resp, err := send()
	if err != nil {
		return nil, time.Time{}, newRequestError(ctx, op, "", err, secrets)
	}
	defer resp.Body.Close()
	arrived := c.now()
	data, tooLarge, readErr := readCapped(resp.Body, maxResponseBody, resp.ContentLength)
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, arrived, newAPIError(op, resp, data, tooLarge, readErr, arrived)
	}
	if readErr != nil {
		return nil, arrived, newRequestError(ctx, op, "reading response: ", readErr, secrets)
	}
	if tooLarge {
		return nil, arrived, malformed(op, fmt.Sprintf("body exceeds %d bytes", maxResponseBody))
	}
	return data, arrived, nil
}

// readCapped reads r up to limit bytes and reports whether there was more.
// size is the length the body announced (-1 when unknown): a buffer of
// size+1 takes the whole body and the end of it in one read.
func readCapped(r io.Reader, limit, size int64) (data []byte, tooLarge bool, err error) {
	n := int64(initialReadBuffer)
	if size >= 0 && size < n {
		n = size + 1
	}
	data = make([]byte, 0, n)
	for int64(len(data)) <= limit {
		if len(data) == cap(data) {
			data = append(data, 0)[:len(data)] // grow
		}
		end := min(int64(cap(data)), limit+1)
		var n int
		n, err = r.Read(data[len(data):end])
		data = data[:len(data)+n]
		if err != nil {
			if err == io.EOF {
				err = nil
			}
			break
		}
	}
	if int64(len(data)) > limit {
		return data[:limit], true, err
	}
	return data, false, err
}

// newAPIError builds the error for a non-2xx answer from whatever of its
// body could be read.
func newAPIError(op string, resp *http.Response, data []byte, tooLarge bool, readErr error, now time.Time) *APIError {
	e := &APIError{
		Operation:  op,
		StatusCode: resp.StatusCode,
		RequestID:  truncate(resp.Header.Get(headerRequestID)),
		RetryAfter: parseRetryAfter(resp.Header.Get(headerRetryAfter), now),
	}
	var body gen.ErrorResponse
	trimmed := strings.TrimSpace(string(data))
	switch {
	case tooLarge:
		e.bodyKind = bodyKindTooLarge
	case trimmed != "" && json.Unmarshal(data, &body) == nil:
		e.Code = truncate(deref(body.Error))
		e.Description = truncate(deref(body.ErrorDescription))
		e.Message = truncate(deref(body.Message))
	case readErr != nil:
		e.bodyKind = bodyKindCutShort
	case trimmed == "":
		e.bodyKind = bodyKindEmpty
	default:
		e.bodyKind = bodyKindNotJSON
		if ct := resp.Header.Get("Content-Type"); ct != "" {
			e.bodyKind += ", " + truncate(ct)
		}
	}
	return e
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// decode parses a 2xx body into v.
func decode(op string, data []byte, v any) error {
	if len(data) == 0 {
		return malformed(op, "empty body")
	}
	if err := json.Unmarshal(data, v); err != nil {
		return malformed(op, "not the documented JSON: "+jsonErrorText(err))
	}
	return nil
}

// jsonErrorText describes a JSON error without quoting the body.
func jsonErrorText(err error) string {
	switch e := err.(type) {
	case *json.UnmarshalTypeError:
		kind, _, _ := strings.Cut(e.Value, " ") // "number 123": the kind, never the value
		return fmt.Sprintf("field %q has JSON type %s, want %s", e.Field, kind, e.Type)
	case *json.SyntaxError:
		return fmt.Sprintf("syntax error at byte %d", e.Offset)
	}
	return "invalid JSON"
}

func malformed(op, why string) error {
	return fmt.Errorf("oauth: %s: %w: %s", op, ErrMalformedResponse, why)
}

// newToken checks an issue response's fields and converts them.
func newToken(op, accessToken, tokenType, keyID string, expiresIn int64, arrived time.Time) (*Token, error) {
	if accessToken == "" {
		return nil, malformed(op, "access_token is missing")
	}
	if expiresIn <= 0 {
		return nil, malformed(op, "expires_in is missing or not positive")
	}
	if tokenType == "" {
		tokenType = defaultTokenType
	}
	d := seconds(expiresIn)
	return &Token{AccessToken: accessToken, TokenType: tokenType, KeyID: keyID, ExpiresIn: d, Expiry: arrived.Add(d)}, nil
}

// verifyWire mirrors gen.VerifyChannelAccessTokenResponse with a plain
// scope, allocated together with the result.
type verifyWire struct {
	info TokenInfo
	wire struct {
		ClientId  string `json:"client_id"`
		ExpiresIn int64  `json:"expires_in"`
		Scope     string `json:"scope"`
	}
}

func decodeTokenInfo(op string, data []byte, arrived time.Time) (*TokenInfo, error) {
	both := new(verifyWire)
	r := &both.wire
	if err := decode(op, data, r); err != nil {
		return nil, err
	}
	if r.ClientId == "" {
		return nil, malformed(op, "client_id is missing")
	}
	if r.ExpiresIn <= 0 {
		return nil, malformed(op, "expires_in is missing or not positive")
	}
	d := seconds(r.ExpiresIn)
	both.info = TokenInfo{ClientID: r.ClientId, Scope: r.Scope, ExpiresIn: d, Expiry: arrived.Add(d)}
	return &both.info, nil
}

// seconds converts expires_in to a Duration, capped at maxExpiresIn.
func seconds(s int64) time.Duration {
	if s > maxExpiresIn || s > math.MaxInt64/int64(time.Second) {
		s = maxExpiresIn
	}
	return time.Duration(s) * time.Second
}
