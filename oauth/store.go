package oauth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"time"
)

// ErrLockLost: a [Store] refused a Save because the fencing token no longer
// holds the refresh lock (its TTL passed and another holder took over).
var ErrLockLost = errors.New("oauth: store refresh lock lost to another holder")

// Store keeps the tokens of one or more [TokenSource]s where they can be
// shared: between restarts (a file) or across a fleet (Redis). Values are
// namespaced by channel and token kind ([StoreKey]), so several channels can
// share one store.
//
// A refresh goes: Lock (a lock with a TTL that returns a fencing token),
// Load, issue if still needed, Save with the fencing token (refused with
// [ErrLockLost] when another holder has since taken the lock), Unlock.
// Implementations must be safe for concurrent use, across processes where
// they are shared.
//
// A [TokenSource] that finds the lock held waits for the holder's token:
// when the Store is also a [StoreNotifier] (as [MemoryStore], [FileStore]
// and the Redis store in package redisstore are), it waits until the
// holder saves or unlocks, and so sees the token as soon as it is saved;
// otherwise it looks at the store again after 20ms, then after waits
// doubling up to 1s. A custom Store may implement StoreNotifier too.
type Store interface {
	// Load returns the entry stored under key, or (nil, nil) when there is
	// none.
	Load(ctx context.Context, key string) (*StoreEntry, error)
	// Lock tries once to take key's refresh lock for ttl. It returns a
	// fencing token > 0 when taken, and 0 when another holder has it.
	// Fencing tokens of one key increase with every grant.
	Lock(ctx context.Context, key string, ttl time.Duration) (fence int64, err error)
	// Unlock releases key's lock if fence still holds it; otherwise it does
	// nothing.
	Unlock(ctx context.Context, key string, fence int64) error
	// Save replaces the entry under key if fence still holds key's lock, and
	// returns ErrLockLost otherwise.
	Save(ctx context.Context, key string, e *StoreEntry, fence int64) error
}

// StoreNotifier is implemented by a [Store] that can tell a waiter when a
// key's refresh lock is let go, so that a [TokenSource] finding the lock
// held sees the holder's token as soon as it is saved instead of polling.
type StoreNotifier interface {
	// WaitUnlock waits until key's lock is not held (it is unlocked, or its
	// TTL passes), until key's entry is saved, or until maxWait passes; it
	// then returns nil. It returns nil at once when the lock is not held,
	// and may return early (callers look at the store again). When ctx ends
	// first it returns an error wrapping ctx.Err(); any other error means
	// the store could not watch the lock (the caller then polls).
	//
	// A WaitUnlock must not miss a release that comes after the Lock that
	// found the lock held: it checks the lock only once it is sure to hear
	// of the release, and must agree with Lock on whether the lock is held.
	WaitUnlock(ctx context.Context, key string, maxWait time.Duration) error
}

// StoreKey is the key a [TokenSource] uses for channelID's tokens of kind.
func StoreKey(channelID string, kind TokenKind) string {
	return "linetoken:v1:" + channelID + ":" + kind.String()
}

// StoreEntry is what a [Store] keeps under one key: the current token and
// the replaced tokens still to revoke. LINE revokes a v2.1 token only given
// the token itself, so every issued token stays here until it is revoked
// or expired; a crash between issue and revoke leaves the revocation for
// the next process.
//
// A StoreEntry prints no token under any fmt verb; its JSON form (for
// stores) does hold the tokens, so stores keep it private (mode 0600, a
// protected Redis).
type StoreEntry struct {
	// Token is the current token, nil when none.
	Token *Token
	// Pending lists replaced tokens to revoke once RevokeAfter passes.
	Pending []PendingRevocation
}

// PendingRevocation is a replaced token waiting for its grace period to
// pass before it is revoked.
type PendingRevocation struct {
	Token       Token
	RevokeAfter time.Time
}

// Clone returns a deep copy of e.
func (e *StoreEntry) Clone() *StoreEntry {
	if e == nil {
		return nil
	}
	c := &StoreEntry{Pending: append([]PendingRevocation(nil), e.Pending...)}
	if e.Token != nil {
		t := *e.Token
		c.Token = &t
	}
	return c
}

// String describes e without its tokens.
func (e StoreEntry) String() string {
	cur := "nil"
	if e.Token != nil {
		cur = e.Token.String()
	}
	return fmt.Sprintf("oauth.StoreEntry{Token: %s, Pending: %d}", cur, len(e.Pending))
}

// Format prints [StoreEntry.String] under every verb.
func (e StoreEntry) Format(f fmt.State, _ rune) { writeString(f, e.String()) }

// LogValue keeps the tokens out of log/slog output.
func (e StoreEntry) LogValue() slog.Value {
	attrs := []slog.Attr{slog.Int("pending", len(e.Pending))}
	if e.Token != nil {
		attrs = append(attrs, slog.Any("token", e.Token.LogValue()))
	}
	return slog.GroupValue(attrs...)
}

// LogValue keeps the token out of log/slog output.
func (p PendingRevocation) LogValue() slog.Value {
	return slog.GroupValue(slog.Any("token", p.Token.LogValue()), slog.Time("revoke_after", p.RevokeAfter))
}

// Format prints a pending revocation without its token.
func (p PendingRevocation) Format(f fmt.State, _ rune) {
	writeString(f, fmt.Sprintf("oauth.PendingRevocation{Token: %s, RevokeAfter: %s}", p.Token.String(), p.RevokeAfter.Format(time.RFC3339)))
}

// storedToken is a Token's JSON form inside a store.
type storedToken struct {
	AccessToken string    `json:"access_token"`
	TokenType   string    `json:"token_type,omitempty"`
	KeyID       string    `json:"key_id,omitempty"`
	ExpiresIn   int64     `json:"expires_in_ms"`
	Expiry      time.Time `json:"expiry"`
}

type storedPending struct {
	Token       storedToken `json:"token"`
	RevokeAfter time.Time   `json:"revoke_after"`
}

type storedEntry struct {
	Token   *storedToken    `json:"token,omitempty"`
	Pending []storedPending `json:"pending,omitempty"`
}

func toStored(t Token) storedToken {
	return storedToken{AccessToken: t.AccessToken, TokenType: t.TokenType, KeyID: t.KeyID,
		ExpiresIn: t.ExpiresIn.Milliseconds(), Expiry: t.Expiry}
}

// validStoredLifetime: a stored lifetime in ms fits a time.Duration.
func validStoredLifetime(ms int64) bool {
	return ms >= 0 && ms <= math.MaxInt64/int64(time.Millisecond)
}

func fromStored(s storedToken) Token {
	return Token{AccessToken: s.AccessToken, TokenType: s.TokenType, KeyID: s.KeyID,
		ExpiresIn: time.Duration(s.ExpiresIn) * time.Millisecond, Expiry: s.Expiry}
}

// MarshalBinary encodes e (as JSON) for a store: the output holds the
// tokens, so only stores call it. Encoding a StoreEntry with
// encoding/json (or logging it) shows no token: [Token] redacts itself.
func (e StoreEntry) MarshalBinary() ([]byte, error) {
	var s storedEntry
	if e.Token != nil {
		t := toStored(*e.Token)
		s.Token = &t
	}
	for _, p := range e.Pending {
		s.Pending = append(s.Pending, storedPending{Token: toStored(p.Token), RevokeAfter: p.RevokeAfter})
	}
	return json.Marshal(s)
}

// UnmarshalBinary decodes what MarshalBinary wrote, refusing an entry whose
// tokens lack an access token or expiry.
func (e *StoreEntry) UnmarshalBinary(data []byte) error {
	var s storedEntry
	if err := json.Unmarshal(data, &s); err != nil {
		return fmt.Errorf("oauth: store entry: %s", jsonErrorText(err))
	}
	*e = StoreEntry{}
	if s.Token != nil {
		if s.Token.AccessToken == "" || s.Token.Expiry.IsZero() {
			return errors.New("oauth: store entry: token without access_token or expiry")
		}
		if !validStoredLifetime(s.Token.ExpiresIn) {
			return errors.New("oauth: store entry: expires_in_ms out of range")
		}
		t := fromStored(*s.Token)
		e.Token = &t
	}
	for _, p := range s.Pending {
		if p.Token.AccessToken == "" {
			return errors.New("oauth: store entry: pending revocation without access_token")
		}
		if !validStoredLifetime(p.Token.ExpiresIn) {
			return errors.New("oauth: store entry: pending expires_in_ms out of range")
		}
		e.Pending = append(e.Pending, PendingRevocation{Token: fromStored(p.Token), RevokeAfter: p.RevokeAfter})
	}
	return nil
}

// MemoryStore is a [Store] in this process's memory: the default of a
// [TokenSource]. Several TokenSources may share one to share tokens within
// a process. It is a [StoreNotifier]: a TokenSource waiting for another's
// refresh is woken by its Save or Unlock.
type MemoryStore struct {
	mu      sync.Mutex
	entries map[string]*StoreEntry
	locks   map[string]memLock
	// wake holds, for a key someone waits on, a channel closed (and
	// removed) when the key is saved or its lock let go. Made by the first
	// waiter, so a Lock, Save or Unlock nobody waits for allocates nothing.
	wake  map[string]chan struct{}
	fence int64
	now   func() time.Time
}

type memLock struct {
	fence int64
	until time.Time
}

var _ StoreNotifier = (*MemoryStore)(nil)

// NewMemoryStore returns an empty MemoryStore.
func NewMemoryStore() *MemoryStore {
	return &MemoryStore{entries: map[string]*StoreEntry{}, locks: map[string]memLock{}, now: time.Now}
}

// Load implements [Store].
func (s *MemoryStore) Load(ctx context.Context, key string) (*StoreEntry, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.entries[key].Clone(), nil
}

// Lock implements [Store].
func (s *MemoryStore) Lock(ctx context.Context, key string, ttl time.Duration) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	l, ok := s.locks[key]
	if ok && now.Before(l.until) {
		return 0, nil
	}
	if ok { // the previous holder's TTL passed: its waiters may stop
		s.wakeLocked(key)
	}
	s.fence++
	s.locks[key] = memLock{fence: s.fence, until: now.Add(ttl)}
	return s.fence, nil
}

// Unlock implements [Store].
func (s *MemoryStore) Unlock(_ context.Context, key string, fence int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if l, ok := s.locks[key]; ok && l.fence == fence {
		delete(s.locks, key)
		s.wakeLocked(key)
	}
	return nil
}

// WaitUnlock implements [StoreNotifier]: it returns when key is saved or
// its lock let go (Unlock, or the TTL passing), or maxWait passes.
func (s *MemoryStore) WaitUnlock(ctx context.Context, key string, maxWait time.Duration) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("oauth: MemoryStore: waiting for the lock of %s: %w", key, err)
	}
	s.mu.Lock()
	now := s.now()
	l, ok := s.locks[key]
	if !ok || !now.Before(l.until) || maxWait <= 0 {
		s.mu.Unlock()
		return nil
	}
	// Registered under mu, with the lock seen held: the Unlock or Save
	// that lets it go comes later, and closes ch.
	ch := s.wake[key]
	if ch == nil {
		if s.wake == nil {
			s.wake = map[string]chan struct{}{}
		}
		ch = make(chan struct{})
		s.wake[key] = ch
	}
	s.mu.Unlock()
	t := time.NewTimer(min(maxWait, l.until.Sub(now)))
	defer t.Stop()
	select {
	case <-ch:
		return nil
	case <-t.C:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("oauth: MemoryStore: waiting for the lock of %s: %w", key, ctx.Err())
	}
}

// wakeLocked wakes key's waiters; s.mu is held.
func (s *MemoryStore) wakeLocked(key string) {
	if ch, ok := s.wake[key]; ok {
		close(ch)
		delete(s.wake, key)
	}
}

// Save implements [Store].
func (s *MemoryStore) Save(ctx context.Context, key string, e *StoreEntry, fence int64) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if l, ok := s.locks[key]; !ok || l.fence != fence {
		return ErrLockLost
	}
	s.entries[key] = e.Clone()
	s.wakeLocked(key) // waiters find the saved token one Unlock sooner
	return nil
}
