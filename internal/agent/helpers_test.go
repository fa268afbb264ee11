package agent_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/linetoken/linetoken/internal/agent"
	"github.com/linetoken/linetoken/internal/testkit"
	"github.com/linetoken/linetoken/oauth"
	"github.com/linetoken/linetoken/oauth/oauthtest"
)

// Test bounds: generous, for a loaded 2-core machine.
const (
	// waitLimit bounds every wait on an event of the agent.
	waitLimit = 15 * time.Second
	// testPoll is the agent's PollInterval in tests: its keepers look at
	// their tokens this often, so a rotation shows within milliseconds.
	testPoll = 5 * time.Millisecond
)

// newFake starts a fake LINE, closed when t ends.
func newFake(t *testing.T) *oauthtest.Server {
	t.Helper()
	srv := oauthtest.NewServer()
	t.Cleanup(srv.Close)
	return srv
}

// chanCfg is the agent's setting for an oauthtest channel and kind.
func chanCfg(ch oauthtest.Channel, kind oauth.TokenKind, sinks ...agent.Sink) agent.Channel {
	return agent.Channel{ID: ch.ID, Kind: kind, Secret: agent.Secret(ch.Secret), Key: ch.Key, Sinks: sinks}
}

// newConfig is a validated config serving chans of srv on a free loopback
// port; edit, when given, changes it before validation.
func newConfig(t *testing.T, srv *oauthtest.Server, chans []agent.Channel, edit ...func(*agent.Config)) *agent.Config {
	t.Helper()
	cfg := &agent.Config{Listen: "127.0.0.1:0", BaseURL: srv.URL(), Channels: chans}
	for _, e := range edit {
		e(cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("the test's config is invalid: %v", err)
	}
	return cfg
}

// running is an agent whose Run serves in a goroutine.
type running struct {
	t      *testing.T
	a      *agent.Agent
	base   string // http://host:port
	proxy  string // the proxy's http://host:port, when configured
	logs   *testkit.SyncBuffer
	cancel context.CancelFunc
	done   chan error
	http   *http.Client
}

// testOptions are the agent options of every test: the fake's clock, a
// fast poll and a debug log into logs.
func testOptions(srv *oauthtest.Server, logs *testkit.SyncBuffer) agent.Options {
	return agent.Options{
		Clock: srv.Now, PollInterval: testPoll,
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
}

// startAgent runs an agent for cfg until t ends (or stop) and waits until
// it listens. edit changes the options first.
func startAgent(t *testing.T, srv *oauthtest.Server, cfg *agent.Config, edit ...func(*agent.Options)) *running {
	t.Helper()
	r, err := launch(t, srv, cfg, edit...)
	if err != nil {
		t.Fatalf("Run ended before listening: %v\nlog:\n%s", err, r.logs)
	}
	return r
}

// launch starts Run and waits for its first listener, or for Run's error.
func launch(t *testing.T, srv *oauthtest.Server, cfg *agent.Config, edit ...func(*agent.Options)) (*running, error) {
	t.Helper()
	r := &running{t: t, logs: &testkit.SyncBuffer{}, done: make(chan error, 1),
		http: &http.Client{Timeout: waitLimit, Transport: &http.Transport{MaxIdleConnsPerHost: 16}}}
	opts := testOptions(srv, r.logs)
	addrs, proxyAddrs := make(chan string, 4), make(chan string, 1)
	opts.OnListen = func(addr string) { addrs <- addr }
	opts.OnProxyListen = func(addr string) { proxyAddrs <- addr }
	for _, e := range edit {
		e(&opts)
	}
	a, err := agent.New(cfg, opts)
	if err != nil {
		t.Fatalf("agent.New: %v", err)
	}
	r.a = a
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() { r.done <- a.Run(ctx) }()
	t.Cleanup(func() { _ = r.stop() })
	select {
	case addr := <-addrs:
		r.base = "http://" + addr
		if cfg.Proxy != nil {
			r.proxy = "http://" + <-proxyAddrs // told before the listener after it
		}
		return r, nil
	case err := <-r.done:
		r.done <- err // stop reads it again
		return r, err
	case <-time.After(waitLimit):
		t.Fatalf("the agent did not listen within %v\nlog:\n%s", waitLimit, r.logs)
	}
	return r, nil
}

// stop cancels Run and returns its error; later calls return the same.
func (r *running) stop() error {
	r.cancel()
	select {
	case err := <-r.done:
		r.done <- err
		return err
	case <-time.After(30 * time.Second):
		r.t.Fatalf("Run did not return within 30s of its context's end")
		return nil
	}
}

// reply is an HTTP answer.
type reply struct {
	status int
	header http.Header
	body   []byte
}

// do sends a request with exactly the headers given (name, value pairs),
// failing t when it cannot.
func (r *running) do(method, path, body string, hdr ...string) reply {
	r.t.Helper()
	rep, err := r.try(method, path, body, hdr...)
	if err != nil {
		r.t.Fatalf("%s %s: %v", method, path, err)
	}
	return rep
}

// try is do for any goroutine: it returns its error.
func (r *running) try(method, path, body string, hdr ...string) (reply, error) {
	return r.tryAt(r.base, method, path, body, hdr...)
}

// tryAt is try to another of the agent's listeners (base: r.proxy).
func (r *running) tryAt(base, method, path, body string, hdr ...string) (reply, error) {
	req, err := http.NewRequest(method, base+path, strings.NewReader(body))
	if err != nil {
		return reply{}, err
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		if strings.EqualFold(hdr[i], "Host") {
			req.Host = hdr[i+1]
			continue
		}
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := r.http.Do(req)
	if err != nil {
		return reply{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return reply{}, err
	}
	return reply{resp.StatusCode, resp.Header, b}, nil
}

// v1 sends a /v1/ request with the guard header and the extra headers.
func (r *running) v1(method, path, body string, hdr ...string) reply {
	r.t.Helper()
	return r.do(method, path, body, append([]string{agent.HeaderRequest, "1"}, hdr...)...)
}

// tokenReply is the token endpoint's JSON; KeyID is nil when absent.
type tokenReply struct {
	AccessToken string  `json:"access_token"`
	TokenType   string  `json:"token_type"`
	ExpiresIn   int64   `json:"expires_in"`
	Expiry      string  `json:"expiry"`
	KeyID       *string `json:"key_id"`
	Kind        string  `json:"kind"`
}

// decodeToken decodes a token answer strictly: no other member.
func decodeToken(t *testing.T, body []byte) tokenReply {
	t.Helper()
	var tr tokenReply
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&tr); err != nil {
		t.Fatalf("not the token answer: %v: %s", err, body)
	}
	return tr
}

// token GETs a channel's token (query: "" or "?kind=..."), failing t
// unless it is 200.
func (r *running) token(id, query string, hdr ...string) tokenReply {
	r.t.Helper()
	rep := r.v1("GET", "/v1/channels/"+id+"/token"+query, "", hdr...)
	if rep.status != http.StatusOK {
		r.t.Fatalf("GET token of %s: %d %s", id, rep.status, rep.body)
	}
	return decodeToken(r.t, rep.body)
}

// invalidate POSTs an invalidation of accessToken, failing t unless 204.
func (r *running) invalidate(id, accessToken string, hdr ...string) {
	r.t.Helper()
	body, _ := json.Marshal(map[string]string{"access_token": accessToken})
	rep := r.v1("POST", "/v1/channels/"+id+"/token/invalidate", string(body), hdr...)
	if rep.status != http.StatusNoContent {
		r.t.Fatalf("invalidate %s: %d %s", id, rep.status, rep.body)
	}
}

// apiErr is an error answer.
type apiErr struct {
	Error   string `json:"error"`
	Message string `json:"message"`
	Cause   string `json:"cause"`
}

// wantErr checks that rep is the JSON error code with status.
func wantErr(t *testing.T, rep reply, status int, code string) apiErr {
	t.Helper()
	var e apiErr
	if err := json.Unmarshal(rep.body, &e); err != nil || rep.status != status || e.Error != code || e.Message == "" {
		t.Fatalf("want %d %s, got %d %s", status, code, rep.status, rep.body)
	}
	if ct := rep.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("%s: Content-Type %q", code, ct)
	}
	return e
}

// metrics parses the agent's /metrics.
func (r *running) metrics() map[string]*dto.MetricFamily {
	r.t.Helper()
	rep := r.do("GET", "/metrics", "")
	if rep.status != http.StatusOK {
		r.t.Fatalf("/metrics: %d %s", rep.status, rep.body)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(rep.body))
	if err != nil {
		r.t.Fatalf("/metrics does not parse: %v", err)
	}
	return fams
}

// metric is the value of the sample of name whose labels include labels;
// 0 when there is none.
func (r *running) metric(name string, labels map[string]string) float64 {
	r.t.Helper()
	return metricIn(r.metrics(), name, labels)
}

// metricIn is the value of the first series of name matching labels (a
// histogram's is its sample count), or 0.
func metricIn(fams map[string]*dto.MetricFamily, name string, labels map[string]string) float64 {
	f := fams[name]
	if f == nil {
		return 0
	}
	for _, m := range f.Metric {
		have := map[string]string{}
		for _, lp := range m.Label {
			have[lp.GetName()] = lp.GetValue()
		}
		match := true
		for k, v := range labels {
			if have[k] != v {
				match = false
			}
		}
		if !match {
			continue
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount())
		}
	}
	return 0
}

// labels builds a label set.
func labels(kv ...string) map[string]string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

// readyz is /readyz's status and JSON.
type readyState struct {
	Status   string `json:"status"`
	NotReady []struct {
		Channel    string   `json:"channel"`
		Kind       string   `json:"kind"`
		Problem    string   `json:"problem"`
		Cause      string   `json:"cause"`
		StaleSinks []string `json:"stale_sinks"`
	} `json:"not_ready"`
}

func (r *running) readyz() (int, readyState) {
	r.t.Helper()
	rep := r.do("GET", "/readyz", "")
	var st readyState
	if err := json.Unmarshal(rep.body, &st); err != nil {
		r.t.Fatalf("/readyz is not JSON: %d %s", rep.status, rep.body)
	}
	return rep.status, st
}
