package redisstore_test

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/linetoken/linetoken/oauth"
	"github.com/linetoken/linetoken/oauth/oauthtest"
	"github.com/linetoken/linetoken/oauth/redisstore"
)

// TestRedisKilledDuringRefresh kills Redis while a background refresh is
// waiting for LINE: the source never stops serving a valid token, the new
// token is served though it could not be saved (and the log says so, with
// no secret), nothing leaks after Close, and memory stays bounded.
func TestRedisKilledDuringRefresh(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	r := startRedis(t)
	srv := oauthtest.NewServer()
	defer srv.Close()
	ch := srv.NewChannel(t)
	c, err := oauth.NewClient(srv.Config(ch.ID))
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(&redis.Options{Addr: r.Addr()})
	var logs lockedBuffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ts, err := oauth.NewTokenSource(c, oauth.TokenSourceOptions{
		Kind: oauth.KindV21, Lifetime: time.Hour, RefreshBefore: 10 * time.Minute, Logger: logger,
		Store: redisstore.New(rdb, redisstore.WithLogger(logger)),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)

	first, err := ts.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// The refresh's issue call will take 2s; Redis dies while it waits.
	srv.DelayNext(1, 2*time.Second)
	srv.Advance(51 * time.Minute) // into the early-refresh window
	waitFor(t, "the background refresh to reach LINE", func() bool { return srv.PendingFaults() == 0 })
	r.Kill()

	var latest *oauth.Token
	waitFor(t, "the refreshed token", func() bool {
		tok, err := ts.Token(ctx)
		if err != nil {
			t.Fatalf("Token failed while a valid token existed: %v", err)
		}
		latest = tok
		return tok.AccessToken != first.AccessToken
	})
	if !latest.Valid(srv.Now()) {
		t.Errorf("served an invalid token: %v", latest)
	}
	out := logs.String()
	if !strings.Contains(out, "oauth: issued token could not be saved to the store") {
		t.Errorf("the log does not say the new token could not be saved:\n%s", out)
	}
	// With Redis gone, a caller that needs a new token learns why, typed.
	ts.Invalidate(latest.AccessToken)
	_, err = ts.Token(ctx)
	var oe *net.OpError
	if !errors.Is(err, oauth.ErrStoreUnavailable) || !errors.As(err, &oe) {
		t.Errorf("Token after Invalidate with Redis dead = %v; want oauth.ErrStoreUnavailable wrapping a *net.OpError", err)
	}
	if err != nil && (strings.Contains(err.Error(), latest.AccessToken) || strings.Contains(err.Error(), ch.Secret)) {
		t.Errorf("the error carries a secret: %v", err)
	}
	out = logs.String()
	for _, secret := range []string{first.AccessToken, latest.AccessToken, ch.Secret} {
		if strings.Contains(out, secret) {
			t.Errorf("the log carries a secret:\n%s", out)
		}
	}
	if n := srv.IssueCount(oauthtest.KindV21); n != 2 {
		t.Errorf("issued %d v2.1 tokens, want 2 (one per rotation)", n)
	}

	if err := ts.Close(); !errors.Is(err, oauth.ErrStoreUnavailable) {
		t.Errorf("Close without Redis = %v; want oauth.ErrStoreUnavailable (its due revocations cannot take the lock)", err)
	}
	_ = rdb.Close()
	srv.Close()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 64<<20 {
		t.Errorf("allocated %d MiB during the test", grew>>20)
	}
	goleak.VerifyNone(t, ignore)
}
