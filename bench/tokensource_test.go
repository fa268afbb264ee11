package bench

import (
	"context"
	"slices"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/linetoken/linetoken/oauth"
)

// The counts behind the TokenSource comparison in ../BENCHMARKS.md: how
// many upstream calls a refresh costs and who waits for it. Times are
// measured by the benchmarks in tokensource_bench_test.go; these tests
// assert only what does not depend on the machine. The upstream's gate
// (upstream.hold) decides "waited": a caller waited for the refresh if and
// only if it could not return while the upstream was held.

// TestThousandCallersAtExpiry: 1000 callers arrive together when the token
// must be refreshed. Both libraries make exactly one upstream call. At
// expiry every caller waits for it, with both libraries (x/oauth2 also
// when its token is inside expiryDelta, the only refresh it does); inside
// our early-refresh window no caller waits: all get the old token while the
// upstream is still held.
func TestThousandCallersAtExpiry(t *testing.T) {
	// A long-running TokenSource whose cached token expires: the watcher
	// (which reads the clock once a second) marks it expired, then 1000
	// callers arrive.
	t.Run("expired/linetoken", func(t *testing.T) {
		t.Parallel()
		u, clk, ts, first := runningSource(t)
		release := u.hold(t)
		u.drain()
		base := u.issues.Load()
		clk.Set(first.Expiry.Add(time.Second))
		// The fresh path reads no clock: wait for the watcher's next tick.
		// Should a stalled machine delay it, every caller still gets the
		// old token at once with no upstream call; then try again.
		for attempt := 1; ; attempt++ {
			time.Sleep(1500 * time.Millisecond)
			b := newBurst(callers, ourCall(ts))
			b.release()
			select {
			case <-u.entered:
			case <-b.done:
				if u.issues.Load() == base && b.count(first.AccessToken) == callers && attempt < 3 {
					t.Logf("attempt %d: the watcher had not marked the token expired yet", attempt)
					continue
				}
				t.Fatalf("callers returned without waiting for the refresh: tokens %v, %d upstream calls",
					b.distinct(), u.issues.Load()-base)
			case <-time.After(patience):
				t.Fatal("no refresh reached the upstream")
			}
			expectAllWaited(t, u, b, release, base)
			return
		}
	})

	// What BenchmarkThousandCallers/expired/linetoken measures: a new
	// TokenSource (a process starting) over a store whose token has
	// expired. The same path: callers share one refresh.
	t.Run("expired-in-store/linetoken", func(t *testing.T) {
		t.Parallel()
		u := newUpstream(t, 0)
		store := oauth.NewMemoryStore()
		seed(t, store, oldToken(t0.Add(-time.Minute)))
		ts := newOurSource(t, newOAuthClient(t, u, newClock(t0)), store)
		t.Cleanup(func() { _ = ts.Close() })
		release := u.hold(t)
		b := newBurst(callers, ourCall(ts))
		b.release()
		u.awaitIssue(t)
		expectAllWaited(t, u, b, release, 0)
	})

	// Inside the early-refresh window: the watcher starts one background
	// refresh; 1000 callers arriving while it is in flight all get the
	// cached token without waiting for it.
	t.Run("refresh-window/linetoken", func(t *testing.T) {
		t.Parallel()
		u, clk, ts, first := runningSource(t)
		release := u.hold(t)
		u.drain()
		base := u.issues.Load()
		clk.Set(first.Expiry.Add(-refreshBefore).Add(time.Minute))
		u.awaitIssue(t) // the background refresh is in flight, held
		b := newBurst(callers, ourCall(ts))
		b.release()
		if !b.wait(patience) {
			t.Fatalf("callers waited for the refresh: only %d of %d returned while the upstream was held",
				b.returned.Load(), callers)
		}
		if err := b.err(); err != nil {
			t.Fatal(err)
		}
		if n := b.count(first.AccessToken); n != callers {
			t.Errorf("%d of %d callers got the cached token; tokens %v", n, callers, b.distinct())
		}
		t.Logf("waits while the refresh was in flight: %v", statsOf(b.waits))
		release()
		next := waitForNewToken(t, ts, first.AccessToken)
		if next != "tok-2" {
			t.Errorf("after the refresh: token %q, want tok-2", next)
		}
		if n := u.issues.Load() - base; n != 1 {
			t.Errorf("upstream calls = %d, want 1", n)
		}
	})

	// x/oauth2 refreshes only once the token is within expiryDelta (10s) of
	// its expiry, or past it; then every caller waits, queued on its mutex.
	for _, c := range []struct {
		name string
		left time.Duration
	}{{"expired/xoauth2", -time.Minute}, {"refresh-window/xoauth2", 5 * time.Second}} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			u := newUpstream(t, 0)
			src := oauth2.ReuseTokenSource(xSeed(time.Now().Add(c.left)), newXFetcher(u))
			release := u.hold(t)
			b := newBurst(callers, xCall(src))
			b.release()
			u.awaitIssue(t)
			expectAllWaited(t, u, b, release, 0)
		})
	}
}

// expectAllWaited checks a burst whose refresh has reached the held
// upstream: no caller returns while it is held; once released, every caller
// gets the one new token, after one upstream call in all (base is the count
// before the burst).
func expectAllWaited(t *testing.T, u *upstream, b *burst, release func(), base int64) {
	t.Helper()
	time.Sleep(50 * time.Millisecond) // time for callers to return, were they not waiting
	if n := b.returned.Load(); n != 0 {
		t.Errorf("%d callers returned while the upstream was held", n)
	}
	release()
	if !b.wait(patience) {
		t.Fatalf("only %d of %d callers returned after the refresh", b.returned.Load(), callers)
	}
	if err := b.err(); err != nil {
		t.Fatal(err)
	}
	if got := b.distinct(); !slices.Equal(got, []string{"tok-" + itoa(base+1)}) {
		t.Errorf("callers got tokens %v, want only tok-%d", got, base+1)
	}
	if n := u.issues.Load() - base; n != 1 {
		t.Errorf("upstream calls = %d, want 1", n)
	}
}

// waitForNewToken calls ts.Token until it returns a token other than old,
// and returns it.
func waitForNewToken(tb testing.TB, ts *oauth.TokenSource, old string) string {
	tb.Helper()
	deadline := time.Now().Add(patience)
	for {
		t, err := ts.Token(context.Background())
		if err != nil {
			tb.Fatal(err)
		}
		if t.AccessToken != old {
			return t.AccessToken
		}
		if time.Now().After(deadline) {
			tb.Fatalf("still the old token %v after %v", old, patience)
		}
		time.Sleep(200 * time.Microsecond)
	}
}

// TestFleetRefresh: 20 processes (TokenSources on separate oauth.Clients,
// sharing one store, as with Redis) refreshing together issue one token;
// 20 independent x/oauth2 ReuseTokenSources issue 20.
func TestFleetRefresh(t *testing.T) {
	ctx := context.Background()

	// All 20 hold a cached token when the shared clock enters the
	// early-refresh window: each watcher starts a background refresh
	// within a second; one issues under the store's lock, the others
	// find its token in the store.
	t.Run("refresh-window/linetoken", func(t *testing.T) {
		t.Parallel()
		u := newUpstream(t, roundTrip)
		clk := newClock(t0)
		store := oauth.NewMemoryStore()
		old := oldToken(t0.Add(30 * 24 * time.Hour))
		seed(t, store, old)
		fleet := make([]*oauth.TokenSource, fleetSize)
		for i := range fleet {
			fleet[i] = newOurSource(t, newOAuthClient(t, u, clk), store)
			t.Cleanup(func() { _ = fleet[i].Close() })
			if tok, err := fleet[i].Token(ctx); err != nil || tok.AccessToken != old.AccessToken {
				t.Fatalf("source %d: %v, %v", i, tok, err)
			}
		}
		if n := u.issues.Load(); n != 0 {
			t.Fatalf("%d upstream calls before the window, want 0", n)
		}
		clk.Set(old.Expiry.Add(-refreshBefore).Add(time.Minute))
		got := map[string]int{}
		for _, ts := range fleet {
			got[waitForNewToken(t, ts, old.AccessToken)]++
		}
		if n := u.issues.Load(); n != 1 {
			t.Errorf("upstream calls = %d, want 1", n)
		}
		if got["tok-1"] != fleetSize {
			t.Errorf("tokens across the fleet: %v, want tok-1 everywhere", got)
		}
	})

	// All 20 start (or find their token expired) at once: one issues, the
	// others wait for its token in the store.
	t.Run("expired/linetoken", func(t *testing.T) {
		t.Parallel()
		u := newUpstream(t, roundTrip)
		clk := newClock(t0)
		store := oauth.NewMemoryStore()
		seed(t, store, oldToken(t0.Add(-time.Minute)))
		fleet := make([]*oauth.TokenSource, fleetSize)
		for i := range fleet {
			fleet[i] = newOurSource(t, newOAuthClient(t, u, clk), store)
			t.Cleanup(func() { _ = fleet[i].Close() })
		}
		b := newBurst(fleetSize, func(i int) (string, error) { return ourCall(fleet[i])(i) })
		b.release()
		expectFleet(t, u, b, 1)
	})

	t.Run("expired/xoauth2", func(t *testing.T) {
		t.Parallel()
		u := newUpstream(t, roundTrip)
		fleet := make([]oauth2.TokenSource, fleetSize)
		for i := range fleet {
			fleet[i] = oauth2.ReuseTokenSource(xSeed(time.Now().Add(-time.Minute)), newXFetcher(u))
		}
		b := newBurst(fleetSize, func(i int) (string, error) { return xCall(fleet[i])(i) })
		b.release()
		expectFleet(t, u, b, fleetSize)
	})
}

// expectFleet checks that every member got a new token, and that the
// fleet made want upstream calls (and so holds want distinct tokens).
func expectFleet(t *testing.T, u *upstream, b *burst, want int) {
	t.Helper()
	if !b.wait(patience) {
		t.Fatalf("only %d of %d sources got a token", b.returned.Load(), fleetSize)
	}
	if err := b.err(); err != nil {
		t.Fatal(err)
	}
	if n := u.issues.Load(); n != int64(want) {
		t.Errorf("upstream calls = %d, want %d", n, want)
	}
	toks := b.distinct()
	if len(toks) != want || slices.Contains(toks, "tok-old") {
		t.Errorf("the fleet holds tokens %v, want %d new ones", toks, want)
	}
}

// TestCachedTokenAllocs: our fresh path allocates nothing (allocations are
// exact, unlike times, so this one is a test).
func TestCachedTokenAllocs(t *testing.T) {
	u := newUpstream(t, 0)
	ts := newOurSource(t, newOAuthClient(t, u, nil), nil)
	t.Cleanup(func() { _ = ts.Close() })
	ctx := context.Background()
	if _, err := ts.Token(ctx); err != nil {
		t.Fatal(err)
	}
	if a := testing.AllocsPerRun(1000, func() { _, _ = ts.Token(ctx) }); a != 0 {
		t.Errorf("TokenSource.Token with a fresh cached token: %v allocs/op, want 0", a)
	}
}

// runningSource is a TokenSource over its own upstream and clock that has
// issued its first token, as a long-running process has.
func runningSource(t *testing.T) (*upstream, *clock, *oauth.TokenSource, *oauth.Token) {
	t.Helper()
	u := newUpstream(t, 0)
	clk := newClock(t0)
	ts := newOurSource(t, newOAuthClient(t, u, clk), oauth.NewMemoryStore())
	t.Cleanup(func() { _ = ts.Close() })
	first, err := ts.Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return u, clk, ts, first
}
