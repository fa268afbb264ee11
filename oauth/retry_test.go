package oauth_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/linetoken/linetoken/oauth"
)

// flaky answers fail (status, body, headers) for the first n requests,
// then succeed with ok.
func flaky(n int32, status int, retryAfter string, ok string) (func(http.ResponseWriter, *http.Request), *atomic.Int32) {
	var calls atomic.Int32
	return func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) <= n {
			if retryAfter != "" {
				w.Header().Set("Retry-After", retryAfter)
			}
			jsonAnswer(status, `{"message":"try later"}`)(w, r)
			return
		}
		jsonAnswer(200, ok)(w, r)
	}, &calls
}

// dropping closes the connection of the first n requests without a word
// (a TCP reset: the answer is lost), then answers 200 with ok.
func dropping(n int32, ok string) (func(http.ResponseWriter, *http.Request), *atomic.Int32) {
	var calls atomic.Int32
	return func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) <= n {
			conn, _, err := http.NewResponseController(w).Hijack()
			if err != nil {
				panic(err) // the test server speaks HTTP/1.1: hijacking works
			}
			if tc, ok := conn.(*net.TCPConn); ok {
				_ = tc.SetLinger(0) // Close sends RST, not FIN
			}
			_ = conn.Close()
			return
		}
		jsonAnswer(200, ok)(w, r)
	}, &calls
}

func retryClient(t *testing.T, base string, p oauth.RetryPolicy, logger *slog.Logger) *oauth.Client {
	t.Helper()
	c, err := oauth.NewClient(oauth.Config{ChannelID: testChannelID, ChannelSecret: testSecret, Key: mustKey(t),
		BaseURL: base, Retry: p, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestRetryPolicy(t *testing.T) {
	ctx := context.Background()
	t.Run("5xx then success for verify", func(t *testing.T) {
		h, calls := flaky(2, 503, "", verifyLongBody)
		var logs bytes.Buffer
		c := retryClient(t, newTestServer(t, h).URL, fastRetry, slog.New(slog.NewTextHandler(&logs, nil)))
		if _, err := c.VerifyShortLivedToken(ctx, "planted-token-value"); err != nil {
			t.Fatal(err)
		}
		if calls.Load() != 3 {
			t.Errorf("calls = %d, want 3", calls.Load())
		}
		if n := strings.Count(logs.String(), "oauth: retrying"); n != 2 {
			t.Errorf("logged %d retries, want 2:\n%s", n, logs.String())
		}
		if !strings.Contains(logs.String(), "reason=\"server error Service Unavailable\"") || strings.Contains(logs.String(), "planted-token-value") {
			t.Errorf("log should give the reason and no token:\n%s", logs.String())
		}
	})
	t.Run("gives up after MaxAttempts", func(t *testing.T) {
		h, calls := flaky(100, 500, "", verifyLongBody)
		c := retryClient(t, newTestServer(t, h).URL, oauth.RetryPolicy{MaxAttempts: 4, MinBackoff: time.Millisecond, MaxBackoff: time.Millisecond}, nil)
		_, err := c.VerifyShortLivedToken(ctx, "tok")
		var ae *oauth.APIError
		if !errors.As(err, &ae) || ae.StatusCode != 500 || calls.Load() != 4 {
			t.Errorf("err = %v after %d calls, want the 500 after 4", err, calls.Load())
		}
	})
	t.Run("MaxAttempts 1 disables retries", func(t *testing.T) {
		h, calls := flaky(1, 500, "", verifyLongBody)
		c := retryClient(t, newTestServer(t, h).URL, oauth.RetryPolicy{MaxAttempts: 1}, nil)
		if _, err := c.VerifyShortLivedToken(ctx, "tok"); err == nil || calls.Load() != 1 {
			t.Errorf("err = %v after %d calls", err, calls.Load())
		}
	})
	t.Run("never other 4xx", func(t *testing.T) {
		for _, status := range []int{400, 401, 403, 404, 409} {
			h, calls := flaky(1, status, "", verifyLongBody)
			c := retryClient(t, newTestServer(t, h).URL, fastRetry, nil)
			if _, err := c.VerifyShortLivedToken(ctx, "tok"); err == nil || calls.Load() != 1 {
				t.Errorf("%d: err = %v after %d calls, want no retry", status, err, calls.Load())
			}
		}
	})
	t.Run("issue not retried unless opted in", func(t *testing.T) {
		for _, op := range []string{"issueChannelToken", "issueChannelTokenByJWT"} {
			body := issueShortBody
			if op == "issueChannelTokenByJWT" {
				body = issueV21Body
			}
			h, calls := flaky(1, 500, "", body)
			c := retryClient(t, newTestServer(t, h).URL, fastRetry, nil)
			if err := callByOp(ctx, c, op); err == nil || calls.Load() != 1 {
				t.Errorf("%s: err = %v after %d calls, want one attempt", op, err, calls.Load())
			}
			h, calls = flaky(1, 500, "", body)
			opted := fastRetry
			opted.RetryIssue = true
			c = retryClient(t, newTestServer(t, h).URL, opted, nil)
			if err := callByOp(ctx, c, op); err != nil || calls.Load() != 2 {
				t.Errorf("%s opted in: err = %v after %d calls, want success on the second", op, err, calls.Load())
			}
		}
	})
	t.Run("stateless issue and key IDs retry by default", func(t *testing.T) {
		for op, body := range map[string]string{"issueStatelessChannelToken": statelessBody, "getsAllValidChannelAccessTokenKeyIds": kidsBody,
			"revokeChannelTokenByJWT": "", "revokeChannelToken": "", "verifyChannelTokenByJWT": verifyV21Body} {
			h, calls := flaky(1, 502, "", body)
			c := retryClient(t, newTestServer(t, h).URL, fastRetry, nil)
			if err := callByOp(ctx, c, op); err != nil || calls.Load() != 2 {
				t.Errorf("%s: err = %v after %d calls", op, err, calls.Load())
			}
		}
	})
	t.Run("transport error retried for safe operations", func(t *testing.T) {
		for op, body := range map[string]string{"verifyChannelTokenByJWT": verifyV21Body, "verifyChannelToken": verifyLongBody,
			"revokeChannelTokenByJWT": "", "revokeChannelToken": "", "getsAllValidChannelAccessTokenKeyIds": kidsBody,
			"issueStatelessChannelToken": statelessBody} {
			h, calls := dropping(1, body)
			var logs bytes.Buffer
			c := retryClient(t, newTestServer(t, h).URL, fastRetry, slog.New(slog.NewTextHandler(&logs, nil)))
			if err := callByOp(ctx, c, op); err != nil || calls.Load() != 2 {
				t.Errorf("%s: err = %v after %d requests, want success on the second", op, err, calls.Load())
			}
			if !strings.Contains(logs.String(), `reason="transport error"`) {
				t.Errorf("%s: the retry is not logged with its reason:\n%s", op, logs.String())
			}
		}
	})
	t.Run("transport error on issue retried only when opted in", func(t *testing.T) {
		for op, body := range map[string]string{"issueChannelTokenByJWT": issueV21Body, "issueChannelToken": issueShortBody} {
			h, calls := dropping(1, body)
			c := retryClient(t, newTestServer(t, h).URL, fastRetry, nil)
			err := callByOp(ctx, c, op)
			var ae *oauth.APIError
			if err == nil || errors.As(err, &ae) || !errors.As(err, new(*url.Error)) || calls.Load() != 1 {
				t.Errorf("%s: err = %v after %d requests, want the transport error after one (a lost answer may have used a slot)", op, err, calls.Load())
			}
			h, calls = dropping(1, body)
			opted := fastRetry
			opted.RetryIssue = true
			c = retryClient(t, newTestServer(t, h).URL, opted, nil)
			if err := callByOp(ctx, c, op); err != nil || calls.Load() != 2 {
				t.Errorf("%s opted in (RetryIssue): err = %v after %d requests, want success on the second", op, err, calls.Load())
			}
		}
	})
	t.Run("Retry-After honoured", func(t *testing.T) {
		h, calls := flaky(1, 429, "1", verifyLongBody)
		c := retryClient(t, newTestServer(t, h).URL, fastRetry, nil)
		start := time.Now()
		if _, err := c.VerifyShortLivedToken(ctx, "tok"); err != nil {
			t.Fatal(err)
		}
		if el := time.Since(start); el < time.Second || calls.Load() != 2 {
			t.Errorf("retried after %v (%d calls), want after the 1s Retry-After", el, calls.Load())
		}
	})
	t.Run("Retry-After beyond MaxWait is not waited for", func(t *testing.T) {
		h, calls := flaky(1, 429, "3600", verifyLongBody)
		c := retryClient(t, newTestServer(t, h).URL, fastRetry, nil)
		_, err := c.VerifyShortLivedToken(ctx, "tok")
		var ae *oauth.APIError
		if !errors.Is(err, oauth.ErrRateLimited) || !errors.As(err, &ae) || ae.RetryAfter != time.Hour || calls.Load() != 1 {
			t.Errorf("err = %v after %d calls", err, calls.Load())
		}
	})
	t.Run("context ends the wait", func(t *testing.T) {
		h, calls := flaky(100, 503, "", verifyLongBody)
		c := retryClient(t, newTestServer(t, h).URL, oauth.RetryPolicy{MinBackoff: time.Hour, MaxBackoff: time.Hour}, nil)
		cctx, cancel := context.WithCancel(ctx)
		time.AfterFunc(50*time.Millisecond, cancel)
		start := time.Now()
		_, err := c.VerifyShortLivedToken(cctx, "tok")
		if !errors.Is(err, context.Canceled) || time.Since(start) > 5*time.Second || calls.Load() != 1 {
			t.Errorf("err = %v after %v, %d calls; want prompt context.Canceled", err, time.Since(start), calls.Load())
		}
		var ae *oauth.APIError
		if !errors.As(err, &ae) || ae.StatusCode != 503 {
			t.Errorf("the last APIError should stay visible: %v", err)
		}
	})
	t.Run("deadline shorter than the wait returns at once", func(t *testing.T) {
		h, calls := flaky(100, 503, "", verifyLongBody)
		c := retryClient(t, newTestServer(t, h).URL, oauth.RetryPolicy{MinBackoff: time.Hour, MaxBackoff: time.Hour}, nil)
		dctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		start := time.Now()
		if _, err := c.VerifyShortLivedToken(dctx, "tok"); err == nil || time.Since(start) > time.Second || calls.Load() != 1 {
			t.Errorf("err = %v after %v, %d calls", err, time.Since(start), calls.Load())
		}
	})
}
