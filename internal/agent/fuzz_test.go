package agent_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/linetoken/linetoken/internal/agent"
	"github.com/linetoken/linetoken/oauth"
	"github.com/linetoken/linetoken/oauth/oauthtest"
)

// FuzzConfig: any bytes parse to a *Config or fail with a *ConfigError
// whose every line is FILE:LINE: ...; never a panic, never a secret read
// from a file or the environment in the error. @D@ in the input stands
// for the directory of the secret files (see secretFiles).
func FuzzConfig(f *testing.F) {
	s := newSecretFiles(f)
	f.Add([]byte(fullConfig))
	f.Add([]byte(okChannel))
	for _, c := range configErrorCases {
		f.Add([]byte(c.yaml))
	}
	lineRE := regexp.MustCompile(`^agent\.yaml:[1-9][0-9]*: \S`)
	f.Fuzz(func(t *testing.T, data []byte) {
		text := strings.ReplaceAll(string(data), "@D@", s.dir)
		cfg, err := agent.ParseConfig("agent.yaml", []byte(text), s.getenv)
		if err == nil {
			if cfg == nil || len(cfg.Channels) == 0 {
				t.Fatalf("no error and no usable config: %+v", cfg)
			}
			return
		}
		var ce *agent.ConfigError
		if cfg != nil || !errors.As(err, &ce) || len(ce.Problems) == 0 {
			t.Fatalf("want only a *ConfigError with problems, got %v %T %v", cfg, err, err)
		}
		for _, l := range strings.Split(err.Error(), "\n") {
			if !lineRE.MatchString(l) {
				t.Fatalf("the error line %q is not agent.yaml:LINE: ...", l)
			}
		}
		for _, v := range s.values {
			if v = strings.TrimSpace(v); !strings.Contains(text, v) && strings.Contains(err.Error(), v) {
				t.Fatalf("the error shows a secret value read from a file or the environment:\n%v", err)
			}
		}
	})
}

// The channels of FuzzAPI, fixed so that seeds name them in every worker.
const (
	fuzzChanA = "1000000001" // v2.1 and short-lived: ambiguous without ?kind=
	fuzzChanB = "1000000002" // v2.1 whose key is not registered: 503
)

// apiErrorStatus is each documented error code's status.
var apiErrorStatus = map[string]int{
	"bad_host": 403, "missing_request_header": 403, "invalid_caller_key": 401, "not_found": 404,
	"method_not_allowed": 405, "body_too_large": 413, "channel_not_allowed": 403, "unknown_channel": 404,
	"ambiguous_kind": 400, "bad_request": 400, "token_unavailable": 503,
}

var (
	tokenRouteRE      = regexp.MustCompile(`^/v1/channels/[^/]+/token$`)
	invalidateRouteRE = regexp.MustCompile(`^/v1/channels/[^/]+/token/invalidate$`)
)

// fuzzAgent is FuzzAPI's agent (not running: ServeHTTP is called
// directly), its fake and the tokens it serves.
type fuzzAgent struct {
	a      *agent.Agent
	srv    *oauthtest.Server
	tokens []string
}

// newFuzzAgent builds FuzzAPI's agent; edit (FuzzProxy's) changes its
// config and options before validation.
func newFuzzAgent(tb testing.TB, edit ...func(*oauthtest.Server, *agent.Config, *agent.Options)) *fuzzAgent {
	tb.Helper()
	srv := oauthtest.NewServer()
	tb.Cleanup(srv.Close)
	var chans []agent.Channel
	for _, id := range []string{fuzzChanA, fuzzChanB} {
		secret := "0123456789abcdef0123456789abcde" + id[len(id)-1:]
		srv.AddChannel(id, secret)
		priv, pub, err := oauth.GenerateAssertionKey()
		if err != nil {
			tb.Fatal(err)
		}
		kid, err := srv.RegisterKey(id, pub)
		if err != nil {
			tb.Fatal(err)
		}
		key, err := oauth.ParseAssertionKey(priv, kid)
		if err != nil {
			tb.Fatal(err)
		}
		chans = append(chans, agent.Channel{ID: id, Kind: oauth.KindV21, Secret: agent.Secret(secret), Key: key})
		if id == fuzzChanA {
			chans = append(chans, agent.Channel{ID: id, Kind: oauth.KindShortLived, Secret: agent.Secret(secret)})
		} else {
			srv.UnregisterKey(kid)
		}
	}
	cfg := &agent.Config{Listen: "127.0.0.1:0", BaseURL: srv.URL(), Channels: chans, AllowedHosts: []string{"agent.internal"},
		Callers: []agent.Caller{{Name: "all", Key: keyAll}, {Name: "a", Key: keyOnlyA, Channels: []string{fuzzChanA}}}}
	opts := agent.Options{Clock: srv.Now, Logger: slog.New(slog.DiscardHandler)}
	for _, e := range edit {
		e(srv, cfg, &opts)
	}
	if err := cfg.Validate(); err != nil {
		tb.Fatal(err)
	}
	a, err := agent.New(cfg, opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = a.Close() })
	fa := &fuzzAgent{a: a, srv: srv}
	for _, kind := range []string{"v2.1", "short-lived"} {
		rec := fa.serve("GET", "/v1/channels/"+fuzzChanA+"/token", "127.0.0.1", "", "1", keyAll, kind, nil)
		var tr tokenReply
		if err := json.Unmarshal(rec.Body.Bytes(), &tr); rec.Code != 200 || err != nil {
			tb.Fatalf("the fuzz agent serves no %s token: %d %s", kind, rec.Code, rec.Body)
		}
		fa.tokens = append(fa.tokens, tr.AccessToken)
	}
	return fa
}

// serve sends one request through ServeHTTP; "" leaves a header out.
func (fa *fuzzAgent) serve(method, path, host, origin, guard, key, kind string, body []byte) *httptest.ResponseRecorder {
	req := httptest.NewRequest("GET", "/", bytes.NewReader(body))
	req.Method, req.Host = method, host
	req.URL = &url.URL{Path: path}
	if kind != "" {
		req.URL.RawQuery = url.Values{"kind": {kind}}.Encode()
	}
	req.RequestURI = req.URL.RequestURI()
	for name, v := range map[string]string{"Origin": origin, agent.HeaderRequest: guard, agent.HeaderKey: key} {
		if v != "" {
			req.Header.Set(name, v)
		}
	}
	rec := httptest.NewRecorder()
	fa.a.ServeHTTP(rec, req)
	return rec
}

// FuzzAPI: any method, path, Host, Origin, guard header, caller key,
// ?kind= and body get a documented answer: a JSON error of the issue's
// list with its status, a token, a 204, /healthz, /readyz or /metrics;
// never another 5xx, never an access token in an error body.
func FuzzAPI(f *testing.F) {
	fa := newFuzzAgent(f)
	inv := func(tok string) []byte { b, _ := json.Marshal(map[string]string{"access_token": tok}); return b }
	tokA, invA := "/v1/channels/"+fuzzChanA+"/token", "/v1/channels/"+fuzzChanA+"/token/invalidate"
	for _, s := range []struct {
		method, path, host, origin, guard, key, kind string
		body                                         []byte
	}{
		{"GET", tokA, "127.0.0.1:7878", "", "1", keyAll, "v2.1", nil},
		{"GET", tokA, "localhost", "", "1", keyOnlyA, "short-lived", nil},
		{"HEAD", tokA, "[::1]:7878", "", "1", keyAll, "v2.1", nil},
		{"GET", tokA, "127.0.0.1", "", "1", keyAll, "", nil},
		{"GET", tokA, "127.0.0.1", "", "1", keyAll, "stateless", nil},
		{"GET", tokA, "127.0.0.1", "", "1", keyAll, "v9", nil},
		{"GET", "/v1/channels/" + fuzzChanB + "/token", "127.0.0.1", "", "1", keyAll, "", nil},
		{"GET", "/v1/channels/" + fuzzChanB + "/token", "127.0.0.1", "", "1", keyOnlyA, "", nil},
		{"GET", "/v1/channels/42/token", "agent.internal", "", "1", keyAll, "", nil},
		{"GET", tokA, "evil.example", "", "1", keyAll, "v2.1", nil},
		{"GET", tokA, "127.0.0.1", "http://127.0.0.1", "1", keyAll, "v2.1", nil},
		{"GET", tokA, "127.0.0.1", "", "", keyAll, "v2.1", nil},
		{"GET", tokA, "127.0.0.1", "", "1", "", "v2.1", nil},
		{"GET", tokA, "127.0.0.1", "", "1", "wrong", "v2.1", nil},
		{"DELETE", tokA, "127.0.0.1", "", "1", keyAll, "v2.1", nil},
		{"POST", invA, "127.0.0.1", "", "1", keyAll, "v2.1", inv(fa.tokens[0])},
		{"POST", invA, "127.0.0.1", "", "1", keyAll, "short-lived", inv("x")},
		{"POST", invA, "127.0.0.1", "", "1", keyAll, "v2.1", bytes.Repeat([]byte("a"), 5000)},
		{"POST", invA, "127.0.0.1", "", "1", keyAll, "v2.1", []byte("{")},
		{"GET", invA, "127.0.0.1", "", "1", keyAll, "", nil},
		{"GET", "/v1/other", "127.0.0.1", "", "1", keyAll, "", nil},
		{"GET", "/healthz", "127.0.0.1", "", "", "", "", nil},
		{"GET", "/readyz", "localhost:1", "", "", "", "", nil},
		{"GET", "/metrics", "127.0.0.1", "", "", "", "", nil},
		{"PUT", "/metrics", "127.0.0.1", "", "", "", "", nil},
	} {
		f.Add(s.method, s.path, s.host, s.origin, s.guard, s.key, s.kind, s.body)
	}
	f.Fuzz(func(t *testing.T, method, path, host, origin, guard, key, kind string, body []byte) {
		rec := fa.serve(method, path, host, origin, guard, key, kind, body)
		res := rec.Result()
		b, _ := io.ReadAll(res.Body)
		ct := res.Header.Get("Content-Type")
		switch code := res.StatusCode; {
		case code == http.StatusOK && path == "/metrics":
			if !strings.HasPrefix(ct, "text/plain") {
				t.Fatalf("/metrics Content-Type %q", ct)
			}
		case code == http.StatusOK && (path == "/healthz" || path == "/readyz"):
			fuzzJSON(t, ct, b, new(map[string]any))
		case code == http.StatusServiceUnavailable && path == "/readyz":
			var st readyState
			fuzzJSON(t, ct, b, &st)
			if st.Status != "not_ready" || len(st.NotReady) == 0 {
				t.Fatalf("/readyz 503: %s", b)
			}
		case code == http.StatusOK:
			if !tokenRouteRE.MatchString(path) || (method != "GET" && method != "HEAD") {
				t.Fatalf("200 for %s %q", method, path)
			}
			if method == "HEAD" {
				break
			}
			var tr tokenReply
			fuzzJSON(t, ct, b, &tr)
			if tr.AccessToken == "" || tr.TokenType != "Bearer" || (tr.Kind != "v2.1" && tr.Kind != "short-lived") ||
				res.Header.Get("Cache-Control") != "no-store" {
				t.Fatalf("not a token answer: %s", b)
			}
		case code == http.StatusNoContent:
			if !invalidateRouteRE.MatchString(path) || method != "POST" || len(b) != 0 {
				t.Fatalf("204 for %s %q: %q", method, path, b)
			}
		default:
			var e apiErr
			fuzzJSON(t, ct, b, &e)
			if want, ok := apiErrorStatus[e.Error]; !ok || want != code || e.Message == "" {
				t.Fatalf("%d is not a documented answer: %s", code, b)
			}
			switch e.Error {
			case "method_not_allowed":
				if res.Header.Get("Allow") == "" {
					t.Fatal("405 without Allow")
				}
			case "token_unavailable":
				if res.Header.Get("Retry-After") == "" || (e.Cause != "line_refused" && e.Cause != "line_unreachable" && e.Cause != "store_unavailable") {
					t.Fatalf("token_unavailable without Retry-After or a cause: %s", b)
				}
			}
			for _, tok := range fa.tokens {
				if bytes.Contains(b, []byte(tok)) {
					t.Fatal("an error body carries an access token")
				}
			}
		}
	})
}

// fuzzJSON decodes an answer's JSON into v, strictly, failing t unless
// it is application/json.
func fuzzJSON(t *testing.T, ct string, b []byte, v any) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if ct != "application/json" || dec.Decode(v) != nil {
		t.Fatalf("not the documented JSON (%q): %s", ct, b)
	}
}
