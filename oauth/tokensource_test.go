package oauth_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/linetoken/linetoken/internal/testkit"
	"github.com/linetoken/linetoken/oauth"
	"github.com/linetoken/linetoken/oauth/oauthtest"
)

// fakeClock is a settable clock shared by a client and its test.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{now: fixedNow} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// issuer is a stand-in for LINE's token endpoints that counts what it
// does, issues unique tokens, and can be told to fail or stall.
type issuer struct {
	*httptest.Server
	issues, revokes atomic.Int32
	expiresIn       atomic.Int64 // seconds; 0 = the kind's default
	fail            atomic.Int32 // status to answer issue requests with; 0 = succeed
	stall           atomic.Pointer[chan struct{}]
	mu              sync.Mutex
	revoked         []string
}

func newIssuer(t *testing.T) *issuer {
	t.Helper()
	is := &issuer{}
	is.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		if ch := is.stall.Load(); ch != nil {
			select {
			case <-*ch:
			case <-r.Context().Done():
				return
			}
		}
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/oauth2/v2.1/token", "/v2/oauth/accessToken", "/oauth2/v3/token":
			if st := is.fail.Load(); st != 0 {
				w.WriteHeader(int(st))
				fmt.Fprint(w, `{"message":"failing on purpose"}`)
				return
			}
			n := is.issues.Add(1)
			exp := is.expiresIn.Load()
			if exp == 0 {
				exp = map[string]int64{"/oauth2/v2.1/token": 2592000, "/v2/oauth/accessToken": 2592000, "/oauth2/v3/token": 900}[r.URL.Path]
			}
			fmt.Fprintf(w, `{"access_token":"issued-token-%d","token_type":"Bearer","expires_in":%d,"key_id":"kid-%d"}`, n, exp, n)
		case "/oauth2/v2.1/revoke", "/v2/oauth/revoke":
			is.revokes.Add(1)
			is.mu.Lock()
			is.revoked = append(is.revoked, r.PostForm.Get("access_token"))
			is.mu.Unlock()
		default:
			w.WriteHeader(404)
		}
	}))
	t.Cleanup(is.Close)
	return is
}

func (is *issuer) revokedTokens() []string {
	is.mu.Lock()
	defer is.mu.Unlock()
	return append([]string(nil), is.revoked...)
}

func clientFor(t testing.TB, base string, clk *fakeClock) *oauth.Client {
	t.Helper()
	c, err := oauth.NewClient(oauth.Config{ChannelID: testChannelID, ChannelSecret: testSecret, Key: mustKey(t),
		BaseURL: base, Clock: clk.Now, Retry: oauth.RetryPolicy{MaxAttempts: 1}})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func newSource(t *testing.T, c *oauth.Client, opts oauth.TokenSourceOptions) *oauth.TokenSource {
	t.Helper()
	ts, err := oauth.NewTokenSource(c, opts)
	if err != nil {
		t.Fatal(err)
	}
	ts.SetWatchInterval(5 * time.Millisecond)
	t.Cleanup(func() { _ = ts.Close() })
	return ts
}

// eventually waits for cond (testkit.Eventually, up to eventuallyLimit).
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testkit.Eventually(t, eventuallyLimit, what, cond)
}

// eventuallyLimit bounds eventually's waits: generous, for a 2-core
// machine running several packages' tests under -race at once (5 s once
// ran out there while a background revocation retry was still due).
const eventuallyLimit = 30 * time.Second

func TestTokenSourceFreshPathIsShared(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	is := newIssuer(t)
	clk := newFakeClock()
	ts := newSource(t, clientFor(t, is.URL, clk), oauth.TokenSourceOptions{Kind: oauth.KindShortLived})
	ctx := context.Background()

	var wg sync.WaitGroup
	toks := make([]*oauth.Token, 200)
	for i := range toks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tok, err := ts.Token(ctx)
			if err != nil {
				t.Error(err)
			}
			toks[i] = tok
		}()
	}
	wg.Wait()
	if n := is.issues.Load(); n != 1 {
		t.Fatalf("200 concurrent first callers made %d issue calls, want 1", n)
	}
	for _, tok := range toks {
		if tok != toks[0] {
			t.Fatal("callers got different tokens")
		}
	}
	if allocs := testing.AllocsPerRun(1000, func() { _, _ = ts.Token(ctx) }); allocs != 0 {
		t.Errorf("fresh Token allocates %v times per call", allocs)
	}
	if err := ts.Close(); err != nil {
		t.Fatal(err)
	}
	is.Close()
	goleak.VerifyNone(t, ignore) // the watcher and refreshes are gone
}

func TestTokenSourceStaleRefreshesOnceInBackground(t *testing.T) {
	is := newIssuer(t)
	clk := newFakeClock()
	is.expiresIn.Store(3600)
	ts := newSource(t, clientFor(t, is.URL, clk), oauth.TokenSourceOptions{Kind: oauth.KindV21, Lifetime: time.Hour, RefreshBefore: 10 * time.Minute})
	ctx := context.Background()
	first, err := ts.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Inside the window: no caller waits, even with the issuer stalled.
	stall := make(chan struct{})
	is.stall.Store(&stall)
	clk.Advance(51 * time.Minute)
	time.Sleep(30 * time.Millisecond) // let the watcher see the new time
	for i := 0; i < 100; i++ {
		cctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		tok, err := ts.Token(cctx)
		cancel()
		if err != nil || tok != first {
			t.Fatalf("stale Token = %v, %v; want the cached token at once", tok, err)
		}
	}
	close(stall)
	eventually(t, "the background refresh", func() bool {
		tok, _ := ts.Token(ctx)
		return tok != first
	})
	if n := is.issues.Load(); n != 2 {
		t.Errorf("issue calls = %d, want 2 (the first and ONE background refresh)", n)
	}
}

func TestTokenSourceExpiredCallersShareOneRefresh(t *testing.T) {
	is := newIssuer(t)
	clk := newFakeClock()
	ts := newSource(t, clientFor(t, is.URL, clk), oauth.TokenSourceOptions{Kind: oauth.KindStateless})
	ctx := context.Background()
	if _, err := ts.Token(ctx); err != nil {
		t.Fatal(err)
	}
	stall := make(chan struct{})
	is.stall.Store(&stall)
	clk.Advance(20 * time.Minute) // past the 15-minute lifetime
	eventually(t, "expiry", func() bool {
		cctx, cancel := context.WithTimeout(ctx, time.Millisecond)
		defer cancel()
		_, err := ts.Token(cctx)
		return errors.Is(err, context.DeadlineExceeded)
	})
	// One impatient caller gives up on its own deadline; the others wait.
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if _, err := ts.Token(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("impatient caller: %v, want DeadlineExceeded", err)
	}
	var wg sync.WaitGroup
	var got atomic.Int32
	for i := 0; i < 300; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if tok, err := ts.Token(ctx); err == nil && tok.AccessToken == "issued-token-2" {
				got.Add(1)
			}
		}()
	}
	time.Sleep(20 * time.Millisecond)
	close(stall)
	wg.Wait()
	if got.Load() != 300 || is.issues.Load() != 2 {
		t.Errorf("%d callers got the new token with %d issue calls; want 300 with 2", got.Load(), is.issues.Load())
	}
}

func TestTokenSourceBackgroundFailureKeepsServing(t *testing.T) {
	is := newIssuer(t)
	clk := newFakeClock()
	var logs syncBuffer
	ts := newSource(t, clientFor(t, is.URL, clk), oauth.TokenSourceOptions{Kind: oauth.KindShortLived,
		RefreshBefore: 24 * time.Hour, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	ctx := context.Background()
	first, err := ts.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	is.fail.Store(500)
	clk.Advance(29*24*time.Hour + time.Hour) // inside the window
	eventually(t, "a logged failure", func() bool { return strings.Contains(logs.String(), "token refresh failed") })
	tok, err := ts.Token(ctx)
	if err != nil || tok != first {
		t.Fatalf("Token during failing refresh = %v, %v; want the still-valid token", tok, err)
	}
	// Backoff: no hammering while failing (the first retry waits >= 500ms
	// on the source's clock, which stands still here).
	before := strings.Count(logs.String(), "token refresh failed")
	time.Sleep(100 * time.Millisecond)
	if after := strings.Count(logs.String(), "token refresh failed"); after != before {
		t.Errorf("refresh retried %d times within 100ms; want backoff", after-before)
	}
	// Truly expired: the error reaches callers.
	clk.Advance(24 * time.Hour)
	eventually(t, "expired error", func() bool { _, err := ts.Token(ctx); return err != nil })
	_, err = ts.Token(ctx)
	var ae *oauth.APIError
	if !errors.As(err, &ae) || ae.StatusCode != 500 {
		t.Errorf("error = %v, want the APIError of the failed refresh", err)
	}
	if strings.Contains(logs.String(), testSecret) || strings.Contains(logs.String(), "issued-token-") {
		t.Errorf("log leaks a secret:\n%s", logs.String())
	}
	// LINE recovers: the next attempt (after backoff) succeeds.
	is.fail.Store(0)
	clk.Advance(10 * time.Minute)
	eventually(t, "recovery", func() bool { tok, err := ts.Token(ctx); return err == nil && tok != first })
}

func TestTokenSourceInvalidate(t *testing.T) {
	is := newIssuer(t)
	clk := newFakeClock()
	ts := newSource(t, clientFor(t, is.URL, clk), oauth.TokenSourceOptions{Kind: oauth.KindV21, RevokeGrace: time.Minute})
	ctx := context.Background()
	first, _ := ts.Token(ctx)
	ts.Invalidate("not-the-current-token")
	if tok, _ := ts.Token(ctx); tok != first || is.issues.Load() != 1 {
		t.Fatal("invalidating another token must not refresh")
	}
	var wg sync.WaitGroup
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ts.Invalidate(first.AccessToken)
			if tok, err := ts.Token(ctx); err != nil || tok.AccessToken == first.AccessToken {
				t.Errorf("after Invalidate: %v, %v", tok, err)
			}
			ts.Invalidate(first.AccessToken) // late: no effect
		}()
	}
	wg.Wait()
	if n := is.issues.Load(); n != 2 {
		t.Errorf("50 invalidations caused %d issue calls, want 2 in all", n)
	}
	// The refused token is revoked at once, not after the grace period.
	eventually(t, "revocation of the invalidated token", func() bool { return is.revokes.Load() == 1 })
	if r := is.revokedTokens(); r[0] != first.AccessToken {
		t.Errorf("revoked %v, want %s", r, first.AccessToken)
	}
}

func TestTokenSourceRotationRevokesAfterGrace(t *testing.T) {
	is := newIssuer(t)
	clk := newFakeClock()
	store := oauth.NewMemoryStore()
	is.expiresIn.Store(3600)
	ts := newSource(t, clientFor(t, is.URL, clk), oauth.TokenSourceOptions{Kind: oauth.KindV21, Lifetime: time.Hour,
		RefreshBefore: 10 * time.Minute, RevokeGrace: 2 * time.Minute, Store: store})
	ctx := context.Background()
	first, _ := ts.Token(ctx)
	clk.Advance(55 * time.Minute)
	eventually(t, "rotation", func() bool { tok, _ := ts.Token(ctx); return tok != first })
	e, err := store.Load(ctx, oauth.StoreKey(testChannelID, oauth.KindV21))
	if err != nil || len(e.Pending) != 1 || e.Pending[0].Token.AccessToken != first.AccessToken {
		t.Fatalf("store after rotation = %v, %v; want the replaced token pending", e, err)
	}
	time.Sleep(30 * time.Millisecond)
	if is.revokes.Load() != 0 {
		t.Fatal("revoked before the grace period passed")
	}
	clk.Advance(2 * time.Minute)
	eventually(t, "revocation after grace", func() bool { return is.revokes.Load() == 1 })
	eventually(t, "pending cleared", func() bool {
		e, _ := store.Load(ctx, oauth.StoreKey(testChannelID, oauth.KindV21))
		return e != nil && len(e.Pending) == 0
	})
	// At most two active tokens at any time: current + one in grace.
	if got := is.issues.Load() - is.revokes.Load(); got != 1 {
		t.Errorf("active tokens = %d, want 1", got)
	}
}

func TestTokenSourceNextProcessFinishesPendingRevocation(t *testing.T) {
	is := newIssuer(t)
	clk := newFakeClock()
	store := oauth.NewMemoryStore()
	key := oauth.StoreKey(testChannelID, oauth.KindV21)
	ctx := context.Background()
	// A previous process issued "orphan" and crashed before revoking it.
	fence, _ := store.Lock(ctx, key, time.Minute)
	cur := &oauth.Token{AccessToken: "current-token", TokenType: "Bearer", Expiry: clk.Now().Add(20 * 24 * time.Hour)}
	if err := store.Save(ctx, key, &oauth.StoreEntry{Token: cur, Pending: []oauth.PendingRevocation{
		{Token: oauth.Token{AccessToken: "orphan", Expiry: clk.Now().Add(time.Hour)}, RevokeAfter: clk.Now().Add(-time.Minute)},
		{Token: oauth.Token{AccessToken: "long-gone", Expiry: clk.Now().Add(-time.Hour)}, RevokeAfter: clk.Now().Add(-2 * time.Hour)},
	}}, fence); err != nil {
		t.Fatal(err)
	}
	_ = store.Unlock(ctx, key, fence)

	ts := newSource(t, clientFor(t, is.URL, clk), oauth.TokenSourceOptions{Store: store})
	tok, err := ts.Token(ctx)
	if err != nil || tok.AccessToken != "current-token" || is.issues.Load() != 0 {
		t.Fatalf("restart: %v, %v, %d issues; want the stored token without issuing", tok, err, is.issues.Load())
	}
	eventually(t, "the orphan's revocation", func() bool { return is.revokes.Load() == 1 })
	if r := is.revokedTokens(); len(r) != 1 || r[0] != "orphan" {
		t.Errorf("revoked %v, want only the orphan (the other has expired)", r)
	}
}

func TestTokenSourcesShareOneStore(t *testing.T) {
	is := newIssuer(t)
	clk := newFakeClock()
	store := oauth.NewMemoryStore()
	ctx := context.Background()
	const n = 20
	var sources []*oauth.TokenSource
	for i := 0; i < n; i++ {
		sources = append(sources, newSource(t, clientFor(t, is.URL, clk), oauth.TokenSourceOptions{Kind: oauth.KindShortLived, Store: store}))
	}
	var wg sync.WaitGroup
	for _, ts := range sources {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := ts.Token(ctx); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if got := is.issues.Load(); got != 1 {
		t.Fatalf("%d sources on one store issued %d tokens, want 1", n, got)
	}
	// Together into the early-refresh window: one issue between them.
	clk.Advance(29*24*time.Hour + time.Hour)
	eventually(t, "all sources on the new token", func() bool {
		for _, ts := range sources {
			if tok, _ := ts.Token(ctx); tok.AccessToken != "issued-token-2" {
				return false
			}
		}
		return true
	})
	if got := is.issues.Load(); got != 2 {
		t.Errorf("refreshing together issued %d tokens in all, want 2", got)
	}
}

func TestTokenSourceCloseRevokesPrivateTokens(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	is := newIssuer(t)
	clk := newFakeClock()
	ts, err := oauth.NewTokenSource(clientFor(t, is.URL, clk), oauth.TokenSourceOptions{Kind: oauth.KindV21})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := ts.Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := ts.Close(); err != nil {
		t.Fatal(err)
	}
	if r := is.revokedTokens(); len(r) != 1 || r[0] != tok.AccessToken {
		t.Errorf("Close revoked %v, want the private current token", r)
	}
	if err := ts.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	is.Close()
	goleak.VerifyNone(t, ignore)
	if tok, err := ts.Token(context.Background()); !errors.Is(err, oauth.ErrClosed) {
		t.Errorf("Token after Close = %v, %v; want ErrClosed", tok, err)
	}
}

func TestNewTokenSourceRefusesMissingCredentials(t *testing.T) {
	ctx := context.Background()
	_ = ctx
	key := mustKey(t)
	cases := []struct {
		cfg  oauth.Config
		opts oauth.TokenSourceOptions
		want string
	}{
		{oauth.Config{ChannelID: "1", ChannelSecret: "s"}, oauth.TokenSourceOptions{}, "Config.Key"},
		{oauth.Config{ChannelID: "1", Key: key}, oauth.TokenSourceOptions{}, "ChannelSecret"},
		{oauth.Config{ChannelID: "1"}, oauth.TokenSourceOptions{Kind: oauth.KindShortLived}, "ChannelSecret"},
		{oauth.Config{}, oauth.TokenSourceOptions{Kind: oauth.KindStateless}, "Config.Key"},
		{oauth.Config{ChannelID: "1", ChannelSecret: "s"}, oauth.TokenSourceOptions{Kind: oauth.KindShortLived, RefreshBefore: 31 * 24 * time.Hour}, "RefreshBefore"},
		{oauth.Config{ChannelID: "1", ChannelSecret: "s", Key: key}, oauth.TokenSourceOptions{Lifetime: 40 * 24 * time.Hour}, "Lifetime"},
		{oauth.Config{ChannelID: "1", ChannelSecret: "s"}, oauth.TokenSourceOptions{Kind: 9}, "Kind"},
	}
	for _, tc := range cases {
		c, err := oauth.NewClient(tc.cfg)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := oauth.NewTokenSource(c, tc.opts); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v %+v: error = %v, want one naming %s", tc.cfg, tc.opts, err, tc.want)
		}
	}
}

// syncBuffer is a bytes.Buffer safe for a logger and a test at once.
type syncBuffer = testkit.SyncBuffer

var _ io.Writer = (*syncBuffer)(nil)

// nextAttemptIn is the wait the last "token refresh failed" line in logs
// announces.
func nextAttemptIn(t *testing.T, logs string) time.Duration {
	t.Helper()
	m := regexp.MustCompile(`next_attempt_in=(\S+)`).FindAllStringSubmatch(logs, -1)
	if len(m) == 0 {
		t.Fatalf("no next_attempt_in in the log:\n%s", logs)
	}
	d, err := time.ParseDuration(m[len(m)-1][1])
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestTokenSourceRefreshBackoffJitter: the wait after a failed refresh is
// the client's RetryPolicy backoff (for a TokenSource: a floor of 1s and a
// cap of 5 minutes) with jitter. Pinned draws give the two ends of each
// range; sources drawing from their own seeded sources wait different
// times inside it, so a fleet does not retry LINE in lockstep.
func TestTokenSourceRefreshBackoffJitter(t *testing.T) {
	is := newIssuer(t)
	is.fail.Store(500)
	clk := newFakeClock()
	ctx := context.Background()
	waits := func(t *testing.T, jitter func(time.Duration) time.Duration, failures int) []time.Duration {
		t.Helper()
		var logs syncBuffer
		ts := newSource(t, clientFor(t, is.URL, clk), oauth.TokenSourceOptions{Kind: oauth.KindShortLived,
			Logger: slog.New(slog.NewTextHandler(&logs, nil))})
		ts.SetJitter(jitter)
		var out []time.Duration
		for range failures {
			if _, err := ts.Token(ctx); err == nil {
				t.Fatal("Token succeeded against a failing issuer")
			}
			w := nextAttemptIn(t, logs.String())
			out = append(out, w)
			clk.Advance(w) // the wait is over: the next Token tries again
		}
		return out
	}
	lowest := waits(t, func(time.Duration) time.Duration { return 0 }, 4)
	if want := []time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second, 4 * time.Second}; !slices.Equal(lowest, want) {
		t.Errorf("waits with the lowest draws = %v, want %v", lowest, want)
	}
	highest := waits(t, func(n time.Duration) time.Duration { return n - 1 }, 10)
	if want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second,
		32 * time.Second, 64 * time.Second, 128 * time.Second, 256 * time.Second, 5 * time.Minute}; !slices.Equal(highest, want) {
		t.Errorf("waits with the highest draws = %v, want %v (capped at 5m)", highest, want)
	}
	fleet := map[time.Duration]bool{}
	for i := range 8 {
		rng := rand.New(rand.NewPCG(uint64(i), 42))
		w := waits(t, func(n time.Duration) time.Duration { return time.Duration(rng.Int64N(int64(n))) }, 1)[0]
		if w < 500*time.Millisecond || w > time.Second {
			t.Errorf("source %d waits %v after its first failure, want within [500ms, 1s]", i, w)
		}
		fleet[w] = true
	}
	if len(fleet) < 8 {
		t.Errorf("8 sources failing together wait only %d distinct times: %v; want jitter", len(fleet), fleet)
	}
	if n := is.issues.Load(); n != 0 {
		t.Errorf("%d tokens issued by a failing issuer", n)
	}
}

// TestTokenSourceRefreshHonoursRetryAfter: LINE answers an issue with 429
// and Retry-After: 120. No request goes out again before 120s have passed
// (callers get the 429 meanwhile), though the backoff alone would allow one
// after a second; just after, one request succeeds.
func TestTokenSourceRefreshHonoursRetryAfter(t *testing.T) {
	clk := newFakeClock()
	var limited atomic.Bool
	limited.Store(true)
	srv := newTestServer(t, func(w http.ResponseWriter, r *http.Request) {
		if limited.Load() {
			w.Header().Set("Retry-After", "120")
			jsonAnswer(429, `{"message":"Too many requests"}`)(w, r)
			return
		}
		jsonAnswer(200, issueShortBody)(w, r)
	})
	var logs syncBuffer
	ts := newSource(t, clientFor(t, srv.URL, clk), oauth.TokenSourceOptions{Kind: oauth.KindShortLived,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	ctx := context.Background()
	if _, err := ts.Token(ctx); !errors.Is(err, oauth.ErrRateLimited) {
		t.Fatalf("Token = %v, want the 429", err)
	}
	if w := nextAttemptIn(t, logs.String()); w != 2*time.Minute {
		t.Errorf("next attempt in %v, want the Retry-After's 2m0s", w)
	}
	for _, step := range []time.Duration{time.Second, 2 * time.Second, 57 * time.Second, time.Minute - time.Millisecond} {
		clk.Advance(step)
		var ae *oauth.APIError
		if _, err := ts.Token(ctx); !errors.As(err, &ae) || ae.RetryAfter != 2*time.Minute {
			t.Fatalf("Token inside the Retry-After = %v, want the 429", err)
		}
		if n := srv.count(); n != 1 {
			t.Fatalf("%d requests before the Retry-After passed, want 1", n)
		}
	}
	limited.Store(false)
	clk.Advance(time.Millisecond)
	if _, err := ts.Token(ctx); err != nil || srv.count() != 2 {
		t.Errorf("Token once the Retry-After passed = %v after %d requests, want success on the second", err, srv.count())
	}
}

// TestTokenSourceRetryAfterCapped: a Retry-After of a day (LINE documents
// none: a proxy's, a maintenance page's) on an issue is honoured for 5
// minutes only, so callers of a source without a valid token are not
// refused for a day once LINE is back.
func TestTokenSourceRetryAfterCapped(t *testing.T) {
	clk := newFakeClock()
	var down atomic.Bool
	down.Store(true)
	srv := newTestServer(t, func(w http.ResponseWriter, r *http.Request) {
		if down.Load() {
			w.Header().Set("Retry-After", "86400")
			jsonAnswer(503, `{"message":"Service Unavailable"}`)(w, r)
			return
		}
		jsonAnswer(200, issueShortBody)(w, r)
	})
	ts := newSource(t, clientFor(t, srv.URL, clk), oauth.TokenSourceOptions{Kind: oauth.KindShortLived})
	ctx := context.Background()
	var ae *oauth.APIError
	if _, err := ts.Token(ctx); !errors.As(err, &ae) || ae.RetryAfter != 24*time.Hour {
		t.Fatalf("Token = %v, want the 503 with its day-long Retry-After", err)
	}
	down.Store(false)
	clk.Advance(5*time.Minute - time.Millisecond)
	if _, err := ts.Token(ctx); err == nil || srv.count() != 1 {
		t.Fatalf("Token before 5 minutes = %v after %d requests, want the 503 again and no request", err, srv.count())
	}
	clk.Advance(time.Millisecond)
	if _, err := ts.Token(ctx); err != nil || srv.count() != 2 {
		t.Errorf("Token after 5 minutes = %v after %d requests, want success on the second", err, srv.count())
	}
}

// TestTokenSourceRevokeRetryHonoursRetryAfter: a due revocation that LINE
// answers with 429 and Retry-After: 120 is tried again after 120s, not
// after the usual 30s; a Retry-After of a day is held to 5 minutes.
func TestTokenSourceRevokeRetryHonoursRetryAfter(t *testing.T) {
	for _, tc := range []struct {
		retryAfter string
		wait       time.Duration
	}{{"120", 2 * time.Minute}, {"86400", 5 * time.Minute}} {
		t.Run(tc.retryAfter, func(t *testing.T) { testRevokeRetryAfter(t, tc.retryAfter, tc.wait) })
	}
}

func testRevokeRetryAfter(t *testing.T, retryAfter string, wait time.Duration) {
	clk := newFakeClock()
	var issued, revokes atomic.Int32
	srv := newTestServer(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v2/oauth/accessToken":
			n := issued.Add(1)
			jsonAnswer(200, fmt.Sprintf(`{"access_token":"short-token-%d","expires_in":3600,"token_type":"Bearer"}`, n))(w, r)
		case "/v2/oauth/revoke":
			revokes.Add(1)
			w.Header().Set("Retry-After", retryAfter)
			jsonAnswer(429, `{"message":"Too many requests"}`)(w, r)
		default:
			jsonAnswer(404, `{"message":"Not found"}`)(w, r)
		}
	})
	var logs testkit.SyncBuffer
	ts := newSource(t, clientFor(t, srv.URL, clk), oauth.TokenSourceOptions{Kind: oauth.KindShortLived,
		RefreshBefore: 10 * time.Minute, RevokeGrace: time.Minute, Store: oauth.NewMemoryStore(),
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	ctx := context.Background()
	first, err := ts.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	clk.Advance(51 * time.Minute) // into the window: a new token, the first pending revocation
	eventually(t, "rotation", func() bool { tok, _ := ts.Token(ctx); return tok != first })
	clk.Advance(time.Minute) // the grace is over
	eventually(t, "the first revocation", func() bool { return revokes.Load() == 1 })
	// The clock moves only once the failure is fully handled: the source
	// schedules its retry from the clock's time then, so a jump while the
	// 429 was still being handled would move the retry past wait.
	eventually(t, "the failed revocation handled", func() bool {
		return strings.Contains(logs.String(), "due revocations failed; will retry")
	})
	clk.Advance(wait - time.Millisecond)
	time.Sleep(30 * time.Millisecond) // six watcher ticks
	if n := revokes.Load(); n != 1 {
		t.Fatalf("%d revocation requests before %v passed, want 1", n, wait)
	}
	clk.Advance(time.Millisecond)
	eventually(t, "the revocation retried after the Retry-After", func() bool { return revokes.Load() == 2 })
}

// TestTokenSourceFallsBackToConfigLogger: without TokenSourceOptions.Logger,
// a source logs through the client's Config.Logger, as Config documents;
// an explicit TokenSourceOptions.Logger takes precedence.
func TestTokenSourceFallsBackToConfigLogger(t *testing.T) {
	is := newIssuer(t)
	is.fail.Store(500)
	var cfgLogs, optLogs syncBuffer
	c, err := oauth.NewClient(oauth.Config{ChannelID: testChannelID, ChannelSecret: testSecret, BaseURL: is.URL,
		Clock: newFakeClock().Now, Retry: oauth.RetryPolicy{MaxAttempts: 1}, Logger: slog.New(slog.NewTextHandler(&cfgLogs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	ts := newSource(t, c, oauth.TokenSourceOptions{Kind: oauth.KindShortLived})
	if _, err := ts.Token(ctx); err == nil {
		t.Fatal("Token succeeded against a failing issuer")
	}
	if n := strings.Count(cfgLogs.String(), "oauth: token refresh failed"); n != 1 {
		t.Errorf("Config.Logger got %d refresh failures, want 1:\n%s", n, cfgLogs.String())
	}
	own := newSource(t, c, oauth.TokenSourceOptions{Kind: oauth.KindShortLived, Logger: slog.New(slog.NewTextHandler(&optLogs, nil))})
	if _, err := own.Token(ctx); err == nil {
		t.Fatal("Token succeeded against a failing issuer")
	}
	if !strings.Contains(optLogs.String(), "oauth: token refresh failed") {
		t.Errorf("TokenSourceOptions.Logger did not get the failure:\n%s", optLogs.String())
	}
	if n := strings.Count(cfgLogs.String(), "oauth: token refresh failed"); n != 1 {
		t.Errorf("Config.Logger got %d refresh failures, want still 1 (the second source has its own logger)", n)
	}
}

// TestTokenSourceShortLivedAnswerNotReissued: LINE answers expires_in of an
// hour where the source expects 30 days (early-refresh window 24h). The
// token is used for half its life, then replaced once; it is not marked
// stale at once and issued again at every watcher tick.
func TestTokenSourceShortLivedAnswerNotReissued(t *testing.T) {
	is := newIssuer(t)
	is.expiresIn.Store(3600)
	clk := newFakeClock()
	ts := newSource(t, clientFor(t, is.URL, clk), oauth.TokenSourceOptions{Kind: oauth.KindV21})
	ctx := context.Background()
	first, err := ts.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond) // ten watcher ticks
	clk.Advance(29 * time.Minute)     // still in the first half of its life
	time.Sleep(30 * time.Millisecond)
	if tok, err := ts.Token(ctx); err != nil || tok != first {
		t.Errorf("Token = %v, %v; want the first token", tok, err)
	}
	if n := is.issues.Load(); n != 1 {
		t.Fatalf("%d issues within the first half of a 1h token's life, want 1", n)
	}
	clk.Advance(time.Minute + time.Second) // past half its life
	eventually(t, "the replacement", func() bool { tok, _ := ts.Token(ctx); return tok != first })
	time.Sleep(50 * time.Millisecond)
	if n := is.issues.Load(); n != 2 {
		t.Errorf("%d issues, want 2: one replacement at half the token's life", n)
	}
}

// lockTimingStore notes when its last lock was granted.
type lockTimingStore struct {
	*oauth.MemoryStore
	mu     sync.Mutex
	locked time.Time
}

func (s *lockTimingStore) Lock(ctx context.Context, key string, ttl time.Duration) (int64, error) {
	f, err := s.MemoryStore.Lock(ctx, key, ttl)
	if f > 0 {
		s.mu.Lock()
		s.locked = time.Now()
		s.mu.Unlock()
	}
	return f, err
}

func (s *lockTimingStore) lockedAt() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.locked
}

// TestTokenSourceIssueEndsBeforeLockExpires: with issue retries opted in
// (Config.Retry.RetryIssue), LINE hangs. The issue is cut off while the
// store lock (its TTL shortened to 2s) still holds, leaving a quarter of the
// TTL for the Save, so that no second holder can take over while this one
// still issues; the refresh fails with the cut-off, not the caller's
// deadline.
func TestTokenSourceIssueEndsBeforeLockExpires(t *testing.T) {
	const ttl = 2 * time.Second
	cancelled := make(chan time.Time, 4)
	srv := newTestServer(t, func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done() // LINE hangs; the client gives up
		cancelled <- time.Now()
	})
	c, err := oauth.NewClient(oauth.Config{ChannelID: testChannelID, ChannelSecret: testSecret, BaseURL: srv.URL,
		Clock: newFakeClock().Now, Retry: oauth.RetryPolicy{RetryIssue: true, MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	store := &lockTimingStore{MemoryStore: oauth.NewMemoryStore()}
	ts := newSource(t, c, oauth.TokenSourceOptions{Kind: oauth.KindShortLived, Store: store})
	ts.SetLockTTL(ttl)
	cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = ts.Token(cctx)
	if cctx.Err() != nil || !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "lock") {
		t.Fatalf("Token = %v (caller's context: %v); want the issue cut off for the store lock", err, cctx.Err())
	}
	var at time.Time
	select {
	case at = <-cancelled:
	case <-time.After(5 * time.Second):
		t.Fatal("the issue request was never cancelled")
	}
	if held := at.Sub(store.lockedAt()); held >= ttl {
		t.Errorf("the issue ran %v under a lock of TTL %v", held, ttl)
	}
	if n := srv.count(); n != 1 {
		t.Errorf("%d issue requests, want 1 (no retry once the lock's budget is spent)", n)
	}
}

// failingStore fails every Load, Lock and Save with err.
type failingStore struct{ err error }

func (s failingStore) Load(context.Context, string) (*oauth.StoreEntry, error) { return nil, s.err }
func (s failingStore) Lock(context.Context, string, time.Duration) (int64, error) {
	return 0, s.err
}
func (s failingStore) Unlock(context.Context, string, int64) error { return nil }
func (s failingStore) Save(context.Context, string, *oauth.StoreEntry, int64) error {
	return s.err
}

// TestTokenSourceStoreUnavailable: a store that cannot be reached makes
// Token fail with an error matching ErrStoreUnavailable that still
// unwraps to the store's own error; a lost lock or an ended context is
// not reported as an unavailable store.
func TestTokenSourceStoreUnavailable(t *testing.T) {
	is := newIssuer(t)
	clk := newFakeClock()
	ctx := context.Background()
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	ts := newSource(t, clientFor(t, is.URL, clk), oauth.TokenSourceOptions{Kind: oauth.KindShortLived,
		Store: failingStore{fmt.Errorf("examplestore: dial: %w", refused)}})
	_, err := ts.Token(ctx)
	var oe *net.OpError
	if !errors.Is(err, oauth.ErrStoreUnavailable) || !errors.As(err, &oe) || !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("Token with the store down = %v; want ErrStoreUnavailable wrapping the *net.OpError", err)
	}
	if err != nil && !strings.Contains(err.Error(), "token store unreachable (load)") {
		t.Errorf("error %q does not say which store operation failed", err)
	}
	for _, cause := range []error{oauth.ErrLockLost, context.DeadlineExceeded} {
		ts := newSource(t, clientFor(t, is.URL, clk), oauth.TokenSourceOptions{Kind: oauth.KindShortLived, Store: failingStore{cause}})
		if _, err := ts.Token(ctx); !errors.Is(err, cause) || errors.Is(err, oauth.ErrStoreUnavailable) {
			t.Errorf("Token with the store answering %v = %v; want that cause, not ErrStoreUnavailable", cause, err)
		}
	}
	if n := is.issues.Load(); n != 0 {
		t.Errorf("%d issues without a usable store, want 0", n)
	}
}

// TestTokenSourceChannelsShareStore: two channels keep their tokens in one
// store (a MemoryStore, a FileStore): each source gets its own channel's
// token, a rotation of one leaves the other's token and pending
// revocations alone, and a restarted source of either channel takes its
// own channel's token from the store.
func TestTokenSourceChannelsShareStore(t *testing.T) {
	srv := oauthtest.NewServer()
	defer srv.Close()
	ids := []string{"1000000001", "1000000002"}
	for i, id := range ids {
		srv.AddChannel(id, fmt.Sprintf("channel-secret-%d-0123456789abcdef", i))
	}
	stores := []struct {
		name string
		make func(t *testing.T) oauth.Store
	}{
		{"MemoryStore", func(*testing.T) oauth.Store { return oauth.NewMemoryStore() }},
		{"FileStore", func(t *testing.T) oauth.Store { return newFileStore(t, filepath.Join(t.TempDir(), "tokens.json"), nil) }},
	}
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			ctx := context.Background()
			store := st.make(t)
			opts := oauth.TokenSourceOptions{Kind: oauth.KindShortLived, Store: store, RevokeGrace: time.Minute}
			clients := map[string]*oauth.Client{}
			sources := map[string]*oauth.TokenSource{}
			for _, id := range ids {
				clients[id] = srv.Client(t, id)
				sources[id] = newSource(t, clients[id], opts)
			}
			toks := map[string]*oauth.Token{}
			var mu sync.Mutex
			var wg sync.WaitGroup
			for _, id := range ids {
				wg.Go(func() {
					tok, err := sources[id].Token(ctx)
					if err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					toks[id] = tok
					mu.Unlock()
				})
			}
			wg.Wait()
			if t.Failed() {
				return
			}
			a, b := ids[0], ids[1]
			if toks[a].AccessToken == toks[b].AccessToken {
				t.Fatal("two channels got the same token")
			}
			check := func(when string, want map[string]*oauth.Token) {
				t.Helper()
				for id, tok := range want {
					info, err := clients[id].VerifyShortLivedToken(ctx, tok.AccessToken)
					if err != nil || info.ClientID != id {
						t.Errorf("%s: channel %s's token verifies as %+v, %v; want client_id %s", when, id, info, err, id)
					}
					e, err := store.Load(ctx, oauth.StoreKey(id, oauth.KindShortLived))
					if err != nil || e == nil || e.Token == nil || e.Token.AccessToken != tok.AccessToken {
						t.Errorf("%s: store under channel %s holds %v, %v; want its own token", when, id, e, err)
					}
					if got, err := sources[id].Token(ctx); err != nil || got.AccessToken != tok.AccessToken {
						t.Errorf("%s: channel %s's source serves %v, %v; want its own token", when, id, got, err)
					}
				}
			}
			check("first tokens", toks)

			// Channel a's token is replaced (LINE refused it, say); b's is untouched.
			issued := srv.IssueCount(oauthtest.KindShortLived)
			sources[a].Invalidate(toks[a].AccessToken)
			newA, err := sources[a].Token(ctx)
			if err != nil || newA.AccessToken == toks[a].AccessToken {
				t.Fatalf("channel %s after Invalidate: %v, %v; want a new token", a, newA, err)
			}
			check("after channel a's rotation", map[string]*oauth.Token{a: newA, b: toks[b]})
			if eb, _ := store.Load(ctx, oauth.StoreKey(b, oauth.KindShortLived)); eb == nil || len(eb.Pending) != 0 {
				t.Errorf("channel %s's entry after %s's rotation = %v; want no pending revocation", b, a, eb)
			}
			eventually(t, "the revocation of channel a's refused token", func() bool {
				_, err := clients[a].VerifyShortLivedToken(ctx, toks[a].AccessToken)
				return errors.Is(err, oauth.ErrInvalidToken)
			})
			if _, err := clients[b].VerifyShortLivedToken(ctx, toks[b].AccessToken); err != nil {
				t.Errorf("channel %s's token was revoked with %s's: %v", b, a, err)
			}

			// Restarted sources take their own channel's token from the store.
			for id, want := range map[string]*oauth.Token{a: newA, b: toks[b]} {
				tok, err := newSource(t, clients[id], opts).Token(ctx)
				if err != nil || tok.AccessToken != want.AccessToken {
					t.Errorf("a restarted source of channel %s got %v, %v; want its stored token", id, tok, err)
				}
			}
			if n := srv.IssueCount(oauthtest.KindShortLived) - issued; n != 1 {
				t.Errorf("%d issues after the first tokens, want 1 (channel a's rotation)", n)
			}
		})
	}
}

// slowUnlockStore holds Unlock until release is closed, once armed.
type slowUnlockStore struct {
	*oauth.MemoryStore
	armed    atomic.Bool
	entered  chan struct{}
	release  chan struct{}
	unlocked sync.Once
}

func (s *slowUnlockStore) Unlock(ctx context.Context, key string, fence int64) error {
	if s.armed.CompareAndSwap(true, false) {
		s.unlocked.Do(func() { close(s.entered) })
		<-s.release
	}
	return s.MemoryStore.Unlock(ctx, key, fence)
}

// TestTokenSourceInvalidateDuringRefreshTail: the background refresh has
// installed its new token but still runs (its store Unlock is slow, as
// with Redis gone) when LINE refuses that token. A caller after
// Invalidate must not be handed the refused token by the finishing
// refresh: it gets a new one.
func TestTokenSourceInvalidateDuringRefreshTail(t *testing.T) {
	is := newIssuer(t)
	is.expiresIn.Store(3600)
	clk := newFakeClock()
	store := &slowUnlockStore{MemoryStore: oauth.NewMemoryStore(), entered: make(chan struct{}), release: make(chan struct{})}
	ts := newSource(t, clientFor(t, is.URL, clk), oauth.TokenSourceOptions{Kind: oauth.KindV21, Lifetime: time.Hour,
		RefreshBefore: 10 * time.Minute, Store: store})
	ctx := context.Background()
	first, err := ts.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	store.armed.Store(true)
	clk.Advance(51 * time.Minute) // the background refresh issues, installs, then blocks in Unlock
	select {
	case <-store.entered:
	case <-time.After(5 * time.Second):
		t.Fatal("the background refresh never reached Unlock")
	}
	second, err := ts.Token(ctx)
	if err != nil || second == first {
		t.Fatalf("Token after the refresh installed = %v, %v; want the new token", second, err)
	}
	ts.Invalidate(second.AccessToken) // LINE answered 401 for it
	got := make(chan *oauth.Token, 1)
	go func() {
		tok, err := ts.Token(ctx)
		if err != nil {
			t.Error(err)
		}
		got <- tok
	}()
	time.Sleep(20 * time.Millisecond) // the caller joins the refresh still in flight
	close(store.release)
	tok := <-got
	if tok == nil || tok.AccessToken == second.AccessToken {
		t.Errorf("Token after Invalidate = %v; want a new token, not the invalidated one", tok)
	}
}
