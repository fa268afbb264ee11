package agent

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/linetoken/linetoken/oauth"
)

// Channel timing.
const (
	// invalidateEvery: at most one invalidation-driven refresh per channel
	// and kind this often, so that a caller looping GET and invalidate
	// cannot fill the channel's 30 v2.1 slots.
	invalidateEvery = 30 * time.Second
	// verifyEvery: at most one verify per channel and kind this often for
	// reports of a token LINE then accepts, so that a caller reporting a
	// good token in a loop cannot make the agent hammer LINE. It is short:
	// a false report must not hold back a true one for long.
	verifyEvery = 5 * time.Second
	// verifyTimeout bounds the verify an invalidation asks LINE for.
	verifyTimeout = 5 * time.Second
)

// Causes of token_unavailable.
const (
	causeStore       = "store_unavailable"
	causeRefused     = "line_refused"
	causeUnreachable = "line_unreachable"
)

// channel is one channel and kind: its TokenSource, the token it serves,
// why it has none, its sinks and its invalidation limit.
type channel struct {
	a      *Agent
	id     string
	kind   oauth.TokenKind
	kindS  string
	client *oauth.Client
	ts     *oauth.TokenSource
	sinks  []*sink
	wake   chan struct{} // a refresh ended or a token was dropped: look now

	// served is the token the keeper last got, for /readyz and the sinks;
	// only the keeper sets it (so it never steps back to an older token),
	// and a drop clears it.
	served atomic.Pointer[served]
	// answered caches the encoding of the token the API last answered.
	answered atomic.Pointer[served]
	// hadToken: a refresh ever succeeded. Only before that is a refusal of
	// the credentials fatal.
	hadToken atomic.Bool

	mu         sync.Mutex
	lastErr    error     // the last failure to get a token; nil after a success
	lastDrop   time.Time // the last invalidation-driven drop
	lastVerify time.Time // the last verify an invalidation asked for
}

// served is a token with its API answer pre-encoded around expires_in,
// which changes every second.
type served struct {
	tok            *oauth.Token
	prefix, suffix []byte
}

func (c *channel) encode(tok *oauth.Token) *served {
	at, _ := json.Marshal(tok.AccessToken)
	prefix := append([]byte(`{"access_token":`), at...)
	prefix = append(prefix, `,"token_type":"Bearer","expires_in":`...)
	exp, _ := json.Marshal(tok.Expiry.UTC().Format(time.RFC3339))
	suffix := append([]byte(`,"expiry":`), exp...)
	if c.kind == oauth.KindV21 {
		kid, _ := json.Marshal(tok.KeyID)
		suffix = append(append(suffix, `,"key_id":`...), kid...)
	}
	suffix = append(suffix, `,"kind":"`+c.kindS+`"}`...)
	return &served{tok: tok, prefix: prefix, suffix: suffix}
}

// answer appends tok's API object at now to b.
func (s *served) answer(b []byte, now time.Time) []byte {
	left := max(int64(s.tok.Expiry.Sub(now)/time.Second), 0)
	b = append(b, s.prefix...)
	b = strconv.AppendInt(b, left, 10)
	return append(b, s.suffix...)
}

// encoded returns tok encoded, from the cache when the API answered it
// last.
func (c *channel) encoded(tok *oauth.Token) *served {
	if s := c.answered.Load(); s != nil && s.tok == tok {
		return s
	}
	s := c.encode(tok)
	c.answered.Store(s)
	return s
}

// token gets a valid token; on failure, the error says why.
func (c *channel) token(ctx context.Context) (*served, error) {
	tok, err := c.ts.Token(ctx)
	if err != nil {
		c.noteErr(err)
		return nil, err
	}
	return c.encoded(tok), nil
}

func (c *channel) noteErr(err error) {
	c.mu.Lock()
	c.lastErr = err
	c.mu.Unlock()
}

// onRefresh is the TokenSource's OnRefresh: metrics, then wake the keeper
// to write the sinks.
func (c *channel) onRefresh(ev oauth.RefreshEvent) {
	result := resultLoaded
	switch {
	case ev.Err != nil:
		result = resultFailed
		c.noteErr(ev.Err)
	case ev.Issued:
		result = resultIssued
	}
	if ev.Err == nil {
		c.hadToken.Store(true)
	}
	c.a.m.refreshes.WithLabelValues(c.id, c.kindS, result).Inc()
	c.poke()
	if ev.Err == nil && c.kind == oauth.KindV21 {
		select {
		case c.a.slotsNow <- struct{}{}:
		default:
		}
	}
}

func (c *channel) poke() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// keep runs until ctx ends: it keeps the token fresh even when nobody
// asks (the TokenSource refreshes only when looked at), writes the sinks
// after every rotation and retries failed sink writes. fatal is told of a
// definitive refusal of the credentials before any token was had.
func (c *channel) keep(ctx context.Context, fatal func(error)) {
	t := time.NewTicker(c.a.opts.PollInterval)
	defer t.Stop()
	for {
		s, err := c.token(ctx)
		switch {
		case err == nil:
			c.hadToken.Store(true)
			c.served.Store(s)
			c.mu.Lock()
			c.lastErr = nil
			c.mu.Unlock()
			c.a.m.expiry.WithLabelValues(c.id, c.kindS).Set(float64(s.tok.Expiry.Unix()))
			c.writeSinks(ctx, s)
		case ctx.Err() != nil:
			return
		case !c.hadToken.Load() && (errors.Is(err, oauth.ErrInvalidCredentials) || errors.Is(err, oauth.ErrKeyNotRegistered)):
			fatal(&CredentialsError{Channel: c.id, Kind: c.kindS, Err: err})
			return
		default:
			c.a.log.LogAttrs(ctx, slog.LevelDebug, "agent: no token yet; retrying",
				slog.String("channel", c.id), slog.String("kind", c.kindS), slog.String("cause", cause(err)))
		}
		c.a.m.ready.WithLabelValues(c.id, c.kindS).Set(boolGauge(c.ready(c.a.now()) == nil))
		select {
		case <-ctx.Done():
			return
		case <-c.wake:
		case <-t.C:
		}
	}
}

func boolGauge(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// writeSinks writes s's token to every sink not holding it yet.
func (c *channel) writeSinks(ctx context.Context, s *served) {
	for _, sk := range c.sinks {
		if sk.current(s.tok.AccessToken) {
			continue
		}
		var content []byte
		if sk.Format == "json" {
			content = s.answer(nil, c.a.now())
		} else {
			content = []byte(s.tok.AccessToken)
		}
		err := writeAtomic(sk.Path, content, sk.Mode) // only this keeper writes sk
		result := "ok"
		if err != nil {
			result = "error"
			c.a.log.LogAttrs(ctx, slog.LevelError, "agent: sink write failed; will retry",
				slog.String("channel", c.id), slog.String("kind", c.kindS), slog.String("path", sk.Path), slog.String("error", err.Error()))
		} else {
			c.a.log.LogAttrs(ctx, slog.LevelInfo, "agent: sink written",
				slog.String("channel", c.id), slog.String("kind", c.kindS), slog.String("path", sk.Path), slog.String("key_id", s.tok.KeyID))
		}
		c.a.m.sinkWrites.WithLabelValues(c.id, c.kindS, result).Inc()
		sk.record(s.tok.AccessToken, err)
	}
}

// ready says what keeps the channel from being ready at now, or nil.
func (c *channel) ready(now time.Time) *channelState {
	st := &channelState{Channel: c.id, Kind: c.kindS}
	s := c.served.Load()
	c.mu.Lock()
	lastErr := c.lastErr
	c.mu.Unlock()
	switch {
	case s == nil || !s.tok.Valid(now):
		st.Problem = "no valid token"
		if lastErr != nil {
			st.Cause = cause(lastErr)
		}
	default:
		for _, sk := range c.sinks {
			if !sk.current(s.tok.AccessToken) {
				st.StaleSinks = append(st.StaleSinks, sk.Path)
			}
		}
		if len(st.StaleSinks) > 0 {
			st.Problem = "sinks not current"
		}
	}
	if st.Problem == "" {
		return nil
	}
	return st
}

// channelState is one not-ready channel in /readyz's answer.
type channelState struct {
	Channel    string   `json:"channel"`
	Kind       string   `json:"kind"`
	Problem    string   `json:"problem"`
	Cause      string   `json:"cause,omitempty"`
	StaleSinks []string `json:"stale_sinks,omitempty"`
}

// invalidate handles a caller's report that LINE refused accessToken: if
// it is still the token served, LINE's verify endpoint is asked, and the
// token dropped when LINE refuses it (or cannot be asked; a caller that
// leaves before LINE answers drops nothing). At most one
// drop per invalidateEvery, and one verify per verifyEvery; reports of
// another token, or beyond those limits, are ignored. It reports whether
// the token was dropped.
func (c *channel) invalidate(ctx context.Context, accessToken string) bool {
	return c.verifyAndDrop(ctx, accessToken, false)
}

// verifyAndDrop is invalidate; strict drops the token only when LINE's
// verify refused it, never because LINE could not be asked (or, for a
// stateless token, cannot be).
func (c *channel) verifyAndDrop(ctx context.Context, accessToken string, strict bool) bool {
	if strict && c.kind == oauth.KindStateless {
		return false
	}
	cur, err := c.ts.Token(ctx)
	if err != nil || accessToken == "" || cur.AccessToken != accessToken {
		return false
	}
	now := c.a.now()
	c.mu.Lock()
	why := ""
	switch {
	case !c.lastDrop.IsZero() && now.Sub(c.lastDrop) < invalidateEvery:
		why = "a token was dropped less than 30s ago"
	case !c.lastVerify.IsZero() && now.Sub(c.lastVerify) < verifyEvery:
		why = "a report was checked less than 5s ago"
	default:
		c.lastVerify = now
	}
	c.mu.Unlock()
	if why != "" {
		c.a.log.LogAttrs(ctx, slog.LevelDebug, "agent: invalidation ignored: "+why,
			slog.String("channel", c.id), slog.String("kind", c.kindS))
		return false
	}
	vctx, cancel := context.WithTimeout(ctx, verifyTimeout)
	defer cancel()
	switch c.kind {
	case oauth.KindV21:
		_, err = c.client.VerifyToken(vctx, accessToken)
	case oauth.KindShortLived:
		_, err = c.client.VerifyShortLivedToken(vctx, accessToken)
	default:
		err = errors.New("stateless tokens cannot be verified")
	}
	if err == nil {
		c.a.log.LogAttrs(ctx, slog.LevelInfo, "agent: a caller reported the token refused, but LINE says it is valid; kept",
			slog.String("channel", c.id), slog.String("kind", c.kindS), slog.String("key_id", cur.KeyID))
		return false
	}
	if ctx.Err() != nil { // the caller left: LINE said nothing about the token
		c.a.log.LogAttrs(ctx, slog.LevelDebug, "agent: invalidation ignored: the caller left before LINE's verify answered",
			slog.String("channel", c.id), slog.String("kind", c.kindS))
		return false
	}
	if strict && !errors.Is(err, oauth.ErrInvalidToken) {
		c.a.log.LogAttrs(ctx, slog.LevelDebug, "agent: invalidation ignored: LINE's verify did not refuse the token",
			slog.String("channel", c.id), slog.String("kind", c.kindS), slog.String("verify", err.Error()))
		return false
	}
	return c.drop(ctx, accessToken, "agent: token dropped after a caller reported it refused",
		slog.String("key_id", cur.KeyID), slog.String("verify", err.Error()))
}

// refused is the proxy's [oauth.Transport.Invalidate]: LINE answered 401
// to accessToken. LINE's answer is the verification, so the token is
// dropped at once if it is still the one served, within the same limit
// of one drop per invalidateEvery: a LINE that refuses every new token
// cannot make the proxy issue one per request.
func (c *channel) refused(ctx context.Context, accessToken string) {
	cur, err := c.ts.Token(ctx)
	if err != nil || cur.AccessToken != accessToken {
		return // already replaced: the Transport retries with the new one
	}
	if c.drop(ctx, accessToken, "agent: proxy: token dropped after LINE answered 401 to it", slog.String("key_id", cur.KeyID)) {
		c.a.m.heals.WithLabelValues(c.id, c.kindS).Inc()
	}
}

// refusedElsewhere is the proxy's [oauth.Transport.Invalidate] for paths
// outside the Messaging API: their 401 may not be about the channel
// token, so LINE's verify endpoint decides, within invalidate's limits,
// and only its refusal drops the token (not a verify LINE could not
// answer, nor a stateless token, which cannot be verified).
func (c *channel) refusedElsewhere(ctx context.Context, accessToken string) {
	if c.verifyAndDrop(ctx, accessToken, true) {
		c.a.m.heals.WithLabelValues(c.id, c.kindS).Inc()
	}
}

// drop stops serving accessToken so that the next Token refreshes, unless
// a token was dropped less than invalidateEvery ago. msg and attrs are
// logged. It reports whether the token was dropped.
func (c *channel) drop(ctx context.Context, accessToken, msg string, attrs ...slog.Attr) bool {
	c.mu.Lock()
	if !c.lastDrop.IsZero() && c.a.now().Sub(c.lastDrop) < invalidateEvery {
		c.mu.Unlock() // another report dropped one meanwhile
		c.a.log.LogAttrs(ctx, slog.LevelDebug, "agent: drop ignored: a token was dropped less than 30s ago",
			slog.String("channel", c.id), slog.String("kind", c.kindS))
		return false
	}
	c.lastDrop = c.a.now()
	// The dropped token is no longer served: /readyz must not count it
	// while its replacement cannot be had.
	if s := c.served.Load(); s != nil && s.tok.AccessToken == accessToken {
		c.served.CompareAndSwap(s, nil)
	}
	c.mu.Unlock()
	c.ts.Invalidate(accessToken)
	c.a.m.invalidations.WithLabelValues(c.id, c.kindS).Inc()
	c.a.log.LogAttrs(ctx, slog.LevelInfo, msg, append([]slog.Attr{slog.String("channel", c.id), slog.String("kind", c.kindS)}, attrs...)...)
	c.poke()
	return true
}

// cause classifies a failure to get a token for token_unavailable.
func cause(err error) string {
	var ae *oauth.APIError
	switch {
	case errors.Is(err, oauth.ErrStoreUnavailable):
		return causeStore
	case errors.As(err, &ae) && ae.StatusCode < 500:
		return causeRefused
	}
	return causeUnreachable
}

// retryAfter is the Retry-After of a token_unavailable answer: LINE's,
// when it sent one, else a few seconds.
func retryAfter(err error) int {
	const dflt = 5 // seconds: the TokenSource retries about this soon
	var ae *oauth.APIError
	if errors.As(err, &ae) && ae.RetryAfter > 0 {
		return max(int((ae.RetryAfter+time.Second-1)/time.Second), 1)
	}
	return dflt
}

// CredentialsError: LINE definitively refused a channel's credentials
// before the agent had any token for it. The agent stops: a misconfigured
// agent must crash-loop visibly, not serve 503 forever.
type CredentialsError struct {
	Channel, Kind string
	Err           error
}

func (e *CredentialsError) Error() string {
	return "agent: channel " + e.Channel + " (" + e.Kind + "): " + e.Err.Error()
}

func (e *CredentialsError) Unwrap() error { return e.Err }
