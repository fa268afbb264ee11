package oauth_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/linetoken/linetoken/oauth"
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

// eventually polls cond for up to 5s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

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
	// Backoff: no hammering while failing (the first retry waits >= 1s).
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
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

var _ io.Writer = (*syncBuffer)(nil)
