package oauth_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/linetoken/linetoken/internal/storetest"
	"github.com/linetoken/linetoken/oauth"
)

const (
	notifyLongWait = storetest.LongWait
	notifyPrompt   = storetest.Prompt
	// notifyShortWait is the maxWait (or lock TTL) of waits that must run
	// to their end.
	notifyShortWait = 60 * time.Millisecond
	// notifySettle lets a waiter goroutine reach its wait before the test
	// acts; a waiter still on its way is woken all the same (it finds the
	// lock let go), so this only makes the test exercise the wake-up.
	notifySettle = 20 * time.Millisecond
)

// The WaitUnlock helpers are shared with the other store's tests.
type waitResult = storetest.WaitResult

var (
	waitUnlockAsync = storetest.WaitUnlockAsync
	stillWaiting    = storetest.StillWaiting
	wokenBy         = storetest.WokenBy
)

// TestMemoryStoreWaitUnlock: WaitUnlock returns as soon as the lock is
// let go (Unlock, Save, TTL), at once when it is not held, after maxWait
// when it stays held, and when its context ends; it leaks no goroutine.
func TestMemoryStoreWaitUnlock(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	key := oauth.StoreKey("1234567890", oauth.KindV21)
	other := oauth.StoreKey("1234567890", oauth.KindShortLived)
	bg := context.Background()
	lock := func(t *testing.T, s *oauth.MemoryStore, ttl time.Duration) int64 {
		t.Helper()
		f, err := s.Lock(bg, key, ttl)
		if err != nil || f <= 0 {
			t.Fatalf("Lock = %d, %v", f, err)
		}
		return f
	}
	atOnce := func(t *testing.T, s *oauth.MemoryStore, what string) {
		t.Helper()
		start := time.Now()
		if err := s.WaitUnlock(bg, key, notifyLongWait); err != nil {
			t.Fatalf("WaitUnlock %s = %v; want nil", what, err)
		}
		if d := time.Since(start); d > notifyPrompt {
			t.Fatalf("WaitUnlock %s took %v; want it at once", what, d)
		}
	}

	t.Run("not held", func(t *testing.T) {
		s := oauth.NewMemoryStore()
		atOnce(t, s, "on a key never locked")
		f := lock(t, s, time.Minute)
		if err := s.Unlock(bg, key, f); err != nil {
			t.Fatal(err)
		}
		atOnce(t, s, "after Unlock")
		lock(t, s, time.Millisecond)
		time.Sleep(5 * time.Millisecond)
		atOnce(t, s, "after the lock's TTL")
	})

	t.Run("Unlock wakes", func(t *testing.T) {
		s := oauth.NewMemoryStore()
		f := lock(t, s, time.Minute)
		done := waitUnlockAsync(bg, s, key, notifyLongWait)
		time.Sleep(notifySettle)
		stillWaiting(t, done, "while the lock is held")
		if err := s.Unlock(bg, key, f+1); err != nil { // not the holder: no release
			t.Fatal(err)
		}
		fo, _ := s.Lock(bg, other, time.Minute) // another key
		_ = s.Unlock(bg, other, fo)
		time.Sleep(notifySettle)
		stillWaiting(t, done, "after another holder's Unlock or another key's")
		unlocked := time.Now()
		if err := s.Unlock(bg, key, f); err != nil {
			t.Fatal(err)
		}
		wokenBy(t, done, unlocked, "Unlock")
	})

	t.Run("Save wakes", func(t *testing.T) {
		s := oauth.NewMemoryStore()
		f := lock(t, s, time.Minute)
		done := waitUnlockAsync(bg, s, key, notifyLongWait)
		time.Sleep(notifySettle)
		if err := s.Save(bg, key, &oauth.StoreEntry{}, f+1); !errors.Is(err, oauth.ErrLockLost) {
			t.Fatalf("Save with a foreign fence = %v", err)
		}
		time.Sleep(notifySettle)
		stillWaiting(t, done, "after a refused Save")
		saved := time.Now()
		if err := s.Save(bg, key, &oauth.StoreEntry{}, f); err != nil {
			t.Fatal(err)
		}
		wokenBy(t, done, saved, "Save")
	})

	t.Run("one Unlock wakes every waiter", func(t *testing.T) {
		s := oauth.NewMemoryStore()
		f := lock(t, s, time.Minute)
		var waiters []<-chan waitResult
		for range 50 {
			waiters = append(waiters, waitUnlockAsync(bg, s, key, notifyLongWait))
		}
		time.Sleep(notifySettle)
		unlocked := time.Now()
		_ = s.Unlock(bg, key, f)
		for _, done := range waiters {
			wokenBy(t, done, unlocked, "Unlock")
		}
		// Waiting again, on a lock taken again, needs a new Unlock.
		f = lock(t, s, time.Minute)
		done := waitUnlockAsync(bg, s, key, notifyLongWait)
		time.Sleep(notifySettle)
		stillWaiting(t, done, "on the lock taken again")
		unlocked = time.Now()
		_ = s.Unlock(bg, key, f)
		wokenBy(t, done, unlocked, "the second Unlock")
	})

	t.Run("held until maxWait", func(t *testing.T) {
		s := oauth.NewMemoryStore()
		lock(t, s, time.Minute)
		start := time.Now()
		if err := s.WaitUnlock(bg, key, notifyShortWait); err != nil {
			t.Fatalf("WaitUnlock = %v; want nil after maxWait", err)
		}
		if d := time.Since(start); d < notifyShortWait || d > notifyPrompt {
			t.Fatalf("WaitUnlock on a lock held throughout returned after %v; want its maxWait %v", d, notifyShortWait)
		}
	})

	t.Run("held until its TTL", func(t *testing.T) {
		s := oauth.NewMemoryStore()
		locked := time.Now()
		lock(t, s, notifyShortWait)
		if err := s.WaitUnlock(bg, key, notifyLongWait); err != nil {
			t.Fatalf("WaitUnlock = %v; want nil when the TTL passes", err)
		}
		if d := time.Since(locked); d < notifyShortWait || d > notifyPrompt {
			t.Fatalf("WaitUnlock on a lock of TTL %v returned %v after the Lock", notifyShortWait, d)
		}
		if f, _ := s.Lock(bg, key, time.Minute); f <= 0 {
			t.Fatal("WaitUnlock returned, yet the lock is still held")
		}
	})

	t.Run("context", func(t *testing.T) {
		s := oauth.NewMemoryStore()
		canceled, cancel := context.WithCancel(bg)
		cancel()
		if err := s.WaitUnlock(canceled, key, notifyLongWait); !errors.Is(err, context.Canceled) {
			t.Fatalf("WaitUnlock with an ended context, lock free = %v; want context.Canceled", err)
		}
		lock(t, s, time.Minute)
		ctx, cancel := context.WithCancel(bg)
		done := waitUnlockAsync(ctx, s, key, notifyLongWait)
		time.Sleep(notifySettle)
		stillWaiting(t, done, "before the cancel")
		canceledAt := time.Now()
		cancel()
		r := <-done
		if !errors.Is(r.Err, context.Canceled) || r.At.Sub(canceledAt) > notifyPrompt {
			t.Fatalf("WaitUnlock canceled = %v after %v; want context.Canceled at once", r.Err, r.At.Sub(canceledAt))
		}
		ctx, cancel = context.WithTimeout(bg, notifyShortWait)
		defer cancel()
		if err := s.WaitUnlock(ctx, key, notifyLongWait); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("WaitUnlock past its context's deadline = %v; want context.DeadlineExceeded", err)
		}
	})

	goleak.VerifyNone(t, ignore)
}

// TestMemoryStoreUnwatchedLockAllocatesNothing: with nobody waiting, a
// Lock and Unlock cost MemoryStore no allocation for the notices.
func TestMemoryStoreUnwatchedLockAllocatesNothing(t *testing.T) {
	s := oauth.NewMemoryStore()
	ctx := context.Background()
	key := oauth.StoreKey("1234567890", oauth.KindV21)
	cycle := func() {
		f, _ := s.Lock(ctx, key, time.Minute)
		_ = s.Save(ctx, key, nil, f)
		_ = s.Unlock(ctx, key, f)
	}
	cycle()
	if n := testing.AllocsPerRun(100, cycle); n != 0 {
		t.Errorf("Lock, Save and Unlock allocate %v times; want 0", n)
	}
}

// fleetUpstreamDelay is how long the fleet tests' upstream takes to issue:
// just past lockPollMin (20ms), so that a fleet polling the store would
// look at it again only 60ms in, about 35ms after the token is saved.
const fleetUpstreamDelay = 25 * time.Millisecond

// fleetWakeMedian bounds the median of how long after the holder's Save
// the fleet's sources have their token. Woken by the store, each takes a
// Load: under 1ms seen under -race on a busy 2-core machine; polling,
// about 35ms (their next look is 60ms in). The median, over several
// rounds, keeps one descheduled goroutine from failing the test.
const fleetWakeMedian = 10 * time.Millisecond

// fleetLoadsPerSource bounds the store Loads of one source in a round. A
// follower looks at the store when it starts, when its first wait (20ms)
// runs out while the holder still issues, and when woken: 3. A notifier
// that returned at once, again and again, would make hundreds.
const fleetLoadsPerSource = 5

// watchedStore is a MemoryStore that counts Loads and WaitUnlocks and
// notes when the first successful Save began (the holder's; a Close
// saves too).
type watchedStore struct {
	*oauth.MemoryStore
	loads, waits atomic.Int64
	savedAt      atomic.Int64 // UnixNano
}

func (s *watchedStore) Load(ctx context.Context, key string) (*oauth.StoreEntry, error) {
	s.loads.Add(1)
	return s.MemoryStore.Load(ctx, key)
}

func (s *watchedStore) Save(ctx context.Context, key string, e *oauth.StoreEntry, fence int64) error {
	at := time.Now()
	err := s.MemoryStore.Save(ctx, key, e, fence)
	if err == nil {
		s.savedAt.CompareAndSwap(0, at.UnixNano())
	}
	return err
}

func (s *watchedStore) WaitUnlock(ctx context.Context, key string, maxWait time.Duration) error {
	s.waits.Add(1)
	return s.MemoryStore.WaitUnlock(ctx, key, maxWait)
}

// slowIssuer answers short-lived token requests after a delay; it counts
// the requests that arrived and the tokens issued.
type slowIssuer struct {
	*httptest.Server
	arrived, issues atomic.Int64
}

func newSlowIssuer(t *testing.T, delay time.Duration) *slowIssuer {
	t.Helper()
	is := &slowIssuer{}
	is.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v2/oauth/accessToken" {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		is.arrived.Add(1)
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			return
		}
		n := is.issues.Add(1)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"access_token":"fleet-token-%d","token_type":"Bearer","expires_in":2592000}`, n)
	}))
	t.Cleanup(is.Close)
	return is
}

// TestFleetFollowersWokenBySave: ten sources sharing a MemoryStore find no
// token at once. One issues, against an upstream taking 25ms; the others,
// finding the lock held, wait in WaitUnlock and have the token as soon as
// it is saved, not at their next look at the store (60ms in, when
// polling). Each round issues exactly once and the followers look at the
// store a few times only.
func TestFleetFollowersWokenBySave(t *testing.T) {
	const (
		sources = 10
		rounds  = 3
	)
	srv := newSlowIssuer(t, fleetUpstreamDelay)
	clk := newFakeClock()
	var delays []time.Duration
	for round := range rounds {
		store := &watchedStore{MemoryStore: oauth.NewMemoryStore()}
		fleet := make([]*oauth.TokenSource, sources)
		for i := range fleet {
			fleet[i] = newSource(t, clientFor(t, srv.URL, clk), oauth.TokenSourceOptions{Kind: oauth.KindShortLived, Store: store})
		}
		before := srv.issues.Load()
		ctx, cancel := context.WithTimeout(context.Background(), notifyLongWait)
		returned, toks, err := storetest.FleetRound(ctx, fleet)
		cancel()
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		if n := srv.issues.Load() - before; n != 1 {
			t.Fatalf("round %d: %d sources on one store issued %d tokens; want 1", round, sources, n)
		}
		if toks[0] == "" || slices.ContainsFunc(toks, func(s string) bool { return s != toks[0] }) {
			t.Fatalf("round %d: the sources got %v; want one token", round, toks)
		}
		if n := store.waits.Load(); n < sources-1 {
			t.Errorf("round %d: %d WaitUnlock calls; want one at least from each of the %d followers", round, n, sources-1)
		}
		if n := store.loads.Load(); n > sources*fleetLoadsPerSource {
			t.Errorf("round %d: %d store Loads by %d sources; want at most %d each", round, n, sources, fleetLoadsPerSource)
		}
		saved := time.Unix(0, store.savedAt.Load())
		for _, at := range returned {
			delays = append(delays, at.Sub(saved))
		}
		for _, ts := range fleet {
			_ = ts.Close()
		}
	}
	storetest.CheckMedianDelay(t, delays, fleetWakeMedian)
}

// hastyStore is a MemoryStore whose WaitUnlock returns at once: nil (a
// notifier that always wakes early, which its contract allows) or err (a
// store that cannot watch its lock).
type hastyStore struct {
	*oauth.MemoryStore
	err          error
	loads, waits atomic.Int64
}

func (s *hastyStore) Load(ctx context.Context, key string) (*oauth.StoreEntry, error) {
	s.loads.Add(1)
	return s.MemoryStore.Load(ctx, key)
}

func (s *hastyStore) WaitUnlock(context.Context, string, time.Duration) error {
	s.waits.Add(1)
	return s.err
}

// hastyFollowerWait bounds the follower's wait in TestTokenSourceHastyNotifier:
// polling, it has the token at its look 60ms in; backing off per early
// wake-up instead of per wait, it would wait for lockPollMax (1s).
const hastyFollowerWait = 500 * time.Millisecond

// hastyWakes bounds the early wake-ups a follower heeds: a handful
// (MaxEarlyWakes), not a spin of thousands while the holder issues.
const hastyWakes = 20

// TestTokenSourceHastyNotifier: a source waiting for another's refresh
// on a store whose WaitUnlock returns at once does not spin on the store:
// it heeds MaxEarlyWakes early returns, then polls; a WaitUnlock that
// fails has it poll at once, and for the rest of that refresh (one
// WaitUnlock call, not one per poll). Either way the follower gets the holder's
// token, and one token is issued.
func TestTokenSourceHastyNotifier(t *testing.T) {
	for _, tc := range []struct {
		name      string
		err       error
		waits     int64 // the follower's WaitUnlock calls, at most
		loadsOver int64 // the follower's Loads beyond those polling makes, at most
	}{
		{"always early", nil, hastyWakes, hastyWakes},
		{"failing", errors.New("cannot watch"), 1, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newSlowIssuer(t, fleetUpstreamDelay)
			clk := newFakeClock()
			store := &hastyStore{MemoryStore: oauth.NewMemoryStore(), err: tc.err}
			holder := newSource(t, clientFor(t, srv.URL, clk), oauth.TokenSourceOptions{Kind: oauth.KindShortLived, Store: store})
			follower := newSource(t, clientFor(t, srv.URL, clk), oauth.TokenSourceOptions{Kind: oauth.KindShortLived, Store: store})
			ctx, cancel := context.WithTimeout(context.Background(), notifyLongWait)
			defer cancel()
			held := make(chan *oauth.Token, 1)
			go func() {
				tok, err := holder.Token(ctx)
				if err != nil {
					t.Error(err)
				}
				held <- tok
			}()
			// The follower comes once the holder, under the lock, issues.
			eventually(t, "the holder's issue", func() bool { return srv.arrived.Load() == 1 })
			base := store.loads.Load()
			start := time.Now()
			tok, err := follower.Token(ctx)
			if err != nil {
				t.Fatal(err)
			}
			// Polling from 20ms, doubling, it looks again at 60ms: its
			// wait must not have backed off per early wake-up, to 1s.
			if d := time.Since(start); d > hastyFollowerWait {
				t.Errorf("the follower waited %v; want under %v", d, hastyFollowerWait)
			}
			if h := <-held; h == nil || tok.AccessToken != h.AccessToken {
				t.Fatalf("follower got %v, holder %v; want the one token", tok, h)
			}
			if n := srv.issues.Load(); n != 1 {
				t.Errorf("%d issues; want 1", n)
			}
			// Polling, the follower looks when it comes and at 20ms and
			// 60ms (the holder saves at about 25ms): 3 Loads; 4 if slow.
			loads := store.loads.Load() - base
			if limit := 4 + tc.loadsOver; loads > limit {
				t.Errorf("the follower made %d Loads; want at most %d", loads, limit)
			}
			if tc.err == nil && store.waits.Load() != oauth.MaxEarlyWakes {
				t.Errorf("the follower called WaitUnlock %d times; want MaxEarlyWakes (%d), then polling", store.waits.Load(), oauth.MaxEarlyWakes)
			}
			if n := store.waits.Load(); n < 1 || n > tc.waits {
				t.Errorf("the follower called WaitUnlock %d times; want 1 to %d", n, tc.waits)
			}
		})
	}
}
