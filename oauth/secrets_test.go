package oauth_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/linetoken/linetoken/oauth"
)

// leakChecker knows every secret planted in a test and fails when any of
// them, or a recognisable part, appears in a string.
type leakChecker struct {
	secrets []string
}

func newLeakChecker(t *testing.T, key *oauth.AssertionKey, extra ...string) *leakChecker {
	t.Helper()
	lc := &leakChecker{secrets: append([]string{testSecret}, extra...)}
	if key != nil {
		der := x509.MarshalPKCS1PrivateKey(key.PrivateKey)
		// Any 24-byte window of the private exponent or the DER, in the
		// encodings a leak would use.
		d := key.PrivateKey.D.Bytes()
		lc.secrets = append(lc.secrets,
			key.PrivateKey.D.String()[:40],
			base64.RawURLEncoding.EncodeToString(d)[:40],
			base64.StdEncoding.EncodeToString(der)[:40],
			fmt.Sprintf("%x", d)[:40])
	}
	return lc
}

func (lc *leakChecker) check(t *testing.T, where, s string) {
	t.Helper()
	for _, sec := range lc.secrets {
		if sec != "" && strings.Contains(s, sec) {
			t.Errorf("%s leaks a secret (%.6s...): %s", where, sec, s)
		}
	}
	if strings.Contains(s, "eyJ") {
		t.Errorf("%s contains something JWT-shaped: %s", where, s)
	}
}

// checkAllVerbs formats v every way a user might and checks each output.
func (lc *leakChecker) checkAllVerbs(t *testing.T, name string, v any) {
	t.Helper()
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%T %v"} {
		lc.check(t, name+" "+verb, fmt.Sprintf(verb, v))
	}
	// The value alone and inside the containers a program keeps it in,
	// through encoding/json and both slog handlers. A failed json.Marshal
	// prints nothing, so only its output is checked.
	forms := []struct {
		name string
		v    any
	}{
		{"", v},
		{" in a struct", struct{ V any }{v}},
		{" in a typed struct", struct {
			Name string
			V    any `json:"v"`
		}{"n", v}},
		{" in a slice", []any{v, v}},
		{" in a map", map[string]any{"v": v}},
	}
	for _, f := range forms {
		if data, err := json.Marshal(f.v); err == nil {
			lc.check(t, name+f.name+" json.Marshal", string(data))
		}
		if data, err := json.MarshalIndent(f.v, "", " "); err == nil {
			lc.check(t, name+f.name+" json.MarshalIndent", string(data))
		}
		var buf bytes.Buffer
		slog.New(slog.NewTextHandler(&buf, nil)).Info("x", "v", f.v)
		lc.check(t, name+f.name+" slog text", buf.String())
		buf.Reset()
		slog.New(slog.NewJSONHandler(&buf, nil)).Info("x", "v", f.v)
		lc.check(t, name+f.name+" slog JSON", buf.String())
		buf.Reset()
		slog.New(slog.NewJSONHandler(&buf, nil)).Info("x", slog.Group("g", "v", f.v))
		lc.check(t, name+f.name+" slog JSON group", buf.String())
	}
}

// TestSecretAudit drives every operation to success and to failure with
// unique planted secrets and checks no error string or printed value shows
// any of them.
func TestSecretAudit(t *testing.T) {
	key := mustKey(t)
	planted := "eyJplantedAccessTokenValue.payload.signature"
	lc := newLeakChecker(t, key, planted, "plantedAccessTokenValue")
	ctx := context.Background()

	var (
		mu            sync.Mutex
		lastAssertion string
	)
	answers := []struct {
		name string
		h    func(w http.ResponseWriter, r *http.Request)
	}{
		{"success", func(w http.ResponseWriter, r *http.Request) {
			switch r.URL.Path {
			case "/oauth2/v2.1/token":
				jsonAnswer(200, `{"access_token":"`+planted+`","token_type":"Bearer","expires_in":60,"key_id":"k1"}`)(w, r)
			case "/v2/oauth/accessToken", "/oauth2/v3/token":
				jsonAnswer(200, `{"access_token":"`+planted+`","token_type":"Bearer","expires_in":60}`)(w, r)
			case "/oauth2/v2.1/tokens/kid":
				jsonAnswer(200, `{"kids":["k1"]}`)(w, r)
			case "/oauth2/v2.1/verify", "/v2/oauth/verify":
				jsonAnswer(200, `{"client_id":"1","expires_in":60}`)(w, r)
			default:
				w.WriteHeader(200)
			}
		}},
		{"400", jsonAnswer(400, `{"error":"invalid_request","error_description":"bad"}`)},
		{"500 HTML", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(500)
			_, _ = w.Write([]byte("<html>error</html>"))
		}},
		{"malformed 200", jsonAnswer(200, `{"access_token":`)},
		{"hang up", func(w http.ResponseWriter, r *http.Request) {
			hj, ok := w.(http.Hijacker)
			if !ok {
				return
			}
			conn, _, err := hj.Hijack()
			if err == nil {
				_ = conn.Close()
			}
		}},
	}
	for _, a := range answers {
		ts := newTestServer(t, func(w http.ResponseWriter, r *http.Request) {
			_ = r.ParseForm()
			mu.Lock()
			if v := r.Form.Get("client_assertion"); v != "" {
				lastAssertion = v
			}
			mu.Unlock()
			a.h(w, r)
		})
		c := newClient(t, ts.URL)
		lc.checkAllVerbs(t, "Client", c)
		for _, op := range allOps {
			var err error
			switch op {
			case "verifyChannelTokenByJWT":
				_, err = c.VerifyToken(ctx, planted)
			case "revokeChannelTokenByJWT":
				err = c.RevokeToken(ctx, planted)
			case "verifyChannelToken":
				_, err = c.VerifyShortLivedToken(ctx, planted)
			case "revokeChannelToken":
				err = c.RevokeShortLivedToken(ctx, planted)
			case "issueChannelTokenByJWT":
				var tok *oauth.Token
				tok, err = c.IssueToken(ctx, time.Hour)
				if tok != nil {
					lc.checkAllVerbs(t, "Token", tok)
					lc.checkAllVerbs(t, "Token value", *tok)
				}
			default:
				err = callByOp(ctx, c, op)
			}
			revoke := op == "revokeChannelTokenByJWT" || op == "revokeChannelToken"
			if a.name == "success" || (a.name == "malformed 200" && revoke) { // revoke's 200 has no body to check
				if err != nil {
					t.Errorf("%s %s: %v", a.name, op, err)
				}
				continue
			}
			if err == nil {
				t.Errorf("%s %s: no error", a.name, op)
				continue
			}
			lc.check(t, a.name+" "+op+" error", err.Error())
			lc.checkAllVerbs(t, a.name+" "+op+" error", err)
			mu.Lock()
			assertion := lastAssertion
			mu.Unlock()
			if assertion == "" {
				t.Fatal("no assertion seen by the server")
			}
			(&leakChecker{secrets: []string{assertion, assertion[len(assertion)-30:]}}).check(t, op+" error", err.Error())
		}
	}

	// Connection refused, including the GET endpoints whose query holds the
	// token or the assertion: Go's *url.Error would print the whole URL.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadURL := "http://" + ln.Addr().String()
	_ = ln.Close()
	c := newClient(t, deadURL)
	for _, op := range allOps {
		var err error
		switch op {
		case "verifyChannelTokenByJWT":
			_, err = c.VerifyToken(ctx, planted)
		default:
			err = callByOp(ctx, c, op)
		}
		if err == nil {
			t.Fatalf("%s to a closed port: no error", op)
		}
		lc.check(t, "refused "+op, err.Error())
		lc.checkAllVerbs(t, "refused "+op, err)
		var ue *url.Error
		if !errors.As(err, &ue) {
			t.Errorf("refused %s: %v does not unwrap to *url.Error", op, err)
		} else {
			lc.check(t, "unwrapped url.Error", ue.Error())
			if strings.Contains(ue.URL, "client_assertion=ey") || strings.Contains(ue.URL, "access_token=ey") {
				t.Errorf("unwrapped URL keeps the query: %s", ue.URL)
			}
		}
		if op == "verifyChannelTokenByJWT" && !strings.Contains(err.Error(), "access_token=REDACTED") {
			t.Errorf("verify error %q should show the redacted query", err)
		}
	}

	// The values themselves.
	lc.checkAllVerbs(t, "AssertionKey", key)
	lc.checkAllVerbs(t, "AssertionKey value", *key)
	cfg := oauth.Config{ChannelID: testChannelID, ChannelSecret: testSecret, Key: key}
	lc.checkAllVerbs(t, "Config", cfg)
	lc.checkAllVerbs(t, "*Config", &cfg)
	lc.checkAllVerbs(t, "struct holding a Config", struct{ C oauth.Config }{cfg})
	lc.checkAllVerbs(t, "[]*AssertionKey", []*oauth.AssertionKey{key, nil})
	lc.checkAllVerbs(t, "struct holding a key", struct {
		Key  *oauth.AssertionKey `json:"key"`
		Keys map[string]oauth.AssertionKey
	}{key, map[string]oauth.AssertionKey{"k": *key}})
	// Clock, HTTPClient and Logger nil: nothing stops encoding/json, so it
	// must be MarshalJSON that keeps the secret and the key out. And with
	// them set, and a BaseURL whose query holds a token.
	for _, c := range []oauth.Config{cfg, {ChannelID: testChannelID, ChannelSecret: testSecret, Key: key,
		BaseURL: "https://api.line.me/?access_token=" + planted, HTTPClient: &http.Client{},
		Clock: time.Now, Logger: slog.New(slog.DiscardHandler)}} {
		data, err := json.Marshal(c)
		if err != nil {
			t.Errorf("json.Marshal(Config) = %v, want its redacted form", err)
		} else if !strings.Contains(string(data), `"channel_secret":"REDACTED"`) {
			t.Errorf("json.Marshal(Config) = %s, want the secret REDACTED", data)
		}
		lc.checkAllVerbs(t, "Config for JSON", c)
		lc.checkAllVerbs(t, "[]Config", []oauth.Config{c})
		lc.checkAllVerbs(t, "map of *Config", map[string]*oauth.Config{"c": &c})
	}
	lc.checkAllVerbs(t, "Token", oauth.Token{AccessToken: planted})
	if s := fmt.Sprintf("%v", oauth.Token{AccessToken: planted}); !strings.Contains(s, "REDACTED") {
		t.Errorf("Token prints %q, want REDACTED in place of the token", s)
	}
}

// TestCancellation: cancelled and timed-out calls stay recognisable after
// sanitising, and no secret shows.
func TestCancellation(t *testing.T) {
	release := make(chan struct{})
	ts := newTestServer(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	defer close(release)
	c := newClient(t, ts.URL)
	lc := newLeakChecker(t, mustKey(t), "tokvalue-planted")

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := c.VerifyToken(ctx, "tokvalue-planted")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error = %v, want context.DeadlineExceeded", err)
	}
	lc.check(t, "deadline", err.Error())

	ctx, cancel = context.WithCancel(context.Background())
	go func() { time.Sleep(20 * time.Millisecond); cancel() }()
	_, err = c.IssueToken(ctx, time.Hour)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("error = %v, want context.Canceled", err)
	}
	lc.check(t, "cancel", err.Error())

	// Already cancelled: nothing is sent.
	before := ts.count()
	if _, err := c.IssueShortLivedToken(ctx); !errors.Is(err, context.Canceled) || ts.count() != before {
		t.Errorf("cancelled context: error = %v, %d new requests", err, ts.count()-before)
	}

	// The HTTP client's own timeout.
	slow, err := oauth.NewClient(oauth.Config{ChannelID: testChannelID, ChannelSecret: testSecret, BaseURL: ts.URL,
		HTTPClient: &http.Client{Timeout: 50 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = slow.IssueShortLivedToken(context.Background())
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Errorf("error = %v, want a timeout net.Error", err)
	}
	lc.check(t, "client timeout", err.Error())
}

// leakyTransportError is what a careless RoundTripper returns: its text
// quotes the request's URL (query included) and its form body.
type leakyTransportError struct {
	text    string
	err     error
	timeout bool
}

func (e *leakyTransportError) Error() string   { return e.text }
func (e *leakyTransportError) Unwrap() error   { return e.err }
func (e *leakyTransportError) Timeout() bool   { return e.timeout }
func (e *leakyTransportError) Temporary() bool { return false }

// cleanTransportError carries no request data: errors.As may reach it.
type cleanTransportError struct{}

func (cleanTransportError) Error() string { return "proxy refused the connection" }

// leakyRoundTripper fails every request with an error quoting it, wrapping
// cause, and records the assertion it saw.
type leakyRoundTripper struct {
	cause     error
	timeout   bool
	mu        sync.Mutex
	calls     int
	assertion string
}

func (rt *leakyRoundTripper) RoundTrip(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil {
		body, _ = io.ReadAll(req.Body)
		_ = req.Body.Close()
	}
	form, _ := url.ParseQuery(string(body))
	rt.mu.Lock()
	rt.calls++
	for _, v := range []string{form.Get("client_assertion"), req.URL.Query().Get("client_assertion")} {
		if v != "" {
			rt.assertion = v
		}
	}
	rt.mu.Unlock()
	inner := &leakyTransportError{
		text: fmt.Sprintf("cannot send %s %s (query %v) with body %q [%s]",
			req.Method, req.URL.String(), req.URL.Query(), body, form.Get("client_secret")+form.Get("access_token")),
		err: rt.cause, timeout: rt.timeout,
	}
	return nil, fmt.Errorf("proxy for %s: %w", req.URL, inner)
}

// errorTree returns err and every error reachable from it by Unwrap.
func errorTree(err error) []error {
	var out []error
	stack := []error{err}
	for len(stack) > 0 && len(out) < 100 {
		e := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if e == nil {
			continue
		}
		out = append(out, e)
		switch u := e.(type) {
		case interface{ Unwrap() error }:
			stack = append(stack, u.Unwrap())
		case interface{ Unwrap() []error }:
			stack = append(stack, u.Unwrap()...)
		}
	}
	return out
}

// TestTransportErrorScrubbed: an HTTPClient whose transport fails with an
// error quoting the request (the GET endpoints' query holds the token or
// the assertion; the POST bodies the secret, token or assertion) yields an
// error in which no text, at any depth of its chain, shows a secret, yet
// that still matches context errors and timeouts and reaches the
// transport's own error types when they are safe.
func TestTransportErrorScrubbed(t *testing.T) {
	key := mustKey(t)
	planted := "plantedTransportToken.payload.signature"
	lc := newLeakChecker(t, key, planted)
	causes := []struct {
		name    string
		cause   error
		timeout bool
	}{
		{"plain", nil, false},
		{"deadline", context.DeadlineExceeded, true},
		{"canceled", context.Canceled, false},
		{"clean cause", cleanTransportError{}, false},
	}
	for _, cc := range causes {
		for _, op := range allOps {
			t.Run(cc.name+"/"+op, func(t *testing.T) {
				rt := &leakyRoundTripper{cause: cc.cause, timeout: cc.timeout}
				c, err := oauth.NewClient(oauth.Config{ChannelID: testChannelID, ChannelSecret: testSecret, Key: key,
					BaseURL: "https://api.line.me", HTTPClient: &http.Client{Transport: rt},
					Clock: func() time.Time { return fixedNow }, Retry: oauth.RetryPolicy{MaxAttempts: 1}})
				if err != nil {
					t.Fatal(err)
				}
				err = callWithToken(context.Background(), c, op, planted)
				if err == nil || rt.calls != 1 {
					t.Fatalf("error = %v after %d requests, want a transport error after 1", err, rt.calls)
				}
				check := lc
				if rt.assertion != "" {
					check = &leakChecker{secrets: append(append([]string(nil), lc.secrets...), rt.assertion, rt.assertion[len(rt.assertion)-30:])}
				}
				check.check(t, "err.Error()", err.Error())
				check.checkAllVerbs(t, "err", err)
				var ue *url.Error
				if !errors.As(err, &ue) {
					t.Fatalf("%v does not unwrap to *url.Error", err)
				}
				check.check(t, "*url.Error Error()", ue.Error())
				check.check(t, "*url.Error URL", ue.URL)
				for i, e := range errorTree(err) {
					check.check(t, fmt.Sprintf("unwrapped error %d (%T) Error()", i, e), e.Error())
					check.check(t, fmt.Sprintf("unwrapped error %d (%T) %%+v", i, e), fmt.Sprintf("%+v", e))
				}
				if ue.Err == nil {
					t.Fatal("*url.Error lost its inner error")
				}
				check.check(t, "*url.Error.Err", ue.Err.Error())
				// The transport's error quotes the request: it must not be
				// reachable, not even by errors.As.
				var leaky *leakyTransportError
				if errors.As(err, &leaky) {
					check.check(t, "errors.As *leakyTransportError", leaky.Error())
				}
				if cc.cause != nil && !errors.Is(err, cc.cause) {
					t.Errorf("errors.Is(%v, %v) = false, want true", err, cc.cause)
				}
				var ne net.Error
				if got := errors.As(err, &ne) && ne.Timeout(); got != cc.timeout {
					t.Errorf("net.Error Timeout() = %t, want %t", got, cc.timeout)
				}
				if ue.Timeout() != cc.timeout {
					t.Errorf("(*url.Error).Timeout() = %t, want %t", ue.Timeout(), cc.timeout)
				}
				var clean cleanTransportError
				if got, want := errors.As(err, &clean), cc.cause == (cleanTransportError{}); got != want {
					t.Errorf("errors.As(cleanTransportError) = %t, want %t", got, want)
				}
				if !strings.Contains(err.Error(), "proxy") {
					t.Errorf("error %q lost the transport's own (scrubbed) words", err)
				}
			})
		}
	}
}

// callWithToken calls op, passing tok to the operations that take a token.
func callWithToken(ctx context.Context, c *oauth.Client, op, tok string) error {
	var err error
	switch op {
	case "verifyChannelTokenByJWT":
		_, err = c.VerifyToken(ctx, tok)
	case "revokeChannelTokenByJWT":
		err = c.RevokeToken(ctx, tok)
	case "verifyChannelToken":
		_, err = c.VerifyShortLivedToken(ctx, tok)
	case "revokeChannelToken":
		err = c.RevokeShortLivedToken(ctx, tok)
	default:
		err = callByOp(ctx, c, op)
	}
	return err
}
