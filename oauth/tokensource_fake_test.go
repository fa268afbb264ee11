package oauth_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/linetoken/linetoken/oauth"
	"github.com/linetoken/linetoken/oauth/oauthtest"
)

// TestTokenSourceAgainstFake runs v2.1 rotation against the faithful fake:
// across many rotations the channel never holds more than two active
// tokens (current + one in its grace period), far under LINE's cap of 30.
func TestTokenSourceAgainstFake(t *testing.T) {
	srv := oauthtest.NewServer()
	defer srv.Close()
	ch := srv.NewChannel(t)
	c, err := oauth.NewClient(srv.Config(ch.ID))
	if err != nil {
		t.Fatal(err)
	}
	ts, err := oauth.NewTokenSource(c, oauth.TokenSourceOptions{Kind: oauth.KindV21, Lifetime: time.Hour,
		RefreshBefore: 10 * time.Minute, RevokeGrace: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	ts.SetWatchInterval(5 * time.Millisecond)
	ctx := context.Background()
	prev, err := ts.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	maxActive := 0
	for i := 0; i < 8; i++ {
		srv.Advance(51 * time.Minute) // into the early-refresh window
		eventually(t, "rotation", func() bool { tok, _ := ts.Token(ctx); return tok.AccessToken != prev.AccessToken })
		maxActive = max(maxActive, srv.ActiveTokens(ch.ID))
		srv.Advance(2 * time.Minute) // past the grace period
		eventually(t, "revocation of the replaced token", func() bool { return srv.ActiveTokens(ch.ID) == 1 })
		tok, _ := ts.Token(ctx)
		if _, err := c.VerifyToken(ctx, tok.AccessToken); err != nil {
			t.Fatalf("rotation %d: current token does not verify: %v", i, err)
		}
		if _, err := c.VerifyToken(ctx, prev.AccessToken); err == nil {
			t.Fatalf("rotation %d: replaced token still verifies", i)
		}
		prev = tok
	}
	if maxActive > 2 {
		t.Errorf("up to %d active v2.1 tokens, want at most 2", maxActive)
	}
	if n := srv.IssueCount(oauthtest.KindV21); n != 9 {
		t.Errorf("issued %d v2.1 tokens for 8 rotations, want 9", n)
	}
	if err := ts.Close(); err != nil {
		t.Fatal(err)
	}
	if n := srv.ActiveTokens(ch.ID); n != 0 {
		t.Errorf("after Close %d tokens stay active, want 0 (private store: everything revoked)", n)
	}
}

// TestTokenSourceInvalidateAcrossSources: after a 401, N sources sharing a
// store, each invalidating the token, cause one new issue.
func TestTokenSourceInvalidateAcrossSources(t *testing.T) {
	srv := oauthtest.NewServer()
	defer srv.Close()
	ch := srv.NewChannel(t)
	store := oauth.NewMemoryStore()
	ctx := context.Background()
	var sources []*oauth.TokenSource
	for i := 0; i < 10; i++ {
		c, err := oauth.NewClient(srv.Config(ch.ID))
		if err != nil {
			t.Fatal(err)
		}
		sources = append(sources, newSource(t, c, oauth.TokenSourceOptions{Kind: oauth.KindShortLived, Store: store}))
	}
	first, err := sources[0].Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, ts := range sources {
		if tok, err := ts.Token(ctx); err != nil || tok.AccessToken != first.AccessToken {
			t.Fatalf("source did not share the token: %v", err)
		}
	}
	var wg sync.WaitGroup
	for _, ts := range sources {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ts.Invalidate(first.AccessToken)
			if tok, err := ts.Token(ctx); err != nil || tok.AccessToken == first.AccessToken {
				t.Errorf("after Invalidate: %v", err)
			}
		}()
	}
	wg.Wait()
	if n := srv.IssueCount(oauthtest.KindShortLived); n != 2 {
		t.Errorf("10 sources invalidating one token issued %d tokens in all, want 2", n)
	}
}
