package oauth

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"
)

// TokenKind selects which family of token a [TokenSource] keeps.
type TokenKind int

const (
	// KindV21 is a channel access token v2.1 (JWT assertion; up to 30 days;
	// at most 30 active per channel). The default.
	KindV21 TokenKind = iota
	// KindStateless is a stateless token (15 minutes, unlimited, not revocable).
	KindStateless
	// KindShortLived is a short-lived token (30 days; the 31st revokes the oldest).
	KindShortLived
)

// String names the kind as it appears in store keys and logs.
func (k TokenKind) String() string {
	switch k {
	case KindV21:
		return "v2.1"
	case KindStateless:
		return "stateless"
	case KindShortLived:
		return "short-lived"
	}
	return fmt.Sprintf("TokenKind(%d)", int(k))
}

// TokenSource timing.
const (
	// statelessLifetime is LINE's stateless token lifetime.
	statelessLifetime = 15 * time.Minute
	// shortLivedLifetime is LINE's short-lived token lifetime.
	shortLivedLifetime = 30 * 24 * time.Hour
	// maxDefaultRefreshBefore caps the default early-refresh window.
	maxDefaultRefreshBefore = 24 * time.Hour
	// expiryMargin: a token is treated as expired this long before its
	// Expiry, for clock skew between us and LINE and for requests in flight.
	expiryMargin = 30 * time.Second
	// defaultWatchInterval is how often the watcher reads the clock: the
	// fresh path reads none, so a token can stay "fresh" at most this long
	// past its refresh point (see TokenSource).
	defaultWatchInterval = time.Second
	// defaultRevokeGrace: a replaced token is revoked this long after its
	// replacement is saved, so that other processes sharing the store move
	// to the new one first.
	defaultRevokeGrace = 10 * time.Minute
	// refreshTimeout bounds one refresh, detached from any caller's context.
	refreshTimeout = 50 * time.Second
	// lockTTL: a crashed holder's lock frees itself well inside
	// refreshTimeout, so waiters take over. A live holder never works past
	// it: the issue (with its retries, when Config.Retry.RetryIssue opts
	// into them) and the revocations under the lock are cut off once
	// lockTTL less lockTTL/lockSaveShare has passed since the Lock, so the
	// Save comes while the lock still holds. Should one be slower still (a
	// stalled store), its Save is fenced off (see issueAndSave).
	lockTTL = 40 * time.Second
	// lockSaveShare: the last 1/lockSaveShare of lockTTL (10s of 40s) is
	// kept for the Save and Unlock that follow the work under the lock.
	lockSaveShare = 4
	// maxRefreshShare: for a token LINE gave a shorter lifetime than asked,
	// the early-refresh window is at most 1/maxRefreshShare of that
	// lifetime, so a token shorter-lived than RefreshBefore is used for
	// half its life instead of replaced at once, at every tick.
	maxRefreshShare = 2
	// unlockTimeout bounds an Unlock, which runs even after a refresh's
	// context ended.
	unlockTimeout = 5 * time.Second
	// revokeRetry is the wait before due revocations are tried again after
	// a failure (store or LINE), unless LINE's Retry-After asks for longer
	// (honoured up to 5 minutes):
	// a replaced token stays valid meanwhile, so there is no hurry, and
	// a failing LINE or store is not hit every tick.
	revokeRetry = 30 * time.Second
	// lockPollMin and lockPollMax bound the wait between looks at the store
	// while another holder refreshes. With a StoreNotifier they bound each
	// wait for its notice instead, so a notice lost costs no more than
	// polling.
	lockPollMin = 20 * time.Millisecond
	lockPollMax = time.Second
	// maxEarlyWakes: a StoreNotifier's WaitUnlock may return early; past
	// this many early returns in one refresh the source polls, so that a
	// notifier returning at once, again and again, cannot make it spin on
	// the store. A refresh needs one or two (the holder's Save, a new
	// holder after a failed one).
	maxEarlyWakes = 10
	// closeTimeout bounds the revocations Close finishes.
	closeTimeout = 20 * time.Second
	// singleflightKey names the one refresh in flight.
	singleflightKey = "refresh"
)

// ErrClosed: the TokenSource was closed.
var ErrClosed = errors.New("oauth: token source closed")

// TokenSourceOptions configures a [TokenSource]. The zero value keeps v2.1
// tokens of 30 days in memory.
type TokenSourceOptions struct {
	// Kind is the family of token to keep; the zero value is KindV21.
	Kind TokenKind
	// Lifetime of v2.1 tokens; 0 means 30 days. Ignored for other kinds.
	Lifetime time.Duration
	// RefreshBefore is the early-refresh window: inside it the cached token
	// is still returned at once while one background refresh replaces it.
	// 0 means a tenth of the token's lifetime, at most 24h (v2.1 of 30
	// days and short-lived: 24h; stateless: 90s). For a token LINE issued
	// with a shorter lifetime (expires_in) than expected, the window is at
	// most half that lifetime.
	RefreshBefore time.Duration
	// RevokeGrace is how long a replaced v2.1 or short-lived token lives on
	// before it is revoked; 0 means 10 minutes.
	RevokeGrace time.Duration
	// Store keeps the tokens; nil means a private [MemoryStore].
	Store Store
	// Logger receives refreshes, their failures and revocations; nil means
	// the Client's Config.Logger (itself nil: silent). Nothing logged
	// carries a secret.
	Logger *slog.Logger
	// OnRefresh, when set, is told the outcome of every refresh the source
	// runs (a caller's wait, the early background refresh or one after
	// Invalidate), for metrics and for work that follows a rotation such as
	// writing the new token to a file. It is called once per refresh, after
	// the new token is installed or the failure recorded, on the refreshing
	// goroutine and never under the source's lock; it should return quickly
	// and may call Token. nil: nothing is told.
	OnRefresh func(RefreshEvent)
}

// RefreshEvent is the outcome of one refresh, given to
// [TokenSourceOptions.OnRefresh].
type RefreshEvent struct {
	// Kind is the source's token kind.
	Kind TokenKind
	// Token is the token now served; nil when the refresh failed.
	Token *Token
	// Issued is set when this source issued Token; otherwise it took Token
	// from the Store, where another source sharing it had saved it.
	Issued bool
	// Err is why the refresh failed (matched with errors.Is against the
	// sentinels, as Token's errors are); nil on success. It carries no
	// secret.
	Err error
	// Took is how long the refresh ran, by the Client's clock.
	Took time.Duration
}

// TokenSource caches a channel access token and replaces it before it
// expires. It is safe for concurrent use; create it with [NewTokenSource]
// and Close it when done.
//
// A token is fresh, stale (inside the RefreshBefore window) or expired:
//   - fresh: Token returns the cached token without a lock, an allocation or
//     a clock read (a watcher goroutine reads the clock once a second and
//     moves the token on; so a token stays fresh at most one second past its
//     refresh point, and is never served past Expiry minus 30s while that
//     watcher runs);
//   - stale: Token returns the cached token at once, and exactly one
//     background refresh replaces it; a failed one is logged and retried
//     while the valid token is still served, after a wait drawn from the
//     Client's [RetryPolicy] (exponential with jitter, at least 1s before
//     jitter at first, at most 5 minutes) and never shorter than a
//     Retry-After that came with the failure (up to 5 minutes: LINE
//     documents none, and a longer one would refuse callers of an
//     expired token for that long);
//   - expired or none: callers wait for one shared refresh, each honouring
//     its own context.
//
// A token's early-refresh window is RefreshBefore; for a token LINE gave a
// shorter lifetime (expires_in) than expected, at most half that lifetime:
// such a token is used for half its life, not replaced at once and again
// at every look.
//
// A refresh that cannot use its [Store] fails with an error matching
// [ErrStoreUnavailable] (and the store's own error); a valid cached token
// is still served meanwhile.
//
// The returned *Token is shared: read it, do not modify it.
type TokenSource struct {
	c             *Client
	kind          TokenKind
	lifetime      time.Duration
	refreshBefore time.Duration
	grace         time.Duration
	store         Store
	private       bool // store is our own MemoryStore
	key           string
	log           *slog.Logger
	watchInterval time.Duration
	lockTTL       time.Duration // the store lock's TTL: lockTTL but in tests
	jitter        jitterSource  // draws backoff jitter; nil: rand.N
	onRefresh     func(RefreshEvent)

	cur       atomic.Pointer[cached]
	sf        singleflight.Group
	refreshFn func() (any, error) // trackedRefresh, bound once: a waiter allocates no method value
	bgRunning atomic.Bool

	ctx    context.Context // ends at Close; parent of every refresh
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once // Close

	mu          sync.Mutex // guards the fields below
	failures    int
	nextAttempt time.Time
	lastErr     error
	nextRevoke  time.Time // earliest RevokeAfter we know of; zero = none
	revoking    bool
	watching    bool    // the watcher runs (it starts with the first token)
	unrecorded  []Token // issued, but no store Save recorded them
}

// Phases of a cached token.
const (
	phaseFresh int32 = iota
	phaseStale
	phaseExpired
)

type cached struct {
	tok       *Token
	refreshAt time.Time
	expireAt  time.Time
	phase     atomic.Int32
}

// NewTokenSource returns a TokenSource that keeps tokens of opts.Kind
// issued by c. It refuses, naming what is missing, a client that cannot
// issue and revoke that kind: v2.1 needs Config.Key (to issue) and
// Config.ChannelSecret (to revoke replaced tokens); short-lived needs the
// channel ID and secret; stateless needs a key or the channel ID and secret.
func NewTokenSource(c *Client, opts TokenSourceOptions) (*TokenSource, error) {
	if c == nil {
		return nil, errors.New("oauth: NewTokenSource: nil Client")
	}
	cfg := c.cfg
	hasSecret := cfg.ChannelID != "" && cfg.ChannelSecret != ""
	var lifetime time.Duration
	switch opts.Kind {
	case KindV21:
		if cfg.Key == nil || cfg.ChannelSecret == "" {
			return nil, errors.New("oauth: NewTokenSource: v2.1 tokens need Config.Key (LINE_PRIVATE_KEY, LINE_KEY_ID) to issue and Config.ChannelSecret (LINE_CHANNEL_SECRET) to revoke replaced tokens")
		}
		lifetime = opts.Lifetime
		if lifetime == 0 {
			lifetime = MaxTokenLifetime
		}
		if _, err := lifetimeSeconds(lifetime); err != nil {
			return nil, fmt.Errorf("oauth: NewTokenSource: Lifetime: %w", err)
		}
	case KindShortLived:
		if !hasSecret {
			return nil, errors.New("oauth: NewTokenSource: short-lived tokens need Config.ChannelID and Config.ChannelSecret (LINE_CHANNEL_ID, LINE_CHANNEL_SECRET)")
		}
		lifetime = shortLivedLifetime
	case KindStateless:
		if cfg.Key == nil && !hasSecret {
			return nil, errors.New("oauth: NewTokenSource: stateless tokens need Config.Key or Config.ChannelID and Config.ChannelSecret")
		}
		lifetime = statelessLifetime
	default:
		return nil, fmt.Errorf("oauth: NewTokenSource: unknown Kind %d", int(opts.Kind))
	}
	rb := opts.RefreshBefore
	if rb == 0 {
		rb = min(lifetime/10, maxDefaultRefreshBefore)
	}
	if rb < 0 || rb >= lifetime-expiryMargin {
		return nil, fmt.Errorf("oauth: NewTokenSource: RefreshBefore %v must be between 0 and the token lifetime %v less %v", rb, lifetime, expiryMargin)
	}
	ts := &TokenSource{
		c: c, kind: opts.Kind, onRefresh: opts.OnRefresh, lifetime: lifetime, refreshBefore: rb,
		grace: orDefault(opts.RevokeGrace, defaultRevokeGrace),
		store: opts.Store, key: StoreKey(cfg.ChannelID, opts.Kind),
		log: cmp.Or(opts.Logger, cfg.Logger), watchInterval: defaultWatchInterval,
		lockTTL: lockTTL,
	}
	if ts.store == nil {
		ts.store, ts.private = NewMemoryStore(), true
	}
	ts.refreshFn = ts.trackedRefresh
	ts.ctx, ts.cancel = context.WithCancel(context.Background())
	return ts, nil
}

// Token returns a valid token: the cached one when fresh or stale, else the
// result of the one shared refresh.
func (ts *TokenSource) Token(ctx context.Context) (*Token, error) {
	if c := ts.cur.Load(); c != nil && c.phase.Load() != phaseExpired {
		return c.tok, nil
	}
	return ts.wait(ctx)
}

// Invalidate drops accessToken if it is still the current token (after
// LINE answered 401 for it, say), so the next Token refreshes. Calls from
// many goroutines, or many processes sharing a Store, cause one refresh.
func (ts *TokenSource) Invalidate(accessToken string) {
	c := ts.cur.Load()
	if c == nil || accessToken == "" || c.tok.AccessToken != accessToken {
		return
	}
	if c.phase.Swap(phaseExpired) != phaseExpired {
		ts.logAttrs(slog.LevelInfo, "oauth: token invalidated", slog.String("kind", ts.kind.String()), slog.String("key_id", c.tok.KeyID))
	}
}

// Close stops background work, waits for a refresh in flight and finishes
// the revocations that are due. With the private in-memory store (Store
// nil), no other process can use the tokens, so Close revokes all of them,
// current included, freeing the channel's slots. Token fails after Close.
func (ts *TokenSource) Close() error {
	var err error
	ts.once.Do(func() {
		ts.mu.Lock() // orders the cancel with the watcher's start in install
		ts.cancel()
		ts.mu.Unlock()
		ts.wg.Wait()
		ts.mu.Lock()
		ts.cur.Store(nil) // Token now takes the slow path and fails
		ts.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
		defer cancel()
		err = errors.Join(ts.revokeDue(ctx, ts.private), ts.revokeUnrecorded(ctx))
	})
	return err
}

// keepUnrecorded remembers issued tokens no store has recorded.
func (ts *TokenSource) keepUnrecorded(toks ...Token) {
	if !ts.revocable() || len(toks) == 0 {
		return
	}
	ts.mu.Lock()
	ts.unrecorded = append(ts.unrecorded, toks...)
	ts.mu.Unlock()
}

// takeUnrecorded returns and forgets the unrecorded tokens.
func (ts *TokenSource) takeUnrecorded() []Token {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	u := ts.unrecorded
	ts.unrecorded = nil
	return u
}

// revokeUnrecorded revokes, at Close, the issued tokens no store recorded:
// no other process knows them, so nobody else would.
func (ts *TokenSource) revokeUnrecorded(ctx context.Context) error {
	var errs []error
	now := ts.c.now()
	for _, u := range ts.takeUnrecorded() {
		if !now.Before(u.Expiry) {
			continue
		}
		if err := ts.revoke(ctx, u.AccessToken); err != nil && !errors.Is(err, ErrInvalidToken) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// wait is the slow path: join the one refresh in flight, or start it.
func (ts *TokenSource) wait(ctx context.Context) (*Token, error) {
	if err := ts.ctx.Err(); err != nil {
		return nil, ErrClosed
	}
	ts.mu.Lock()
	if ts.lastErr != nil && ts.c.now().Before(ts.nextAttempt) {
		err := ts.lastErr
		ts.mu.Unlock()
		// Backing off from LINE, but another process may have refreshed:
		// a look at the store is cheap.
		if tok := ts.fromStore(ctx); tok != nil {
			return tok, nil
		}
		return nil, err
	}
	ts.mu.Unlock()
	for joined := 0; ; joined++ {
		ch := ts.sf.DoChan(singleflightKey, ts.refreshFn)
		select {
		case r := <-ch:
			if r.Err != nil {
				return nil, r.Err
			}
			tok := r.Val.(*Token)
			// A refresh still finishing (its Unlock, say) when its token
			// was invalidated hands back that refused token: start the
			// next refresh instead, once.
			if joined == 0 && ts.invalidatedCurrent(tok) {
				continue
			}
			return tok, nil
		case <-ctx.Done():
			return nil, fmt.Errorf("oauth: waiting for a token: %w", ctx.Err())
		}
	}
}

// invalidatedCurrent reports whether tok is the cached token and was
// invalidated.
func (ts *TokenSource) invalidatedCurrent(tok *Token) bool {
	c := ts.cur.Load()
	return c != nil && c.tok == tok && c.phase.Load() == phaseExpired && ts.c.now().Before(c.expireAt)
}

// fromStore installs and returns a usable token saved by another source,
// or nil.
func (ts *TokenSource) fromStore(ctx context.Context) *Token {
	e, err := ts.store.Load(ctx, ts.key)
	if err != nil || e == nil || !ts.usable(e.Token, ts.c.now(), ts.replacing()) {
		return nil
	}
	ts.install(e.Token, e)
	return e.Token
}

// watch reads the clock for the fresh path: it moves the cached token to
// stale (starting the background refresh) and expired, and runs due
// revocations.
func (ts *TokenSource) watch() {
	defer ts.wg.Done()
	t := time.NewTicker(ts.watchInterval)
	defer t.Stop()
	for {
		select {
		case <-ts.ctx.Done():
			return
		case <-t.C:
			ts.tick()
		}
	}
}

func (ts *TokenSource) tick() {
	now := ts.c.now()
	if c := ts.cur.Load(); c != nil {
		switch {
		case !now.Before(c.expireAt):
			c.phase.Store(phaseExpired)
		case !now.Before(c.refreshAt):
			c.phase.CompareAndSwap(phaseFresh, phaseStale)
		}
		if c.phase.Load() == phaseStale {
			ts.mu.Lock()
			ready := !now.Before(ts.nextAttempt)
			ts.mu.Unlock()
			if ready {
				ts.startBackground()
			}
		}
	}
	ts.mu.Lock()
	due := !ts.nextRevoke.IsZero() && !now.Before(ts.nextRevoke) && !ts.revoking
	if due {
		ts.revoking = true
	}
	ts.mu.Unlock()
	if due {
		ts.wg.Add(1)
		go func() {
			defer ts.wg.Done()
			ctx, cancel := context.WithTimeout(ts.ctx, refreshTimeout)
			defer cancel()
			err := ts.revokeDue(ctx, false)
			ts.mu.Lock()
			ts.revoking = false
			var retryIn time.Duration
			if err != nil { // back off: do not hit a failing store or LINE every tick
				now := ts.c.now()
				retry := now.Add(revokeRetry)
				if ts.nextRevoke.IsZero() || ts.nextRevoke.Before(retry) {
					ts.nextRevoke = retry
				}
				retryIn = ts.nextRevoke.Sub(now)
			}
			ts.mu.Unlock()
			if err != nil {
				ts.logAttrs(slog.LevelWarn, "oauth: due revocations failed; will retry",
					slog.String("kind", ts.kind.String()), slog.Duration("retry_in", retryIn), slog.String("error", err.Error()))
			}
		}()
	}
}

// startBackground starts one background refresh unless one is running.
func (ts *TokenSource) startBackground() {
	if !ts.bgRunning.CompareAndSwap(false, true) {
		return
	}
	ts.wg.Add(1)
	go func() {
		defer ts.wg.Done()
		defer ts.bgRunning.Store(false)
		_, _, _ = ts.sf.Do(singleflightKey, ts.refreshFn)
	}()
}

// trackedRefresh runs refresh inside Close's WaitGroup, or not at all once
// closed: Close cancels under mu, so every Add comes before its Wait.
func (ts *TokenSource) trackedRefresh() (any, error) {
	ts.mu.Lock()
	if ts.ctx.Err() != nil {
		ts.mu.Unlock()
		return nil, ErrClosed
	}
	ts.wg.Add(1)
	ts.mu.Unlock()
	defer ts.wg.Done()
	return ts.refresh()
}

// refresh gets a usable token: from the store when another source has
// refreshed, else by issuing one under the store's lock. It runs detached
// from callers' contexts, bounded by refreshTimeout and Close.
func (ts *TokenSource) refresh() (*Token, error) {
	if c := ts.cur.Load(); c != nil && c.phase.Load() == phaseFresh {
		return c.tok, nil // a refresh that just finished installed it
	}
	ctx, cancel := context.WithTimeout(ts.ctx, refreshTimeout)
	defer cancel()
	start := ts.c.now()
	tok, issued, err := ts.refreshLocked(ctx)
	now := ts.c.now()
	if err != nil {
		if ts.ctx.Err() != nil {
			return nil, ErrClosed
		}
		ts.mu.Lock()
		ts.failures++
		failures := ts.failures
		wait := ts.c.cfg.Retry.refreshBackoff(failures, err, ts.jitter)
		ts.nextAttempt = now.Add(wait)
		ts.lastErr = fmt.Errorf("oauth: refreshing %s token: %w", ts.kind, err)
		lastErr := ts.lastErr
		ts.mu.Unlock()
		attrs := []slog.Attr{slog.String("kind", ts.kind.String()), slog.Int("failures", failures),
			slog.Duration("next_attempt_in", wait), slog.String("error", err.Error())}
		if c := ts.cur.Load(); c != nil && c.phase.Load() != phaseExpired {
			attrs = append(attrs, slog.Time("serving_until", c.expireAt))
		}
		ts.logAttrs(slog.LevelError, "oauth: token refresh failed", attrs...)
		ts.tell(RefreshEvent{Kind: ts.kind, Err: lastErr, Took: now.Sub(start)})
		return nil, lastErr
	}
	ts.mu.Lock()
	ts.failures, ts.lastErr, ts.nextAttempt = 0, nil, time.Time{}
	ts.mu.Unlock()
	ts.logAttrs(slog.LevelInfo, "oauth: token refreshed", slog.String("kind", ts.kind.String()),
		slog.Bool("issued", issued), slog.String("key_id", tok.KeyID), slog.Time("expiry", tok.Expiry),
		slog.Duration("took", now.Sub(start)))
	ts.tell(RefreshEvent{Kind: ts.kind, Token: tok, Issued: issued, Took: now.Sub(start)})
	return tok, nil
}

// tell hands ev to TokenSourceOptions.OnRefresh, if set.
func (ts *TokenSource) tell(ev RefreshEvent) {
	if ts.onRefresh != nil {
		ts.onRefresh(ev)
	}
}

// usable reports whether t can be served now without a refresh, and is
// not the token being replaced.
func (ts *TokenSource) usable(t *Token, now time.Time, replacing string) bool {
	return t != nil && t.AccessToken != "" && t.AccessToken != replacing &&
		now.Before(t.Expiry.Add(-ts.refreshWindow(t)))
}

// refreshWindow is how long before its expiry t is replaced: RefreshBefore,
// but for a token LINE gave a shorter lifetime than the source's (and so
// perhaps shorter than RefreshBefore), at most 1/maxRefreshShare of that
// lifetime. A token of the expected or unknown (0) lifetime gets
// RefreshBefore, whatever share of its life that is.
func (ts *TokenSource) refreshWindow(t *Token) time.Duration {
	if t.ExpiresIn > 0 && t.ExpiresIn < ts.lifetime {
		return min(ts.refreshBefore, t.ExpiresIn/maxRefreshShare)
	}
	return ts.refreshBefore
}

// lockWorkDeadline is when work under a store lock taken at locked must
// end: lockTTL/lockSaveShare before the lock can expire, so that the Save
// that follows still holds it.
func (ts *TokenSource) lockWorkDeadline(locked time.Time) time.Time {
	return locked.Add(ts.lockTTL - ts.lockTTL/lockSaveShare)
}

// replacing is the token a refresh replaces: the current one, when stale or
// invalidated.
func (ts *TokenSource) replacing() string {
	if c := ts.cur.Load(); c != nil && c.phase.Load() != phaseFresh {
		return c.tok.AccessToken
	}
	return ""
}

func (ts *TokenSource) refreshLocked(ctx context.Context) (*Token, bool, error) {
	old := ts.replacing()
	poll := lockPollMin
	wakes := 0         // early returns of the store's WaitUnlock
	unwatched := false // the store could not watch its lock: poll from then on
	for {
		e, err := ts.store.Load(ctx, ts.key)
		if err != nil {
			return nil, false, storeError("load", err)
		}
		if e != nil && ts.usable(e.Token, ts.c.now(), old) {
			ts.install(e.Token, e)
			return e.Token, false, nil
		}
		locked := time.Now() // the store's TTL runs on real time, not ts.c.now
		fence, err := ts.store.Lock(ctx, ts.key, ts.lockTTL)
		if err != nil {
			return nil, false, storeError("lock", err)
		}
		if fence > 0 {
			tok, issued, err := ts.issueAndSave(ctx, fence, old, locked)
			ts.unlock(ctx, fence)
			return tok, issued, err
		}
		// Another holder is refreshing: look again once it lets go of the
		// lock, or shortly. The poll backs off as time passes, not per
		// wake-up.
		early, failed, err := ts.waitForHolder(ctx, poll, wakes < maxEarlyWakes && !unwatched)
		unwatched = unwatched || failed
		if err != nil {
			return nil, false, fmt.Errorf("oauth: waiting for the token store lock that another holder has: %w", err)
		}
		if early {
			wakes++
		} else {
			poll = min(poll*2, lockPollMax)
		}
	}
}

// waitForHolder waits up to d for another holder's refresh: when notify is
// set and the store is a [StoreNotifier], until the store says the holder
// saved or let go of the lock (early is then set when that came before d
// passed); else for all of d. watchFailed reports that the store could
// not watch its lock (the refresh then polls for the rest of its life:
// asking again would cost a refused subscription per poll). It fails only
// when ctx ends.
func (ts *TokenSource) waitForHolder(ctx context.Context, d time.Duration, notify bool) (early, watchFailed bool, err error) {
	if n, ok := ts.store.(StoreNotifier); ok && notify {
		start := time.Now()
		err := n.WaitUnlock(ctx, ts.key, d)
		waited := time.Since(start)
		if err == nil {
			return waited < d, false, nil
		}
		if ctx.Err() != nil {
			return false, false, ctx.Err()
		}
		watchFailed = true
		// The store could not watch its lock (a Redis that refuses
		// SUBSCRIBE, say): poll for the rest of d.
		ts.logAttrs(slog.LevelDebug, "oauth: the token store could not watch its lock; polling",
			slog.String("kind", ts.kind.String()), slog.String("error", err.Error()))
		d -= waited
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false, watchFailed, ctx.Err()
	case <-t.C:
		return false, watchFailed, nil
	}
}

// issueAndSave runs under the lock taken at locked: it looks at the store
// once more, then issues, records the replaced token for revocation and
// saves; issued is false when the look found another holder's token.
// The look and the issue end by lockWorkDeadline, so the Save comes
// while the lock holds even when retries of the issue are opted into.
func (ts *TokenSource) issueAndSave(ctx context.Context, fence int64, old string, locked time.Time) (tok *Token, issued bool, err error) {
	wctx, cancel := context.WithDeadline(ctx, ts.lockWorkDeadline(locked))
	defer cancel()
	e, err := ts.store.Load(wctx, ts.key)
	if err != nil {
		return nil, false, storeError("load", err)
	}
	now := ts.c.now()
	if e != nil && ts.usable(e.Token, now, old) {
		ts.install(e.Token, e) // another holder saved it between our Load and Lock
		return e.Token, false, nil
	}
	tok, err = ts.issue(wctx)
	if err != nil {
		if wctx.Err() != nil && ctx.Err() == nil {
			return nil, false, fmt.Errorf("oauth: issue cut off before the token store lock (TTL %v) could expire: %w", ts.lockTTL, err)
		}
		return nil, false, err
	}
	next := &StoreEntry{Token: tok}
	if e != nil {
		next.Pending = e.Pending
		if prev := e.Token; prev != nil && ts.revocable() && now.Before(prev.Expiry) {
			revokeAfter := now.Add(ts.grace)
			if prev.AccessToken == old && ts.isInvalidated() {
				revokeAfter = now // LINE already refused it
			}
			next.Pending = append(next.Pending, PendingRevocation{Token: *prev, RevokeAfter: revokeAfter})
		}
	}
	// Tokens issued earlier while the store could not record them are
	// recorded now, to be revoked like any replaced token.
	unrecorded := ts.takeUnrecorded()
	for _, u := range unrecorded {
		if ts.revocable() && (e == nil || e.Token == nil || u.AccessToken != e.Token.AccessToken) {
			next.Pending = append(next.Pending, PendingRevocation{Token: u, RevokeAfter: now.Add(ts.grace)})
		}
	}
	next.Pending = dropExpired(next.Pending, now)
	if err := ts.store.Save(ctx, ts.key, next, fence); err != nil {
		ts.keepUnrecorded(unrecorded...)
		if errors.Is(err, ErrLockLost) {
			// Another holder took over (our lock outlived its TTL). If it has
			// saved a usable token, use that and give ours back to LINE now,
			// so no slot stays taken by a token nobody records.
			if cur, lerr := ts.store.Load(ctx, ts.key); lerr == nil && cur != nil && ts.usable(cur.Token, ts.c.now(), old) {
				ts.install(cur.Token, cur)
				if ts.revocable() {
					if rerr := ts.revoke(ctx, tok.AccessToken); rerr != nil {
						ts.logAttrs(slog.LevelWarn, "oauth: revoking a token issued under a lost lock failed",
							slog.String("kind", ts.kind.String()), slog.String("key_id", tok.KeyID), slog.String("error", rerr.Error()))
					}
				}
				return cur.Token, false, nil
			}
			ts.logAttrs(slog.LevelWarn, "oauth: store lock lost during refresh; serving the new token locally",
				slog.String("kind", ts.kind.String()))
			ts.install(tok, nil)
			return tok, true, nil
		}
		// The token is issued but not recorded: serve it, say so, and keep
		// it to record (and so revoke) with the next successful save, or
		// to revoke at Close.
		ts.logAttrs(slog.LevelError, "oauth: issued token could not be saved to the store; it is kept to record later",
			slog.String("kind", ts.kind.String()), slog.String("error", err.Error()))
		ts.keepUnrecorded(*tok)
		ts.install(tok, nil)
		return tok, true, nil
	}
	ts.install(tok, next)
	return tok, true, nil
}

func (ts *TokenSource) isInvalidated() bool {
	c := ts.cur.Load()
	return c != nil && c.phase.Load() == phaseExpired && ts.c.now().Before(c.expireAt)
}

func (ts *TokenSource) revocable() bool { return ts.kind == KindV21 || ts.kind == KindShortLived }

func (ts *TokenSource) issue(ctx context.Context) (*Token, error) {
	switch ts.kind {
	case KindV21:
		return ts.c.IssueToken(ctx, ts.lifetime)
	case KindShortLived:
		return ts.c.IssueShortLivedToken(ctx)
	default:
		return ts.c.IssueStatelessToken(ctx)
	}
}

// install makes tok the cached token and notes when revocations fall due.
func (ts *TokenSource) install(tok *Token, e *StoreEntry) {
	c := &cached{tok: tok, refreshAt: tok.Expiry.Add(-ts.refreshWindow(tok)), expireAt: tok.Expiry.Add(-expiryMargin)}
	now := ts.c.now()
	switch {
	case !now.Before(c.expireAt):
		c.phase.Store(phaseExpired)
	case !now.Before(c.refreshAt):
		c.phase.Store(phaseStale)
	}
	ts.mu.Lock()
	if ts.ctx.Err() != nil { // closed: a refresh finishing late installs nothing
		ts.mu.Unlock()
		return
	}
	ts.cur.Store(c)
	if !ts.watching {
		ts.watching = true
		ts.wg.Add(1)
		go ts.watch()
	}
	ts.mu.Unlock()
	if e != nil {
		ts.noteRevocations(e.Pending)
	}
}

func (ts *TokenSource) noteRevocations(p []PendingRevocation) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	for _, r := range p {
		if ts.nextRevoke.IsZero() || r.RevokeAfter.Before(ts.nextRevoke) {
			ts.nextRevoke = r.RevokeAfter
		}
	}
}

func dropExpired(p []PendingRevocation, now time.Time) []PendingRevocation {
	out := p[:0:0]
	for _, r := range p {
		if now.Before(r.Token.Expiry) {
			out = append(out, r)
		}
	}
	return out
}

// revokeDue revokes the pending tokens whose grace has passed (all of
// them, and the current token too, when everything is true) under the
// store's lock, and saves what is left.
func (ts *TokenSource) revokeDue(ctx context.Context, everything bool) error {
	if !ts.revocable() {
		return nil
	}
	locked := time.Now()
	fence, err := ts.store.Lock(ctx, ts.key, ts.lockTTL)
	if err != nil || fence == 0 {
		return storeError("lock", err) // someone else is at it; the next tick tries again
	}
	defer ts.unlock(ctx, fence)
	// Revocations end by lockWorkDeadline (those cut off stay pending); the
	// Save below uses ctx, while the lock still holds.
	wctx, cancel := context.WithDeadline(ctx, ts.lockWorkDeadline(locked))
	defer cancel()
	e, err := ts.store.Load(ctx, ts.key)
	if err != nil || e == nil {
		return storeError("load", err)
	}
	now := ts.c.now()
	var keep []PendingRevocation
	var errs []error
	retryAt := now.Add(revokeRetry) // when the failed ones are tried again
	targets := e.Pending
	if everything && e.Token != nil {
		targets = append(targets, PendingRevocation{Token: *e.Token, RevokeAfter: now})
		e.Token = nil
	}
	for _, r := range targets {
		if !now.Before(r.Token.Expiry) {
			continue // expired: its slot is free already
		}
		if !everything && now.Before(r.RevokeAfter) {
			keep = append(keep, r)
			continue
		}
		err := ts.revoke(wctx, r.Token.AccessToken)
		switch {
		case err == nil, errors.Is(err, ErrInvalidToken):
			ts.logAttrs(slog.LevelInfo, "oauth: token revoked", slog.String("kind", ts.kind.String()), slog.String("key_id", r.Token.KeyID))
		default:
			keep = append(keep, r)
			errs = append(errs, err)
			// LINE may have said when to come back (honoured within reason).
			if ra := now.Add(backgroundRetryAfter(err)); ra.After(retryAt) {
				retryAt = ra
			}
			ts.logAttrs(slog.LevelWarn, "oauth: revoking a token failed; will retry",
				slog.String("kind", ts.kind.String()), slog.String("key_id", r.Token.KeyID), slog.String("error", err.Error()))
		}
	}
	e.Pending = keep
	ts.mu.Lock()
	ts.nextRevoke = time.Time{}
	ts.mu.Unlock()
	if len(keep) > 0 {
		retry := keep
		if len(errs) > 0 { // back off before trying the failures again
			retry = append([]PendingRevocation(nil), keep...)
			for i := range retry {
				if !retry[i].RevokeAfter.After(now) {
					retry[i].RevokeAfter = retryAt
				}
			}
		}
		ts.noteRevocations(retry)
	}
	if err := ts.store.Save(ctx, ts.key, e, fence); err != nil {
		errs = append(errs, storeError("save", err))
	}
	return errors.Join(errs...)
}

func (ts *TokenSource) revoke(ctx context.Context, accessToken string) error {
	if ts.kind == KindV21 {
		return ts.c.RevokeToken(ctx, accessToken)
	}
	return ts.c.RevokeShortLivedToken(ctx, accessToken)
}

// unlock releases the store lock, bounded even when ctx has ended.
func (ts *TokenSource) unlock(ctx context.Context, fence int64) {
	uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), unlockTimeout)
	defer cancel()
	_ = ts.store.Unlock(uctx, ts.key, fence)
}

// storeError says which store operation failed; a failure that is not a
// lost lock or an ended context means the store could not be used: it
// matches [ErrStoreUnavailable] and still unwraps to the store's own error.
func storeError(op string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrLockLost), errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("oauth: token store %s: %w", op, err)
	}
	return fmt.Errorf("%w (%s): %w", ErrStoreUnavailable, op, err)
}

// logAttrs logs through TokenSourceOptions.Logger, or else Config.Logger,
// if any; never under ts.mu.
func (ts *TokenSource) logAttrs(level slog.Level, msg string, attrs ...slog.Attr) {
	if ts.log != nil {
		ts.log.LogAttrs(context.Background(), level, msg, attrs...)
	}
}
