package oauth_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/linetoken/linetoken/oauth"
	"github.com/linetoken/linetoken/oauth/oauthtest"
)

// refreshLog collects the events an OnRefresh hook is told.
type refreshLog struct {
	mu     sync.Mutex
	events []oauth.RefreshEvent
}

func (l *refreshLog) add(ev oauth.RefreshEvent) {
	l.mu.Lock()
	l.events = append(l.events, ev)
	l.mu.Unlock()
}

func (l *refreshLog) all() []oauth.RefreshEvent {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]oauth.RefreshEvent(nil), l.events...)
}

func TestTokenSourceOnRefresh(t *testing.T) {
	ctx := context.Background()
	srv := oauthtest.NewServer()
	defer srv.Close()
	ch := srv.NewChannel(t)
	store := oauth.NewMemoryStore()
	var first, second refreshLog
	a := newSource(t, srv.Client(t, ch.ID), oauth.TokenSourceOptions{Store: store, OnRefresh: first.add})
	b := newSource(t, srv.Client(t, ch.ID), oauth.TokenSourceOptions{Store: store, OnRefresh: second.add})

	tok, err := a.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	evs := first.all()
	if len(evs) != 1 || !evs[0].Issued || evs[0].Token != tok || evs[0].Err != nil || evs[0].Kind != oauth.KindV21 {
		t.Fatalf("first source's events = %+v, want one issue of the served token", evs)
	}
	if _, err := b.Token(ctx); err != nil {
		t.Fatal(err)
	}
	evs = second.all()
	if len(evs) != 1 || evs[0].Issued || evs[0].Token == nil || evs[0].Token.AccessToken != tok.AccessToken {
		t.Fatalf("second source's events = %+v, want one load of the first source's token", evs)
	}
	if len(first.all()) != 1 {
		t.Fatalf("the first source was told of a refresh it did not run: %+v", first.all())
	}

	// A refused refresh is told with its error, matching the sentinel.
	srv.UnregisterKey(ch.KeyID)
	a.Invalidate(tok.AccessToken)
	if _, err := a.Token(ctx); !errors.Is(err, oauth.ErrKeyNotRegistered) {
		t.Fatalf("Token after the key was unregistered: %v, want ErrKeyNotRegistered", err)
	}
	evs = first.all()
	last := evs[len(evs)-1]
	if len(evs) != 2 || last.Token != nil || !errors.Is(last.Err, oauth.ErrKeyNotRegistered) || last.Issued {
		t.Fatalf("events after a refused refresh = %+v, want a failure matching ErrKeyNotRegistered", evs)
	}
}

// savedBeforeLock is a Store on which another holder saves a fresh token
// (tok) between the source's first Load and its Lock, as a fleet member
// finishing its refresh at that moment does.
type savedBeforeLock struct {
	oauth.Store
	once sync.Once
	tok  *oauth.Token
}

func (s *savedBeforeLock) Lock(ctx context.Context, key string, ttl time.Duration) (int64, error) {
	s.once.Do(func() {
		fence, err := s.Store.Lock(ctx, key, ttl)
		if err == nil && fence > 0 {
			_ = s.Store.Save(ctx, key, &oauth.StoreEntry{Token: s.tok}, fence)
			_ = s.Store.Unlock(ctx, key, fence)
		}
	})
	return s.Store.Lock(ctx, key, ttl)
}

// TestTokenSourceOnRefreshLoadedUnderLock: a source that takes the lock
// and then finds another holder's fresh token in the store installs it
// and reports it loaded (Issued false), issuing nothing.
func TestTokenSourceOnRefreshLoadedUnderLock(t *testing.T) {
	ctx := context.Background()
	srv := oauthtest.NewServer()
	defer srv.Close()
	ch := srv.NewChannel(t)
	other, err := srv.Client(t, ch.ID).IssueShortLivedToken(ctx)
	if err != nil {
		t.Fatal(err)
	}
	issued := srv.IssueCount(oauthtest.KindShortLived)
	var log refreshLog
	store := &savedBeforeLock{Store: oauth.NewMemoryStore(), tok: other}
	ts := newSource(t, srv.Client(t, ch.ID), oauth.TokenSourceOptions{Kind: oauth.KindShortLived, Store: store, OnRefresh: log.add})
	tok, err := ts.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	evs := log.all()
	if tok.AccessToken != other.AccessToken || len(evs) != 1 || evs[0].Issued || srv.IssueCount(oauthtest.KindShortLived) != issued {
		t.Errorf("served the other holder's token: %v; events %+v; %d issues; want it loaded, Issued false, nothing issued",
			tok.AccessToken == other.AccessToken, evs, srv.IssueCount(oauthtest.KindShortLived)-issued)
	}
}
