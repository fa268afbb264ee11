package oauth_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
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
	var buf bytes.Buffer
	slog.New(slog.NewTextHandler(&buf, nil)).Info("x", "v", v)
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("x", "v", v)
	lc.check(t, name+" slog", buf.String())
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
