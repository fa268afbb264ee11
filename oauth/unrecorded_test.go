package oauth_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/linetoken/linetoken/oauth"
)

// flakySaveStore refuses every Save while failing is set, as a store that
// went away between the lock and the save.
type flakySaveStore struct {
	*oauth.MemoryStore
	failing atomic.Bool
}

func (s *flakySaveStore) Save(ctx context.Context, key string, e *oauth.StoreEntry, fence int64) error {
	if s.failing.Load() {
		return errors.New("disk full")
	}
	return s.MemoryStore.Save(ctx, key, e, fence)
}

// TestTokenSourceUnrecordedTokensAreRevoked: a v2.1 token issued while the
// store could not record it is served, then recorded with the next
// successful save and revoked once replaced, so its slot is not lost.
func TestTokenSourceUnrecordedTokensAreRevoked(t *testing.T) {
	is := newIssuer(t)
	is.expiresIn.Store(3600)
	clk := newFakeClock()
	store := &flakySaveStore{MemoryStore: oauth.NewMemoryStore()}
	store.failing.Store(true)
	ts := newSource(t, clientFor(t, is.URL, clk), oauth.TokenSourceOptions{Kind: oauth.KindV21, Lifetime: time.Hour,
		RefreshBefore: 10 * time.Minute, RevokeGrace: time.Minute, Store: store})
	ctx := context.Background()
	first, err := ts.Token(ctx)
	if err != nil {
		t.Fatalf("Token with a failing store = %v; want the issued token served", err)
	}
	store.failing.Store(false)
	clk.Advance(51 * time.Minute)
	eventually(t, "rotation", func() bool { tok, _ := ts.Token(ctx); return tok != first })
	e, _ := store.Load(ctx, oauth.StoreKey(testChannelID, oauth.KindV21))
	if e == nil || len(e.Pending) != 1 || e.Pending[0].Token.AccessToken != first.AccessToken {
		t.Fatalf("store after rotation = %v; want the unrecorded token pending revocation", e)
	}
	clk.Advance(2 * time.Minute)
	eventually(t, "its revocation", func() bool { return is.revokes.Load() == 1 })
	if r := is.revokedTokens(); r[0] != first.AccessToken {
		t.Errorf("revoked %v, want %s", r, first.AccessToken)
	}
}

// TestTokenSourceCloseRevokesUnrecorded: with the store never recording,
// Close revokes what it issued.
func TestTokenSourceCloseRevokesUnrecorded(t *testing.T) {
	is := newIssuer(t)
	clk := newFakeClock()
	store := &flakySaveStore{MemoryStore: oauth.NewMemoryStore()}
	store.failing.Store(true)
	ts, err := oauth.NewTokenSource(clientFor(t, is.URL, clk), oauth.TokenSourceOptions{Kind: oauth.KindV21, Store: store})
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
		t.Errorf("Close revoked %v, want the unrecorded %s", r, tok.AccessToken)
	}
}
