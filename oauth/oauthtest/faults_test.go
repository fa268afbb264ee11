package oauthtest

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/linetoken/linetoken/oauth"
)

func TestFaultStatusAndBody(t *testing.T) {
	srv, _, c := newChannel(t)
	ctx := context.Background()
	srv.FailNext(2, http.StatusInternalServerError, `{"message":"Internal Server Error"}`)
	if n := srv.PendingFaults(); n != 2 {
		t.Fatalf("PendingFaults = %d", n)
	}
	for range 2 {
		_, err := c.IssueShortLivedToken(ctx)
		ae := wantAPIError(t, err, http.StatusInternalServerError, nil)
		if ae.Message != "Internal Server Error" || !ae.Temporary() || ae.RequestID != "" {
			t.Errorf("fault: %v", err)
		}
	}
	if _, err := c.IssueShortLivedToken(ctx); err != nil {
		t.Fatalf("after the faults: %v", err)
	}
	st := srv.Stats()
	if st.Faulted != 2 || st.IssueRequests[KindShortLived] != 3 || st.Issued[KindShortLived] != 1 {
		t.Errorf("stats = %+v", st)
	}
	reqs := srv.Requests()
	if !reqs[0].Fault || reqs[0].Status != 500 || reqs[2].Fault || reqs[2].Status != 200 {
		t.Errorf("log = %v", reqs)
	}
}

func TestFaultPathHeaderAndClear(t *testing.T) {
	srv := newServer(t)
	ch := srv.NewChannel(t)
	// Verify is retried on 429 by default; one attempt shows the fault.
	c := clientFor(t, srv, ch, func(cfg *oauth.Config) { cfg.Retry.MaxAttempts = 1 })
	ctx := context.Background()
	srv.InjectFault(1, Fault{
		Path:   "/v2/oauth/verify",
		Status: http.StatusTooManyRequests,
		Body:   `{"message":"Too many requests"}`,
		Header: http.Header{"Retry-After": {"7"}},
	})
	// Another path is not affected.
	if _, err := c.IssueShortLivedToken(ctx); err != nil {
		t.Fatal(err)
	}
	_, err := c.VerifyShortLivedToken(ctx, srv.LongLivedToken(ch.ID))
	ae := wantAPIError(t, err, http.StatusTooManyRequests, oauth.ErrRateLimited)
	if ae.RetryAfter != 7*time.Second {
		t.Errorf("RetryAfter = %v, want 7s", ae.RetryAfter)
	}
	srv.FailNext(5, 503, `{}`)
	srv.ClearFaults()
	if _, err := c.VerifyShortLivedToken(ctx, srv.LongLivedToken(ch.ID)); err != nil || srv.PendingFaults() != 0 {
		t.Errorf("after ClearFaults: %v, %d pending", err, srv.PendingFaults())
	}
}

func TestFaultHTMLPage(t *testing.T) {
	srv, _, c := newChannel(t)
	srv.HTMLNext(1, http.StatusBadGateway)
	w := do(t, srv, "GET", "/anything", "", "", nil)
	if w.status != 502 || !strings.HasPrefix(w.header.Get("Content-Type"), "text/html") || !strings.Contains(w.body, "<html>") {
		t.Fatalf("raw: %d %q %q", w.status, w.header.Get("Content-Type"), w.body)
	}
	srv.HTMLNext(1, http.StatusBadGateway)
	_, err := c.IssueToken(context.Background(), time.Hour)
	ae := wantAPIError(t, err, http.StatusBadGateway, nil)
	if !strings.Contains(ae.Error(), "non-JSON body") || !ae.Temporary() {
		t.Errorf("client error: %v", err)
	}
}

func TestFaultDelayAndClientTimeout(t *testing.T) {
	srv := newServer(t)
	ch := srv.NewChannel(t)
	ctx := context.Background()

	// A short delay, then a normal answer.
	srv.DelayNext(1, 50*time.Millisecond)
	c := srv.Client(t, ch.ID)
	start := time.Now()
	if _, err := c.VerifyShortLivedToken(ctx, srv.LongLivedToken(ch.ID)); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 50*time.Millisecond {
		t.Errorf("answered after %v, want at least 50ms", d)
	}

	// A long delay outlasts the client's timeout; the server lets go when
	// the client leaves.
	srv.DelayNext(1, time.Minute)
	slow := clientFor(t, srv, ch, func(cfg *oauth.Config) { cfg.HTTPClient = &http.Client{Timeout: 100 * time.Millisecond} })
	start = time.Now()
	_, err := slow.IssueShortLivedToken(ctx)
	var timeout interface{ Timeout() bool }
	if err == nil || !errors.As(err, &timeout) || !timeout.Timeout() {
		t.Fatalf("err = %v, want a timeout", err)
	}
	if strings.Contains(err.Error(), ch.Secret) {
		t.Error("error shows the secret")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("timed out after %v", d)
	}
	// Context deadline too.
	srv.DelayNext(1, time.Minute)
	dctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if _, err := c.VerifyShortLivedToken(dctx, srv.LongLivedToken(ch.ID)); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want context.DeadlineExceeded", err)
	}
	if n := srv.IssueCount(KindShortLived); n != 0 {
		t.Errorf("a delayed-then-abandoned request issued %d tokens", n)
	}
}

func TestFaultDelayEndsAtClose(t *testing.T) {
	srv := NewServer()
	srv.DelayNext(1, time.Minute)
	done := make(chan struct{})
	go func() {
		defer close(done)
		resp, err := http.Get(srv.URL() + "/v2/oauth/verify")
		if err == nil {
			resp.Body.Close()
		}
	}()
	for srv.Stats().Requests == 0 {
		time.Sleep(time.Millisecond)
	}
	start := time.Now()
	srv.Close()
	srv.Close() // twice is fine
	<-done
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Close took %v", d)
	}
}

func TestFaultDroppedConnection(t *testing.T) {
	srv, ch, c := newChannel(t)
	ctx := context.Background()
	srv.DropNext(1)
	_, err := c.IssueShortLivedToken(ctx)
	var ae *oauth.APIError
	if err == nil || errors.As(err, &ae) {
		t.Fatalf("err = %v, want a transport error", err)
	}
	if strings.Contains(err.Error(), ch.Secret) {
		t.Error("error shows the secret")
	}
	if _, err := c.IssueShortLivedToken(ctx); err != nil {
		t.Fatalf("after the drop: %v", err)
	}
	reqs := srv.Requests()
	if len(reqs) != 2 || !reqs[0].Fault || reqs[0].Status != 0 {
		t.Errorf("log = %v", reqs)
	}
	if n := srv.IssueCount(KindShortLived); n != 1 {
		t.Errorf("IssueCount = %d, want 1", n)
	}
}

func TestFaultsAndClientRetries(t *testing.T) {
	// Each attempt of a retried request takes a fault of its own.
	srv := newServer(t)
	ch := srv.NewChannel(t)
	c := clientFor(t, srv, ch, func(cfg *oauth.Config) {
		cfg.Retry = oauth.RetryPolicy{MaxAttempts: 3, MinBackoff: time.Millisecond, MaxBackoff: time.Millisecond}
	})
	srv.FailNext(2, http.StatusServiceUnavailable, `{"message":"Service Unavailable"}`)
	if _, err := c.VerifyShortLivedToken(context.Background(), srv.LongLivedToken(ch.ID)); err != nil {
		t.Fatalf("third attempt: %v", err)
	}
	if n, st := srv.PendingFaults(), srv.Stats(); n != 0 || st.Requests != 3 || st.Faulted != 2 {
		t.Errorf("pending %d, stats %+v; want 0 pending, 3 requests, 2 faulted", n, st)
	}
}
