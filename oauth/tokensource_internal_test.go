package oauth

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

// Bounds of the internal TokenSource tests.
const (
	// internalFreshWait is the caller's deadline on the fresh path: far
	// longer than a return "at once", far shorter than a refresh.
	internalFreshWait = 50 * time.Millisecond
	// internalBlockedAfter: a Token still running this long after its
	// deadline is blocked (on ts.mu), not merely slow.
	internalBlockedAfter = 2 * time.Second
	// internalStaleBound is how soon after the early-refresh window opens
	// the background refresh must have started with the default watcher
	// (it reads the clock once a second): its interval plus slack for a
	// loaded machine and -race.
	internalStaleBound = 3 * time.Second
	// internalLifetime is the lifetime the stand-in gives its tokens
	// (LINE's short-lived tokens: 30 days), and internalRefreshBefore the
	// sources' early-refresh window.
	internalLifetime      = 30 * 24 * time.Hour
	internalRefreshBefore = 24 * time.Hour
)

// internalIssuer is a stand-in for LINE's short-lived token endpoint (the
// oauthtest fake imports this package, so tests inside it cannot use it);
// it counts the tokens it issues.
type internalIssuer struct {
	*httptest.Server
	issues atomic.Int64
}

func newInternalIssuer(t *testing.T) *internalIssuer {
	t.Helper()
	is := &internalIssuer{}
	is.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v2/oauth/accessToken" {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		n := is.issues.Add(1)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"access_token":"internal-token-%d","token_type":"Bearer","expires_in":%d}`,
			n, int64(internalLifetime/time.Second))
	}))
	t.Cleanup(is.Close)
	return is
}

// internalClock is a clock the test moves forward.
type internalClock struct{ offset atomic.Int64 }

func (c *internalClock) now() time.Time          { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *internalClock) advance(d time.Duration) { c.offset.Add(int64(d)) }

// newInternalSource is a short-lived TokenSource on is, with the default
// watcher interval (SetWatchInterval is not called), closed at Cleanup.
func newInternalSource(t *testing.T, is *internalIssuer, clk *internalClock) *TokenSource {
	t.Helper()
	c, err := NewClient(Config{ChannelID: "1234567890", ChannelSecret: "internal-test-secret", BaseURL: is.URL,
		Clock: clk.now, Retry: RetryPolicy{MaxAttempts: 1}})
	if err != nil {
		t.Fatal(err)
	}
	ts, err := NewTokenSource(c, TokenSourceOptions{Kind: KindShortLived, RefreshBefore: internalRefreshBefore})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ts.Close() })
	return ts
}

// TestTokenSourceFreshPathTakesNoLock: with a fresh token cached, Token
// returns it at once even while ts.mu is held (by a refresh, a revocation,
// the watcher) and the caller's deadline is short.
func TestTokenSourceFreshPathTakesNoLock(t *testing.T) {
	is := newInternalIssuer(t)
	ts := newInternalSource(t, is, &internalClock{})
	first, err := ts.Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}

	type result struct {
		tok *Token
		err error
		d   time.Duration
	}
	done := make(chan result, 1)
	ts.mu.Lock()
	ctx, cancel := context.WithTimeout(context.Background(), internalFreshWait)
	defer cancel()
	go func() {
		start := time.Now()
		tok, err := ts.Token(ctx)
		done <- result{tok, err, time.Since(start)}
	}()
	var r result
	select {
	case r = <-done:
	case <-time.After(internalFreshWait + internalBlockedAfter):
		ts.mu.Unlock()
		<-done
		t.Fatal("Token on a fresh token waited for ts.mu")
	}
	ts.mu.Unlock()
	if r.err != nil || r.tok != first {
		t.Errorf("Token on a fresh token with ts.mu held = %v, %v (after %v); want the cached token at once", r.tok, r.err, r.d)
	}
	if r.d >= internalFreshWait {
		t.Errorf("Token on a fresh token took %v, past the caller's %v deadline", r.d, internalFreshWait)
	}
	if n := is.issues.Load(); n != 1 {
		t.Errorf("%d issues, want 1", n)
	}
}

// TestTokenSourceStaleWithinDefaultWatchInterval: the fresh path reads no
// clock, so only the watcher notices the early-refresh window; with its
// default interval the background refresh starts within about a second of
// the window opening (every other test shortens the interval).
func TestTokenSourceStaleWithinDefaultWatchInterval(t *testing.T) {
	is := newInternalIssuer(t)
	clk := &internalClock{}
	ts := newInternalSource(t, is, clk)
	ctx := context.Background()
	first, err := ts.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	clk.advance(internalLifetime - internalRefreshBefore + time.Minute) // just inside the window
	opened := time.Now()
	for is.issues.Load() < 2 {
		if time.Since(opened) > internalStaleBound {
			t.Fatalf("no background refresh %v after the early-refresh window opened; want one within the watcher's default interval (1s) and slack",
				internalStaleBound)
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Logf("background refresh started %v after the window opened", time.Since(opened))
	deadline := time.Now().Add(internalStaleBound)
	for {
		tok, err := ts.Token(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if tok != first {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the refreshed token was never served")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if n := is.issues.Load(); n != 2 {
		t.Errorf("%d issues, want 2: one background refresh", n)
	}
}
