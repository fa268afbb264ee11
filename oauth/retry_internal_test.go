package oauth

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

func TestBackoffBounds(t *testing.T) {
	p := RetryPolicy{MinBackoff: 100 * time.Millisecond, MaxBackoff: time.Second}
	for n, want := range map[int]time.Duration{1: 100 * time.Millisecond, 2: 200 * time.Millisecond, 3: 400 * time.Millisecond, 4: 800 * time.Millisecond, 5: time.Second, 30: time.Second} {
		seen := map[time.Duration]bool{}
		for i := 0; i < 200; i++ {
			d := p.backoff(n)
			if d < want/2 || d > want {
				t.Fatalf("backoff(%d) = %v, want within [%v, %v]", n, d, want/2, want)
			}
			seen[d] = true
		}
		if len(seen) < 10 {
			t.Errorf("backoff(%d) has no jitter: %d distinct values", n, len(seen))
		}
	}
	var zero RetryPolicy
	if d := zero.backoff(1); d < defaultMinBackoff/2 || d > defaultMinBackoff {
		t.Errorf("default backoff(1) = %v", d)
	}
	if zero.attempts() != defaultMaxAttempts {
		t.Errorf("default attempts = %d", zero.attempts())
	}
}

// TestRefreshBackoff: a TokenSource's wait after failed refreshes comes
// from the client's policy: it grows exponentially from a floor of 1s to a
// cap of 5 minutes, with jitter over the upper half (a fleet does not retry
// in lockstep), and is never shorter than a Retry-After that came with the
// failure. The jitter is drawn from a seeded source: deterministic.
func TestRefreshBackoff(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	seeded := func(n time.Duration) time.Duration { return time.Duration(rng.Int64N(int64(n))) }
	for _, p := range []RetryPolicy{{}, {MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond}, {MinBackoff: time.Hour, MaxBackoff: time.Hour}} {
		for failures, want := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second, 9: 256 * time.Second, 10: 5 * time.Minute, 1000: 5 * time.Minute} {
			if p.MinBackoff == time.Hour {
				want = refreshBackoffMax // a floor above the cap is held to it
			}
			seen := map[time.Duration]bool{}
			for range 200 {
				d := p.refreshBackoff(failures, errors.New("store down"), seeded)
				if d < want/2 || d > want {
					t.Fatalf("%+v: refreshBackoff(%d) = %v, want within [%v, %v]", p, failures, d, want/2, want)
				}
				seen[d] = true
			}
			if len(seen) < 100 {
				t.Errorf("%+v: refreshBackoff(%d) has no jitter: %d distinct waits of 200", p, failures, len(seen))
			}
		}
	}
	// The draw sets the wait: the bottom and the top of the range.
	var p RetryPolicy
	if d := p.refreshBackoff(3, nil, func(time.Duration) time.Duration { return 0 }); d != 2*time.Second {
		t.Errorf("lowest draw after 3 failures = %v, want 2s", d)
	}
	if d := p.refreshBackoff(3, nil, func(n time.Duration) time.Duration { return n - 1 }); d != 4*time.Second {
		t.Errorf("highest draw after 3 failures = %v, want 4s", d)
	}
	// Retry-After: a floor for the wait up to 5 minutes; a longer one (a
	// proxy's, a maintenance page's: LINE documents none) is held to 5
	// minutes, the backoff's own cap; shorter than the backoff, it changes
	// nothing.
	for _, ra := range []time.Duration{7 * time.Second, 120 * time.Second, 5 * time.Minute, time.Hour, maxRetryAfter} {
		err := fmt.Errorf("oauth: refreshing: %w", &APIError{Operation: operationIssueV21, StatusCode: 429, RetryAfter: ra})
		floor := min(ra, backgroundRetryAfterMax)
		for failures := range 12 {
			d := p.refreshBackoff(failures+1, err, seeded)
			if d < floor {
				t.Errorf("refreshBackoff(%d) with Retry-After %v = %v, want at least %v", failures+1, ra, d, floor)
			}
			if d > refreshBackoffMax {
				t.Errorf("refreshBackoff(%d) with Retry-After %v = %v, want at most %v", failures+1, ra, d, refreshBackoffMax)
			}
		}
	}
	short := &APIError{Operation: operationIssueV21, StatusCode: 503, RetryAfter: time.Millisecond}
	if d := p.refreshBackoff(5, short, func(time.Duration) time.Duration { return 0 }); d != 8*time.Second {
		t.Errorf("refreshBackoff(5) with a 1ms Retry-After = %v, want the backoff's 8s", d)
	}
}
