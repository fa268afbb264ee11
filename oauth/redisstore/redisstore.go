// Package redisstore is an [oauth.Store] in Redis: the channel access token
// shared by a whole fleet of processes, refreshed by one of them at a time
// under a fenced lock.
//
//	rdb := redis.NewClient(&redis.Options{Addr: "redis:6379"})
//	ts, err := oauth.NewTokenSource(client, oauth.TokenSourceOptions{
//		Store: redisstore.New(rdb),
//	})
//
// # Keys
//
// For a [oauth.StoreKey] k (e.g. "linetoken:v1:1234567890:v2.1") and the
// prefix p ([WithPrefix], "" by default), a Store uses three keys and a
// Pub/Sub channel:
//
//	p{k}        the entry: the JSON of an oauth.StoreEntry, no expiry
//	p{k}:lock   the refresh lock: the holder's fencing token, with a TTL
//	p{k}:fence  the fencing counter (INCR), no expiry
//	p{k}:wake   channel: Save and Unlock PUBLISH on it (see below)
//
// The braces are a Redis Cluster hash tag: the three keys of one k live in
// one slot, so the Lua scripts that touch two of them work on a cluster
// (and a [redis.Ring] subscribes to the channel on the keys' shard).
//
// # Waiting for the lock
//
// A Store is an [oauth.StoreNotifier]: a [oauth.TokenSource] that finds
// the lock held waits in [Store.WaitUnlock] for the holder's Save or
// Unlock to publish on p{k}:wake, so the whole fleet has the new token
// within a round trip or two of its Save, without polling Redis. A
// waiting process holds a subscription (a connection of its own) for as
// long as it waits: at a refresh, the processes that find the lock held,
// while the holder issues. The PUBLISH is best effort: where Redis refuses it (an
// ACL user without channel permissions, the default for users created
// under Redis 7) Save and Unlock still work, WaitUnlock fails and waiters
// poll as they would without notices. For the notices, grant the user
// the channels: "&{linetoken:*}:wake" without a prefix, or allchannels.
//
// Fences are the counter's values. A counter that does not exist starts
// at Redis's clock in microseconds, so fences keep increasing when Redis
// loses its data (a restart without persistence): a holder from before
// cannot Save over a holder from after, as long as Redis's clock does not
// go back. A failover to a replica that missed the latest writes can still
// hand out a fence twice, as with any lock in asynchronously replicated
// Redis.
//
// The entry is saved without an expiry: the Store has no clock of its own
// (a [oauth.TokenSource] may run on Config.Clock, and hosts' clocks differ
// from Redis's), an entry is a few hundred bytes per channel and kind, and
// an entry whose tokens have expired is harmless: the next refresh replaces
// it and drops its expired pending revocations. Keys without a TTL are also
// never evicted under Redis's volatile-* maxmemory policies (under an
// allkeys-* policy an evicted entry costs one issue, and an evicted
// counter restarts at the clock, as above).
//
// # Secrets
//
// The entry holds the tokens, so the Redis server must be a protected one
// (AUTH, TLS, a private network). Nothing this package prints, logs or
// returns as an error carries a token: errors name the operation, the key
// and the server address only.
//
// # Contexts
//
// Every call returns when its context ends, even when the client was made
// without redis.Options.ContextTimeoutEnabled (go-redis then ignores
// context deadlines and waits up to its ReadTimeout). A command abandoned
// that way still completes in the background; a lock it took is released
// when its answer arrives.
package redisstore

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/linetoken/linetoken/oauth"
)

const (
	// lockSuffix and fenceSuffix name the lock and the fencing counter of an
	// entry key, wakeSuffix its Pub/Sub channel.
	lockSuffix  = ":lock"
	fenceSuffix = ":fence"
	wakeSuffix  = ":wake"
	// ttlSlack is added to a lock's PTTL before WaitUnlock takes its TTL to
	// have passed: Redis expires a key only after the millisecond its TTL
	// ends in, and answers PTTL in whole milliseconds.
	ttlSlack = 2 * time.Millisecond
	// releaseTimeout bounds the release of a lock taken by a Lock call whose
	// caller had already gone: the lock's TTL frees it anyway.
	releaseTimeout = 5 * time.Second
)

// Lua scripts, each atomic on the server. Fences are compared as the
// decimal strings Lock stored.
var (
	// lockScript: KEYS = lock, fence; ARGV = ttl in ms. Takes the lock with
	// a new fence, or answers 0 when it is held (no fence is spent then). A
	// missing counter starts at Redis's clock in microseconds (about 2^51
	// today, exact in Lua's doubles up to 2^53), so fences still increase
	// after Redis lost the counter: a restart without persistence, an
	// eviction.
	lockScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then
	return 0
end
if redis.call('EXISTS', KEYS[2]) == 0 then
	local now = redis.call('TIME')
	redis.call('SET', KEYS[2], now[1] .. string.format('%06d', tonumber(now[2])))
end
local fence = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], string.format('%d', fence), 'PX', ARGV[1])
return fence
`)
	// unlockScript: KEYS = lock; ARGV = fence, wake channel. Deletes the
	// lock if fence still holds it, and then wakes the waiters. The
	// channel is an argument, not a key: it is no key to ACLs or a
	// cluster. redis.pcall: a refused PUBLISH (an ACL without channel
	// permissions) must not fail the Unlock.
	unlockScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
	redis.call('DEL', KEYS[1])
	redis.pcall('PUBLISH', ARGV[2], 'unlock')
	return 1
end
return 0
`)
	// saveScript: KEYS = lock, entry; ARGV = fence, value ("" deletes),
	// wake channel. Writes the entry if fence still holds the lock, and
	// then wakes the waiters (as unlockScript): 1, else 0.
	saveScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
	return 0
end
if ARGV[2] == '' then
	redis.call('DEL', KEYS[2])
else
	redis.call('SET', KEYS[2], ARGV[2])
end
redis.pcall('PUBLISH', ARGV[3], 'save')
return 1
`)
)

// Store is an [oauth.Store] in Redis, safe for concurrent use by many
// goroutines and processes. Create it with [New]. It prints its server
// address and prefix only.
type Store struct {
	rdb     redis.UniversalClient
	prefix  string
	addr    string
	log     *slog.Logger
	corrupt atomic.Int64
}

var (
	_ oauth.Store         = (*Store)(nil)
	_ oauth.StoreNotifier = (*Store)(nil)
)

// Option configures a [Store].
type Option func(*Store)

// WithPrefix puts prefix before every key, to share one Redis database
// between applications; the default is "" ([oauth.StoreKey] already starts
// with "linetoken:v1:"). A prefix holding its own hash tag ("{app}:") puts
// every key of the Store in that tag's cluster slot.
func WithPrefix(prefix string) Option { return func(s *Store) { s.prefix = prefix } }

// WithLogger receives the Store's own events: a corrupt entry read as
// absent, a failed release of an abandoned lock. nil, the default, is
// silent. Nothing logged carries a token.
func WithLogger(l *slog.Logger) Option { return func(s *Store) { s.log = l } }

// New returns a Store that keeps its entries in client: a *redis.Client, a
// *redis.ClusterClient, a *redis.Ring or a failover client. Closing the
// client is the caller's job. A nil client panics.
func New(client redis.UniversalClient, opts ...Option) *Store {
	if client == nil {
		panic("redisstore: New: nil redis client")
	}
	s := &Store{rdb: client, addr: addrOf(client)}
	for _, o := range opts {
		o(s)
	}
	return s
}

// addrOf names the server(s) of c for errors and String; it never reads a
// password.
func addrOf(c redis.UniversalClient) string {
	switch c := c.(type) {
	case *redis.Client:
		return c.Options().Addr
	case *redis.ClusterClient:
		return strings.Join(c.Options().Addrs, ",")
	case *redis.Ring:
		return strings.Join(slices.Sorted(maps.Keys(c.Options().Addrs)), ",")
	}
	return fmt.Sprintf("%T", c)
}

// String describes s by its server address and prefix.
func (s *Store) String() string {
	return fmt.Sprintf("redisstore.Store{addr: %s, prefix: %q}", s.addr, s.prefix)
}

// Format prints [Store.String] under every verb, %#v included.
func (s *Store) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(s.String())) }

// CorruptEntries is the number of entries Load found unreadable and
// reported as absent.
func (s *Store) CorruptEntries() int64 { return s.corrupt.Load() }

func (s *Store) entryKey(key string) string { return s.prefix + "{" + key + "}" }

// Load implements [oauth.Store]. An entry that does not decode (not JSON,
// or a token without access token or expiry) is reported as absent: it is
// logged (key and decode error, never the value) and counted
// ([Store.CorruptEntries]), and the next refresh overwrites it. Returning
// an error instead would stop every process of the fleet from refreshing
// until someone deleted the key by hand; the cost is that revocations
// pending in the unreadable entry are forgotten (those tokens hold their
// slots until they expire).
func (s *Store) Load(ctx context.Context, key string) (*oauth.StoreEntry, error) {
	k := s.entryKey(key)
	val, err := call(ctx, func(ctx context.Context) ([]byte, error) { return s.rdb.Get(ctx, k).Bytes() }, nil)
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, s.fail(ctx, "load", k, err)
	}
	var e oauth.StoreEntry
	if err := e.UnmarshalBinary(val); err != nil {
		s.corrupt.Add(1)
		if s.log != nil {
			s.log.LogAttrs(context.Background(), slog.LevelError, "redisstore: corrupt entry read as absent; the next refresh replaces it",
				slog.String("key", k), slog.String("addr", s.addr), slog.String("error", err.Error()))
		}
		return nil, nil
	}
	return &e, nil
}

// Lock implements [oauth.Store]: one script takes the lock with a fence
// from the key's counter, or answers 0 when the lock is held. ttl is
// rounded up to whole milliseconds and must be positive.
func (s *Store) Lock(ctx context.Context, key string, ttl time.Duration) (int64, error) {
	k := s.entryKey(key)
	if ttl <= 0 {
		return 0, fmt.Errorf("redisstore: lock %s: ttl %v is not positive", k, ttl)
	}
	ms := int64((ttl + time.Millisecond - 1) / time.Millisecond)
	keys := []string{k + lockSuffix, k + fenceSuffix}
	fence, err := call(ctx, func(ctx context.Context) (int64, error) {
		// Without ctx's cancellation: the answer is always read, so that a
		// lock taken for a caller who left is known and released below.
		return lockScript.Run(context.WithoutCancel(ctx), s.rdb, keys, ms).Int64()
	}, func(fence int64) {
		if fence <= 0 {
			return
		}
		rctx, cancel := context.WithTimeout(context.Background(), releaseTimeout)
		defer cancel()
		if err := unlockScript.Run(rctx, s.rdb, keys[:1], strconv.FormatInt(fence, 10), k+wakeSuffix).Err(); err != nil && s.log != nil {
			s.log.LogAttrs(context.Background(), slog.LevelWarn, "redisstore: releasing a lock taken after its caller left failed; its TTL frees it",
				slog.String("key", k), slog.String("addr", s.addr), slog.Duration("ttl", ttl), slog.String("error", s.fail(rctx, "unlock", k, err).Error()))
		}
	})
	if err != nil {
		return 0, s.fail(ctx, "lock", k, err)
	}
	return fence, nil
}

// Unlock implements [oauth.Store] with a compare-and-delete script.
func (s *Store) Unlock(ctx context.Context, key string, fence int64) error {
	k := s.entryKey(key)
	_, err := call(ctx, func(ctx context.Context) (struct{}, error) {
		return struct{}{}, unlockScript.Run(ctx, s.rdb, []string{k + lockSuffix}, strconv.FormatInt(fence, 10), k+wakeSuffix).Err()
	}, nil)
	if err != nil {
		return s.fail(ctx, "unlock", k, err)
	}
	return nil
}

// Save implements [oauth.Store]: one script writes the entry (no expiry;
// see the package doc) if fence still holds the lock, and Save returns
// [oauth.ErrLockLost] otherwise. A nil e deletes the entry.
func (s *Store) Save(ctx context.Context, key string, e *oauth.StoreEntry, fence int64) error {
	k := s.entryKey(key)
	var val []byte
	if e != nil {
		var err error
		if val, err = e.MarshalBinary(); err != nil {
			return fmt.Errorf("redisstore: save %s: %w", k, err)
		}
	}
	ok, err := call(ctx, func(ctx context.Context) (int64, error) {
		return saveScript.Run(ctx, s.rdb, []string{k + lockSuffix, k}, strconv.FormatInt(fence, 10), val, k+wakeSuffix).Int64()
	}, nil)
	if err != nil {
		return s.fail(ctx, "save", k, err)
	}
	if ok != 1 {
		return oauth.ErrLockLost
	}
	return nil
}

// WaitUnlock implements [oauth.StoreNotifier] with Pub/Sub: it subscribes
// to key's wake channel (on a connection of its own, closed on return),
// then looks at the lock, so that a release between the caller's Lock and
// the subscription is not missed, and waits for the holder's Save or
// Unlock to publish, the lock's TTL to pass or maxWait to pass. A Redis
// that refuses the subscription (an ACL without channel permissions, a
// proxy without Pub/Sub) makes it fail, and a [oauth.TokenSource] then
// polls; the refusal is logged at Warn.
func (s *Store) WaitUnlock(ctx context.Context, key string, maxWait time.Duration) error {
	k := s.entryKey(key)
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("redisstore: wait for the lock of %s at %s: %w", k, s.addr, err)
	}
	if maxWait <= 0 {
		return nil
	}
	wctx, cancel := context.WithTimeout(ctx, maxWait)
	defer cancel()
	_, err := call(wctx, func(wctx context.Context) (struct{}, error) { return struct{}{}, s.waitWake(wctx, k) }, nil)
	// A read that timed out at a deadline can return before the context's
	// own timer marks it done: the clock says whether the time is up.
	now := time.Now()
	if d, ok := ctx.Deadline(); ctx.Err() != nil || ok && !now.Before(d) {
		return fmt.Errorf("redisstore: wait for the lock of %s at %s: %w", k, s.addr, cmp.Or(ctx.Err(), context.DeadlineExceeded))
	}
	if d, _ := wctx.Deadline(); err == nil || wctx.Err() != nil || !now.Before(d) { // woken, or maxWait passed
		return nil
	}
	if _, refused := errors.AsType[redis.Error](err); refused && s.log != nil {
		s.log.LogAttrs(context.Background(), slog.LevelWarn, "redisstore: Redis refused the subscription to the lock's wake channel; waiters poll instead",
			slog.String("channel", k+wakeSuffix), slog.String("addr", s.addr), slog.String("error", err.Error()))
	}
	return s.fail(ctx, "subscribe to the wake channel of", k, err)
}

// waitWake is WaitUnlock's work for entry key k, bounded by ctx (whose
// deadline is maxWait's): subscribe, look at the lock, wait.
func (s *Store) waitWake(ctx context.Context, k string) error {
	ch := k + wakeSuffix
	ps, err := subscribe(ctx, s.rdb, ch)
	if err != nil {
		return err
	}
	defer ps.Close()
	// A read of ps ends at ctx's deadline, but not when it is canceled:
	// closing ps ends it then.
	defer context.AfterFunc(ctx, func() { _ = ps.Close() })()
	// Subscribed once Redis confirms: from then on every PUBLISH on ch
	// reaches ps.
	end, _ := ctx.Deadline()
	for {
		m, err := receive(ctx, ps, end)
		if err != nil {
			return err
		}
		if sub, ok := m.(*redis.Subscription); ok && sub.Kind == "subscribe" && sub.Channel == ch {
			break
		}
	}
	ms, err := s.rdb.Do(ctx, "PTTL", k+lockSuffix).Int64()
	switch {
	case err != nil:
		return err
	case ms == -2: // no lock: released before the subscription
		return nil
	case ms >= 0: // -1, no TTL, cannot be (Lock sets one): wait for maxWait
		// Redis keeps a key through the millisecond its TTL ends in.
		if ttlEnd := time.Now().Add(time.Duration(ms)*time.Millisecond + ttlSlack); ttlEnd.Before(end) {
			end = ttlEnd
		}
	}
	for {
		m, err := receive(ctx, ps, end)
		if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
			return nil // the lock's TTL (or maxWait) passed
		}
		if err != nil {
			return err
		}
		if _, ok := m.(*redis.Message); ok {
			return nil
		}
	}
}

// receive reads ps's next message until end at the latest.
func receive(ctx context.Context, ps *redis.PubSub, end time.Time) (any, error) {
	d := time.Until(end)
	if d <= 0 { // go-redis would read without a deadline
		return nil, os.ErrDeadlineExceeded
	}
	return ps.ReceiveTimeout(ctx, d)
}

// subscribe subscribes to ch. A [redis.Ring] panics, rather than fail,
// when none of its shards is up: that is an error here.
func subscribe(ctx context.Context, c redis.UniversalClient, ch string) (ps *redis.PubSub, err error) {
	defer func() {
		if r := recover(); r != nil {
			if e, ok := r.(error); ok {
				err = fmt.Errorf("subscribing: %w", e)
			} else {
				err = fmt.Errorf("subscribing: %v", r)
			}
		}
	}()
	return c.Subscribe(ctx, ch), nil
}

// fail describes a failed command: the caller's context ending, an error
// answered by Redis, or Redis not answering at all. The go-redis errors
// wrapped name addresses and commands, never arguments.
func (s *Store) fail(ctx context.Context, op, key string, err error) error {
	var rerr redis.Error
	switch {
	case ctx.Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)):
		return fmt.Errorf("redisstore: %s %s at %s: %w", op, key, s.addr, err)
	case errors.As(err, &rerr):
		return fmt.Errorf("redisstore: redis at %s refused %s %s: %w", s.addr, op, key, err)
	case ctx.Err() != nil: // go-redis turned the deadline into a network timeout
		return fmt.Errorf("redisstore: %s %s at %s: %w (%w)", op, key, s.addr, ctx.Err(), err)
	}
	return fmt.Errorf("redisstore: redis unreachable at %s (%s %s): %w", s.addr, op, key, err)
}

// call runs f, returning when it does or when ctx ends, whichever comes
// first. f gets ctx, which go-redis honours only with
// ContextTimeoutEnabled; an f abandoned when ctx ends runs on, and its
// successful result is handed to abandoned (when not nil).
func call[T any](ctx context.Context, f func(context.Context) (T, error), abandoned func(T)) (T, error) {
	var zero T
	if err := ctx.Err(); err != nil {
		return zero, err
	}
	if ctx.Done() == nil { // cannot end: no goroutine needed
		return f(ctx)
	}
	type result struct {
		v   T
		err error
	}
	var (
		mu   sync.Mutex
		gone bool // the caller left; guarded by mu
		ch   = make(chan result, 1)
	)
	go func() {
		v, err := f(ctx)
		mu.Lock()
		if !gone {
			ch <- result{v, err}
			mu.Unlock()
			return
		}
		mu.Unlock()
		if err == nil && abandoned != nil {
			abandoned(v)
		}
	}()
	select {
	case r := <-ch:
		return r.v, r.err
	case <-ctx.Done():
		mu.Lock()
		defer mu.Unlock()
		select {
		case r := <-ch: // the answer came in time after all
			return r.v, r.err
		default:
			gone = true
			return zero, ctx.Err()
		}
	}
}
