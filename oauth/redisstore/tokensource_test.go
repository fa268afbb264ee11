package redisstore_test

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/linetoken/linetoken/internal/testkit"
	"github.com/linetoken/linetoken/internal/testredis"
	"github.com/linetoken/linetoken/oauth"
	"github.com/linetoken/linetoken/oauth/oauthtest"
	"github.com/linetoken/linetoken/oauth/redisstore"
)

// fleetSize is the number of processes the fleet tests simulate: each
// TokenSource has its own oauth.Client and its own Redis connection pool.
const fleetSize = 20

// lockedBuffer is a log sink safe for concurrent writers and readers.
type lockedBuffer = testkit.SyncBuffer

// newFleet returns n TokenSources for channel ch of srv, each with its own
// client and its own Store on r, closed in t's Cleanup.
func newFleet(t *testing.T, r *testredis.Server, srv *oauthtest.Server, ch oauthtest.Channel, n int, opts oauth.TokenSourceOptions) []*oauth.TokenSource {
	t.Helper()
	var out []*oauth.TokenSource
	for range n {
		c, err := oauth.NewClient(srv.Config(ch.ID))
		if err != nil {
			t.Fatal(err)
		}
		o := opts
		o.Store = redisstore.New(r.Client(t))
		ts, err := oauth.NewTokenSource(c, o)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = ts.Close() }) // before the client's Close
		out = append(out, ts)
	}
	return out
}

// tokenAll calls Token on every source at once and returns what each got.
func tokenAll(t *testing.T, sources []*oauth.TokenSource) []*oauth.Token {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	toks := make([]*oauth.Token, len(sources))
	errs := make([]error, len(sources))
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, ts := range sources {
		wg.Go(func() {
			<-start
			toks[i], errs[i] = ts.Token(ctx)
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("source %d: Token: %v", i, err)
		}
	}
	return toks
}

// sameToken fails t unless every token is the one access token.
func sameToken(t *testing.T, toks []*oauth.Token) *oauth.Token {
	t.Helper()
	for i, tok := range toks {
		if tok.AccessToken != toks[0].AccessToken {
			t.Fatalf("source %d got another token than source 0 (%v vs %v)", i, tok, toks[0])
		}
	}
	return toks[0]
}

// waitAllMoved waits until every source serves a token other than old, and
// returns the one they share.
func waitAllMoved(t *testing.T, sources []*oauth.TokenSource, old *oauth.Token) *oauth.Token {
	t.Helper()
	waitFor(t, "every source to serve the new token", func() bool {
		for _, ts := range sources {
			tok, err := ts.Token(context.Background())
			if err != nil {
				t.Fatalf("Token: %v", err)
			}
			if tok.AccessToken == old.AccessToken {
				return false
			}
		}
		return true
	})
	return sameToken(t, tokenAll(t, sources))
}

// TestFleetIssuesOnce: twenty processes sharing one Redis cause one issue
// between them, at first and again in the early-refresh window.
func TestFleetIssuesOnce(t *testing.T) {
	for _, tc := range []struct {
		kind oauth.TokenKind
		fake oauthtest.Kind
	}{
		{oauth.KindShortLived, oauthtest.KindShortLived},
		{oauth.KindV21, oauthtest.KindV21},
	} {
		t.Run(tc.kind.String(), func(t *testing.T) {
			t.Parallel()
			r := startRedis(t)
			srv := oauthtest.NewServer()
			t.Cleanup(srv.Close)
			ch := srv.NewChannel(t)
			const refreshBefore = 24 * time.Hour
			sources := newFleet(t, r, srv, ch, fleetSize, oauth.TokenSourceOptions{Kind: tc.kind, RefreshBefore: refreshBefore})

			first := sameToken(t, tokenAll(t, sources))
			if n := srv.IssueCount(tc.fake); n != 1 {
				t.Fatalf("%d sources issued %d tokens; want 1", fleetSize, n)
			}

			// Into the early-refresh window: the watchers (one clock read a
			// second) see it, and the fleet refreshes once.
			srv.Advance(first.Expiry.Add(-refreshBefore + time.Second).Sub(srv.Now()))
			second := waitAllMoved(t, sources, first)
			if n := srv.IssueCount(tc.fake); n != 2 {
				t.Fatalf("the early refresh of %d sources issued %d tokens; want 1", fleetSize, n-1)
			}
			if !second.Expiry.After(first.Expiry) {
				t.Errorf("new token expires %v, not after the old %v", second.Expiry, first.Expiry)
			}
		})
	}
}

// TestRedisUnreachable: with Redis gone, a source serves its valid token;
// once that token is invalidated, Token says the store is unreachable, with
// no secret; Redis back on the same port, it recovers.
func TestRedisUnreachable(t *testing.T) {
	r := startRedis(t)
	srv := oauthtest.NewServer()
	t.Cleanup(srv.Close)
	ch := srv.NewChannel(t)
	c, err := oauth.NewClient(srv.Config(ch.ID))
	if err != nil {
		t.Fatal(err)
	}
	var logs lockedBuffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ts, err := oauth.NewTokenSource(c, oauth.TokenSourceOptions{
		Kind: oauth.KindShortLived, Logger: logger,
		Store: redisstore.New(r.Client(t), redisstore.WithLogger(logger)),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ts.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()

	tok, err := ts.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	r.Kill()
	for range 100 {
		got, err := ts.Token(ctx)
		if err != nil || got.AccessToken != tok.AccessToken {
			t.Fatalf("Token with Redis down = %v, %v; want the cached token", got, err)
		}
	}

	ts.Invalidate(tok.AccessToken)
	_, err = ts.Token(ctx)
	if err == nil {
		t.Fatal("Token after Invalidate with Redis down succeeded")
	}
	msg := err.Error()
	t.Logf("error: %s", msg)
	if !errors.Is(err, oauth.ErrStoreUnavailable) {
		t.Errorf("error %q does not match oauth.ErrStoreUnavailable", msg)
	}
	var oe *net.OpError
	if !errors.As(err, &oe) || !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("error %q does not unwrap to the *net.OpError of the refused connection", msg)
	} else if oe.Addr == nil || oe.Addr.String() != r.Addr() {
		t.Errorf("the refused connection was to %v, want Redis at %s", oe.Addr, r.Addr())
	}
	if want := "redisstore: redis unreachable at " + r.Addr(); !strings.Contains(msg, want) {
		t.Errorf("error %q does not say %q", msg, want) // where, for the operator
	}
	if strings.Contains(msg, tok.AccessToken) || strings.Contains(msg, ch.Secret) {
		t.Errorf("error carries a secret: %s", msg)
	}

	r.Restart()
	var next *oauth.Token
	waitFor(t, "Token to recover once Redis is back", func() bool {
		next, err = ts.Token(ctx)
		return err == nil
	})
	if next.AccessToken == tok.AccessToken {
		t.Error("recovered with the invalidated token")
	}
	if n := srv.IssueCount(oauthtest.KindShortLived); n != 2 {
		t.Errorf("issued %d tokens; want 2", n)
	}
	if out := logs.String(); strings.Contains(out, tok.AccessToken) || strings.Contains(out, next.AccessToken) || strings.Contains(out, ch.Secret) {
		t.Errorf("logs carry a secret: %s", out)
	}
}

// TestFleetRotationV21: v2.1 rotations across the fleet never hold more
// than two of the channel's 30 slots: the current token and the one
// replaced, revoked once its grace passes.
func TestFleetRotationV21(t *testing.T) {
	r := startRedis(t)
	srv := oauthtest.NewServer()
	t.Cleanup(srv.Close)
	ch := srv.NewChannel(t)
	const (
		refreshBefore = 10 * time.Minute
		grace         = time.Minute
		rotations     = 3
	)
	sources := newFleet(t, r, srv, ch, fleetSize, oauth.TokenSourceOptions{
		Kind: oauth.KindV21, Lifetime: time.Hour, RefreshBefore: refreshBefore, RevokeGrace: grace,
	})

	var maxActive atomic.Int64
	stop := make(chan struct{})
	var sampler sync.WaitGroup
	sampler.Go(func() {
		for {
			if n := int64(srv.ActiveTokens(ch.ID)); n > maxActive.Load() {
				maxActive.Store(n)
			}
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond):
			}
		}
	})
	defer func() { close(stop); sampler.Wait() }()

	cur := sameToken(t, tokenAll(t, sources))
	for i := range rotations {
		srv.Advance(cur.Expiry.Add(-refreshBefore + time.Second).Sub(srv.Now()))
		next := waitAllMoved(t, sources, cur)
		if n := srv.IssueCount(oauthtest.KindV21); n != i+2 {
			t.Fatalf("rotation %d: %d tokens issued in all; want %d", i+1, n, i+2)
		}
		if n := srv.ActiveTokens(ch.ID); n != 2 {
			t.Errorf("rotation %d: %d active tokens within the grace; want 2", i+1, n)
		}
		srv.Advance(grace + time.Second)
		waitFor(t, "the replaced token's revocation", func() bool { return srv.ActiveTokens(ch.ID) == 1 })
		if _, ok := srv.Lookup(cur.AccessToken); ok {
			t.Errorf("rotation %d: the replaced token is still valid", i+1)
		}
		if _, ok := srv.Lookup(next.AccessToken); !ok {
			t.Errorf("rotation %d: the current token was revoked", i+1)
		}
		cur = next
	}
	if m := maxActive.Load(); m > 2 {
		t.Errorf("up to %d v2.1 tokens were active at once; want at most 2", m)
	}
	if n := srv.Stats().Revoked[oauthtest.KindV21]; n != rotations {
		t.Errorf("%d tokens revoked; want %d", n, rotations)
	}
}
