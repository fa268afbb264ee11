package redisstore_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/linetoken/linetoken/internal/testredis"
	"github.com/linetoken/linetoken/oauth"
	"github.com/linetoken/linetoken/oauth/redisstore"
)

const (
	// testTimeout bounds every wait of a test: far above what any step needs.
	testTimeout = 10 * time.Second
	// pollEvery is the interval of the tests' polling loops.
	pollEvery = 10 * time.Millisecond
)

// waitFor polls cond until it holds, failing t after testTimeout.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	tick := time.NewTicker(pollEvery)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out after %v waiting for %s", testTimeout, what)
		case <-tick.C:
		}
	}
}

func testEntry() *oauth.StoreEntry {
	exp := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	return &oauth.StoreEntry{
		Token: &oauth.Token{AccessToken: "current-SECRET-token", TokenType: "Bearer", KeyID: "kid-1",
			ExpiresIn: 30 * 24 * time.Hour, Expiry: exp},
		Pending: []oauth.PendingRevocation{{
			Token: oauth.Token{AccessToken: "old-SECRET-token", TokenType: "Bearer", KeyID: "kid-0",
				ExpiresIn: time.Hour, Expiry: exp.Add(-time.Hour)},
			RevokeAfter: exp.Add(-2 * time.Hour),
		}},
	}
}

// testStoreContract checks what oauth.Store promises, on any store.
func testStoreContract(t *testing.T, s oauth.Store) {
	ctx := context.Background()
	key := oauth.StoreKey("1234567890", oauth.KindV21)
	other := oauth.StoreKey("1234567890", oauth.KindShortLived)

	if e, err := s.Load(ctx, key); e != nil || err != nil {
		t.Fatalf("Load of an empty store = %v, %v; want nil, nil", e, err)
	}
	f1, err := s.Lock(ctx, key, time.Minute)
	if err != nil || f1 <= 0 {
		t.Fatalf("Lock = %d, %v; want a fence > 0", f1, err)
	}
	if f, err := s.Lock(ctx, key, time.Minute); f != 0 || err != nil {
		t.Fatalf("second Lock = %d, %v; want 0, nil", f, err)
	}
	fo, err := s.Lock(ctx, other, time.Minute)
	if err != nil || fo <= 0 {
		t.Fatalf("Lock of another key = %d, %v; want a fence > 0 (keys lock apart)", fo, err)
	}
	want := testEntry()
	if err := s.Save(ctx, key, want, f1); err != nil {
		t.Fatalf("Save with the holder's fence: %v", err)
	}
	got, err := s.Load(ctx, key)
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("Load after Save = %+v, %v; want %+v", got, err, want)
	}
	got.Token.AccessToken = "modified"
	if again, _ := s.Load(ctx, key); again.Token.AccessToken != want.Token.AccessToken {
		t.Fatal("Load returned an entry sharing memory with the store")
	}
	if err := s.Save(ctx, key, &oauth.StoreEntry{}, f1+1000); !errors.Is(err, oauth.ErrLockLost) {
		t.Fatalf("Save with a foreign fence = %v; want ErrLockLost", err)
	}
	if err := s.Unlock(ctx, key, f1+1000); err != nil {
		t.Fatalf("Unlock with a foreign fence: %v", err)
	}
	if f, _ := s.Lock(ctx, key, time.Minute); f != 0 {
		t.Fatal("Unlock with a foreign fence released the lock")
	}
	if err := s.Unlock(ctx, key, f1); err != nil {
		t.Fatalf("Unlock: %v", err)
	}
	if err := s.Save(ctx, key, &oauth.StoreEntry{}, f1); !errors.Is(err, oauth.ErrLockLost) {
		t.Fatalf("Save after Unlock = %v; want ErrLockLost", err)
	}
	if got, _ := s.Load(ctx, key); !reflect.DeepEqual(got, want) {
		t.Fatalf("a refused Save changed the entry: %+v", got)
	}

	// The lock's TTL lets a new holder in, whose fence is greater; the old
	// holder's Save then fails.
	f2, err := s.Lock(ctx, key, 50*time.Millisecond)
	if err != nil || f2 <= f1 {
		t.Fatalf("Lock after Unlock = %d, %v; want a fence > %d", f2, err, f1)
	}
	var f3 int64
	waitFor(t, "the lock's TTL to pass", func() bool {
		f3, err = s.Lock(ctx, key, time.Minute)
		if err != nil {
			t.Fatalf("Lock: %v", err)
		}
		return f3 != 0
	})
	if f3 <= f2 {
		t.Fatalf("fence after the TTL = %d; want > %d", f3, f2)
	}
	if err := s.Save(ctx, key, &oauth.StoreEntry{}, f2); !errors.Is(err, oauth.ErrLockLost) {
		t.Fatalf("Save by the expired holder = %v; want ErrLockLost", err)
	}
	if err := s.Unlock(ctx, key, f2); err != nil {
		t.Fatalf("Unlock by the expired holder: %v", err)
	}
	if f, _ := s.Lock(ctx, key, time.Minute); f != 0 {
		t.Fatal("the expired holder's Unlock released the new holder's lock")
	}
	if err := s.Save(ctx, key, nil, f3); err != nil {
		t.Fatalf("Save(nil) by the holder: %v", err)
	}
	if e, err := s.Load(ctx, key); e != nil || err != nil {
		t.Fatalf("Load after Save(nil) = %v, %v; want nil, nil", e, err)
	}
	_ = s.Unlock(ctx, key, f3)

	// Fences keep increasing over many grants.
	last := f3
	for range 20 {
		f, err := s.Lock(ctx, key, time.Minute)
		if err != nil || f <= last {
			t.Fatalf("Lock = %d, %v; want a fence > %d", f, err, last)
		}
		last = f
		if err := s.Unlock(ctx, key, f); err != nil {
			t.Fatal(err)
		}
	}

	// A context already ended is honoured.
	done, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := s.Load(done, key); !errors.Is(err, context.Canceled) {
		t.Errorf("Load with a canceled context = %v", err)
	}
	if _, err := s.Lock(done, key, time.Minute); !errors.Is(err, context.Canceled) {
		t.Errorf("Lock with a canceled context = %v", err)
	}
	if err := s.Save(done, key, want, last); !errors.Is(err, context.Canceled) {
		t.Errorf("Save with a canceled context = %v", err)
	}
}

func TestStoreContract(t *testing.T) {
	t.Run("MemoryStore", func(t *testing.T) { testStoreContract(t, oauth.NewMemoryStore()) })
	t.Run("redisstore", func(t *testing.T) {
		r := startRedis(t)
		testStoreContract(t, redisstore.New(r.Client(t)))
	})
}

// TestKeyLayout pins the keys: the entry without expiry, the lock with the
// fence as value and a TTL, the counter; nothing else.
func TestKeyLayout(t *testing.T) {
	r := startRedis(t)
	rdb := r.Client(t)
	s := redisstore.New(rdb, redisstore.WithPrefix("app:"))
	ctx := context.Background()
	key := oauth.StoreKey("1234567890", oauth.KindV21)
	base := "app:{linetoken:v1:1234567890:v2.1}"

	before := time.Now().UnixMicro()
	f, err := s.Lock(ctx, key, 30*time.Second)
	after := time.Now().UnixMicro()
	// The counter starts at Redis's clock in µs (same host: same clock).
	if err != nil || f <= before || f > after+1 {
		t.Fatalf("first Lock = %d, %v; want Redis's clock in µs + 1, in (%d, %d]", f, err, before, after+1)
	}
	fs := strconv.FormatInt(f, 10)
	if err := s.Save(ctx, key, testEntry(), f); err != nil {
		t.Fatal(err)
	}
	keys, err := rdb.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(keys)
	if want := []string{base, base + ":fence", base + ":lock"}; !slices.Equal(keys, want) {
		t.Fatalf("keys = %q; want %q", keys, want)
	}
	if v := rdb.Get(ctx, base+":lock").Val(); v != fs {
		t.Errorf("lock value = %q; want the fence %s", v, fs)
	}
	if ttl := rdb.PTTL(ctx, base+":lock").Val(); ttl <= 0 || ttl > 30*time.Second {
		t.Errorf("lock TTL = %v; want (0, 30s]", ttl)
	}
	if v := rdb.Get(ctx, base+":fence").Val(); v != fs {
		t.Errorf("fence counter = %q; want %s", v, fs)
	}
	if ttl := rdb.TTL(ctx, base).Val(); ttl != -1 {
		t.Errorf("entry TTL = %v; want none (-1)", ttl)
	}
	var e oauth.StoreEntry
	if err := e.UnmarshalBinary([]byte(rdb.Get(ctx, base).Val())); err != nil || !reflect.DeepEqual(&e, testEntry()) {
		t.Errorf("entry = %+v, %v; want the JSON of what was saved", e, err)
	}
	// A held lock spends no fence.
	if f, _ := s.Lock(ctx, key, time.Second); f != 0 {
		t.Fatal("Lock of a held lock succeeded")
	}
	if v := rdb.Get(ctx, base+":fence").Val(); v != fs {
		t.Errorf("fence counter after a refused Lock = %q; want %s", v, fs)
	}
	if err := s.Unlock(ctx, key, f); err != nil {
		t.Fatal(err)
	}
	if n := rdb.Exists(ctx, base+":lock").Val(); n != 0 {
		t.Error("Unlock left the lock")
	}
	// Sub-millisecond TTLs round up; non-positive ones are refused.
	if f2, err := s.Lock(ctx, key, time.Microsecond); err != nil || f2 != f+1 {
		t.Errorf("Lock(1µs) = %d, %v; want %d", f2, err, f+1)
	}
	if _, err := s.Lock(ctx, key, 0); err == nil {
		t.Error("Lock(ttl 0) succeeded")
	}
}

// TestCorruptEntry: an unreadable entry is absent, logged by key and
// counted; neither the log nor anything else shows its value; a
// TokenSource replaces it with one issue.
func TestCorruptEntry(t *testing.T) {
	r := startRedis(t)
	rdb := r.Client(t)
	var logs bytes.Buffer
	s := redisstore.New(rdb, redisstore.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	ctx := context.Background()
	key := oauth.StoreKey("1234567890", oauth.KindV21)
	base := "{" + key + "}"
	for i, v := range []string{
		`{"token":{"access_token":"SECRET-VALUE`,                   // cut short
		`{"token":{"access_token":"SECRET-VALUE","expiry":"bad"}}`, // bad time
		`{"token":{"access_token":"SECRET-VALUE"}}`,                // no expiry
	} {
		if err := rdb.Set(ctx, base, v, 0).Err(); err != nil {
			t.Fatal(err)
		}
		e, err := s.Load(ctx, key)
		if e != nil || err != nil {
			t.Errorf("Load of corrupt value %d = %v, %v; want nil, nil", i, e, err)
		}
		if n := s.CorruptEntries(); n != int64(i+1) {
			t.Errorf("CorruptEntries = %d; want %d", n, i+1)
		}
	}
	if !strings.Contains(logs.String(), base) || !strings.Contains(logs.String(), "corrupt entry") {
		t.Errorf("log does not name the corrupt key: %s", logs.String())
	}
	if strings.Contains(logs.String(), "SECRET") {
		t.Errorf("log shows the corrupt value: %s", logs.String())
	}
	// A holder overwrites it.
	f, _ := s.Lock(ctx, key, time.Minute)
	if err := s.Save(ctx, key, testEntry(), f); err != nil {
		t.Fatal(err)
	}
	if e, err := s.Load(ctx, key); err != nil || !reflect.DeepEqual(e, testEntry()) {
		t.Fatalf("Load after overwrite = %v, %v", e, err)
	}
}

// TestStorePrintsSafely: a Store shows its address and prefix, never the
// client's password.
func TestStorePrintsSafely(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "10.1.2.3:6380", Password: "hunter2-PASSWORD"})
	t.Cleanup(func() { _ = rdb.Close() })
	s := redisstore.New(rdb, redisstore.WithPrefix("app:"))
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%d"} {
		out := fmt.Sprintf(verb, s)
		if strings.Contains(out, "hunter2") {
			t.Errorf("%s shows the password: %s", verb, out)
		}
		if want := `redisstore.Store{addr: 10.1.2.3:6380, prefix: "app:"}`; out != want {
			t.Errorf("%s = %s; want %s", verb, out, want)
		}
	}
	cl := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{"10.0.0.1:7000", "10.0.0.2:7000"}, Password: "hunter2"})
	t.Cleanup(func() { _ = cl.Close() })
	if out := fmt.Sprint(redisstore.New(cl)); out != `redisstore.Store{addr: 10.0.0.1:7000,10.0.0.2:7000, prefix: ""}` {
		t.Errorf("cluster store = %s", out)
	}
}

// TestUnreachable: every operation against a port nobody listens on says
// Redis is unreachable, where, and why, without the token.
func TestUnreachable(t *testing.T) {
	port, err := testredis.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	rdb := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
	t.Cleanup(func() { _ = rdb.Close() })
	s := redisstore.New(rdb)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	key := oauth.StoreKey("1234567890", oauth.KindV21)
	_, errLoad := s.Load(ctx, key)
	_, errLock := s.Lock(ctx, key, time.Minute)
	errUnlock := s.Unlock(ctx, key, 1)
	errSave := s.Save(ctx, key, testEntry(), 1)
	for op, err := range map[string]error{"load": errLoad, "lock": errLock, "unlock": errUnlock, "save": errSave} {
		if err == nil {
			t.Errorf("%s succeeded", op)
			continue
		}
		msg := err.Error()
		want := fmt.Sprintf("redisstore: redis unreachable at %s (%s {%s}): ", addr, op, key)
		if !strings.HasPrefix(msg, want) || !strings.Contains(msg, "connection refused") {
			t.Errorf("%s error = %q; want %q... connection refused", op, msg, want)
		}
		if strings.Contains(msg, "SECRET") {
			t.Errorf("%s error shows a token: %s", op, msg)
		}
	}
}

// TestContextHonoured: with the server paused (CLIENT PAUSE), calls return
// when their context ends although go-redis, by default, ignores context
// deadlines; a lock the abandoned Lock took is released once its answer
// arrives, so the next holder need not wait for the TTL.
func TestContextHonoured(t *testing.T) {
	r := startRedis(t)
	admin := r.Client(t)
	s := redisstore.New(r.Client(t))
	ctx := context.Background()
	key := oauth.StoreKey("1234567890", oauth.KindV21)
	f0, err := s.Lock(ctx, key, time.Minute) // also puts a connection in the pool
	if err != nil || f0 == 0 {
		t.Fatal(f0, err)
	}
	if err := s.Unlock(ctx, key, f0); err != nil {
		t.Fatal(err)
	}
	const pause = 500 * time.Millisecond
	if err := admin.Do(ctx, "CLIENT", "PAUSE", pause.Milliseconds(), "ALL").Err(); err != nil {
		t.Fatal(err)
	}
	paused := time.Now()
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, err := s.Lock(short, key, time.Minute); !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "redisstore: lock {"+key+"} at "+r.Addr()) {
		t.Errorf("Lock while paused = %v; want a deadline error naming the key and address", err)
	}
	if _, err := s.Load(short, key); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Load while paused = %v; want context.DeadlineExceeded", err)
	}
	if took := time.Since(paused); took >= pause {
		t.Errorf("calls with a 50ms deadline took %v, past the pause", took)
	}
	var f int64
	waitFor(t, "the abandoned lock's release", func() bool {
		var err error
		f, err = s.Lock(ctx, key, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		return f != 0
	})
	if took := time.Since(paused); took > 5*time.Second {
		t.Errorf("the abandoned lock was held %v", took)
	}
	if f != f0+2 {
		t.Errorf("fence = %d; want %d (the abandoned Lock had taken %d)", f, f0+2, f0+1)
	}
}

// TestFencesSurviveDataLoss: Redis restarted empty (no persistence) still
// hands out greater fences, so a holder from before the restart cannot
// Save over one from after.
func TestFencesSurviveDataLoss(t *testing.T) {
	r := startRedis(t)
	s := redisstore.New(r.Client(t))
	ctx := context.Background()
	key := oauth.StoreKey("1234567890", oauth.KindV21)
	f1, err := s.Lock(ctx, key, time.Minute)
	if err != nil || f1 == 0 {
		t.Fatal(f1, err)
	}
	r.Kill()
	r.Restart()
	f2, err := s.Lock(ctx, key, time.Minute)
	if err != nil || f2 <= f1 {
		t.Fatalf("Lock after a restart = %d, %v; want a fence > %d", f2, err, f1)
	}
	if err := s.Save(ctx, key, testEntry(), f1); !errors.Is(err, oauth.ErrLockLost) {
		t.Fatalf("Save by the holder from before the restart = %v; want ErrLockLost", err)
	}
	if err := s.Save(ctx, key, testEntry(), f2); err != nil {
		t.Fatal(err)
	}
}
