package oauth_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/linetoken/linetoken/internal/testredis"
	"github.com/linetoken/linetoken/oauth"
	"github.com/linetoken/linetoken/oauth/oauthtest"
	"github.com/linetoken/linetoken/oauth/redisstore"
)

// The leak audit (hardening issue: "the leak audit run over every log line
// at debug level as well as errors"): one logger at Debug is wired into
// everything that logs (Config.Logger, TokenSourceOptions.Logger,
// FileStore.SetLogger, redisstore.WithLogger, and go-redis's own logger),
// every operation is driven to success and to failure against the fake,
// and then no planted secret, no issued access token and no JWT assertion
// may appear in any log line or any error string.

const (
	// auditShortWait is a caller's deadline in the delay cases; the fake
	// delays auditLongDelay, well past it.
	auditShortWait = 50 * time.Millisecond
	auditLongDelay = 2 * time.Second
	// auditFaultRepeat covers every attempt of a retried call and the
	// transport's own resends of a dropped request.
	auditFaultRepeat = 6
	// Floors that keep the audit from passing vacuously.
	auditMinLogLines = 60
	auditMinErrors   = 120
	auditMinTokens   = 40
	// auditMinTokenLen: request values shorter than this are the test's own
	// malformed probes, not tokens.
	auditMinTokenLen = 40
	// auditFragmentLen is the length of the token and key fragments checked.
	auditFragmentLen = 24
)

// auditMessages must each appear in the log, so that every kind of event
// was audited.
var auditMessages = []string{
	"oauth: retrying",
	"oauth: token refreshed",
	"oauth: token refresh failed",
	"oauth: token invalidated",
	"oauth: token revoked",
	"oauth: revoking a token failed; will retry",
	"oauth: due revocations failed; will retry",
	"oauth: revoking a token issued under a lost lock failed",
	"oauth: store lock lost during refresh; serving the new token locally",
	"oauth: issued token could not be saved to the store; it is kept to record later",
	"oauth: FileStore: corrupt token file moved aside; affected keys read as empty",
	"oauth: FileStore: token file was readable by group or others; rewritten with mode 0600",
	"audit: values",
}

// auditRedisMessages must appear when the redis part ran.
var auditRedisMessages = []string{
	"redisstore: corrupt entry read as absent; the next refresh replaces it",
	auditRedisReleaseFailed,
}

// auditRedisReleaseFailed is redisstore's log line for a lock taken for a
// caller who left, whose release then failed.
const auditRedisReleaseFailed = "redisstore: releasing a lock taken after its caller left failed; its TTL frees it"

// auditFront sits before the fake and records every access token it
// answers, including those no caller ever sees (issued during a refresh
// that then failed to save, say).
type auditFront struct {
	*httptest.Server
	mu     sync.Mutex
	tokens map[string]bool
}

func newAuditFront(t *testing.T, srv *oauthtest.Server) *auditFront {
	t.Helper()
	f := &auditFront{tokens: map[string]bool{}}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &auditRecorder{ResponseWriter: w}
		srv.ServeHTTP(rec, r)
		var body struct {
			AccessToken string `json:"access_token"`
		}
		if json.Unmarshal(rec.body.Bytes(), &body) == nil && body.AccessToken != "" {
			f.mu.Lock()
			f.tokens[body.AccessToken] = true
			f.mu.Unlock()
		}
	}))
	return f
}

func (f *auditFront) issued() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]string, 0, len(f.tokens))
	for tok := range f.tokens {
		out = append(out, tok)
	}
	return out
}

// auditRecorder keeps a copy of the answer; it can be hijacked, so that
// the fake's dropped connections stay dropped connections.
type auditRecorder struct {
	http.ResponseWriter
	body bytes.Buffer
}

func (r *auditRecorder) Write(p []byte) (int, error) {
	r.body.Write(p)
	return r.ResponseWriter.Write(p)
}

func (r *auditRecorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	hj, ok := r.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("not a hijacker")
	}
	return hj.Hijack()
}

// auditRedisSink receives go-redis's own log lines while the audit runs.
var (
	auditRedisSink       atomic.Pointer[syncBuffer]
	auditRedisLoggerOnce sync.Once
)

type auditRedisLogger struct{}

func (auditRedisLogger) Printf(_ context.Context, format string, v ...any) {
	if b := auditRedisSink.Load(); b != nil {
		fmt.Fprintf(b, format+"\n", v...)
	}
}

// auditError is one error as the audit saw it, printed every way.
type auditError struct {
	where string
	texts []string
}

// leakAudit is the state of one audit run.
type leakAudit struct {
	srv      *oauthtest.Server
	front    *auditFront
	ch       oauthtest.Channel // the main channel
	logs     syncBuffer
	redisLog syncBuffer
	log      *slog.Logger

	mu       sync.Mutex
	channels []oauthtest.Channel
	planted  []string // other planted secrets (wrong secrets, ...)
	seen     map[string]bool
	errs     []auditError
	redisRan bool
}

func TestLeakAuditLogsAndErrors(t *testing.T) {
	srv := oauthtest.NewServer()
	a := &leakAudit{srv: srv, seen: map[string]bool{}}
	a.front = newAuditFront(t, srv)
	t.Cleanup(a.front.Close)
	t.Cleanup(srv.Close) // runs first: ends injected delays
	a.log = slog.New(slog.NewJSONHandler(&a.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	a.ch = a.newChannel(t)

	t.Run("client", a.clientOps)
	t.Run("config", a.configErrors)
	t.Run("tokensource", a.tokenSource)
	t.Run("store faults", a.storeFaults)
	t.Run("filestore", a.fileStore)
	t.Run("redisstore", a.redisStore)
	t.Run("transport", a.transport)
	a.verify(t)
}

func (a *leakAudit) newChannel(t *testing.T) oauthtest.Channel {
	t.Helper()
	ch := a.srv.NewChannel(t)
	a.mu.Lock()
	a.channels = append(a.channels, ch)
	a.mu.Unlock()
	return ch
}

// cfg is the channel's configuration through the recording front, logging
// to the audit, with quick retries (issue included, so that issue retries
// are logged too).
func (a *leakAudit) cfg(ch oauthtest.Channel) oauth.Config {
	cfg := a.srv.Config(ch.ID)
	cfg.BaseURL = a.front.URL
	cfg.Logger = a.log
	cfg.Retry = oauth.RetryPolicy{MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond, RetryIssue: true}
	return cfg
}

func (a *leakAudit) client(t *testing.T, cfg oauth.Config) *oauth.Client {
	t.Helper()
	c, err := oauth.NewClient(cfg)
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	return c
}

// failed records err, which must not be nil.
func (a *leakAudit) failed(t *testing.T, where string, err error) {
	t.Helper()
	if err == nil {
		t.Errorf("%s: no error", where)
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.errs = append(a.errs, auditError{where, []string{
		err.Error(), fmt.Sprintf("%v", err), fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", err), fmt.Sprintf("%q", err),
	}})
	// And through the audited logger, as an application would log it.
	a.log.Debug("audit: error", "where", where, "error", err)
}

// ok fails t on err (still auditing it).
func (a *leakAudit) ok(t *testing.T, where string, err error) {
	t.Helper()
	if err != nil {
		a.failed(t, where, err)
		t.Errorf("%s: %v", where, err)
	}
}

// token records a token the test got and logs it as an application would.
func (a *leakAudit) token(t *testing.T, where string) func(*oauth.Token, error) *oauth.Token {
	return func(tok *oauth.Token, err error) *oauth.Token {
		t.Helper()
		if err != nil {
			a.failed(t, where, err)
			t.Fatalf("%s: %v", where, err)
		}
		a.saw(tok)
		return tok
	}
}

func (a *leakAudit) saw(tok *oauth.Token) {
	if tok == nil {
		return
	}
	a.mu.Lock()
	a.seen[tok.AccessToken] = true
	a.mu.Unlock()
	a.log.Debug("audit: token", "token", tok, "value", *tok)
}

// logValues logs a store and one of its entries as an application would,
// at Debug through the audited JSON handler, alone and nested in the
// composite values slog does not resolve (encoding/json then encodes
// them). The package doc promises that no value of oauth's types prints a
// secret "through log/slog". (The audit found StoreEntry and
// PendingRevocation printing their tokens under slog.JSONHandler, fixed in
// b4ce78b; this keeps it fixed.)
func (a *leakAudit) logValues(name string, store any, e *oauth.StoreEntry) {
	args := []any{name, store, "entry", e}
	if e != nil {
		args = append(args, "entry value", *e, "entries", []*oauth.StoreEntry{e},
			"nested", struct{ E oauth.StoreEntry }{*e})
		if e.Token != nil {
			args = append(args, "tokens", []*oauth.Token{e.Token}, "token in a struct", struct{ T oauth.Token }{*e.Token})
		}
		if len(e.Pending) > 0 {
			args = append(args, "pending", e.Pending[0], "pending list", e.Pending)
		}
	}
	a.log.Debug("audit: values", args...)
}

// auditOp is one client operation and the path its request goes to.
type auditOp struct {
	name, path string
	revoke     bool // a 200 with any body is success
	call       func(ctx context.Context) error
}

func (a *leakAudit) clientOps(t *testing.T) {
	ctx := context.Background()
	cfg := a.cfg(a.ch)
	c := a.client(t, cfg)
	noKey := cfg
	noKey.Key = nil
	cs := a.client(t, noKey)
	long := a.srv.LongLivedToken(a.ch.ID)
	a.planted = append(a.planted, long)
	a.log.Debug("audit: values", "client", c, "config", cfg, "*config", &cfg, "key", a.ch.Key, "key value", *a.ch.Key)

	v21 := a.token(t, "issue v2.1")(c.IssueToken(ctx, time.Hour))
	short := a.token(t, "issue short-lived")(c.IssueShortLivedToken(ctx))
	issue := func(_ context.Context, tok *oauth.Token, err error) error {
		a.saw(tok)
		return err
	}
	ops := []auditOp{
		{"IssueToken", "/oauth2/v2.1/token", false, func(ctx context.Context) error {
			tok, err := c.IssueToken(ctx, time.Hour)
			return issue(ctx, tok, err)
		}},
		{"IssueShortLivedToken", "/v2/oauth/accessToken", false, func(ctx context.Context) error {
			tok, err := c.IssueShortLivedToken(ctx)
			return issue(ctx, tok, err)
		}},
		{"IssueStatelessToken by key", "/oauth2/v3/token", false, func(ctx context.Context) error {
			tok, err := c.IssueStatelessToken(ctx)
			return issue(ctx, tok, err)
		}},
		{"IssueStatelessToken by secret", "/oauth2/v3/token", false, func(ctx context.Context) error {
			tok, err := cs.IssueStatelessToken(ctx)
			return issue(ctx, tok, err)
		}},
		{"ValidKeyIDs", "/oauth2/v2.1/tokens/kid", false, func(ctx context.Context) error {
			_, err := c.ValidKeyIDs(ctx)
			return err
		}},
		{"VerifyToken", "/oauth2/v2.1/verify", false, func(ctx context.Context) error {
			_, err := c.VerifyToken(ctx, v21.AccessToken)
			return err
		}},
		{"VerifyShortLivedToken", "/v2/oauth/verify", false, func(ctx context.Context) error {
			_, err := c.VerifyShortLivedToken(ctx, short.AccessToken)
			return err
		}},
		{"VerifyShortLivedToken long-lived", "/v2/oauth/verify", false, func(ctx context.Context) error {
			_, err := c.VerifyShortLivedToken(ctx, long)
			return err
		}},
		// Revoke a token nobody needs: an unknown but well-formed one
		// succeeds, so these stay repeatable.
		{"RevokeToken", "/oauth2/v2.1/revoke", true, func(ctx context.Context) error {
			tok := a.token(t, "issue to revoke")(c.IssueToken(context.Background(), time.Hour))
			return c.RevokeToken(ctx, tok.AccessToken)
		}},
		{"RevokeShortLivedToken", "/v2/oauth/revoke", true, func(ctx context.Context) error {
			tok := a.token(t, "issue to revoke")(c.IssueShortLivedToken(context.Background()))
			return c.RevokeShortLivedToken(ctx, tok.AccessToken)
		}},
	}

	// Success.
	for _, op := range ops {
		a.ok(t, op.name, op.call(ctx))
	}

	// Every fault on every operation. Bodies carry a valid token, as a
	// proxy echoing the request's URL would: it must not be quoted back.
	html := "<html><body><h1>502 Bad Gateway</h1><p>/oauth2/v2.1/verify?access_token=" + v21.AccessToken + "</p></body></html>"
	faults := []struct {
		name  string
		fault oauthtest.Fault
		wait  time.Duration // caller's deadline; 0 = none
	}{
		{"500", oauthtest.Fault{Status: 500, Body: `{"message":"Internal Server Error"}`}, 0},
		{"503 with Retry-After", oauthtest.Fault{Status: 503, Body: `{"message":"Service Unavailable"}`, Header: http.Header{"Retry-After": {"0"}}}, 0},
		{"429", oauthtest.Fault{Status: 429, Body: `{"message":"Too many requests"}`, Header: http.Header{"Retry-After": {"0"}}}, 0},
		{"502 HTML", oauthtest.Fault{Status: 502, Body: html, ContentType: "text/html"}, 0},
		{"drop", oauthtest.Fault{Drop: true}, 0},
		{"delay past the deadline", oauthtest.Fault{Delay: auditLongDelay}, auditShortWait},
		{"200 truncated", oauthtest.Fault{Status: 200, Body: `{"access_token":"` + v21.AccessToken + `","token_type":"Bear`}, 0},
		{"200 wrong types", oauthtest.Fault{Status: 200, Body: `{"access_token":["` + short.AccessToken + `"],"expires_in":"` + v21.AccessToken + `","kids":"` + v21.AccessToken + `","client_id":7}`}, 0},
		{"200 not JSON", oauthtest.Fault{Status: 200, Body: short.AccessToken, ContentType: "text/plain"}, 0},
		{"401", oauthtest.Fault{Status: 401, Body: `{"message":"Authentication failed"}`}, 0},
	}
	for _, op := range ops {
		for _, f := range faults {
			fault := f.fault
			fault.Path = op.path
			a.srv.InjectFault(auditFaultRepeat, fault)
			cctx, cancel := ctx, context.CancelFunc(func() {})
			if f.wait > 0 {
				cctx, cancel = context.WithTimeout(ctx, f.wait)
			}
			err := op.call(cctx)
			cancel()
			a.srv.ClearFaults()
			if err == nil && op.revoke && f.fault.Status == 200 {
				continue // revoke's 200 has no body to read
			}
			a.failed(t, op.name+" "+f.name, err)
		}
	}

	// LINE's own refusals.
	a.ok(t, "revoke v2.1", c.RevokeToken(ctx, v21.AccessToken))
	a.ok(t, "revoke short-lived", c.RevokeShortLivedToken(ctx, short.AccessToken))
	_, err := c.VerifyToken(ctx, v21.AccessToken)
	a.failed(t, "verify revoked v2.1", err)
	_, err = c.VerifyShortLivedToken(ctx, short.AccessToken)
	a.failed(t, "verify revoked short-lived", err)
	_, err = c.VerifyToken(ctx, short.AccessToken)
	a.failed(t, "verify short-lived at v2.1", err)
	_, err = c.VerifyToken(ctx, "")
	a.failed(t, "verify empty", err)
	a.failed(t, "revoke malformed v2.1", c.RevokeToken(ctx, v21.AccessToken[:len(v21.AccessToken)/2]+".x.y"))
	a.failed(t, "revoke malformed short-lived", c.RevokeShortLivedToken(ctx, "%%%"+short.AccessToken))
	_, err = c.IssueToken(ctx, 31*24*time.Hour)
	a.failed(t, "issue lifetime too long", err)

	wrong := noKey
	wrong.ChannelSecret = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
	a.planted = append(a.planted, wrong.ChannelSecret)
	cw := a.client(t, wrong)
	_, err = cw.IssueShortLivedToken(ctx)
	a.failed(t, "issue short-lived, wrong secret", err)
	_, err = cw.IssueStatelessToken(ctx)
	a.failed(t, "issue stateless, wrong secret", err)
	a.failed(t, "revoke v2.1, wrong secret", cw.RevokeToken(ctx, v21.AccessToken))

	unreg := a.newChannel(t)
	a.srv.UnregisterKey(unreg.KeyID)
	cu := a.client(t, a.cfg(unreg))
	_, err = cu.IssueToken(ctx, time.Hour)
	a.failed(t, "issue, unregistered key", err)
	_, err = cu.ValidKeyIDs(ctx)
	a.failed(t, "kids, unregistered key", err)
	_, err = cu.IssueStatelessToken(ctx)
	a.failed(t, "stateless, unregistered key", err)

	full := a.newChannel(t)
	cf := a.client(t, a.cfg(full))
	for i := range 30 {
		a.token(t, fmt.Sprint("issue ", i))(cf.IssueToken(ctx, time.Hour))
	}
	_, err = cf.IssueToken(ctx, time.Hour)
	if !errors.Is(err, oauth.ErrTokenLimitReached) {
		t.Errorf("31st issue: %v, want ErrTokenLimitReached", err)
	}
	a.failed(t, "issue past the limit", err)

	// Nothing listening.
	dead := cfg
	dead.BaseURL = auditClosedURL(t)
	cd := a.client(t, dead)
	deadOps := []func() error{
		func() error { _, err := cd.IssueToken(ctx, time.Hour); return err },
		func() error { _, err := cd.IssueShortLivedToken(ctx); return err },
		func() error { _, err := cd.IssueStatelessToken(ctx); return err },
		func() error { _, err := cd.ValidKeyIDs(ctx); return err },
		func() error { _, err := cd.VerifyToken(ctx, v21.AccessToken); return err },
		func() error { _, err := cd.VerifyShortLivedToken(ctx, long); return err },
		func() error { return cd.RevokeToken(ctx, v21.AccessToken) },
		func() error { return cd.RevokeShortLivedToken(ctx, long) },
	}
	for i, op := range deadOps {
		a.failed(t, fmt.Sprint("connection refused ", i), op())
	}
}

// configErrors: settings that carry secrets and are refused.
func (a *leakAudit) configErrors(t *testing.T) {
	ch := a.ch
	pemText := string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(ch.Key.PrivateKey)}))
	lookups := map[string]map[string]string{
		"PEM without key ID": {oauth.EnvChannelID: ch.ID, oauth.EnvPrivateKey: pemText},
		"broken PEM":         {oauth.EnvChannelID: ch.ID, oauth.EnvPrivateKey: strings.Replace(pemText, "MII", "XXX", 1), oauth.EnvKeyID: ch.KeyID},
		"truncated JWK":      {oauth.EnvChannelID: ch.ID, oauth.EnvPrivateKey: string(ch.PrivateJWK[:len(ch.PrivateJWK)-7]), oauth.EnvKeyID: ch.KeyID},
		"JWK as file name":   {oauth.EnvChannelID: ch.ID, oauth.EnvPrivateKeyFile: string(ch.PrivateJWK), oauth.EnvKeyID: ch.KeyID},
		"secret as ID":       {oauth.EnvChannelID: ch.Secret, oauth.EnvChannelSecret: ch.Secret},
		"secret in base URL": {oauth.EnvChannelID: ch.ID, oauth.EnvChannelSecret: ch.Secret, oauth.EnvBaseURL: "https://" + ch.ID + ":" + ch.Secret + "@api.line.me"},
		"token in base URL":  {oauth.EnvChannelID: ch.ID, oauth.EnvChannelSecret: ch.Secret, oauth.EnvBaseURL: "https://api.line.me/?access_token=" + ch.Secret},
		// A secret pasted into the wrong variable (the CLI's tests plant
		// the key in LINE_PRIVATE_KEY_FILE the same way) must not be
		// quoted back by NewClient.
		"secret as base URL":  {oauth.EnvChannelID: ch.ID, oauth.EnvChannelSecret: ch.Secret, oauth.EnvBaseURL: "%" + ch.Secret},
		"nothing but secrets": {oauth.EnvChannelSecret: ch.Secret, oauth.EnvPrivateKey: pemText},
	}
	for name, env := range lookups {
		cfg, err := oauth.ConfigFromLookup(func(k string) string { return env[k] })
		if err == nil {
			_, err = oauth.NewClient(cfg)
		}
		a.failed(t, "config "+name, err)
	}
	for name, base := range map[string]string{
		"user info": "https://" + ch.ID + ":" + ch.Secret + "@api.line.me",
		"query":     "https://api.line.me/?client_secret=" + ch.Secret,
		"fragment":  "https://api.line.me/#" + ch.Secret,
		"bad":       "ht tp://" + ch.ID + ":" + ch.Secret + "@api.line.me",
	} {
		cfg := a.cfg(ch)
		cfg.BaseURL = base
		_, err := oauth.NewClient(cfg)
		a.failed(t, "NewClient "+name, err)
	}
	for name, data := range map[string][]byte{
		"broken PEM": []byte(strings.Replace(pemText, "MII", "XXX", 1)),
		"half a PEM": []byte(pemText[:len(pemText)/2]),
		"JWK, no d":  bytes.Replace(ch.PrivateJWK, []byte(`"d"`), []byte(`"x"`), 1),
		"JWK, bad":   append([]byte("{"), ch.PrivateJWK...),
	} {
		_, err := oauth.ParseAssertionKey(data, ch.KeyID)
		a.failed(t, "ParseAssertionKey "+name, err)
	}
}

// newSource is a TokenSource logging to the audit.
func (a *leakAudit) newSource(t *testing.T, c *oauth.Client, opts oauth.TokenSourceOptions) *oauth.TokenSource {
	t.Helper()
	opts.Logger = a.log
	return newSource(t, c, opts)
}

// waitLog waits until msg has been logged at least n times in all.
func (a *leakAudit) waitLog(t *testing.T, msg string, n int) {
	t.Helper()
	eventually(t, fmt.Sprintf("%d× %q in the log", n, msg), func() bool { return a.logCount(msg) >= n })
}

func (a *leakAudit) logCount(msg string) int {
	return strings.Count(a.logs.String(), `"msg":`+strconv.Quote(msg))
}

// waitNewToken waits for ts to serve a token other than old.
func (a *leakAudit) waitNewToken(t *testing.T, ts *oauth.TokenSource, old *oauth.Token) *oauth.Token {
	t.Helper()
	var tok *oauth.Token
	eventually(t, "a new token", func() bool {
		tok, _ = ts.Token(context.Background())
		return tok != nil && tok.AccessToken != old.AccessToken
	})
	a.saw(tok)
	return tok
}

func (a *leakAudit) tokenSource(t *testing.T) {
	ctx := context.Background()
	ch := a.newChannel(t)
	c := a.client(t, a.cfg(ch))
	ts := a.newSource(t, c, oauth.TokenSourceOptions{Kind: oauth.KindV21, Lifetime: time.Hour,
		RefreshBefore: 10 * time.Minute, RevokeGrace: time.Minute})

	// Fresh, then stale: one background refresh, then the replaced token is
	// revoked after its grace.
	tok1 := a.token(t, "first Token")(ts.Token(ctx))
	refreshed, revoked := a.logCount("oauth: token refreshed"), a.logCount("oauth: token revoked")
	a.srv.Advance(51 * time.Minute)
	tok2 := a.waitNewToken(t, ts, tok1)
	a.waitLog(t, "oauth: token refreshed", refreshed+1)
	a.srv.Advance(2 * time.Minute)
	a.waitLog(t, "oauth: token revoked", revoked+1)

	// Stale again, and every issue fails: the background refresh fails
	// (logged) while tok2 is served; then tok2 expires and callers get the
	// error.
	failedN := a.logCount("oauth: token refresh failed")
	a.srv.InjectFault(1000, oauthtest.Fault{Path: "/oauth2/v2.1/token", Status: 500, Body: `{"message":"Internal Server Error"}`})
	a.srv.Advance(50 * time.Minute) // tok2 was issued at +51m for 1h: stale at +1h41m
	a.waitLog(t, "oauth: token refresh failed", failedN+1)
	if tok, err := ts.Token(ctx); err != nil || tok.AccessToken != tok2.AccessToken {
		t.Errorf("stale Token while refreshes fail = %v, %v; want the cached token", tok, err)
	}
	a.srv.Advance(20 * time.Minute) // past tok2's expiry
	eventually(t, "Token to fail after expiry", func() bool {
		_, err := ts.Token(ctx)
		if err != nil {
			a.failed(t, "Token after expiry, issue failing", err)
		}
		return err != nil
	})
	a.srv.ClearFaults()

	// A refresh slower than the caller's deadline.
	a.srv.Advance(10 * time.Minute) // past the failure backoff
	a.srv.DelayNext(1, 300*time.Millisecond)
	wctx, cancel := context.WithTimeout(ctx, auditShortWait)
	_, err := ts.Token(wctx)
	cancel()
	a.failed(t, "Token past the caller's deadline", err)
	tok3 := a.waitNewToken(t, ts, tok2)

	// Invalidate (a 401 from LINE): the next Token refreshes and the old
	// token is revoked at once, except that revocations fail for a while.
	due := a.logCount("oauth: due revocations failed; will retry")
	a.srv.InjectFault(1000, oauthtest.Fault{Path: "/oauth2/v2.1/revoke", Status: 503, Body: `{"message":"Service Unavailable"}`})
	ts.Invalidate(tok3.AccessToken)
	tok4 := a.waitNewToken(t, ts, tok3)
	a.waitLog(t, "oauth: revoking a token failed; will retry", 1)
	a.waitLog(t, "oauth: due revocations failed; will retry", due+1)
	// Close with revocations still failing: an error, audited.
	a.failed(t, "Close, revocations failing", ts.Close())
	a.srv.ClearFaults()
	if _, err := ts.Token(ctx); err != nil {
		a.failed(t, "Token after Close", err)
	} else {
		t.Error("Token after Close succeeded")
	}
	_ = tok4

	// Short-lived and stateless sources: refresh, invalidate, close.
	for _, kind := range []oauth.TokenKind{oauth.KindShortLived, oauth.KindStateless} {
		s := a.newSource(t, c, oauth.TokenSourceOptions{Kind: kind, RevokeGrace: time.Minute})
		first := a.token(t, kind.String()+" Token")(s.Token(ctx))
		s.Invalidate(first.AccessToken)
		a.waitNewToken(t, s, first)
		a.ok(t, kind.String()+" Close", s.Close())
	}

	// A source whose channel's key is gone: every refresh is refused.
	gone := a.newChannel(t)
	a.srv.UnregisterKey(gone.KeyID)
	sg := a.newSource(t, a.client(t, a.cfg(gone)), oauth.TokenSourceOptions{})
	_, err = sg.Token(ctx)
	a.failed(t, "Token, key unregistered", err)
	_, err = sg.Token(ctx) // inside the backoff: the remembered error
	a.failed(t, "Token, key unregistered, backing off", err)
}

// auditSaveFault is how an [auditSaveStore]'s next Save fails.
type auditSaveFault int32

const (
	// auditSaveStolen: the lock's TTL passed, and another holder took it
	// and saved its own token.
	auditSaveStolen auditSaveFault = iota + 1
	// auditSaveStolenEmpty: another holder took the lock and saved nothing.
	auditSaveStolenEmpty
	// auditSaveRefused: the store refuses the write, the lock still held.
	auditSaveRefused
)

// auditSaveStore is a MemoryStore whose next Save, once a fault is armed,
// fails that way: the lost-lock and unsaved-token paths of a refresh.
type auditSaveStore struct {
	*oauth.MemoryStore
	fault  atomic.Int32
	theirs *oauth.Token // the other holder's token (auditSaveStolen)
}

func (s *auditSaveStore) Save(ctx context.Context, key string, e *oauth.StoreEntry, fence int64) error {
	switch f := auditSaveFault(s.fault.Swap(0)); f {
	case auditSaveStolen, auditSaveStolenEmpty:
		_ = s.MemoryStore.Unlock(ctx, key, fence) // as if its TTL passed
		other, err := s.MemoryStore.Lock(ctx, key, time.Minute)
		if err != nil || other == 0 {
			return fmt.Errorf("audit: the other holder could not lock (%d): %w", other, err)
		}
		if f == auditSaveStolen {
			if err := s.MemoryStore.Save(ctx, key, &oauth.StoreEntry{Token: s.theirs}, other); err != nil {
				return err
			}
		}
		_ = s.MemoryStore.Unlock(ctx, key, other)
	case auditSaveRefused:
		return errors.New("audit: the store refused the write: no space left on device")
	}
	return s.MemoryStore.Save(ctx, key, e, fence) // ErrLockLost after a steal
}

// storeFaults: refreshes whose Save fails after the issue. The lock lost
// to a holder that saved a token (ours is revoked, and LINE refuses that
// for now), lost to one that saved nothing (ours is served unrecorded),
// and a store that refuses the write (ours is kept to record later).
func (a *leakAudit) storeFaults(t *testing.T) {
	ctx := context.Background()
	ch := a.newChannel(t)
	c := a.client(t, a.cfg(ch))
	source := func(fault auditSaveFault, theirs *oauth.Token) *oauth.TokenSource {
		store := &auditSaveStore{MemoryStore: oauth.NewMemoryStore(), theirs: theirs}
		store.fault.Store(int32(fault))
		return a.newSource(t, c, oauth.TokenSourceOptions{Kind: oauth.KindV21, Lifetime: time.Hour,
			RefreshBefore: 10 * time.Minute, RevokeGrace: time.Minute, Store: store})
	}
	// logged runs op and requires msg logged once more by then.
	logged := func(msg string, op func()) {
		t.Helper()
		n := a.logCount(msg)
		op()
		if got := a.logCount(msg); got != n+1 {
			t.Errorf("%q logged %d times, want %d", msg, got, n+1)
		}
	}

	theirs := a.token(t, "the other holder's token")(c.IssueToken(ctx, time.Hour))
	ts := source(auditSaveStolen, theirs)
	logged("oauth: revoking a token issued under a lost lock failed", func() {
		a.srv.InjectFault(1000, oauthtest.Fault{Path: "/oauth2/v2.1/revoke", Status: 503, Body: `{"message":"Service Unavailable"}`})
		defer a.srv.ClearFaults()
		if tok := a.token(t, "Token, lock lost to a saved token")(ts.Token(ctx)); tok.AccessToken != theirs.AccessToken {
			t.Errorf("Token after losing the lock to a saved token = %v; want the other holder's", tok)
		}
	})
	a.ok(t, "Close, lock lost to a saved token", ts.Close())

	ts = source(auditSaveStolenEmpty, nil)
	logged("oauth: store lock lost during refresh; serving the new token locally", func() {
		a.token(t, "Token, lock lost")(ts.Token(ctx))
	})
	a.ok(t, "Close, lock lost", ts.Close())

	ts = source(auditSaveRefused, nil)
	logged("oauth: issued token could not be saved to the store; it is kept to record later", func() {
		a.token(t, "Token, save refused")(ts.Token(ctx))
	})
	a.ok(t, "Close, save refused", ts.Close()) // revokes the unrecorded token
}

func (a *leakAudit) fileStore(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "store")
	path := filepath.Join(dir, "tokens.json")
	fs, err := oauth.NewFileStore(path)
	if err != nil {
		t.Fatal(err)
	}
	fs.SetLogger(a.log)
	ch := a.newChannel(t)
	c := a.client(t, a.cfg(ch))
	key := oauth.StoreKey(ch.ID, oauth.KindShortLived)
	ts := a.newSource(t, c, oauth.TokenSourceOptions{Kind: oauth.KindShortLived, Store: fs, RevokeGrace: time.Minute})
	tok1 := a.token(t, "FileStore Token")(ts.Token(ctx))
	entry, err := fs.Load(ctx, key)
	a.ok(t, "FileStore Load", err)
	a.logValues("store", fs, entry)

	// A file readable by others is tightened on the next write.
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	ts.Invalidate(tok1.AccessToken)
	a.waitNewToken(t, ts, tok1)
	a.waitLog(t, "oauth: FileStore: token file was readable by group or others; rewritten with mode 0600", 1)

	// Corrupt files holding tokens: moved aside, the reason logged. (In a
	// file of their own: the source above may be writing its file.)
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	tok := tok1.AccessToken
	corrupt := map[string]string{
		"truncated":       string(good[:len(good)/2]),
		"truncated late":  string(good[:len(good)-3]),
		"token as expiry": `{"version":1,"fence":9,"entries":{"` + key + `":{"entry":{"token":{"access_token":"` + tok + `","expiry":"` + tok + `"}}}}}`,
		"token as number": `{"version":1,"fence":9,"entries":{"` + key + `":{"entry":{"token":{"access_token":` + strconv.Quote(tok) + `,"expires_in_ms":"` + tok + `"}}}}}`,
		"no expiry":       `{"version":1,"fence":9,"entries":{"` + key + `":{"entry":{"token":{"access_token":"` + tok + `"}}}}}`,
		"pending, no tok": `{"version":1,"fence":9,"entries":{"` + key + `":{"entry":{"pending":[{"token":{"expiry":"` + tok + `"}}]}}}}`,
		"bad record":      `{"version":1,"fence":9,"entries":{"` + key + `":"` + tok + `"}}`,
		"other version":   `{"version":7,"fence":9,"entries":{"` + key + `":{"entry":{"token":{"access_token":"` + tok + `"}}}}}`,
		"bare token":      tok,
		"token in quotes": strconv.Quote(tok),
	}
	names := make([]string, 0, len(corrupt))
	for name := range corrupt {
		names = append(names, name)
	}
	sort.Strings(names)
	cpath := filepath.Join(t.TempDir(), "corrupt.json")
	cfs, err := oauth.NewFileStore(cpath)
	if err != nil {
		t.Fatal(err)
	}
	cfs.SetLogger(a.log)
	const setAside = "oauth: FileStore: corrupt token file moved aside; affected keys read as empty"
	for _, name := range names {
		if err := os.WriteFile(cpath, []byte(corrupt[name]), 0o600); err != nil {
			t.Fatal(err)
		}
		n := a.logCount(setAside)
		_, err := cfs.Load(ctx, key)
		a.ok(t, "Load of a corrupt file ("+name+")", err)
		if a.logCount(setAside) != n+1 {
			t.Errorf("corrupt file (%s) not logged", name)
		}
	}

	// The directory becomes a regular file: every operation fails.
	cur := a.token(t, "FileStore Token before the break")(ts.Token(ctx))
	if err := os.Rename(dir, dir+".gone"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dir, []byte("not a directory"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = fs.Load(ctx, key)
	a.failed(t, "FileStore Load, broken", err)
	_, err = fs.Lock(ctx, key, time.Minute)
	a.failed(t, "FileStore Lock, broken", err)
	a.failed(t, "FileStore Save, broken", fs.Save(ctx, key, &oauth.StoreEntry{Token: cur,
		Pending: []oauth.PendingRevocation{{Token: *tok1, RevokeAfter: time.Now()}}}, 1))
	a.failed(t, "FileStore Unlock, broken", fs.Unlock(ctx, key, 1))
	_, err = oauth.NewFileStore(filepath.Join(dir, "tokens.json"))
	a.failed(t, "NewFileStore under a file", err)

	failedN := a.logCount("oauth: token refresh failed")
	ts.Invalidate(cur.AccessToken)
	_, err = ts.Token(ctx)
	a.failed(t, "FileStore Token, broken", err)
	a.waitLog(t, "oauth: token refresh failed", failedN+1)
	a.failed(t, "FileStore Close, broken", ts.Close())
}

func (a *leakAudit) redisStore(t *testing.T) {
	auditRedisLoggerOnce.Do(func() { redis.SetLogger(auditRedisLogger{}) })
	auditRedisSink.Store(&a.redisLog)
	t.Cleanup(func() { auditRedisSink.Store(nil) })
	r := testredis.Start(t)
	a.mu.Lock()
	a.redisRan = true
	a.mu.Unlock()

	ctx := context.Background()
	rdb := redis.NewClient(&redis.Options{Addr: r.Addr(), MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	t.Cleanup(func() { _ = rdb.Close() })
	store := redisstore.New(rdb, redisstore.WithLogger(a.log))
	ch := a.newChannel(t)
	c := a.client(t, a.cfg(ch))
	key := oauth.StoreKey(ch.ID, oauth.KindV21)
	rkey := "{" + key + "}"
	ts := a.newSource(t, c, oauth.TokenSourceOptions{Kind: oauth.KindV21, Lifetime: time.Hour,
		RefreshBefore: 10 * time.Minute, RevokeGrace: time.Minute, Store: store})
	tok1 := a.token(t, "redis Token")(ts.Token(ctx))
	ts.Invalidate(tok1.AccessToken)
	tok2 := a.waitNewToken(t, ts, tok1)
	entry, err := store.Load(ctx, key)
	a.ok(t, "redis Load", err)
	a.logValues("store", store, entry)

	// Corrupt entries holding tokens: read as absent, logged.
	good, err := rdb.Get(ctx, rkey).Result()
	if err != nil {
		t.Fatalf("the entry is not under %s: %v", rkey, err)
	}
	tok := tok2.AccessToken
	for name, v := range map[string]string{
		"truncated":       good[:len(good)/2],
		"token as expiry": `{"token":{"access_token":"` + tok + `","expiry":"` + tok + `"}}`,
		"token as number": `{"token":{"access_token":"` + tok + `","expires_in_ms":"` + tok + `"}}`,
		"no expiry":       `{"token":{"access_token":"` + tok + `"}}`,
		"bare token":      tok,
	} {
		if err := rdb.Set(ctx, rkey, v, 0).Err(); err != nil {
			t.Fatal(err)
		}
		e, err := store.Load(ctx, key)
		a.ok(t, "redis Load of a corrupt entry ("+name+")", err)
		if e != nil {
			t.Errorf("corrupt entry (%s) read as %v", name, e)
		}
	}
	if err := rdb.Set(ctx, rkey, good, 0).Err(); err != nil {
		t.Fatal(err)
	}

	// A Lock whose caller left before Redis answered: the lock Redis
	// granted is released, and the release fails, Redis having died. (On
	// a key of its own: ts may hold the lock of key at any time.)
	hook := &auditLockHook{granted: make(chan struct{}), release: make(chan struct{})}
	hooked := redis.NewClient(&redis.Options{Addr: r.Addr(), MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	t.Cleanup(func() { _ = hooked.Close() })
	hooked.AddHook(hook)
	hstore := redisstore.New(hooked, redisstore.WithLogger(a.log))
	lctx, leave := context.WithCancel(ctx)
	go func() {
		select {
		case <-hook.granted:
			leave()
		case <-lctx.Done():
		}
	}()
	_, err = hstore.Lock(lctx, oauth.StoreKey(ch.ID, oauth.KindStateless), time.Minute)
	leave()
	select {
	case <-hook.granted:
	default:
		t.Fatalf("redis Lock returned (%v) without Redis granting the lock", err)
	}
	a.failed(t, "redis Lock, caller gone", err)
	r.Kill()
	close(hook.release)
	a.waitLog(t, auditRedisReleaseFailed, 1)

	// Redis dies.
	r.Kill() // (already dead)
	failedN := a.logCount("oauth: token refresh failed")
	ts.Invalidate(tok2.AccessToken)
	tctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	_, err = ts.Token(tctx)
	cancel()
	a.failed(t, "redis Token, server dead", err)
	a.waitLog(t, "oauth: token refresh failed", failedN+1)
	_, err = store.Load(ctx, key)
	a.failed(t, "redis Load, server dead", err)
	_, err = store.Lock(ctx, key, time.Minute)
	a.failed(t, "redis Lock, server dead", err)
	a.failed(t, "redis Save, server dead", store.Save(ctx, key, &oauth.StoreEntry{Token: tok2,
		Pending: []oauth.PendingRevocation{{Token: *tok1, RevokeAfter: time.Now()}}}, 1))
	a.failed(t, "redis Unlock, server dead", store.Unlock(ctx, key, 1))
	a.failed(t, "redis Close, server dead", ts.Close())
}

func (a *leakAudit) transport(t *testing.T) {
	ctx := context.Background()
	ch := a.newChannel(t)
	c := a.client(t, a.cfg(ch))
	var hits atomic.Int32
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		bearer := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		if _, valid := a.srv.Lookup(bearer); hits.Add(1) == 1 || !valid {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		_, _ = io.WriteString(w, "ok")
	}))
	t.Cleanup(api.Close)

	ts := a.newSource(t, c, oauth.TokenSourceOptions{Kind: oauth.KindV21, Lifetime: time.Hour, RevokeGrace: time.Minute})
	invalidated := a.logCount("oauth: token invalidated")
	hc := &http.Client{Transport: &oauth.Transport{Source: ts}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, api.URL+"/v2/bot/message/push", strings.NewReader(`{"to":"U1"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := hc.Do(req)
	if err != nil {
		a.failed(t, "Transport 401 then 200", err)
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("Transport after a 401: status %d, want 200", resp.StatusCode)
	}
	a.waitLog(t, "oauth: token invalidated", invalidated+1)

	// A source that cannot get a token: the Transport's error, the
	// middleware's answer and the oauth2 adapter's error.
	a.srv.InjectFault(1000, oauthtest.Fault{Path: "/oauth2/v2.1/token", Status: 500, Body: `{"message":"Internal Server Error"}`})
	defer a.srv.ClearFaults()
	bad := a.newSource(t, c, oauth.TokenSourceOptions{Kind: oauth.KindV21, Lifetime: time.Hour})
	_, err = (&http.Client{Transport: &oauth.Transport{Source: bad}}).Get(api.URL + "/v2/bot/info")
	a.failed(t, "Transport, no token", err)
	rec := httptest.NewRecorder()
	oauth.Middleware(bad)(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		t.Error("the handler ran without a token")
	})).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/callback", nil))
	if rec.Code != http.StatusServiceUnavailable {
		t.Errorf("Middleware without a token: %d, want 503", rec.Code)
	}
	a.failed(t, "Middleware 503 body", errors.New(rec.Body.String()))
	_, err = oauth.OAuth2TokenSource(bad).Token()
	a.failed(t, "OAuth2TokenSource, no token", err)
	_, err = (&http.Client{Transport: &oauth.Transport{}}).Get(api.URL)
	a.failed(t, "Transport without a Source", err)
}

// auditLockHook holds back the first answer granting a redisstore lock
// (the lock script's EVALSHA or EVAL) until release is closed, after
// closing granted: the caller can leave, and Redis die, in between.
type auditLockHook struct {
	granted, release chan struct{}
	once             sync.Once
}

func (*auditLockHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (*auditLockHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

func (h *auditLockHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		if c, ok := cmd.(*redis.Cmd); ok && err == nil && auditIsLockScript(cmd.Args()) {
			if fence, _ := c.Int64(); fence <= 0 {
				return err // held by another: nothing to release
			}
			h.once.Do(func() {
				close(h.granted)
				<-h.release
			})
		}
		return err
	}
}

// auditIsLockScript: args run redisstore's lock script, the one script
// whose two keys are a lock and a fence counter.
func auditIsLockScript(args []any) bool {
	if len(args) < 5 || (args[0] != "evalsha" && args[0] != "eval") || args[2] != 2 {
		return false
	}
	lock, _ := args[3].(string)
	fence, _ := args[4].(string)
	return strings.HasSuffix(lock, ":lock") && strings.HasSuffix(fence, ":fence")
}

// needles is every secret the audit knows of: planted credentials, key
// material, and every token and assertion the fake issued or received.
func (a *leakAudit) needles(t *testing.T) (secrets []string, tokens int) {
	t.Helper()
	set := map[string]bool{}
	add := func(s string) {
		if s != "" {
			set[s] = true
		}
	}
	addToken := func(tok string) {
		if len(tok) < auditMinTokenLen {
			return
		}
		add(tok)
		if parts := strings.Split(tok, "."); len(parts) == 3 {
			add(parts[1]) // the payload
			add(parts[2]) // the signature
			return
		}
		add(tok[:auditFragmentLen])
		add(tok[len(tok)-auditFragmentLen:])
	}
	a.mu.Lock()
	channels := append([]oauthtest.Channel(nil), a.channels...)
	planted := append([]string(nil), a.planted...)
	seen := make([]string, 0, len(a.seen))
	for tok := range a.seen {
		seen = append(seen, tok)
	}
	a.mu.Unlock()

	for _, ch := range channels {
		add(ch.Secret)
		k := ch.Key.PrivateKey
		d := k.D.Bytes()
		der := x509.MarshalPKCS1PrivateKey(k)
		add(k.D.String()[:40])
		add(base64.RawURLEncoding.EncodeToString(d)[:40])
		add(base64.StdEncoding.EncodeToString(d)[:40])
		add(base64.StdEncoding.EncodeToString(der)[:40])
		add(fmt.Sprintf("%x", d)[:40])
		var jwk map[string]any
		if err := json.Unmarshal(ch.PrivateJWK, &jwk); err != nil {
			t.Fatalf("private JWK: %v", err)
		}
		for _, f := range []string{"d", "p", "q", "dp", "dq", "qi"} {
			v, _ := jwk[f].(string)
			if len(v) < auditFragmentLen {
				t.Fatalf("private JWK member %s is missing", f)
			}
			add(v[:auditFragmentLen])
			add(v[len(v)-auditFragmentLen:])
		}
		for _, line := range strings.Split(string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: der})), "\n") {
			if len(line) == 64 {
				add(line)
			}
		}
	}
	for _, s := range planted {
		if len(s) >= auditMinTokenLen {
			addToken(s)
		} else {
			add(s)
		}
	}
	toks := map[string]bool{}
	for _, tok := range append(a.front.issued(), seen...) {
		toks[tok] = true
	}
	for _, r := range a.srv.Requests() {
		for _, v := range [][]string{r.Form["access_token"], r.Query["access_token"]} {
			for _, tok := range v {
				if len(tok) >= auditMinTokenLen && !strings.Contains(tok, "%") {
					toks[tok] = true
				}
			}
		}
		for _, v := range [][]string{r.Form["client_assertion"], r.Query["client_assertion"]} {
			for _, as := range v {
				addToken(as)
			}
		}
		for _, s := range r.Form["client_secret"] {
			add(s)
		}
	}
	for tok := range toks {
		addToken(tok)
	}
	for s := range set {
		secrets = append(secrets, s)
	}
	sort.Strings(secrets)
	return secrets, len(toks)
}

// auditLeaks returns how many of secrets s holds, and whether it holds
// something JWT-shaped.
func auditLeaks(secrets []string, s string) (n int, jwt bool) {
	for _, sec := range secrets {
		if strings.Contains(s, sec) {
			n++
		}
	}
	return n, strings.Contains(s, "eyJ")
}

// auditExcerpt clips s for a failure message: the message itself must not
// print a whole token.
func auditExcerpt(s string) string {
	const max = 80
	if len(s) > max {
		return s[:max] + "..."
	}
	return s
}

func (a *leakAudit) verify(t *testing.T) {
	secrets, tokens := a.needles(t)

	// Every log line: valid JSON; each attribute audited on its own, so a
	// failure names the message and the attribute.
	levels := map[string]int{}
	msgs := map[string]int{}
	lines, leaks := 0, 0
	for _, line := range strings.Split(strings.TrimSpace(a.logs.String()), "\n") {
		if line == "" {
			continue
		}
		lines++
		var rec map[string]json.RawMessage
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Errorf("log line %d is not JSON: %v", lines, err)
			continue
		}
		var level, msg string
		_ = json.Unmarshal(rec["level"], &level)
		_ = json.Unmarshal(rec["msg"], &msg)
		levels[level]++
		msgs[msg]++
		attrs := make([]string, 0, len(rec))
		for k := range rec {
			attrs = append(attrs, k)
		}
		sort.Strings(attrs)
		flagged := false
		for _, k := range attrs {
			if n, jwt := auditLeaks(secrets, string(rec[k])); n > 0 || jwt {
				leaks++
				flagged = true
				t.Errorf("LEAK: log line %d %q, attribute %q: %d known secrets, JWT-shaped: %t: %s",
					lines, msg, k, n, jwt, auditExcerpt(string(rec[k])))
			}
		}
		if n, jwt := auditLeaks(secrets, line); (n > 0 || jwt) && !flagged {
			leaks++
			t.Errorf("LEAK: log line %d %q: %d known secrets across its attributes", lines, msg, n)
		}
	}
	redisLines := 0
	for _, line := range strings.Split(a.redisLog.String(), "\n") {
		if line == "" {
			continue
		}
		redisLines++
		if n, jwt := auditLeaks(secrets, line); n > 0 || jwt {
			t.Errorf("LEAK: go-redis log line: %d known secrets, JWT-shaped: %t: %s", n, jwt, auditExcerpt(line))
		}
	}
	texts := 0
	for _, e := range a.errs {
		worst, jwt, form := 0, false, ""
		for _, s := range e.texts {
			texts++
			if n, j := auditLeaks(secrets, s); n > worst || (j && !jwt) {
				worst, jwt, form = max(n, worst), jwt || j, s
			}
		}
		if worst > 0 || jwt {
			t.Errorf("LEAK: error of %q: %d known secrets, JWT-shaped: %t: %s", e.where, worst, jwt, auditExcerpt(form))
		}
	}

	// Not vacuous.
	if lines < auditMinLogLines {
		t.Errorf("only %d log lines audited, want at least %d", lines, auditMinLogLines)
	}
	if len(a.errs) < auditMinErrors {
		t.Errorf("only %d errors audited, want at least %d", len(a.errs), auditMinErrors)
	}
	if tokens < auditMinTokens {
		t.Errorf("only %d tokens known, want at least %d", tokens, auditMinTokens)
	}
	want := auditMessages
	if a.redisRan {
		want = append(append([]string(nil), want...), auditRedisMessages...)
	}
	for _, m := range want {
		if msgs[m] == 0 {
			t.Errorf("no %q in the log: that event went unaudited", m)
		}
	}
	for _, l := range []string{"DEBUG", "INFO", "WARN", "ERROR"} {
		if levels[l] == 0 {
			t.Errorf("no %s line in the log", l)
		}
	}
	if !strings.Contains(a.logs.String(), "token store unreachable") {
		t.Error("no store failure in the log")
	}

	t.Logf("leak audit: %d log lines (%v), %d go-redis log lines, %d errors (%d texts), %d distinct secrets checked (%d tokens among them); redis part ran: %t",
		lines, levels, redisLines, len(a.errs), texts, len(secrets), tokens, a.redisRan)
	if testing.Verbose() {
		keys := make([]string, 0, len(msgs))
		for m := range msgs {
			keys = append(keys, m)
		}
		sort.Strings(keys)
		for _, m := range keys {
			t.Logf("  %4d× %s", msgs[m], m)
		}
	}
}

func auditClosedURL(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return "http://" + addr
}
