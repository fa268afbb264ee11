package main

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

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
	deadline := time.Now().Add(testTimeout)
	for !(strings.Contains(log.String(), want[0]) && strings.Contains(log.String(), want[1])) {
		if time.Now().After(deadline) {
			t.Fatalf("request log lacks %q:\n%s", want, log.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
}
