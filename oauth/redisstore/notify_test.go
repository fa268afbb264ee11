package redisstore_test

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/linetoken/linetoken/internal/storetest"
	"github.com/linetoken/linetoken/oauth"
	"github.com/linetoken/linetoken/oauth/oauthtest"
	"github.com/linetoken/linetoken/oauth/redisstore"
)

const (
	notifyLongWait = storetest.LongWait
	notifyPrompt   = storetest.Prompt
	// notifyShortWait is the maxWait (or lock TTL) of waits that must run
	// to their end.
	notifyShortWait = 100 * time.Millisecond
	// notifySettle lets a waiter goroutine subscribe before the test acts;
	// a waiter still on its way is woken all the same (it finds the lock
	// let go), so this only makes the test exercise the message.
	notifySettle = 50 * time.Millisecond
)

// The WaitUnlock helpers are shared with the other store's tests.
type waitResult = storetest.WaitResult

var (
	waitUnlockAsync = storetest.WaitUnlockAsync
	stillWaiting    = storetest.StillWaiting
	wokenBy         = storetest.WokenBy
)

// TestWaitUnlock: against a real Redis, with the holder and the waiter on
// clients of their own (as two processes), WaitUnlock returns as soon as
// the holder saves or unlocks, at once when the lock is not held (also
// when it was released just before the subscription), when the lock's
// TTL passes, after maxWait when it stays held, and when its context
// ends; its subscriptions leave no goroutine behind.
func TestWaitUnlock(t *testing.T) {
	r := startRedis(t)
	ignore := goleak.IgnoreCurrent()
	ctx := context.Background()
	key := oauth.StoreKey("1234567890", oauth.KindV21)
	other := oauth.StoreKey("1234567890", oauth.KindShortLived)
	var clients []*redis.Client
	newClient := func(o redis.Options) *redis.Client {
		o.Addr = r.Addr()
		c := redis.NewClient(&o)
		clients = append(clients, c)
		return c
	}
	holder := redisstore.New(newClient(redis.Options{}))
	// The waiter's dials run hook, when set, first: its pubsub connection
	// is the only one it dials once its pool holds a connection.
	var hook atomic.Pointer[func()]
	waiter := redisstore.New(newClient(redis.Options{Dialer: func(ctx context.Context, network, addr string) (net.Conn, error) {
		if f := hook.Swap(nil); f != nil {
			(*f)()
		}
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}}))
	lock := func(t *testing.T, k string, ttl time.Duration) int64 {
		t.Helper()
		f, err := holder.Lock(ctx, k, ttl)
		if err != nil || f <= 0 {
			t.Fatalf("Lock = %d, %v", f, err)
		}
		return f
	}
	atOnce := func(t *testing.T, what string) {
		t.Helper()
		start := time.Now()
		if err := waiter.WaitUnlock(ctx, key, notifyLongWait); err != nil {
			t.Fatalf("WaitUnlock %s = %v; want nil", what, err)
		}
		if d := time.Since(start); d > notifyPrompt {
			t.Fatalf("WaitUnlock %s took %v; want it at once", what, d)
		}
	}

	t.Run("not held", func(t *testing.T) {
		atOnce(t, "on a key never locked")
		f := lock(t, key, time.Minute)
		if err := holder.Unlock(ctx, key, f); err != nil {
			t.Fatal(err)
		}
		atOnce(t, "after Unlock")
		lock(t, key, time.Millisecond)
		time.Sleep(10 * time.Millisecond)
		atOnce(t, "after the lock's TTL")
	})

	// The holder unlocks after the waiter's Lock found the lock held, but
	// before its subscription: that Unlock's message goes to nobody, and
	// only the look at the lock after subscribing can tell.
	t.Run("released just before the subscription", func(t *testing.T) {
		for range 5 {
			f := lock(t, key, time.Minute)
			// The waiter's pool holds a connection now, and its Lock finds
			// the lock held, as a TokenSource's before it waits.
			if g, err := waiter.Lock(ctx, key, time.Minute); g != 0 || err != nil {
				t.Fatalf("the waiter's Lock of a held lock = %d, %v", g, err)
			}
			var released atomic.Bool
			unlock := func() { released.Store(holder.Unlock(ctx, key, f) == nil) }
			hook.Store(&unlock)
			atOnce(t, "when the holder unlocked just before the subscription")
			if hook.Load() != nil || !released.Load() {
				t.Fatal("the holder did not unlock between the waiter's Lock and its subscription: the test tested nothing")
			}
		}
	})

	t.Run("Unlock wakes", func(t *testing.T) {
		f := lock(t, key, time.Minute)
		done := waitUnlockAsync(ctx, waiter, key, notifyLongWait)
		time.Sleep(notifySettle)
		stillWaiting(t, done, "while the lock is held")
		if err := holder.Unlock(ctx, key, f+1); err != nil { // not the holder: no release
			t.Fatal(err)
		}
		fo := lock(t, other, time.Minute) // another key
		_ = holder.Unlock(ctx, other, fo)
		time.Sleep(notifySettle)
		stillWaiting(t, done, "after another holder's Unlock or another key's")
		unlocked := time.Now()
		if err := holder.Unlock(ctx, key, f); err != nil {
			t.Fatal(err)
		}
		wokenBy(t, done, unlocked, "Unlock")
	})

	t.Run("Save wakes", func(t *testing.T) {
		f := lock(t, key, time.Minute)
		defer func() { _ = holder.Unlock(ctx, key, f) }()
		done := waitUnlockAsync(ctx, waiter, key, notifyLongWait)
		time.Sleep(notifySettle)
		if err := holder.Save(ctx, key, testEntry(), f+1); !errors.Is(err, oauth.ErrLockLost) {
			t.Fatalf("Save with a foreign fence = %v", err)
		}
		time.Sleep(notifySettle)
		stillWaiting(t, done, "after a refused Save")
		saved := time.Now()
		if err := holder.Save(ctx, key, testEntry(), f); err != nil {
			t.Fatal(err)
		}
		wokenBy(t, done, saved, "Save")
	})

	t.Run("one Unlock wakes every waiter", func(t *testing.T) {
		f := lock(t, key, time.Minute)
		var waiters []<-chan waitResult
		for range 20 {
			waiters = append(waiters, waitUnlockAsync(ctx, waiter, key, notifyLongWait))
		}
		time.Sleep(4 * notifySettle)
		unlocked := time.Now()
		_ = holder.Unlock(ctx, key, f)
		for _, done := range waiters {
			wokenBy(t, done, unlocked, "Unlock")
		}
	})

	t.Run("held until maxWait", func(t *testing.T) {
		f := lock(t, key, time.Minute)
		defer func() { _ = holder.Unlock(ctx, key, f) }()
		start := time.Now()
		if err := waiter.WaitUnlock(ctx, key, notifyShortWait); err != nil {
			t.Fatalf("WaitUnlock = %v; want nil after maxWait", err)
		}
		if d := time.Since(start); d < notifyShortWait || d > notifyPrompt {
			t.Fatalf("WaitUnlock on a lock held throughout returned after %v; want its maxWait %v", d, notifyShortWait)
		}
	})

	t.Run("held until its TTL", func(t *testing.T) {
		locked := time.Now()
		lock(t, key, notifyShortWait)
		if err := waiter.WaitUnlock(ctx, key, notifyLongWait); err != nil {
			t.Fatalf("WaitUnlock = %v; want nil when the TTL passes", err)
		}
		if d := time.Since(locked); d < notifyShortWait || d > notifyPrompt {
			t.Fatalf("WaitUnlock on a lock of TTL %v returned %v after the Lock", notifyShortWait, d)
		}
		f, err := waiter.Lock(ctx, key, time.Minute)
		if err != nil || f <= 0 {
			t.Fatalf("Lock right after WaitUnlock saw the TTL pass = %d, %v; want the lock", f, err)
		}
		_ = waiter.Unlock(ctx, key, f)
	})

	t.Run("context", func(t *testing.T) {
		canceled, cancel := context.WithCancel(ctx)
		cancel()
		if err := waiter.WaitUnlock(canceled, key, notifyLongWait); !errors.Is(err, context.Canceled) {
			t.Fatalf("WaitUnlock with an ended context = %v; want context.Canceled", err)
		}
		f := lock(t, key, time.Minute)
		defer func() { _ = holder.Unlock(ctx, key, f) }()
		cctx, cancel := context.WithCancel(ctx)
		done := waitUnlockAsync(cctx, waiter, key, notifyLongWait)
		time.Sleep(notifySettle)
		stillWaiting(t, done, "before the cancel")
		canceledAt := time.Now()
		cancel()
		res := <-done
		if !errors.Is(res.Err, context.Canceled) || res.At.Sub(canceledAt) > notifyPrompt {
			t.Fatalf("WaitUnlock canceled = %v after %v; want context.Canceled at once", res.Err, res.At.Sub(canceledAt))
		}
		dctx, cancel := context.WithTimeout(ctx, notifyShortWait)
		defer cancel()
		if err := waiter.WaitUnlock(dctx, key, notifyLongWait); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("WaitUnlock past its context's deadline = %v; want context.DeadlineExceeded", err)
		}
	})

	for _, c := range clients {
		_ = c.Close()
	}
	goleak.VerifyNone(t, ignore)
}

// TestNotifyWithoutChannelPermission: an ACL user without channel
// permissions (the default for users created under Redis 7) cannot
// PUBLISH or SUBSCRIBE. Save and Unlock still work (the scripts' PUBLISH
// is best effort); WaitUnlock fails at once, not with a context error,
// and says so at Warn; and a fleet on that user still shares one token,
// polling.
func TestNotifyWithoutChannelPermission(t *testing.T) {
	r := startRedis(t)
	ctx := context.Background()
	admin := r.Client(t)
	if err := admin.Do(ctx, "ACL", "SETUSER", "nochannels", "on", ">pw", "~*", "+@all", "resetchannels").Err(); err != nil {
		t.Fatal(err)
	}
	client := func(t *testing.T) *redis.Client {
		c := redis.NewClient(&redis.Options{Addr: r.Addr(), Username: "nochannels", Password: "pw"})
		t.Cleanup(func() { _ = c.Close() })
		return c
	}
	var logs lockedBuffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	s := redisstore.New(client(t), redisstore.WithLogger(logger))
	key := oauth.StoreKey("1234567890", oauth.KindV21)

	f, err := s.Lock(ctx, key, time.Minute)
	if err != nil || f <= 0 {
		t.Fatalf("Lock = %d, %v", f, err)
	}
	start := time.Now()
	err = s.WaitUnlock(ctx, key, notifyLongWait)
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitUnlock without channel permission = %v; want the refusal", err)
	}
	if d := time.Since(start); d > notifyPrompt {
		t.Errorf("WaitUnlock took %v to fail; want at once", d)
	}
	t.Logf("error: %v", err)
	if !strings.Contains(logs.String(), "refused the subscription") {
		t.Errorf("no Warn about the refused subscription: %q", logs.String())
	}
	if err := s.Save(ctx, key, testEntry(), f); err != nil {
		t.Fatalf("Save without channel permission: %v", err)
	}
	if err := s.Unlock(ctx, key, f); err != nil {
		t.Fatalf("Unlock without channel permission: %v", err)
	}
	if g, err := s.Lock(ctx, key, time.Minute); g <= 0 || err != nil {
		t.Fatalf("Lock after the Unlock = %d, %v; want the lock (Unlock released it)", g, err)
	}

	srv := oauthtest.NewServer()
	t.Cleanup(srv.Close)
	ch := srv.NewChannel(t)
	srv.DelayNext(1, fleetUpstreamDelay)
	var fleet []*oauth.TokenSource
	for range 3 {
		c, err := oauth.NewClient(srv.Config(ch.ID))
		if err != nil {
			t.Fatal(err)
		}
		ts, err := oauth.NewTokenSource(c, oauth.TokenSourceOptions{Kind: oauth.KindShortLived, Store: redisstore.New(client(t))})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = ts.Close() })
		fleet = append(fleet, ts)
	}
	sameToken(t, tokenAll(t, fleet))
	if n := srv.IssueCount(oauthtest.KindShortLived); n != 1 {
		t.Errorf("the fleet issued %d tokens; want 1", n)
	}

	// The grant the package doc suggests is enough for the notices.
	if err := admin.Do(ctx, "ACL", "SETUSER", "wake", "on", ">pw", "~*", "+@all", "resetchannels", "&{linetoken:*}:wake").Err(); err != nil {
		t.Fatal(err)
	}
	granted := redis.NewClient(&redis.Options{Addr: r.Addr(), Username: "wake", Password: "pw"})
	t.Cleanup(func() { _ = granted.Close() })
	gs := redisstore.New(granted)
	other := oauth.StoreKey("1234567890", oauth.KindStateless)
	g, err := gs.Lock(ctx, other, time.Minute)
	if err != nil || g <= 0 {
		t.Fatalf("Lock = %d, %v", g, err)
	}
	done := waitUnlockAsync(ctx, redisstore.New(granted), other, notifyLongWait)
	time.Sleep(notifySettle)
	stillWaiting(t, done, "while the lock is held")
	unlocked := time.Now()
	if err := gs.Unlock(ctx, other, g); err != nil {
		t.Fatal(err)
	}
	wokenBy(t, done, unlocked, "Unlock, with the channel granted")
}

// fleetUpstreamDelay is how long the fleet tests' upstream takes to issue:
// just past the TokenSource's first poll (20ms), so that a fleet polling
// the store would look at it again only 60ms in, about 30ms after the
// token is saved.
const fleetUpstreamDelay = 25 * time.Millisecond

// fleetWakeMedian bounds the median of how long after the holder's Save
// the fleet's processes have their token. Woken by the PUBLISH, each takes
// a message and a Load: 2-7ms seen under -race on a busy 2-core machine;
// polling, about 35ms (their next look is 60ms in). The median, over
// several rounds, keeps one descheduled goroutine from failing the test;
// the bound sits between the two, as far from woken as polling allows
// (a 16.8ms median was seen with two test suites running at once).
const fleetWakeMedian = 25 * time.Millisecond

// fleetLoadsPerSource bounds the store Loads of one source in a round. A
// follower looks at the store when it starts, when its first wait (20ms)
// runs out while the holder still issues, and when woken: 3.
const fleetLoadsPerSource = 5

// fleetWatch is what the stores of one fleet round saw.
type fleetWatch struct {
	loads, waits atomic.Int64
	savedAt      atomic.Int64 // UnixNano when the first successful Save began
}

// watchedStore is a Store that reports to a fleetWatch.
type watchedStore struct {
	*redisstore.Store
	w *fleetWatch
}

func (s watchedStore) Load(ctx context.Context, key string) (*oauth.StoreEntry, error) {
	s.w.loads.Add(1)
	return s.Store.Load(ctx, key)
}

func (s watchedStore) Save(ctx context.Context, key string, e *oauth.StoreEntry, fence int64) error {
	at := time.Now()
	err := s.Store.Save(ctx, key, e, fence)
	if err == nil {
		s.w.savedAt.CompareAndSwap(0, at.UnixNano())
	}
	return err
}

func (s watchedStore) WaitUnlock(ctx context.Context, key string, maxWait time.Duration) error {
	s.w.waits.Add(1)
	return s.Store.WaitUnlock(ctx, key, maxWait)
}

// TestFleetWokenBySave: twenty processes (each its own client, Redis
// connections and Store) find no token at once. One issues, against an
// upstream taking 25ms; the others, finding the lock held, wait for its
// PUBLISH and have the token as soon as it is saved, not at their next
// look at the store (60ms in, when polling). Each round issues exactly
// once and the followers look at the store a few times only.
func TestFleetWokenBySave(t *testing.T) {
	const rounds = 3
	r := startRedis(t)
	srv := oauthtest.NewServer()
	t.Cleanup(srv.Close)
	var delays []time.Duration
	for round := range rounds {
		ch := srv.NewChannel(t) // a new key: no token yet
		var w fleetWatch
		fleet := make([]*oauth.TokenSource, fleetSize)
		for i := range fleet {
			c, err := oauth.NewClient(srv.Config(ch.ID))
			if err != nil {
				t.Fatal(err)
			}
			store := watchedStore{Store: redisstore.New(r.Client(t)), w: &w}
			if fleet[i], err = oauth.NewTokenSource(c, oauth.TokenSourceOptions{Kind: oauth.KindShortLived, Store: store}); err != nil {
				t.Fatal(err)
			}
		}
		before := srv.IssueCount(oauthtest.KindShortLived)
		srv.DelayNext(1, fleetUpstreamDelay)
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		returned, toks, err := storetest.FleetRound(ctx, fleet)
		cancel()
		for _, ts := range fleet {
			_ = ts.Close()
		}
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		if n := srv.IssueCount(oauthtest.KindShortLived) - before; n != 1 {
			t.Fatalf("round %d: %d processes issued %d tokens; want 1", round, fleetSize, n)
		}
		if slices.ContainsFunc(toks, func(s string) bool { return s != toks[0] }) {
			t.Fatalf("round %d: the processes got different tokens", round)
		}
		if n := w.waits.Load(); n < fleetSize-1 {
			t.Errorf("round %d: %d WaitUnlock calls; want one at least from each of the %d followers", round, n, fleetSize-1)
		}
		if n := w.loads.Load(); n > fleetSize*fleetLoadsPerSource {
			t.Errorf("round %d: %d store Loads by %d processes; want at most %d each", round, n, fleetSize, fleetLoadsPerSource)
		}
		saved := time.Unix(0, w.savedAt.Load())
		for _, at := range returned {
			delays = append(delays, at.Sub(saved))
		}
	}
	storetest.CheckMedianDelay(t, delays, fleetWakeMedian)
}
