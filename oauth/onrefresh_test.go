package oauth_test

import (
	"context"
	"errors"
	"sync"
	"testing"

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
