package oauth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"time"
)

// Retry defaults: LINE's guidance is exponential backoff on 5xx and
// timeouts ("Retrying an API request").
const (
	defaultMaxAttempts = 3                      // one call and two retries
	defaultMinBackoff  = 200 * time.Millisecond // first wait, before jitter
	defaultMaxBackoff  = 10 * time.Second       // longest wait between attempts
	defaultMaxWait     = 60 * time.Second       // a longer Retry-After is not waited for
)

// Background refresh bounds. A [TokenSource] retries a failed refresh on its
// own, across calls, with the same policy shape (exponential, full jitter
// above half, a floor and a cap) but waits suited to a cache that still
// serves a valid token: a fleet of processes must not hit a failing LINE or
// store in lockstep, nor every few hundred milliseconds.
const (
	// refreshBackoffMin is the least first wait after a failed refresh
	// (before jitter): at most about one attempt a second per process.
	refreshBackoffMin = time.Second
	// refreshBackoffMax caps the wait after failed refreshes (Retry-After
	// aside), so a source still recovers within minutes once the cause is
	// fixed, and callers of an expired token are not refused for long.
	refreshBackoffMax = 5 * time.Minute
	// backgroundRetryAfterMax caps the Retry-After a TokenSource honours
	// between its own attempts (refreshes, revocations). LINE documents no
	// Retry-After; a long one comes from a proxy or a maintenance page,
	// and honouring up to 24h of it would refuse callers of an expired
	// token for that long, or keep a replaced token's slot.
	backgroundRetryAfterMax = refreshBackoffMax
)

// RetryPolicy says how a [Client] retries a failed request. The zero value
// is the default: up to 3 attempts for verify, revoke, key IDs and
// stateless issue, on transport errors, 5xx and 429, with exponential
// backoff and full jitter between 200ms and 10s, honouring Retry-After up
// to 60s. Other 4xx are never retried. Every wait ends early when the
// call's context does, and each retry is logged with its reason at Warn.
//
// A [TokenSource] retries a failed refresh itself, on the next attempts to
// refresh, with this policy's backoff (the same growth and jitter) but a
// floor of at least 1s and a cap of 5 minutes, suited to a cache that still
// serves a valid token; a Retry-After that came with the failure is waited
// for there beyond MaxWait, up to 5 minutes.
type RetryPolicy struct {
	// MaxAttempts counts the first try: 1 disables retries; 0 means 3.
	MaxAttempts int
	// MinBackoff is the first backoff; 0 means 200ms.
	MinBackoff time.Duration
	// MaxBackoff caps each backoff; 0 means 10s.
	MaxBackoff time.Duration
	// MaxWait is the longest Retry-After honoured; a longer one ends the
	// retries and returns the error. 0 means 60s.
	MaxWait time.Duration
	// RetryIssue opts v2.1 and short-lived issue into retries. Off by
	// default: a retry after a lost response can burn one of the channel's
	// 30 slots (and, for short-lived tokens, revoke the oldest).
	RetryIssue bool
}

func (p RetryPolicy) attempts() int {
	if p.MaxAttempts <= 0 {
		return defaultMaxAttempts
	}
	return p.MaxAttempts
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// jitterSource draws a uniform duration in [0, n); rand.N in production,
// a seeded source in tests.
type jitterSource func(n time.Duration) time.Duration

// backoff is the wait before retry number n (1-based): exponential from
// MinBackoff, capped at MaxBackoff, with full jitter above a floor of half.
func (p RetryPolicy) backoff(n int) time.Duration { return p.backoffWith(n, nil) }

// backoffWith is backoff drawing its jitter from j (nil: rand.N).
func (p RetryPolicy) backoffWith(n int, j jitterSource) time.Duration {
	lo, hi := orDefault(p.MinBackoff, defaultMinBackoff), orDefault(p.MaxBackoff, defaultMaxBackoff)
	d := lo
	for i := 1; i < n && d < hi; i++ {
		d *= 2
	}
	d = min(d, hi)
	if j == nil {
		j = rand.N[time.Duration]
	}
	half := d / 2
	return half + j(d-half+1)
}

// refreshBackoff is how long a [TokenSource] waits after its failures-th
// failed refresh in a row (err the last failure). It is the policy's
// backoff with its floor raised to refreshBackoffMin and its cap set to
// refreshBackoffMax (the same exponential growth and jitter as between
// attempts of one call), and never less than a Retry-After that came with
// err, up to backgroundRetryAfterMax: a 429 or 503 that says when to come
// back is not asked again sooner, unless it asks for more than 5 minutes.
func (p RetryPolicy) refreshBackoff(failures int, err error, j jitterSource) time.Duration {
	bg := RetryPolicy{
		MinBackoff: min(max(orDefault(p.MinBackoff, defaultMinBackoff), refreshBackoffMin), refreshBackoffMax),
		MaxBackoff: refreshBackoffMax,
	}
	return max(bg.backoffWith(max(failures, 1), j), backgroundRetryAfter(err))
}

// backgroundRetryAfter is the wait a Retry-After that came with err asks
// of a TokenSource's own retries, capped at backgroundRetryAfterMax; 0
// without one.
func backgroundRetryAfter(err error) time.Duration {
	var ae *APIError
	if errors.As(err, &ae) {
		return min(ae.RetryAfter, backgroundRetryAfterMax)
	}
	return 0
}

// isIssueOperation: operations whose blind retry can burn a slot.
func isIssueOperation(op string) bool {
	return op == operationIssueV21 || op == operationIssueShort
}

// shouldRetry decides whether err is worth another attempt, and why.
func (p RetryPolicy) shouldRetry(ctx context.Context, op string, err error) (bool, string) {
	if err == nil || ctx.Err() != nil {
		return false, ""
	}
	if isIssueOperation(op) && !p.RetryIssue {
		return false, ""
	}
	var ae *APIError
	if errors.As(err, &ae) {
		switch {
		case ae.StatusCode == http.StatusTooManyRequests:
			return true, "429 rate limited"
		case ae.StatusCode >= 500:
			return true, "server error " + http.StatusText(ae.StatusCode)
		}
		return false, ""
	}
	var re *requestError
	if errors.As(err, &re) {
		return true, "transport error"
	}
	return false, ""
}

// withRetries runs attempt until it succeeds, fails for good, runs out of
// attempts or ctx ends.
func (c *Client) withRetries(ctx context.Context, op string, attempt func() ([]byte, time.Time, error)) ([]byte, time.Time, error) {
	p := c.cfg.Retry
	maxAttempts := p.attempts()
	for n := 1; ; n++ {
		data, arrived, err := attempt()
		if n >= maxAttempts {
			return data, arrived, err
		}
		retry, reason := p.shouldRetry(ctx, op, err)
		if !retry {
			return data, arrived, err
		}
		wait := p.backoff(n)
		var ae *APIError
		if errors.As(err, &ae) && ae.RetryAfter > 0 {
			if ae.RetryAfter > orDefault(p.MaxWait, defaultMaxWait) {
				return data, arrived, err
			}
			wait = max(wait, ae.RetryAfter)
		}
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait {
			return data, arrived, err // the wait would outlive the call
		}
		if l := c.cfg.Logger; l != nil {
			l.LogAttrs(ctx, slog.LevelWarn, "oauth: retrying", slog.String("operation", op),
				slog.Int("attempt", n+1), slog.Int("max_attempts", maxAttempts),
				slog.String("reason", reason), slog.Duration("wait", wait), slog.String("error", err.Error()))
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, time.Time{}, fmt.Errorf("%w (no retry: %w)", err, ctx.Err())
		case <-t.C:
		}
	}
}
