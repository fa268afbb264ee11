package bench

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/linetoken/linetoken/oauth"
)

// BenchmarkCachedToken measures Token with a valid cached token, from
// GOMAXPROCS goroutines at once (b.RunParallel): ours (an atomic load, no
// lock, no clock read), golang.org/x/oauth2's ReuseTokenSource (a mutex and
// time.Now per call) and our adapter to x/oauth2 (ours plus a copy into a
// new oauth2.Token).
func BenchmarkCachedToken(b *testing.B) {
	u := newUpstream(b, 0)
	ctx := context.Background()
	ts := newOurSource(b, newOAuthClient(b, u, nil), nil)
	b.Cleanup(func() { _ = ts.Close() })
	if _, err := ts.Token(ctx); err != nil {
		b.Fatal(err)
	}
	x := oauth2.ReuseTokenSource(nil, newXFetcher(u))
	if _, err := x.Token(); err != nil {
		b.Fatal(err)
	}
	adapter := oauth.OAuth2TokenSource(ts)
	issued := u.issues.Load()

	run := func(b *testing.B, get func() (string, error)) {
		var failed atomic.Bool
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if tok, err := get(); err != nil || tok == "" {
					failed.Store(true)
				}
			}
		})
		b.StopTimer()
		if failed.Load() {
			b.Fatal("a call failed")
		}
		if n := u.issues.Load(); n != issued {
			b.Fatalf("%d upstream calls during the benchmark, want none", n-issued)
		}
	}
	b.Run("linetoken", func(b *testing.B) {
		run(b, func() (string, error) {
			t, err := ts.Token(ctx)
			if err != nil {
				return "", err
			}
			return t.AccessToken, nil
		})
	})
	b.Run("xoauth2", func(b *testing.B) {
		run(b, func() (string, error) {
			t, err := x.Token()
			if err != nil {
				return "", err
			}
			return t.AccessToken, nil
		})
	})
	b.Run("linetoken-oauth2adapter", func(b *testing.B) {
		run(b, func() (string, error) {
			t, err := adapter.Token()
			if err != nil {
				return "", err
			}
			return t.AccessToken, nil
		})
	})
}

// BenchmarkThousandCallers: each operation is one round of 1000 callers
// arriving together when the token must be refreshed, against an upstream
// that answers after 5ms. It reports the callers' wait distribution over
// all rounds (p50-wait-ns, p99-wait-ns, max-wait-ns: from each caller's
// call to its return), upstream-calls/op and stale-served/op (callers
// handed the old, still valid token). ns/op is suppressed: a round includes
// its setup (and, in refresh-window/linetoken, up to a second waiting for
// the watcher to start the refresh). The counts are asserted by
// TestThousandCallersAtExpiry.
func BenchmarkThousandCallers(b *testing.B) {
	// A new TokenSource over a store whose token has expired (a process
	// starting late, or any source once its token expired): all callers
	// share one refresh.
	b.Run("expired/linetoken", func(b *testing.B) {
		u := newUpstream(b, roundTrip)
		c := newOAuthClient(b, u, newClock(t0))
		store := oauth.NewMemoryStore()
		var r rounds
		for i := -1; i < b.N; i++ { // round -1 dials the connection and is not counted
			seed(b, store, oldToken(t0.Add(-time.Minute)))
			ts := newOurSource(b, c, store)
			before := u.issues.Load()
			br := newBurst(callers, ourCall(ts))
			br.release()
			r.add(b, br, u.issues.Load, before, "tok-old", i >= 0)
			_ = ts.Close()
		}
		r.report(b)
	})
	// x/oauth2 with an expired cached token.
	b.Run("expired/xoauth2", func(b *testing.B) {
		benchXRefresh(b, -time.Minute)
	})
	// Ours inside the early-refresh window: the watcher starts one
	// background refresh; 1000 callers arrive while it is in flight.
	b.Run("refresh-window/linetoken", func(b *testing.B) {
		u := newUpstream(b, roundTrip)
		clk := newClock(t0)
		ts := newOurSource(b, newOAuthClient(b, u, clk), oauth.NewMemoryStore())
		b.Cleanup(func() { _ = ts.Close() })
		cur, err := ts.Token(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		var r rounds
		for range b.N {
			u.drain()
			before := u.issues.Load()
			br := newBurst(callers, ourCall(ts))
			clk.Set(cur.Expiry.Add(-refreshBefore).Add(time.Minute))
			u.awaitIssue(b) // the one refresh is in flight (the upstream answers in 5ms)
			br.release()
			next := waitForNewToken(b, ts, cur.AccessToken)
			r.add(b, br, u.issues.Load, before, cur.AccessToken, true)
			if cur, err = ts.Token(context.Background()); err != nil || cur.AccessToken != next {
				b.Fatalf("token %v, %v; want %s", cur, err, next)
			}
		}
		r.report(b)
	})
	// x/oauth2 inside its only refresh window, expiryDelta (10s before
	// expiry): the token is still valid, yet every caller waits.
	b.Run("refresh-window/xoauth2", func(b *testing.B) {
		benchXRefresh(b, 5*time.Second)
	})
}

// benchXRefresh runs rounds of 1000 callers of a ReuseTokenSource whose
// cached token expires in left.
func benchXRefresh(b *testing.B, left time.Duration) {
	u := newUpstream(b, roundTrip)
	f := newXFetcher(u)
	var r rounds
	for i := -1; i < b.N; i++ { // round -1 dials the connection and is not counted
		src := oauth2.ReuseTokenSource(xSeed(time.Now().Add(left)), f)
		before := u.issues.Load()
		br := newBurst(callers, xCall(src))
		br.release()
		r.add(b, br, u.issues.Load, before, "tok-old", i >= 0)
	}
	r.report(b)
}

// BenchmarkFleet: each operation is 20 processes (TokenSources on separate
// oauth.Clients sharing one store; or 20 independent x/oauth2
// ReuseTokenSources) finding their token expired at once, one caller each.
// It reports upstream-calls/op and the callers' waits, like
// BenchmarkThousandCallers. Our followers wait for the leader's token in the
// store, woken by its StoreNotifier when the leader saves (polling, first
// after 20ms, is only the fallback). TestFleetRefresh asserts the
// counts, and that inside the early-refresh window the fleet issues one
// token too.
func BenchmarkFleet(b *testing.B) {
	b.Run("expired/linetoken", func(b *testing.B) {
		u := newUpstream(b, roundTrip)
		clk := newClock(t0)
		store := oauth.NewMemoryStore()
		clients := make([]*oauth.Client, fleetSize)
		for i := range clients {
			clients[i] = newOAuthClient(b, u, clk)
		}
		var r rounds
		for i := -1; i < b.N; i++ {
			seed(b, store, oldToken(t0.Add(-time.Minute)))
			fleet := make([]*oauth.TokenSource, fleetSize)
			for j := range fleet {
				fleet[j] = newOurSource(b, clients[j], store)
			}
			before := u.issues.Load()
			br := newBurst(fleetSize, func(j int) (string, error) { return ourCall(fleet[j])(j) })
			br.release()
			r.addFleet(b, br, u.issues.Load, before, 1, i >= 0)
			for _, ts := range fleet {
				_ = ts.Close()
			}
		}
		r.report(b)
	})
	b.Run("expired/xoauth2", func(b *testing.B) {
		u := newUpstream(b, roundTrip)
		fetchers := make([]xFetcher, fleetSize)
		for i := range fetchers {
			fetchers[i] = newXFetcher(u)
		}
		var r rounds
		for i := -1; i < b.N; i++ {
			fleet := make([]oauth2.TokenSource, fleetSize)
			for j := range fleet {
				fleet[j] = oauth2.ReuseTokenSource(xSeed(time.Now().Add(-time.Minute)), fetchers[j])
			}
			before := u.issues.Load()
			br := newBurst(fleetSize, func(j int) (string, error) { return xCall(fleet[j])(j) })
			br.release()
			r.addFleet(b, br, u.issues.Load, before, fleetSize, i >= 0)
		}
		r.report(b)
	})
}

// rounds accumulates the rounds of one benchmark.
type rounds struct {
	waits []time.Duration
	calls int64
	stale int64
	n     int
}

// add waits for a round of callers, checks it made exactly one upstream
// call and that every caller got a token, and counts it when keep is set.
// old is the token cached before the refresh.
func (r *rounds) add(b *testing.B, br *burst, issues func() int64, before int64, old string, keep bool) {
	b.Helper()
	if !br.wait(patience) {
		b.Fatalf("only %d of %d callers returned", br.returned.Load(), len(br.waits))
	}
	if err := br.err(); err != nil {
		b.Fatal(err)
	}
	calls := issues() - before
	if calls != 1 {
		b.Fatalf("%d upstream calls in a round, want 1", calls)
	}
	if keep {
		r.keep(br, calls, int64(br.count(old)))
	}
}

// addFleet is add for a fleet round, which makes want upstream calls.
func (r *rounds) addFleet(b *testing.B, br *burst, issues func() int64, before, want int64, keep bool) {
	b.Helper()
	if !br.wait(patience) {
		b.Fatalf("only %d of %d sources got a token", br.returned.Load(), len(br.waits))
	}
	if err := br.err(); err != nil {
		b.Fatal(err)
	}
	calls := issues() - before
	if calls != want {
		b.Fatalf("%d upstream calls in a round, want %d", calls, want)
	}
	if keep {
		r.keep(br, calls, int64(br.count("tok-old")))
	}
}

func (r *rounds) keep(br *burst, calls, stale int64) {
	r.waits = append(r.waits, br.waits...)
	r.calls += calls
	r.stale += stale
	r.n++
}

func (r *rounds) report(b *testing.B) {
	s := statsOf(r.waits)
	b.ReportMetric(0, "ns/op") // suppressed: a round includes its setup
	b.ReportMetric(float64(s.p50), "p50-wait-ns")
	b.ReportMetric(float64(s.p99), "p99-wait-ns")
	b.ReportMetric(float64(s.max), "max-wait-ns")
	b.ReportMetric(float64(r.calls)/float64(r.n), "upstream-calls/op")
	b.ReportMetric(float64(r.stale)/float64(r.n), "stale-served/op")
}
