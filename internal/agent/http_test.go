package agent_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/linetoken/linetoken/internal/agent"
	"github.com/linetoken/linetoken/internal/testkit"
	"github.com/linetoken/linetoken/internal/testredis"
	"github.com/linetoken/linetoken/oauth"
	"github.com/linetoken/linetoken/oauth/oauthtest"
)

// Caller keys of the API tests.
const (
	keyAll   = "caller-key-all-channels-0123456789"
	keyOnlyA = "caller-key-only-channel-a-987654321"
)

// apiFixture is an agent serving channel a (v2.1) and channel b (v2.1
// and short-lived), with or without caller keys.
type apiFixture struct {
	*running
	srv  *oauthtest.Server
	a, b oauthtest.Channel
}

func newAPIFixture(t *testing.T, callers bool) *apiFixture {
	t.Helper()
	srv := newFake(t)
	a, b := srv.NewChannel(t), srv.NewChannel(t)
	cfg := newConfig(t, srv, []agent.Channel{
		chanCfg(a, oauth.KindV21), chanCfg(b, oauth.KindV21), chanCfg(b, oauth.KindShortLived),
	}, func(c *agent.Config) {
		c.AllowedHosts = []string{"agent.internal"}
		if callers {
			c.Callers = []agent.Caller{
				{Name: "all-bot", Key: keyAll},
				{Name: "a-bot", Key: keyOnlyA, Channels: []string{a.ID}},
			}
		}
	})
	return &apiFixture{running: startAgent(t, srv, cfg), srv: srv, a: a, b: b}
}

func TestTokenAnswer(t *testing.T) {
	f := newAPIFixture(t, false)
	rep := f.v1("GET", "/v1/channels/"+f.a.ID+"/token", "")
	if rep.status != http.StatusOK {
		t.Fatalf("GET token: %d %s", rep.status, rep.body)
	}
	if cc := rep.header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control %q, want no-store", cc)
	}
	if ct := rep.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	tr := decodeToken(t, rep.body)
	info, ok := f.srv.Lookup(tr.AccessToken)
	if !ok || info.Kind != oauthtest.KindV21 || info.ChannelID != f.a.ID {
		t.Fatalf("the token served is not a valid v2.1 token of channel a at the fake: %+v %v", info, ok)
	}
	if tr.TokenType != "Bearer" || tr.Kind != "v2.1" {
		t.Errorf("token_type %q kind %q", tr.TokenType, tr.Kind)
	}
	if tr.KeyID == nil || *tr.KeyID != info.KeyID || *tr.KeyID == "" {
		t.Errorf("key_id %v, want %q", tr.KeyID, info.KeyID)
	}
	exp, err := time.Parse(time.RFC3339, tr.Expiry)
	if err != nil || !strings.HasSuffix(tr.Expiry, "Z") {
		t.Fatalf("expiry %q is not RFC 3339 UTC: %v", tr.Expiry, err)
	}
	if !exp.Equal(info.Expiry.Truncate(time.Second)) {
		t.Errorf("expiry %v, the fake's %v", exp, info.Expiry)
	}
	left := info.Expiry.Sub(f.srv.Now())
	if d := time.Duration(tr.ExpiresIn)*time.Second - left; d > 5*time.Second || d < -5*time.Second {
		t.Errorf("expires_in %d, but the token has %v left", tr.ExpiresIn, left)
	}
	if left > agent.DefaultLifetime || left < agent.DefaultLifetime-time.Minute {
		t.Errorf("the token lives %v, want the default 24h", left)
	}

	// Channel b has two kinds: ?kind= picks; short-lived has no key_id.
	sl := f.token(f.b.ID, "?kind=short-lived")
	if sl.Kind != "short-lived" || sl.KeyID != nil {
		t.Errorf("short-lived answer: kind %q key_id %v", sl.Kind, sl.KeyID)
	}
	if info, ok := f.srv.Lookup(sl.AccessToken); !ok || info.Kind != oauthtest.KindShortLived || info.ChannelID != f.b.ID {
		t.Errorf("short-lived token unknown at the fake: %+v", info)
	}
	v := f.token(f.b.ID, "?kind=v2.1")
	if v.Kind != "v2.1" || v.KeyID == nil {
		t.Errorf("v2.1 answer of b: %+v", v)
	}
	// HEAD gets the headers only.
	if rep := f.v1("HEAD", "/v1/channels/"+f.a.ID+"/token", ""); rep.status != http.StatusOK || len(rep.body) != 0 {
		t.Errorf("HEAD token: %d %q", rep.status, rep.body)
	}
}

func TestHealthReadyMetricsNeedNoHeader(t *testing.T) {
	f := newAPIFixture(t, true)
	rep := f.do("GET", "/healthz", "")
	if rep.status != http.StatusOK || !strings.Contains(string(rep.body), `"ok"`) {
		t.Errorf("/healthz: %d %s", rep.status, rep.body)
	}
	testkit.Eventually(t, waitLimit, "/readyz 200", func() bool {
		code, st := f.readyz()
		return code == http.StatusOK && st.Status == "ready"
	})
	tok := f.token(f.a.ID, "", agent.HeaderKey, keyAll)
	rep = f.do("GET", "/metrics", "")
	if rep.status != http.StatusOK || !strings.HasPrefix(rep.header.Get("Content-Type"), "text/plain") {
		t.Fatalf("/metrics: %d %s", rep.status, rep.header.Get("Content-Type"))
	}
	for _, secret := range []string{tok.AccessToken, keyAll, keyOnlyA, f.a.Secret, f.b.Secret} {
		if strings.Contains(string(rep.body), secret) || strings.Contains(f.logs.String(), secret) {
			t.Fatalf("a secret or token shows in /metrics or the log")
		}
	}
	m := f.metrics()
	for _, name := range []string{"linetoken_token_expiry_timestamp_seconds", "linetoken_token_refreshes_total",
		"linetoken_http_requests_total", "go_goroutines", "process_cpu_seconds_total"} {
		if m[name] == nil {
			t.Errorf("/metrics lacks %s", name)
		}
	}
	info, _ := f.srv.Lookup(tok.AccessToken)
	if got := metricIn(m, "linetoken_token_expiry_timestamp_seconds", labels("channel", f.a.ID, "kind", "v2.1")); got != float64(info.Expiry.Unix()) {
		t.Errorf("expiry metric %v, want %d", got, info.Expiry.Unix())
	}
	if got := metricIn(m, "linetoken_token_refreshes_total", labels("channel", f.a.ID, "kind", "v2.1", "result", "issued")); got != 1 {
		t.Errorf("refreshes issued %v, want 1", got)
	}
	if got := metricIn(m, "linetoken_http_requests_total", labels("route", "/v1/channels/{id}/token", "code", "200")); got != 1 {
		t.Errorf("token requests %v, want 1", got)
	}
	testkit.Eventually(t, waitLimit, "linetoken_v21_slots_in_use of a to be 1", func() bool {
		return f.metric("linetoken_v21_slots_in_use", labels("channel", f.a.ID)) == 1
	})
	// The access log names the caller, never its key.
	if !strings.Contains(f.logs.String(), "caller=all-bot") {
		t.Errorf("the access log does not name the caller:\n%s", f.logs)
	}
}

func TestHostAndOrigin(t *testing.T) {
	f := newAPIFixture(t, false)
	tokenPath := "/v1/channels/" + f.a.ID + "/token"
	for _, host := range []string{"evil.example", "evil.example:7878", "127.0.0.2", "10.0.0.1:80", "localhost.evil.example"} {
		for _, path := range []string{tokenPath, "/healthz", "/metrics", "/readyz", "/nowhere"} {
			// No guard header either: bad_host comes first.
			wantErr(t, f.do("GET", path, "", "Host", host), http.StatusForbidden, "bad_host")
		}
	}
	for _, host := range []string{"127.0.0.1", "localhost:7878", "LOCALHOST", "[::1]:7878", "[::1]", "agent.internal:7878"} {
		if rep := f.v1("GET", tokenPath, "", "Host", host); rep.status != http.StatusOK {
			t.Errorf("Host %q refused: %d %s", host, rep.status, rep.body)
		}
	}
	for _, path := range []string{tokenPath, "/healthz", "/metrics"} {
		wantErr(t, f.v1("GET", path, "", "Origin", "http://localhost:7878"), http.StatusForbidden, "bad_host")
		wantErr(t, f.v1("GET", path, "", "Origin", "null"), http.StatusForbidden, "bad_host")
	}
}

func TestErrorCodesInOrder(t *testing.T) {
	f := newAPIFixture(t, true)
	a, b := f.a.ID, f.b.ID
	tokA, inv := "/v1/channels/"+a+"/token", "/v1/channels/"+a+"/token/invalidate"
	big := strings.Repeat("x", 5<<10)
	G := agent.HeaderRequest

	// missing_request_header, naming the header; after bad_host.
	e := wantErr(t, f.do("GET", tokA, "", agent.HeaderKey, keyAll), http.StatusForbidden, "missing_request_header")
	if !strings.Contains(e.Message, agent.HeaderRequest) {
		t.Errorf("message does not name the header: %q", e.Message)
	}
	wantErr(t, f.do("GET", tokA, "", G, "yes", agent.HeaderKey, keyAll), http.StatusForbidden, "missing_request_header")
	wantErr(t, f.do("GET", "/v1/nowhere", "", agent.HeaderKey, keyAll), http.StatusForbidden, "missing_request_header")
	wantErr(t, f.do("GET", tokA, "", "Host", "evil.example"), http.StatusForbidden, "bad_host")

	// invalid_caller_key: none, wrong, empty; before not_found.
	wantErr(t, f.v1("GET", tokA, ""), http.StatusUnauthorized, "invalid_caller_key")
	wantErr(t, f.v1("GET", tokA, "", agent.HeaderKey, keyAll+"x"), http.StatusUnauthorized, "invalid_caller_key")
	wantErr(t, f.v1("GET", "/v1/nowhere", "", agent.HeaderKey, "nope"), http.StatusUnauthorized, "invalid_caller_key")

	// not_found: before method_not_allowed.
	for _, p := range []string{"/", "/v1/nowhere", "/v1/channels/" + a, "/v1/channels//token", "/v1/channels/" + a + "/token/extra", "/healthz/x"} {
		wantErr(t, f.v1("POST", p, "", agent.HeaderKey, keyAll), http.StatusNotFound, "not_found")
	}

	// method_not_allowed, with Allow; before body_too_large.
	rep := f.v1("POST", tokA, "", agent.HeaderKey, keyAll)
	wantErr(t, rep, http.StatusMethodNotAllowed, "method_not_allowed")
	if rep.header.Get("Allow") != "GET" {
		t.Errorf("Allow %q on the token route", rep.header.Get("Allow"))
	}
	rep = f.v1("PUT", inv, big, agent.HeaderKey, keyAll)
	wantErr(t, rep, http.StatusMethodNotAllowed, "method_not_allowed")
	if rep.header.Get("Allow") != "POST" {
		t.Errorf("Allow %q on invalidate", rep.header.Get("Allow"))
	}
	rep = f.do("POST", "/healthz", "")
	wantErr(t, rep, http.StatusMethodNotAllowed, "method_not_allowed")
	if !strings.Contains(rep.header.Get("Allow"), "GET") {
		t.Errorf("Allow %q on /healthz", rep.header.Get("Allow"))
	}

	// body_too_large (over 4 KiB); before channel_not_allowed.
	wantErr(t, f.v1("POST", inv, big, agent.HeaderKey, keyAll), http.StatusRequestEntityTooLarge, "body_too_large")
	wantErr(t, f.v1("POST", "/v1/channels/"+b+"/token/invalidate", big, agent.HeaderKey, keyOnlyA), http.StatusRequestEntityTooLarge, "body_too_large")

	// channel_not_allowed, also for an unknown channel with a limited key;
	// before unknown_channel and ambiguous_kind.
	wantErr(t, f.v1("GET", "/v1/channels/"+b+"/token", "", agent.HeaderKey, keyOnlyA), http.StatusForbidden, "channel_not_allowed")
	wantErr(t, f.v1("GET", "/v1/channels/999/token", "", agent.HeaderKey, keyOnlyA), http.StatusForbidden, "channel_not_allowed")
	wantErr(t, f.v1("POST", "/v1/channels/999/token/invalidate", "{}", agent.HeaderKey, keyOnlyA), http.StatusForbidden, "channel_not_allowed")

	// unknown_channel: no such channel, or a kind it lacks; before bad_request.
	wantErr(t, f.v1("GET", "/v1/channels/999/token", "", agent.HeaderKey, keyAll), http.StatusNotFound, "unknown_channel")
	wantErr(t, f.v1("POST", "/v1/channels/999/token/invalidate", "not json", agent.HeaderKey, keyAll), http.StatusNotFound, "unknown_channel")
	wantErr(t, f.v1("GET", tokA+"?kind=short-lived", "", agent.HeaderKey, keyOnlyA), http.StatusNotFound, "unknown_channel")
	wantErr(t, f.v1("GET", tokA+"?kind=stateless", "", agent.HeaderKey, keyAll), http.StatusNotFound, "unknown_channel")

	// ambiguous_kind names the kinds.
	e = wantErr(t, f.v1("GET", "/v1/channels/"+b+"/token", "", agent.HeaderKey, keyAll), http.StatusBadRequest, "ambiguous_kind")
	if !strings.Contains(e.Message, "v2.1") || !strings.Contains(e.Message, "short-lived") {
		t.Errorf("ambiguous_kind does not name the kinds: %q", e.Message)
	}

	// bad_request: a kind that is none, a body that is not the object.
	wantErr(t, f.v1("GET", tokA+"?kind=v3", "", agent.HeaderKey, keyAll), http.StatusBadRequest, "bad_request")
	for _, body := range []string{"", "not json", "{}", `{"access_token":""}`, `{"access_token":42}`, `[]`} {
		wantErr(t, f.v1("POST", inv, body, agent.HeaderKey, keyAll), http.StatusBadRequest, "bad_request")
	}

	// A key reads only its channels; the all-channels key reads both.
	if tr := f.token(a, "", agent.HeaderKey, keyOnlyA); tr.Kind != "v2.1" {
		t.Errorf("a-bot reading a: %+v", tr)
	}
	f.token(b, "?kind=short-lived", agent.HeaderKey, keyAll)
	f.invalidate(a, "not-the-current-token", agent.HeaderKey, keyOnlyA)

	// Nothing secret in the log.
	for _, s := range []string{keyAll, keyOnlyA, f.a.Secret, f.b.Secret} {
		if strings.Contains(f.logs.String(), s) {
			t.Fatal("a caller key or channel secret shows in the log")
		}
	}
	// Every request was counted under its route and code.
	m := f.metrics()
	for _, c := range []struct {
		route string
		code  int
	}{{"other", 401}, {"other", 404}, {"/v1/channels/{id}/token/invalidate", 413}, {"/v1/channels/{id}/token", 403}} {
		if metricIn(m, "linetoken_http_requests_total", labels("route", c.route, "code", strconv.Itoa(c.code))) == 0 {
			t.Errorf("linetoken_http_requests_total{route=%q,code=\"%d\"} missing", c.route, c.code)
		}
	}
}

// unavailable GETs a's token and wants 503 token_unavailable with cause,
// a Retry-After and no access token in the body.
func wantUnavailable(t *testing.T, r *running, id, cause string, tokens ...string) {
	t.Helper()
	rep := r.v1("GET", "/v1/channels/"+id+"/token", "")
	e := wantErr(t, rep, http.StatusServiceUnavailable, "token_unavailable")
	if e.Cause != cause {
		t.Errorf("cause %q, want %q (%s)", e.Cause, cause, rep.body)
	}
	if n, err := strconv.Atoi(rep.header.Get("Retry-After")); err != nil || n < 1 {
		t.Errorf("Retry-After %q", rep.header.Get("Retry-After"))
	}
	for _, tok := range tokens {
		if strings.Contains(string(rep.body), tok) {
			t.Errorf("the error body carries an access token")
		}
	}
}

// v21Issue is the v2.1 issue endpoint, for faults.
const v21Issue = "/oauth2/v2.1/token"

func TestTokenUnavailableLineRefused(t *testing.T) {
	srv := newFake(t)
	ch := srv.NewChannel(t)
	r := startAgent(t, srv, newConfig(t, srv, []agent.Channel{chanCfg(ch, oauth.KindV21)}))
	tok := r.token(ch.ID, "")
	// The key is removed in the console and the token revoked: the
	// caller's report drops it, and no new one can be had.
	srv.UnregisterKey(ch.KeyID)
	revokeAndReport(t, r, srv, ch.ID, tok.AccessToken)
	wantUnavailable(t, r, ch.ID, "line_refused", tok.AccessToken)
	if err := r.stop(); err != nil {
		t.Errorf("a refusal after the first token must not stop the agent: %v", err)
	}
}

func TestTokenUnavailableLineUnreachable(t *testing.T) {
	srv := newFake(t)
	ch := srv.NewChannel(t)
	srv.InjectFault(1000, oauthtest.Fault{Path: v21Issue, Status: http.StatusInternalServerError, Body: `{"message":"Internal Server Error"}`})
	r := startAgent(t, srv, newConfig(t, srv, []agent.Channel{chanCfg(ch, oauth.KindV21)}))
	wantUnavailable(t, r, ch.ID, "line_unreachable")
	code, st := r.readyz()
	if code != http.StatusServiceUnavailable || len(st.NotReady) != 1 || st.NotReady[0].Channel != ch.ID || st.NotReady[0].Cause != "line_unreachable" {
		t.Errorf("/readyz: %d %+v", code, st)
	}
	// Retry-After from LINE is passed on.
	srv.ClearFaults()
	srv.InjectFault(1000, oauthtest.Fault{Path: v21Issue, Status: http.StatusServiceUnavailable, Body: `{}`,
		Header: http.Header{"Retry-After": {"7"}}})
	srv.Advance(10 * time.Minute) // past the source's backoff
	testkit.Eventually(t, waitLimit, "Retry-After 7 passed on", func() bool {
		return r.v1("GET", "/v1/channels/"+ch.ID+"/token", "").header.Get("Retry-After") == "7"
	})
}

// TestTokenUnavailableStoreDown: a store that fails after the first
// token (a FileStore whose directory is removed, a Redis killed) gives
// 503 store_unavailable, and /readyz says so; Run does not stop.
func TestTokenUnavailableStoreDown(t *testing.T) {
	for _, c := range []struct {
		name  string
		store func(t *testing.T, s *agent.StoreConfig) (breakIt func())
	}{
		{"file", func(t *testing.T, s *agent.StoreConfig) func() {
			dir := filepath.Join(t.TempDir(), "store")
			s.File = filepath.Join(dir, "tokens.json")
			return func() {
				if err := os.RemoveAll(dir); err != nil {
					t.Fatal(err)
				}
			}
		}},
		{"redis", func(t *testing.T, s *agent.StoreConfig) func() {
			rs := testredis.Start(t)
			s.Redis = "redis://" + rs.Addr() + "/0"
			return rs.Kill
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			srv := newFake(t)
			ch := srv.NewChannel(t)
			var breakIt func()
			cfg := newConfig(t, srv, []agent.Channel{chanCfg(ch, oauth.KindV21)}, func(cfg *agent.Config) {
				breakIt = c.store(t, &cfg.Store)
			})
			r := startAgent(t, srv, cfg)
			tok := r.token(ch.ID, "")
			breakIt()
			revokeAndReport(t, r, srv, ch.ID, tok.AccessToken)
			wantUnavailable(t, r, ch.ID, "store_unavailable", tok.AccessToken)
			testkit.Eventually(t, waitLimit, "/readyz naming store_unavailable", func() bool {
				code, st := r.readyz()
				return code == http.StatusServiceUnavailable && len(st.NotReady) == 1 && st.NotReady[0].Cause == "store_unavailable"
			})
			if err := r.stop(); err != nil {
				t.Errorf("Run with the store down: %v", err)
			}
		})
	}
}

// revokeAndReport revokes a v2.1 token at the fake, as if LINE lost it,
// and reports it refused to the agent.
func revokeAndReport(t *testing.T, r *running, srv *oauthtest.Server, id, accessToken string) {
	t.Helper()
	if err := srv.Client(t, id).RevokeToken(t.Context(), accessToken); err != nil {
		t.Fatal(err)
	}
	r.invalidate(id, accessToken)
}

// TestTLSListener: with tls set, the listener speaks TLS with the
// configured certificate: a client trusting it gets the token, a plain
// HTTP request gets no token.
func TestTLSListener(t *testing.T) {
	srv := newFake(t)
	ch := srv.NewChannel(t)
	certFile, keyFile, pool := selfSignedCert(t)
	cfg := newConfig(t, srv, []agent.Channel{chanCfg(ch, oauth.KindV21)}, func(c *agent.Config) {
		c.TLS = &agent.TLSConfig{CertFile: certFile, KeyFile: keyFile}
	})
	r := startAgent(t, srv, cfg)
	addr := strings.TrimPrefix(r.base, "http://")

	plain := r.do("GET", "/v1/channels/"+ch.ID+"/token", "", agent.HeaderRequest, "1")
	if plain.status == http.StatusOK || bytes.Contains(plain.body, []byte("access_token")) {
		t.Errorf("a plain HTTP request to the TLS listener: %d %s", plain.status, plain.body)
	}

	r.base = "https://" + addr
	r.http.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}
	tok := r.token(ch.ID, "")
	if _, ok := srv.Lookup(tok.AccessToken); !ok {
		t.Error("the TLS listener served no valid token")
	}
	// A client that does not trust the certificate cannot connect.
	r.http.Transport = &http.Transport{}
	if _, err := r.try("GET", "/healthz", ""); err == nil {
		t.Error("a client not trusting the certificate reached the TLS listener")
	}
}

// TestTLSCertNotACertificate: a cert_file that is no certificate is a
// located config error that says why.
func TestTLSCertNotACertificate(t *testing.T) {
	s := newSecretFiles(t)
	_, err := s.parse("tls:\n  cert_file: @D@/caller.key\n  key_file: @D@/key.pem\n" + okChannel)
	wantConfigError(t, s, err, "agent.yaml", 2, "tls.cert_file: cannot load the certificate and key: ")
	if err == nil {
		return
	}
	_, reason, _ := strings.Cut(err.Error(), "cannot load the certificate and key: ")
	if strings.Contains(err.Error(), "%!") || !strings.Contains(reason, "PEM") {
		t.Errorf("the error does not say why: %v", err)
	}
}

// selfSignedCert writes a self-signed certificate for 127.0.0.1 and its
// key, and returns their paths and a pool trusting the certificate.
func selfSignedCert(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "linetoken agent test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	for path, block := range map[string]*pem.Block{
		certFile: {Type: "CERTIFICATE", Bytes: der}, keyFile: {Type: "PRIVATE KEY", Bytes: kder},
	} {
		if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}
