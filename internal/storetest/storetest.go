// Package storetest holds helpers for the tests of oauth's stores (the
// memory store in package oauth, the Redis store in oauth/redisstore). It
// is internal and imported by _test.go files only.
package storetest

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/linetoken/linetoken/oauth"
)

const (
	// LongWait is the maxWait of waits that must end early: so far above a
	// wake-up that "well under it" cannot be scheduling noise.
	LongWait = 10 * time.Second
	// Prompt bounds a wake-up: a fifth of LongWait, and still hundreds of
	// times what one needs (for Redis, a subscription and two round trips).
	Prompt = 2 * time.Second
)

// WaitResult is what one WaitUnlock in the background returned, and when.
type WaitResult struct {
	Err error
	At  time.Time
}

// WaitUnlockAsync starts s.WaitUnlock(ctx, key, maxWait) in a goroutine.
func WaitUnlockAsync(ctx context.Context, s oauth.StoreNotifier, key string, maxWait time.Duration) <-chan WaitResult {
	done := make(chan WaitResult, 1)
	go func() {
		err := s.WaitUnlock(ctx, key, maxWait)
		done <- WaitResult{err, time.Now()}
	}()
	return done
}

// StillWaiting fails t if the wait has returned.
func StillWaiting(t testing.TB, done <-chan WaitResult, what string) {
	t.Helper()
	select {
	case r := <-done:
		t.Fatalf("WaitUnlock returned (%v) %s", r.Err, what)
	default:
	}
}

// WokenBy waits for done and fails t unless it returned nil within Prompt
// of since, well under its maxWait (LongWait).
func WokenBy(t testing.TB, done <-chan WaitResult, since time.Time, what string) {
	t.Helper()
	select {
	case r := <-done:
		if r.Err != nil {
			t.Fatalf("WaitUnlock after %s = %v; want nil", what, r.Err)
		}
		if d := r.At.Sub(since); d > Prompt {
			t.Fatalf("WaitUnlock returned %v after %s; want well under its maxWait %v", d, what, LongWait)
		}
	case <-time.After(LongWait + Prompt):
		t.Fatalf("WaitUnlock never returned after %s", what)
	}
}

// CheckMedianDelay fails t unless the median of delays (from the holder's
// Save to each fleet member's token) is at most limit: followers woken by
// the store, not polling it. The median keeps one descheduled goroutine
// from failing the test.
func CheckMedianDelay(t testing.TB, delays []time.Duration, limit time.Duration) {
	t.Helper()
	slices.Sort(delays)
	median := delays[len(delays)/2]
	t.Logf("fleet members had the token this long after the Save: median %v, max %v", median, delays[len(delays)-1])
	if median > limit {
		t.Errorf("median %v from the Save to a fleet member's token; want under %v (followers woken, not polling)", median, limit)
	}
}

// FleetRound has every source of fleet call Token at once (released
// together from a start line) and returns when each got its answer, the
// tokens, and the errors joined.
func FleetRound(ctx context.Context, fleet []*oauth.TokenSource) (returned []time.Time, tokens []string, err error) {
	returned = make([]time.Time, len(fleet))
	tokens = make([]string, len(fleet))
	errs := make([]error, len(fleet))
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, ts := range fleet {
		wg.Go(func() {
			<-start
			tok, err := ts.Token(ctx)
			returned[i], errs[i] = time.Now(), err
			if err == nil {
				tokens[i] = tok.AccessToken
			}
		})
	}
	close(start)
	wg.Wait()
	return returned, tokens, errors.Join(errs...)
}
