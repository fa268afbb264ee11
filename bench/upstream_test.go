package bench

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/linetoken/linetoken/oauth"
)

// This file holds what the TokenSource comparisons share: an upstream that
// answers LINE-shaped issue bodies after a simulated round trip (or when a
// test opens its gate), a settable clock, the two token sources under test,
// and a burst of callers released together.

const (
	// roundTrip is the simulated LINE round trip of the upstream.
	roundTrip = 5 * time.Millisecond
	// callers is how many goroutines arrive together at a refresh.
	callers = 1000
	// fleetSize is how many processes (TokenSources, each on its own
	// oauth.Client and HTTP client) share one store.
	fleetSize = 20
	// refreshBefore is our TokenSource's early-refresh window (the default
	// for short-lived tokens, set explicitly for clarity).
	refreshBefore = 24 * time.Hour
	// revokeGrace keeps replaced tokens out of the way: the fake clock jumps
	// by weeks between rounds, which would otherwise make their revocation
	// due in the very tick that starts the next refresh (in real time it
	// runs 10 minutes later) and contend for the store lock.
	revokeGrace = 365 * 24 * time.Hour
	// patience bounds every wait of a test, so that a regression fails
	// instead of hanging.
	patience = 10 * time.Second
)

// t0 is where every fake clock starts.
var t0 = time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)

// upstream is a loopback stand-in for LINE's POST /v2/oauth/accessToken
// (short-lived tokens, client_credentials) that issues a new token each
// time ("tok-1", "tok-2", ...) after a simulated round trip, and accepts
// revocations. It counts issues, and signals on entered as each one
// arrives. While a gate is held (hold), issues wait for it to be released.
type upstream struct {
	srv     *httptest.Server
	delay   time.Duration
	issues  atomic.Int64
	revokes atomic.Int64
	entered chan struct{} // one buffered signal per issue arrival (dropped when full)

	mu   sync.Mutex
	gate chan struct{}
}

func newUpstream(tb testing.TB, delay time.Duration) *upstream {
	tb.Helper()
	u := &upstream{delay: delay, entered: make(chan struct{}, 1)}
	u.srv = httptest.NewServer(http.HandlerFunc(u.serve))
	tb.Cleanup(u.srv.Close)
	return u
}

func (u *upstream) URL() string { return u.srv.URL }

func (u *upstream) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.Header.Get("Content-Type") != formType {
		fail(w)
		return
	}
	switch r.URL.Path {
	case issuePath:
		if !formIs(r, "grant_type", "client_credentials", "client_id", channelID, "client_secret", channelSecret) {
			fail(w)
			return
		}
		n := u.issues.Add(1)
		select {
		case u.entered <- struct{}{}:
		default:
		}
		u.mu.Lock()
		gate := u.gate
		u.mu.Unlock()
		wait := (<-chan time.Time)(nil)
		if gate == nil && u.delay > 0 {
			t := time.NewTimer(u.delay)
			defer t.Stop()
			wait = t.C
		}
		if gate != nil || wait != nil {
			select {
			case <-gate:
			case <-wait:
			case <-r.Context().Done():
				return
			}
		}
		body := `{"access_token":"tok-` + strconv.FormatInt(n, 10) + `","expires_in":2592000,"token_type":"Bearer"}`
		h := w.Header()
		h["Content-Type"] = []string{"application/json"}
		h["Content-Length"] = []string{strconv.Itoa(len(body))}
		_, _ = w.Write([]byte(body))
	case "/v2/oauth/revoke":
		if r.ParseForm() != nil || len(r.PostForm["access_token"]) != 1 {
			fail(w)
			return
		}
		u.revokes.Add(1)
		w.WriteHeader(http.StatusOK)
	default:
		http.NotFound(w, r)
	}
}

// hold makes issue requests wait until release is called (release is
// idempotent, and runs at the end of the test anyway).
func (u *upstream) hold(tb testing.TB) (release func()) {
	g := make(chan struct{})
	u.mu.Lock()
	u.gate = g
	u.mu.Unlock()
	var once sync.Once
	release = func() {
		once.Do(func() {
			u.mu.Lock()
			u.gate = nil
			u.mu.Unlock()
			close(g)
		})
	}
	tb.Cleanup(release) // runs before u.srv.Close (cleanups run last-in first-out)
	return release
}

// drain forgets earlier arrival signals.
func (u *upstream) drain() {
	select {
	case <-u.entered:
	default:
	}
}

// awaitIssue waits until an issue request has reached the upstream.
func (u *upstream) awaitIssue(tb testing.TB) {
	tb.Helper()
	select {
	case <-u.entered:
	case <-time.After(patience):
		tb.Fatalf("no issue request reached the upstream within %v", patience)
	}
}

// clock is a settable clock for oauth.Config.Clock.
type clock struct{ ns atomic.Int64 }

func newClock(t time.Time) *clock { c := &clock{}; c.Set(t); return c }

func (c *clock) Now() time.Time  { return time.Unix(0, c.ns.Load()).UTC() }
func (c *clock) Set(t time.Time) { c.ns.Store(t.UnixNano()) }

// newOAuthClient is one of our clients (one process of a fleet) against u,
// on its own HTTP client. A nil clk means the real clock.
func newOAuthClient(tb testing.TB, u *upstream, clk *clock) *oauth.Client {
	tb.Helper()
	cfg := oauth.Config{
		ChannelID:     channelID,
		ChannelSecret: channelSecret,
		BaseURL:       u.URL(),
		HTTPClient:    newHTTPClient(),
	}
	if clk != nil {
		cfg.Clock = clk.Now
	}
	c, err := oauth.NewClient(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// newOurSource is our TokenSource of short-lived tokens on c, keeping its
// tokens in store. The caller closes it.
func newOurSource(tb testing.TB, c *oauth.Client, store oauth.Store) *oauth.TokenSource {
	tb.Helper()
	ts, err := oauth.NewTokenSource(c, oauth.TokenSourceOptions{
		Kind:          oauth.KindShortLived,
		RefreshBefore: refreshBefore,
		RevokeGrace:   revokeGrace,
		Store:         store,
	})
	if err != nil {
		tb.Fatal(err)
	}
	return ts
}

// storeKey is where our TokenSources keep the channel's short-lived token.
var storeKey = oauth.StoreKey(channelID, oauth.KindShortLived)

// seed puts tok in store as the current token, as another process would
// have (no upstream call).
func seed(tb testing.TB, store oauth.Store, tok oauth.Token) {
	tb.Helper()
	ctx := context.Background()
	fence, err := store.Lock(ctx, storeKey, time.Minute)
	if err != nil || fence == 0 {
		tb.Fatalf("seed: lock: fence %d, %v", fence, err)
	}
	defer func() { _ = store.Unlock(ctx, storeKey, fence) }()
	if err := store.Save(ctx, storeKey, &oauth.StoreEntry{Token: &tok}, fence); err != nil {
		tb.Fatalf("seed: save: %v", err)
	}
}

// oldToken is a token issued 30 days before expiry, as LINE would have.
func oldToken(expiry time.Time) oauth.Token {
	return oauth.Token{AccessToken: "tok-old", TokenType: "Bearer", ExpiresIn: 30 * 24 * time.Hour, Expiry: expiry}
}

// xFetcher is the x/oauth2 side's upstream call: clientcredentials.Config
// (client_id and client_secret in the form, as LINE wants) fetching a new
// token from u on every Token, through its own HTTP client. Wrap it in
// oauth2.ReuseTokenSource to cache.
type xFetcher struct {
	cc  *clientcredentials.Config
	ctx context.Context
}

func newXFetcher(u *upstream) xFetcher {
	return xFetcher{
		cc: &clientcredentials.Config{
			ClientID:     channelID,
			ClientSecret: channelSecret,
			TokenURL:     u.URL() + issuePath,
			AuthStyle:    oauth2.AuthStyleInParams,
		},
		ctx: context.WithValue(context.Background(), oauth2.HTTPClient, newHTTPClient()),
	}
}

func (f xFetcher) Token() (*oauth2.Token, error) { return f.cc.Token(f.ctx) }

// xSeed is a cached x/oauth2 token expiring at expiry.
func xSeed(expiry time.Time) *oauth2.Token {
	return &oauth2.Token{AccessToken: "tok-old", TokenType: "Bearer", Expiry: expiry}
}

// burst is n callers of one token source, started together; each records
// how long its call took and which token it got.
type burst struct {
	start    chan struct{}
	done     chan struct{}
	ready    atomic.Int64 // callers at the start line
	returned atomic.Int64
	waits    []time.Duration
	tokens   []string
	errs     []error
}

// newBurst starts n goroutines, numbered 0 to n-1, that wait for release
// before calling call with their number.
func newBurst(n int, call func(i int) (string, error)) *burst {
	b := &burst{start: make(chan struct{}), done: make(chan struct{}),
		waits: make([]time.Duration, n), tokens: make([]string, n), errs: make([]error, n)}
	var wg sync.WaitGroup
	wg.Add(n)
	for i := range n {
		go func() {
			defer wg.Done()
			b.ready.Add(1)
			<-b.start
			t := time.Now()
			tok, err := call(i)
			b.waits[i] = time.Since(t)
			b.tokens[i], b.errs[i] = tok, err
			b.returned.Add(1)
		}()
	}
	go func() { wg.Wait(); close(b.done) }()
	return b
}

// release lets the callers go, together: once every one of them is
// waiting at the start line.
func (b *burst) release() {
	for b.ready.Load() < int64(len(b.waits)) {
		time.Sleep(20 * time.Microsecond)
	}
	close(b.start)
}

// wait waits up to d for every caller to return, and reports whether they did.
func (b *burst) wait(d time.Duration) bool {
	select {
	case <-b.done:
		return true
	case <-time.After(d):
		return false
	}
}

// err is the first error a caller got.
func (b *burst) err() error {
	for _, err := range b.errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// count is how many callers got tok.
func (b *burst) count(tok string) int {
	n := 0
	for _, t := range b.tokens {
		if t == tok {
			n++
		}
	}
	return n
}

// distinct lists the tokens the callers got.
func (b *burst) distinct() []string {
	s := slices.Clone(b.tokens)
	slices.Sort(s)
	return slices.Compact(s)
}

// ourCall and xCall adapt the two sources to a burst.
func ourCall(ts *oauth.TokenSource) func(int) (string, error) {
	ctx := context.Background()
	return func(int) (string, error) {
		t, err := ts.Token(ctx)
		if err != nil {
			return "", err
		}
		return t.AccessToken, nil
	}
}

func xCall(src oauth2.TokenSource) func(int) (string, error) {
	return func(int) (string, error) {
		t, err := src.Token()
		if err != nil {
			return "", err
		}
		return t.AccessToken, nil
	}
}

// waitStats is a latency distribution.
type waitStats struct{ p50, p99, max time.Duration }

func statsOf(waits []time.Duration) waitStats {
	if len(waits) == 0 {
		return waitStats{}
	}
	s := slices.Clone(waits)
	slices.Sort(s)
	at := func(q float64) time.Duration {
		i := int(q*float64(len(s))+0.999999) - 1
		return s[max(0, min(i, len(s)-1))]
	}
	return waitStats{p50: at(0.50), p99: at(0.99), max: s[len(s)-1]}
}

func (w waitStats) String() string {
	return fmt.Sprintf("p50 %v, p99 %v, max %v", w.p50, w.p99, w.max)
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
