package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/linetoken/linetoken/internal/testkit"
	"github.com/linetoken/linetoken/oauth/oauthtest"
)

// fake-server's request logger must hand the fake what it needs of the
// connection: the fake's drop fault type-asserts http.Hijacker.
var _ http.Hijacker = (*statusWriter)(nil)

// TestRequestLoggerDropsConnections: the fake's dropped-connection fault
// (Server.DropNext), served through fake-server's request logger, loses
// the connection without an answer, the request is logged as dropped, and
// the next request is answered and logged with its status. Without Hijack
// on the wrapper the fake panics with http.ErrAbortHandler instead, and
// the logger never logs the request.
func TestRequestLoggerDropsConnections(t *testing.T) {
	srv := oauthtest.NewServer()
	t.Cleanup(srv.Close)
	var log syncBuffer
	front := httptest.NewServer(&requestLogger{next: srv, w: &log})
	t.Cleanup(front.Close)
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: testTimeout}
	form := url.Values{"access_token": {"unknown"}}

	srv.DropNext(1)
	resp, err := client.PostForm(front.URL+"/v2/oauth/verify", form)
	if err == nil {
		resp.Body.Close()
		t.Fatalf("answered %s: the connection was not dropped", resp.Status)
	}
	resp, err = client.PostForm(front.URL+"/v2/oauth/verify", form)
	if err != nil {
		t.Fatalf("the request after the drop: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("status %s, want 400 (an unknown token)", resp.Status)
	}
	// The dropped request's line is written once its handler returns,
	// which may be after the client saw the connection close.
	want := []string{"fake-server: POST /v2/oauth/verify -> dropped\n", "fake-server: POST /v2/oauth/verify -> 400\n"}
	testkit.Eventually(t, testTimeout, fmt.Sprintf("the request log lines %q", want), func() bool {
		return strings.Contains(log.String(), want[0]) && strings.Contains(log.String(), want[1])
	})
}

// TestFakeServerLogsSends: fake-server serves the Messaging API on its one
// address, data paths included, and logs each send it accepts (channel,
// path, retry key, request ID, body size), never a refused one, a body or
// a token.
func TestFakeServerLogsSends(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	var out, errb syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- runEnv(ctx, []string{"fake-server", "--addr", "127.0.0.1:0", "--json"}, func(string) string { return "" },
			strings.NewReader(""), &out, &errb)
	}()
	var info fakeServerInfo
	testkit.Eventually(t, testTimeout, "fake-server's credentials", func() bool {
		select {
		case code := <-done:
			t.Fatalf("fake-server exited %d: %s %s", code, out.String(), errb.String())
		default:
		}
		return json.Unmarshal([]byte(out.String()), &info) == nil
	})
	client := &http.Client{Timeout: testTimeout}
	call := func(method, path, key, body string) *http.Response {
		t.Helper()
		req, err := http.NewRequestWithContext(ctx, method, info.BaseURL+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+info.LongLivedToken)
		req.Header.Set("Content-Type", "application/json")
		if key != "" {
			req.Header.Set("X-Line-Retry-Key", key)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}
	const body = `{"to":"U0123456789abcdef0123456789abcdef","messages":[{"type":"text","text":"a secret-free hello"}]}`
	key := uuid.NewString()
	first := call(http.MethodPost, "/v2/bot/message/push", key, body)
	if first.StatusCode != http.StatusOK {
		t.Fatalf("push: %s", first.Status)
	}
	if again := call(http.MethodPost, "/v2/bot/message/push", key, body); again.StatusCode != http.StatusConflict {
		t.Fatalf("repeated push: %s, want 409", again.Status)
	}
	if r := call(http.MethodPost, "/v2/bot/message/broadcast", "", `{"messages":[]}`); r.StatusCode != http.StatusBadRequest {
		t.Fatalf("bad broadcast: %s, want 400", r.Status)
	}
	content := call(http.MethodGet, "/v2/bot/message/"+oauthtest.ContentMessageID(1000)+"/content", "", "")
	if err := oauthtest.VerifyContent(content.Body, 1000); err != nil || content.StatusCode != http.StatusOK {
		t.Fatalf("content on the one address: %s %v", content.Status, err)
	}
	want := fmt.Sprintf("fake-server: accepted /v2/bot/message/push channel=%s retry_key=%s request_id=%s bytes=%d\n",
		info.ChannelID, key, first.Header.Get("X-Line-Request-Id"), len(body))
	testkit.Eventually(t, testTimeout, "the logged send and requests", func() bool {
		return strings.Contains(errb.String(), want) && strings.Contains(errb.String(), "fake-server: GET /v2/bot/message/bytes-1000/content -> 200\n")
	})
	log := errb.String()
	if n := strings.Count(log, "fake-server: accepted "); n != 1 {
		t.Errorf("%d sends logged, want 1 (a 409 and a 400 are none):\n%s", n, log)
	}
	for _, line := range []string{"fake-server: POST /v2/bot/message/push -> 409\n", "fake-server: POST /v2/bot/message/broadcast -> 400\n"} {
		if !strings.Contains(log, line) {
			t.Errorf("request log lacks %q:\n%s", line, log)
		}
	}
	if strings.Contains(log, info.LongLivedToken) || strings.Contains(log, "secret-free hello") {
		t.Errorf("the log shows a token or a body:\n%s", log)
	}
	cancel()
	select {
	case code := <-done:
		if code != exitOK {
			t.Fatalf("exit %d: %s", code, errb.String())
		}
	case <-time.After(testTimeout):
		t.Fatal("fake-server did not stop")
	}
}
