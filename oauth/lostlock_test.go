package oauth_test

import (
	"context"
	"testing"
	"time"

	"github.com/linetoken/linetoken/oauth"
)

// stealingStore loses its lock on the first Save: another holder takes the
// lock and saves its own token first, as after a stalled refresh.
type stealingStore struct {
	*oauth.MemoryStore
	clk    *fakeClock
	stolen bool
}

func (s *stealingStore) Save(ctx context.Context, key string, e *oauth.StoreEntry, fence int64) error {
	if !s.stolen {
		s.stolen = true
		_ = s.MemoryStore.Unlock(ctx, key, fence)
		other, _ := s.MemoryStore.Lock(ctx, key, time.Minute)
		theirs := &oauth.Token{AccessToken: "the-other-holders-token", TokenType: "Bearer", Expiry: s.clk.Now().Add(20 * 24 * time.Hour)}
		if err := s.MemoryStore.Save(ctx, key, &oauth.StoreEntry{Token: theirs}, other); err != nil {
			return err
		}
		_ = s.MemoryStore.Unlock(ctx, key, other)
	}
	return s.MemoryStore.Save(ctx, key, e, fence)
}

// TestTokenSourceLostLock: a refresh whose lock was taken over adopts the
// other holder's token and revokes its own, so no slot is left taken by a
// token no store records.
func TestTokenSourceLostLock(t *testing.T) {
	is := newIssuer(t)
	clk := newFakeClock()
	store := &stealingStore{MemoryStore: oauth.NewMemoryStore(), clk: clk}
	ts := newSource(t, clientFor(t, is.URL, clk), oauth.TokenSourceOptions{Kind: oauth.KindV21, Store: store})
	tok, err := ts.Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if tok.AccessToken != "the-other-holders-token" {
		t.Errorf("token = %v, want the other holder's", tok)
	}
	if r := is.revokedTokens(); len(r) != 1 || r[0] != "issued-token-1" {
		t.Errorf("revoked %v, want our own issued-token-1", r)
	}
}
