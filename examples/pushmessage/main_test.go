package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/linetoken/linetoken/oauth"
	"github.com/linetoken/linetoken/oauth/oauthtest"
)

// push is one request the Messaging API stand-in received.
type push struct {
	Token    string // from "Authorization: Bearer"
	RetryKey string
	Body     []byte
	Info     oauthtest.TokenInfo // what the token service says the token is
	Valid    bool                // the token service knows the token and it is valid
}

// messagingAPI is a stand-in for LINE's Messaging API push endpoint. It
// accepts exactly the tokens the token service (the oauthtest fake) says
// are valid, as LINE does, and answers the first reject401 pushes with 401
// whatever their token.
type messagingAPI struct {
	t      *testing.T
	tokens *oauthtest.Server

	mu        sync.Mutex
	reject401 int
	pushes    []push
}

func newMessagingAPI(t *testing.T, tokens *oauthtest.Server) (*messagingAPI, *httptest.Server) {
	m := &messagingAPI{t: t, tokens: tokens}
	srv := httptest.NewServer(m)
	t.Cleanup(srv.Close)
	return m, srv
}

func (m *messagingAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/v2/bot/message/push" {
		m.t.Errorf("stand-in got %s %s, want POST /v2/bot/message/push", r.Method, r.URL.Path)
		http.Error(w, `{"message":"Not found"}`, http.StatusNotFound)
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		m.t.Errorf("reading the push body: %v", err)
	}
	tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	info, valid := m.tokens.Lookup(tok)

	m.mu.Lock()
	m.pushes = append(m.pushes, push{Token: tok, RetryKey: r.Header.Get("X-Line-Retry-Key"), Body: body, Info: info, Valid: valid})
	reject := m.reject401 > 0
	if reject {
		m.reject401--
	}
	n := len(m.pushes)
	m.mu.Unlock()

	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Line-Request-Id", "0123456789abcdef0123456789abcdef")
	if reject || !valid {
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = io.WriteString(w, `{"message":"Authentication failed. Confirm that the access token in the authorization header is valid."}`)
		return
	}
	_, _ = io.WriteString(w, `{"sentMessages":[{"id":"46134520000000`+string(rune('0'+n))+`","quoteToken":"IStG5h1Tz7b..."}]}`)
}

func (m *messagingAPI) received() []push {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]push(nil), m.pushes...)
}

// pushBody is what the push request body must carry.
type pushBody struct {
	To       string `json:"to"`
	Messages []struct {
		Type string `json:"type"`
		Text string `json:"text"`
	} `json:"messages"`
}

// setChannelEnv puts ch's credentials in the process environment, where
// oauth.ConfigFromEnv reads them (so these tests are not parallel), with
// the assertion key (v2.1 tokens) or without it (short-lived tokens).
func setChannelEnv(t *testing.T, tokens *oauthtest.Server, ch oauthtest.Channel, withKey bool) {
	t.Setenv(oauth.EnvChannelID, ch.ID)
	t.Setenv(oauth.EnvChannelSecret, ch.Secret)
	t.Setenv(oauth.EnvBaseURL, tokens.URL())
	t.Setenv(oauth.EnvPrivateKeyFile, "")
	if withKey {
		t.Setenv(oauth.EnvPrivateKey, string(ch.PrivateJWK))
		t.Setenv(oauth.EnvKeyID, ch.KeyID)
	} else {
		t.Setenv(oauth.EnvPrivateKey, "")
		t.Setenv(oauth.EnvKeyID, "")
	}
}

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

type result struct {
	code           int
	stdout, stderr string
}

func runPush(t *testing.T, args []string, vars map[string]string) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), args, env(vars), &stdout, &stderr)
	return result{code, stdout.String(), stderr.String()}
}

var uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

// checkPush checks that p was sent with a valid token of the given kind
// issued by the fake for ch — not the SDK's placeholder — and carries the
// message.
func checkPush(t *testing.T, p push, ch oauthtest.Channel, kind oauthtest.Kind, to, text string) {
	t.Helper()
	if p.Token == placeholderToken || strings.Contains(p.Token, "placeholder") {
		t.Fatalf("the SDK's placeholder token was sent")
	}
	if !p.Valid {
		t.Errorf("the push carried a token the token service does not know (or not valid)")
	}
	if p.Info.Kind != kind || p.Info.ChannelID != ch.ID {
		t.Errorf("token is a %v token of channel %s, want a %v token of %s", p.Info.Kind, p.Info.ChannelID, kind, ch.ID)
	}
	if !uuidRE.MatchString(p.RetryKey) {
		t.Errorf("X-Line-Retry-Key = %q, want a UUID", p.RetryKey)
	}
	var b pushBody
	if err := json.Unmarshal(p.Body, &b); err != nil {
		t.Fatalf("push body %q: %v", p.Body, err)
	}
	if b.To != to || len(b.Messages) != 1 || b.Messages[0].Type != "text" || b.Messages[0].Text != text {
		t.Errorf("push body = %s, want one text message %q to %q", p.Body, text, to)
	}
}

// The whole program against the oauthtest fake and the stand-in: the push
// carries the token the fake issued, of the kind the configuration calls
// for, and the program revokes it on the way out.
func TestPush(t *testing.T) {
	for _, tc := range []struct {
		name    string
		withKey bool
		kind    oauthtest.Kind
	}{
		{"v2.1 with an assertion key", true, oauthtest.KindV21},
		{"short-lived with the secret only", false, oauthtest.KindShortLived},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tokens := oauthtest.NewServer()
			defer tokens.Close()
			ch := tokens.NewChannel(t)
			setChannelEnv(t, tokens, ch, tc.withKey)
			api, apiSrv := newMessagingAPI(t, tokens)

			const to = "U4af4980629e81f4e3d5a6f4d3c1b2a09"
			r := runPush(t, []string{"-text", "こんにちは from linetoken"},
				map[string]string{envTo: to, envMessagingAPI: apiSrv.URL})
			if r.code != 0 {
				t.Fatalf("run = %d, stderr:\n%s", r.code, r.stderr)
			}
			pushes := api.received()
			if len(pushes) != 1 {
				t.Fatalf("stand-in got %d pushes, want 1", len(pushes))
			}
			checkPush(t, pushes[0], ch, tc.kind, to, "こんにちは from linetoken")
			if got := tokens.IssueCount(tc.kind); got != 1 {
				t.Errorf("fake issued %d %v tokens, want 1", got, tc.kind)
			}
			if !strings.Contains(r.stdout, "sent message 461345200000001 to "+to) {
				t.Errorf("stdout = %q", r.stdout)
			}
			if _, ok := tokens.Lookup(pushes[0].Token); ok {
				t.Errorf("the token is still valid after the program exited; Close should revoke it")
			}
			if strings.Contains(r.stderr+r.stdout, pushes[0].Token) || strings.Contains(r.stderr+r.stdout, ch.Secret) {
				t.Errorf("the output shows a secret")
			}
		})
	}
}

// LINE answers 401 once (the token was revoked in the console, say): the
// Transport invalidates the token, the fake issues exactly one new one, and
// the SDK's request is sent again — same body, same retry key — and
// succeeds. This works because the SDK builds the push with
// http.NewRequest over a *bytes.Buffer, which sets Request.GetBody.
func TestPushRetriedAfter401WithNewToken(t *testing.T) {
	tokens := oauthtest.NewServer()
	defer tokens.Close()
	ch := tokens.NewChannel(t)
	setChannelEnv(t, tokens, ch, true)
	api, apiSrv := newMessagingAPI(t, tokens)
	api.reject401 = 1

	const to = "U4af4980629e81f4e3d5a6f4d3c1b2a09"
	r := runPush(t, []string{"-to", to, "-endpoint", apiSrv.URL, "-text", "retry me"}, nil)
	if r.code != 0 {
		t.Fatalf("run = %d, stderr:\n%s", r.code, r.stderr)
	}
	pushes := api.received()
	if len(pushes) != 2 {
		t.Fatalf("stand-in got %d pushes, want 2 (the 401 and its retry)", len(pushes))
	}
	if got := tokens.IssueCount(oauthtest.KindV21); got != 2 {
		t.Errorf("fake issued %d v2.1 tokens, want 2 (one more after the 401)", got)
	}
	first, retry := pushes[0], pushes[1]
	checkPush(t, first, ch, oauthtest.KindV21, to, "retry me")
	checkPush(t, retry, ch, oauthtest.KindV21, to, "retry me")
	if first.Token == retry.Token {
		t.Errorf("the retry reused the token LINE refused")
	}
	if !bytes.Equal(first.Body, retry.Body) || first.RetryKey != retry.RetryKey {
		t.Errorf("the retry is not the same request:\nfirst %s (key %s)\nretry %s (key %s)", first.Body, first.RetryKey, retry.Body, retry.RetryKey)
	}
	if !strings.Contains(r.stdout, "sent message 461345200000002") {
		t.Errorf("stdout = %q", r.stdout)
	}
	if n := tokens.ActiveTokens(ch.ID); n != 0 {
		t.Errorf("%d v2.1 tokens still active after exit; both should be revoked", n)
	}
}

// A 401 for the fresh token too is not retried again: the program fails
// with the SDK's error, after exactly one retry.
func TestPushFailsWhenLINERefusesTwice(t *testing.T) {
	tokens := oauthtest.NewServer()
	defer tokens.Close()
	ch := tokens.NewChannel(t)
	setChannelEnv(t, tokens, ch, true)
	api, apiSrv := newMessagingAPI(t, tokens)
	api.reject401 = 5

	r := runPush(t, []string{"-to", "Uabc", "-endpoint", apiSrv.URL}, nil)
	if r.code != 1 {
		t.Fatalf("run = %d, want 1; stderr:\n%s", r.code, r.stderr)
	}
	if n := len(api.received()); n != 2 {
		t.Errorf("stand-in got %d pushes, want 2", n)
	}
	if !strings.Contains(r.stderr, "unexpected status code: 401") {
		t.Errorf("stderr = %q, want the SDK's 401 error", r.stderr)
	}
}

// The Transport can replay only a body it can get again. A request built
// without GetBody (a plain io.Reader wrapped by hand) gets LINE's 401
// back unretried; the token is still invalidated, so the next request
// uses a new one.
func TestTransportReturns401ForNonReplayableBody(t *testing.T) {
	tokens := oauthtest.NewServer()
	defer tokens.Close()
	ch := tokens.NewChannel(t)
	ts, err := oauth.NewTokenSource(tokens.Client(t, ch.ID), oauth.TokenSourceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer ts.Close()
	api, apiSrv := newMessagingAPI(t, tokens)
	api.reject401 = 1
	hc := &http.Client{Transport: &oauth.Transport{Source: ts}}

	post := func(body io.Reader) int {
		req, err := http.NewRequest(http.MethodPost, apiSrv.URL+"/v2/bot/message/push", body)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	// io.NopCloser hides the *strings.Reader: http.NewRequest sets no GetBody.
	if got := post(io.NopCloser(strings.NewReader(`{"to":"Uabc","messages":[]}`))); got != http.StatusUnauthorized {
		t.Fatalf("status = %d, want 401 returned to the caller", got)
	}
	if n := len(api.received()); n != 1 {
		t.Errorf("stand-in got %d pushes, want 1 (no retry)", n)
	}
	if got := post(strings.NewReader(`{"to":"Uabc","messages":[]}`)); got != http.StatusOK {
		t.Fatalf("next request: status = %d, want 200", got)
	}
	if got := tokens.IssueCount(oauthtest.KindV21); got != 2 {
		t.Errorf("fake issued %d tokens, want 2 (the refused one was invalidated)", got)
	}
}

func TestUsageErrors(t *testing.T) {
	tokens := oauthtest.NewServer()
	defer tokens.Close()
	ch := tokens.NewChannel(t)
	setChannelEnv(t, tokens, ch, true)

	if r := runPush(t, nil, nil); r.code != 2 || !strings.Contains(r.stderr, envTo) {
		t.Errorf("no recipient: run = %d, stderr %q", r.code, r.stderr)
	}
	if r := runPush(t, []string{"-to", "U1", "extra"}, nil); r.code != 2 {
		t.Errorf("extra argument: run = %d", r.code)
	}
	t.Setenv(oauth.EnvChannelID, "")
	if r := runPush(t, []string{"-to", "U1"}, nil); r.code != 2 || !strings.Contains(r.stderr, oauth.EnvChannelID) {
		t.Errorf("no channel: run = %d, stderr %q", r.code, r.stderr)
	}
	if tokens.Stats().Requests != 0 {
		t.Errorf("usage errors reached the token service")
	}
}
