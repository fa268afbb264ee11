//go:build unix

package oauth_test

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/linetoken/linetoken/internal/storetest"
	"github.com/linetoken/linetoken/internal/testkit"
	"github.com/linetoken/linetoken/oauth"
)

// memDir is a directory in memory where the machine has one (testkit.MemDir).
var memDir = testkit.MemDir

// TestFileStoreWaitUnlock: two FileStores on one path stand for two
// processes. WaitUnlock returns at once when the lock is free (also when
// it was let go just before), as soon as the holder saves or unlocks (it
// watches the file, which every write replaces), when the lock's TTL
// passes, after maxWait when nothing happens, and when its context ends.
func TestFileStoreWaitUnlock(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	path := filepath.Join(memDir(t), "tokens.json")
	holder, err := oauth.NewFileStore(path)
	if err != nil {
		t.Fatal(err)
	}
	waiter, err := oauth.NewFileStore(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	const key = "k"
	lock := func(ttl time.Duration) int64 {
		t.Helper()
		fence, err := holder.Lock(ctx, key, ttl)
		if err != nil || fence <= 0 {
			t.Fatalf("Lock = %d, %v", fence, err)
		}
		return fence
	}

	start := time.Now()
	if err := waiter.WaitUnlock(ctx, key, notifyLongWait); err != nil || time.Since(start) > notifyPrompt {
		t.Fatalf("WaitUnlock with no lock = %v after %v; want nil at once", err, time.Since(start))
	}
	fence := lock(time.Minute)
	if err := holder.Unlock(ctx, key, fence); err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	if err := waiter.WaitUnlock(ctx, key, notifyLongWait); err != nil || time.Since(start) > notifyPrompt {
		t.Fatalf("WaitUnlock after an Unlock = %v after %v; want nil at once", err, time.Since(start))
	}

	fence = lock(time.Minute)
	done := waitUnlockAsync(ctx, waiter, key, notifyLongWait)
	time.Sleep(notifySettle)
	stillWaiting(t, done, "while the lock is held")
	at := time.Now()
	if err := holder.Save(ctx, key, &oauth.StoreEntry{Token: &oauth.Token{AccessToken: "a", Expiry: time.Now().Add(time.Hour)}}, fence); err != nil {
		t.Fatal(err)
	}
	wokenBy(t, done, at, "a Save")

	done = waitUnlockAsync(ctx, waiter, key, notifyLongWait)
	time.Sleep(notifySettle)
	stillWaiting(t, done, "while the lock is still held")
	at = time.Now()
	if err := holder.Unlock(ctx, key, fence); err != nil {
		t.Fatal(err)
	}
	wokenBy(t, done, at, "an Unlock")

	lock(notifyShortWait) // its TTL ends the wait
	at = time.Now()
	if err := waiter.WaitUnlock(ctx, key, notifyLongWait); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(at); d > notifyPrompt {
		t.Fatalf("WaitUnlock on a lock with a %v TTL returned after %v", notifyShortWait, d)
	}
	time.Sleep(notifyShortWait) // the lock has expired: take it again
	lock(time.Minute)
	at = time.Now()
	if err := waiter.WaitUnlock(ctx, key, notifyShortWait); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(at); d < notifyShortWait {
		t.Fatalf("WaitUnlock(maxWait %v) on a held, untouched lock returned after %v", notifyShortWait, d)
	}
	cctx, cancel := context.WithCancel(ctx)
	done = waitUnlockAsync(cctx, waiter, key, notifyLongWait)
	time.Sleep(notifySettle)
	cancel()
	select {
	case r := <-done:
		if !errors.Is(r.Err, context.Canceled) {
			t.Fatalf("WaitUnlock cancelled = %v; want context.Canceled", r.Err)
		}
	case <-time.After(notifyPrompt):
		t.Fatal("WaitUnlock did not return when its context ended")
	}
}

// savedFileStore is a FileStore (one process of a fleet) that notes when
// the first Save of the round returned.
type savedFileStore struct {
	*oauth.FileStore
	savedAt *atomic.Int64
}

func (s savedFileStore) Save(ctx context.Context, key string, e *oauth.StoreEntry, fence int64) error {
	err := s.FileStore.Save(ctx, key, e, fence)
	if err == nil {
		s.savedAt.CompareAndSwap(0, time.Now().UnixNano())
	}
	return err
}

// TestFileStoreFleetWokenBySave: five sources, each with a FileStore of
// its own on one file (five processes on one host), find no token at
// once. One issues against an upstream taking 25ms; the others have the
// token within a few milliseconds of its Save, not at their next look at
// the store (60ms in, about 35ms after the Save, when polling).
func TestFileStoreFleetWokenBySave(t *testing.T) {
	const (
		sources = 5
		rounds  = 3
	)
	srv := newSlowIssuer(t, fleetUpstreamDelay)
	clk := newFakeClock()
	dir := memDir(t)
	var delays []time.Duration
	for round := range rounds {
		path := filepath.Join(dir, "round-"+string(rune('a'+round))+".json")
		var savedAt atomic.Int64
		fleet := make([]*oauth.TokenSource, sources)
		for i := range fleet {
			fs, err := oauth.NewFileStore(path)
			if err != nil {
				t.Fatal(err)
			}
			fleet[i] = newSource(t, clientFor(t, srv.URL, clk), oauth.TokenSourceOptions{Kind: oauth.KindShortLived,
				Store: savedFileStore{FileStore: fs, savedAt: &savedAt}})
		}
		before := srv.issues.Load()
		ctx, cancel := context.WithTimeout(context.Background(), notifyLongWait)
		returned, toks, err := storetest.FleetRound(ctx, fleet)
		cancel()
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		if n := srv.issues.Load() - before; n != 1 {
			t.Fatalf("round %d: %d sources on one file issued %d tokens; want 1", round, sources, n)
		}
		if toks[0] == "" || slices.ContainsFunc(toks, func(s string) bool { return s != toks[0] }) {
			t.Fatalf("round %d: the sources got %v; want one token", round, toks)
		}
		saved := time.Unix(0, savedAt.Load())
		for _, at := range returned {
			delays = append(delays, at.Sub(saved))
		}
		for _, ts := range fleet {
			_ = ts.Close()
		}
	}
	storetest.CheckMedianDelay(t, delays, fleetWakeMedian)
}
