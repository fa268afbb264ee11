package main

import (
	"context"
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/linetoken/linetoken/oauth"
)

func TestDemo(t *testing.T) {
	start := time.Now()
	r := cli(t, nil, "", "demo")
	mustCode(t, r, exitOK)
	if d := time.Since(start); d > 30*time.Second {
		t.Errorf("the demo took %v", d)
	}
	for _, step := range []string{
		"oauthtest.NewServer()", "srv.CreateChannel()", "kid ", "oauth.GenerateAssertionKey, registers the public JWK",
		"client.IssueToken(ctx, 24*time.Hour)", "key_id ",
		"client.VerifyToken(ctx, tok)", "client_id ",
		"client.ValidKeyIDs(ctx)", "(1 of 30 slots)",
		"client.IssueShortLivedToken(ctx)", "30 days",
		"client.IssueStatelessToken(ctx)", "by JWT assertion", "by channel ID + secret",
		"client.VerifyShortLivedToken(ctx, long)", "about 99 years",
		"client.RevokeToken(ctx, tok)", "errors.Is(err, oauth.ErrInvalidToken) = true",
		"30 of 30 slots in use", "The maximum number of access tokens has already been issued",
		"errors.Is(err, oauth.ErrTokenLimitReached) = true", `Operation "issueChannelTokenByJWT", StatusCode 400`, "RequestID",
		"ts.Token(ctx) #3", "the same token each time: true; v2.1 tokens issued: 1",
		"srv.Advance", "The access token expired",
		"ChannelSecret: REDACTED",
	} {
		if !strings.Contains(r.stdout, step) {
			t.Errorf("transcript lacks %q", step)
		}
	}
	if t.Failed() {
		t.Log(r)
	}
	// The transcript shows only calls the demo makes: srv.CreateChannel
	// does the console's steps; the demo calls none of them itself.
	for _, call := range []string{"srv.AddChannel", "srv.RegisterKey", "oauth.GenerateAssertionKey()"} {
		if strings.Contains(r.stdout, call) {
			t.Errorf("transcript shows %s, which the demo does not call", call)
		}
	}
	// Every token shown is abbreviated: its first 4 and last 6 characters.
	abbreviated := regexp.MustCompile(`^[A-Za-z0-9_+/=.-]{4}…[A-Za-z0-9_+/=.-]{6}$`)
	shown := map[string]string{} // the call -> the abbreviation it printed
	for _, line := range strings.Split(r.stdout, "\n") {
		call, ret, ok := strings.Cut(line, " -> ")
		for _, word := range strings.Fields(ret) {
			if strings.Contains(word, "…") || strings.HasPrefix(word, "eyJ") {
				if !abbreviated.MatchString(word) {
					t.Errorf("token not abbreviated: %q", word)
				}
				if ok {
					shown[strings.TrimSpace(call)] = word
				}
			}
		}
	}
	// The abbreviations tell tokens apart: the TokenSource's one token,
	// shown three times, is none of the others (every JWS of the fake
	// starts with the same header, so the start alone cannot show this).
	ts := shown["ts.Token(ctx) #1"]
	if ts == "" || shown["ts.Token(ctx) #2"] != ts || shown["ts.Token(ctx) #3"] != ts {
		t.Errorf("ts.Token abbreviations differ or are missing: %v", shown)
	}
	for _, other := range []string{"client.IssueToken(ctx, 24*time.Hour)", "client.IssueStatelessToken(ctx)", "(no Key) .IssueStatelessToken(ctx)", "client.IssueToken(ctx, 1h)"} {
		if shown[other] == "" || shown[other] == ts {
			t.Errorf("%s shown as %q, the TokenSource's token as %q: not told apart", other, shown[other], ts)
		}
	}
	if r.stderr != "" {
		t.Errorf("stderr: %s", r.stderr)
	}
	mustCode(t, cli(t, nil, "", "demo", "extra"), exitUsage)
}

func TestFakeServer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	var out, errb syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- runEnv(ctx, []string{"fake-server", "--addr", "127.0.0.1:0", "--json"}, func(string) string { return "" },
			strings.NewReader(""), &out, &errb)
	}()
	var info fakeServerInfo
	for {
		if err := json.Unmarshal([]byte(out.String()), &info); err == nil {
			break
		}
		select {
		case code := <-done:
			t.Fatalf("fake-server exited %d: %s %s", code, out.String(), errb.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
	if info.ChannelSecret == "" || info.KeyID == "" || info.LongLivedToken == "" || !strings.HasPrefix(info.BaseURL, "http://127.0.0.1:") {
		t.Fatalf("%+v", info)
	}
	if st, err := os.Stat(info.PrivateKeyFile); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", st, err)
	}
	// The printed credentials work, with every command.
	env := map[string]string{
		oauth.EnvBaseURL: info.BaseURL, oauth.EnvChannelID: info.ChannelID, oauth.EnvChannelSecret: info.ChannelSecret,
		oauth.EnvPrivateKeyFile: info.PrivateKeyFile, oauth.EnvKeyID: info.KeyID,
	}
	tok := decodeJSON[issueResult](t, cli(t, env, "", "issue", "--json")).AccessToken
	mustCode(t, cli(t, env, "", "verify", tok), exitOK)
	mustCode(t, cli(t, env, "", "kids"), exitOK)
	mustCode(t, cli(t, env, "", "revoke", tok), exitOK)
	mustCode(t, cli(t, env, "", "verify", info.LongLivedToken), exitOK)
	mustCode(t, cli(t, env, "", "issue", "--type", "short-lived"), exitOK)
	if !strings.Contains(errb.String(), "fake-server: POST /oauth2/v2.1/token -> 200") ||
		!strings.Contains(errb.String(), "fake-server: GET /oauth2/v2.1/verify -> 200") {
		t.Errorf("request log:\n%s", errb.String())
	}
	if strings.Contains(errb.String(), tok) {
		t.Error("the request log shows a token")
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
	if _, err := os.Stat(info.PrivateKeyFile); !os.IsNotExist(err) {
		t.Errorf("the throwaway key file is left behind: %v", err)
	}
}

func TestFakeServerHuman(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var out, errb syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- runEnv(ctx, []string{"fake-server", "--addr", "127.0.0.1:0"}, func(string) string { return "" },
			strings.NewReader(""), &out, &errb)
	}()
	deadline := time.Now().Add(testTimeout)
	for !strings.Contains(out.String(), "Ctrl-C") && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if code := <-done; code != exitOK {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	for _, w := range []string{"export LINE_API_BASE_URL=http://127.0.0.1:", "export LINE_CHANNEL_ID=", "export LINE_CHANNEL_SECRET=",
		"export LINE_PRIVATE_KEY_FILE=", "export LINE_KEY_ID=", "THROWAWAY FAKE"} {
		if !strings.Contains(out.String(), w) {
			t.Errorf("output lacks %q:\n%s", w, out.String())
		}
	}
	// A busy address is a local failure.
	f := newFixture(t)
	addr := strings.TrimPrefix(f.srv.URL(), "http://")
	r := cli(t, nil, "", "fake-server", "--addr", addr)
	mustCode(t, r, exitFailure)
	mustCode(t, cli(t, nil, "", "fake-server", "--addr", "nonsense"), exitUsage)
}
