package oauth_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/linetoken/linetoken/oauth"
	"github.com/linetoken/linetoken/oauth/oauthtest"
)

// Fault-injection suite: every fault is played by two servers, the faithful
// fake (oauthtest) and a raw TCP server that writes hand-crafted bytes, and
// hits two levels: a direct Client call (the typed error, no secret in it)
// and a TokenSource's background refresh (the last valid token is served
// while the fault lasts, then it recovers with exactly one issue). Every
// run ends with no goroutine left and a bounded allocation count.

const (
	// faultHTTPTimeout is the whole-request timeout of the http.Client the
	// suite owns: a slow fault outlasts it.
	faultHTTPTimeout = 2 * time.Second
	// faultAllocBudget bounds TotalAlloc over one faulted call or one
	// faulted rotation, 1 GiB body included.
	faultAllocBudget = 16 << 20
	// faultHugeBody is the size the raw server announces and tries to send.
	faultHugeBody = 1 << 30
	// faultIssuePath is where a TokenSource of v2.1 tokens issues.
	faultIssuePath = "/oauth2/v2.1/token"
	// faultPlanted is a JWT-shaped access token given to VerifyToken: it
	// travels in the URL's query and must never show in an error.
	faultPlanted = "eyJmYXVsdA.plantedFaultToken.c2lnbmF0dXJl"
)

// rawChunk is written over and over for the 1 GiB body: allocated once,
// before any measurement.
var rawChunk = []byte(strings.Repeat("a", 64<<10))

// rawMode is what the raw server answers to every request but a revocation
// (which a TokenSource only sends once the fault is over).
type rawMode int32

const (
	rawNone      rawMode = iota // no raw variant (table only)
	rawNormal                   // answer like LINE
	raw500                      // 500 with a JSON body
	rawHTML502                  // 502 with an HTML page, as a proxy answers
	rawTruncated                // 200, Content-Length larger than sent, then close
	rawReset                    // SetLinger(0) + Close: a TCP RST after the request
	rawSlow                     // hold the request until the client hangs up
	rawHuge                     // 200 announcing 1 GiB, streamed in 64 KiB chunks
	rawHugeError                // the same as a 502 page
	raw429Retry                 // 429 with Retry-After: 7
	raw429                      // 429 without Retry-After
)

// rawServer is a hand-written HTTP/1.1 server on a bare TCP listener: it
// can answer bytes that net/http's server never would.
type rawServer struct {
	ln       net.Listener
	URL      string
	mode     atomic.Int32
	issued   atomic.Int32 // tokens issued (normal answers to an issue request)
	faulted  atomic.Int32 // requests answered with a fault
	hugeSent atomic.Int64 // bytes of body written by the last rawHuge answer

	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
	once   sync.Once
}

func newRawServer(t *testing.T) *rawServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &rawServer{ln: ln, URL: "http://" + ln.Addr().String(), conns: map[net.Conn]struct{}{}}
	s.mode.Store(int32(rawNormal))
	s.wg.Add(1)
	go s.serve()
	t.Cleanup(s.Close)
	return s
}

func (s *rawServer) serve() {
	defer s.wg.Done()
	for {
		conn, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			_ = conn.Close()
			return
		}
		s.conns[conn] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go s.handle(conn)
	}
}

// Close stops the server, closes every connection and waits for its
// goroutines.
func (s *rawServer) Close() {
	s.once.Do(func() {
		_ = s.ln.Close()
		s.mu.Lock()
		s.closed = true
		for c := range s.conns {
			_ = c.Close()
		}
		s.mu.Unlock()
		s.wg.Wait()
	})
}

func (s *rawServer) handle(conn net.Conn) {
	defer s.wg.Done()
	defer func() {
		_ = conn.Close()
		s.mu.Lock()
		delete(s.conns, conn)
		s.mu.Unlock()
	}()
	br := bufio.NewReader(conn)
	for {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(req.Body, 64<<10))
		_ = req.Body.Close()
		if !s.answer(conn, br, req) {
			return
		}
	}
}

// answer writes the answer to req and reports whether the connection
// stays open for another request.
func (s *rawServer) answer(conn net.Conn, br *bufio.Reader, req *http.Request) bool {
	mode := rawMode(s.mode.Load())
	if strings.HasSuffix(req.URL.Path, "/revoke") {
		mode = rawNormal
	}
	if mode != rawNormal {
		s.faulted.Add(1)
	}
	simple := func(status, ctype, extra, body string) bool {
		_, err := fmt.Fprintf(conn, "HTTP/1.1 %s\r\nContent-Type: %s\r\n%sContent-Length: %d\r\n\r\n%s", status, ctype, extra, len(body), body)
		return err == nil
	}
	switch mode {
	case rawNormal:
		switch {
		case req.URL.Path == faultIssuePath:
			n := s.issued.Add(1)
			return simple("200 OK", "application/json", "", fmt.Sprintf(
				`{"access_token":"rawtok-%d","token_type":"Bearer","expires_in":3600,"key_id":"rawkid-%d"}`, n, n))
		case strings.HasSuffix(req.URL.Path, "/revoke"):
			return simple("200 OK", "application/json", "", "")
		case req.URL.Path == "/oauth2/v2.1/verify":
			return simple("200 OK", "application/json", "", `{"client_id":"1234567890","expires_in":3600,"scope":"profile"}`)
		}
		return simple("404 Not Found", "application/json", "", `{"message":"Not Found"}`)
	case raw500:
		return simple("500 Internal Server Error", "application/json", "", `{"message":"Internal Server Error"}`)
	case rawHTML502:
		return simple("502 Bad Gateway", "text/html; charset=utf-8", "",
			"<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1><hr>nginx</body></html>\n")
	case raw429Retry:
		return simple("429 Too Many Requests", "application/json", "Retry-After: 7\r\n", `{"message":"Too many requests"}`)
	case raw429:
		return simple("429 Too Many Requests", "application/json", "", `{"message":"Too many requests"}`)
	case rawTruncated:
		_, _ = io.WriteString(conn, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 300\r\n\r\n"+
			`{"access_token":"rawtok-truncated","token_ty`)
		return false // close: the client is 250 bytes short
	case rawReset:
		if tc, ok := conn.(*net.TCPConn); ok {
			_ = tc.SetLinger(0) // Close sends RST, not FIN
		}
		_ = conn.Close()
		return false
	case rawSlow:
		// Say nothing until the client hangs up (its timeout) or the
		// server closes; 30s bounds a client that never does.
		_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
		_, _ = br.ReadByte()
		return false
	case rawHuge, rawHugeError:
		status, ctype := "200 OK", "application/json"
		if mode == rawHugeError {
			status, ctype = "502 Bad Gateway", "text/html"
		}
		_ = conn.SetWriteDeadline(time.Now().Add(60 * time.Second))
		if _, err := fmt.Fprintf(conn, "HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n", status, ctype, faultHugeBody); err != nil {
			return false
		}
		var sent int64
		for sent < faultHugeBody {
			n, err := conn.Write(rawChunk[:min(int64(len(rawChunk)), faultHugeBody-sent)])
			sent += int64(n)
			if err != nil {
				break // the client hung up: what we want
			}
		}
		s.hugeSent.Store(sent)
		return false
	}
	return false
}

// want is the error a direct call must return under a fault.
type want struct {
	status     int           // an *oauth.APIError with this status
	sentinel   error         // errors.Is(err, sentinel)
	retryAfter time.Duration // APIError.RetryAfter (status set)
	malformed  bool          // oauth.ErrMalformedResponse
	timeout    bool          // a net.Error whose Timeout() is true
	transport  bool          // a transport failure: unwraps to *url.Error, not an APIError
	text       string        // in the message
}

func (w want) String() string {
	switch {
	case w.status != 0:
		s := fmt.Sprintf("*APIError %d", w.status)
		if w.sentinel != nil {
			s += " ≡ " + strings.TrimPrefix(w.sentinel.Error(), "oauth: ")
		}
		if w.status == 429 {
			s += fmt.Sprintf(", RetryAfter=%v", w.retryAfter)
		}
		return s
	case w.malformed:
		return "ErrMalformedResponse"
	case w.sentinel == context.DeadlineExceeded:
		return "context.DeadlineExceeded"
	case w.timeout:
		return "net.Error Timeout()"
	case w.transport:
		if w.sentinel != nil {
			return "transport error ≡ " + w.sentinel.Error()
		}
		return "transport error (*url.Error)"
	}
	return "?"
}

func (w want) check(t *testing.T, what string, err error) {
	t.Helper()
	if err == nil {
		t.Errorf("%s: no error, want %v", what, w)
		return
	}
	var ae *oauth.APIError
	isAPI := errors.As(err, &ae)
	if w.status != 0 {
		if !isAPI || ae.StatusCode != w.status {
			t.Errorf("%s: %v, want %v", what, err, w)
			return
		}
		if ae.RetryAfter != w.retryAfter {
			t.Errorf("%s: RetryAfter = %v, want %v", what, ae.RetryAfter, w.retryAfter)
		}
		if !ae.Temporary() {
			t.Errorf("%s: %v is not Temporary", what, err)
		}
	} else if isAPI {
		t.Errorf("%s: %v is an APIError, want %v", what, err, w)
	}
	if w.sentinel != nil && !errors.Is(err, w.sentinel) {
		t.Errorf("%s: %v does not match %v", what, err, w.sentinel)
	}
	if w.malformed != errors.Is(err, oauth.ErrMalformedResponse) {
		t.Errorf("%s: %v: ErrMalformedResponse = %t, want %t", what, err, !w.malformed, w.malformed)
	}
	var ne net.Error
	isTimeout := errors.As(err, &ne) && ne.Timeout()
	if w.timeout != isTimeout {
		t.Errorf("%s: %v: timeout = %t, want %t", what, err, isTimeout, w.timeout)
	}
	if w.transport || w.timeout {
		// A failed exchange unwraps to the sanitised *url.Error; a body
		// cut short, to the read's own error (the sentinel).
		if !errors.As(err, new(*url.Error)) && (w.sentinel == nil || !errors.Is(err, w.sentinel)) {
			t.Errorf("%s: %v does not unwrap to a *url.Error", what, err)
		}
	}
	if w.text != "" && !strings.Contains(err.Error(), w.text) {
		t.Errorf("%s: %q does not say %q", what, err, w.text)
	}
}

// faultCase is one fault, as each server plays it, and what it must cause.
type faultCase struct {
	name string
	raw  rawMode
	fake *oauthtest.Fault // nil: the fake cannot play it
	// wantRaw and wantFake: the typed error of a direct call.
	wantRaw, wantFake want
	// callTimeout, when set, bounds the direct call by its context
	// (shorter than faultHTTPTimeout); such a case is direct-only.
	callTimeout time.Duration
}

var faultHTML502 = "<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1></body></html>\n"

func faultCases() []faultCase {
	return []faultCase{
		{name: "500", raw: raw500,
			fake:    &oauthtest.Fault{Status: 500, Body: `{"message":"Internal Server Error"}`},
			wantRaw: want{status: 500, text: "Internal Server Error"}, wantFake: want{status: 500, text: "Internal Server Error"}},
		{name: "HTML 502", raw: rawHTML502,
			fake:    &oauthtest.Fault{Status: 502, Body: faultHTML502, ContentType: "text/html; charset=utf-8"},
			wantRaw: want{status: 502, text: "non-JSON body, text/html"}, wantFake: want{status: 502, text: "non-JSON body, text/html"}},
		// The raw server's body is cut short of its Content-Length: the read
		// fails (a transport error the retry policy treats as such); the
		// fake's is complete but stops mid-JSON: a malformed answer.
		{name: "truncated JSON", raw: rawTruncated,
			fake:     &oauthtest.Fault{Status: 200, Body: `{"access_token":"eyJ0cnVuY2F0ZWQ","token_ty`},
			wantRaw:  want{transport: true, sentinel: io.ErrUnexpectedEOF, text: "reading response"},
			wantFake: want{malformed: true, text: "syntax error"}},
		{name: "reset connection", raw: rawReset,
			fake:    &oauthtest.Fault{Drop: true},
			wantRaw: want{transport: true}, wantFake: want{transport: true}},
		{name: "slower than client timeout", raw: rawSlow,
			fake:    &oauthtest.Fault{Delay: 5 * time.Second},
			wantRaw: want{timeout: true}, wantFake: want{timeout: true}},
		{name: "slower than call deadline", raw: rawSlow, callTimeout: 100 * time.Millisecond,
			fake:    &oauthtest.Fault{Delay: 5 * time.Second},
			wantRaw: want{timeout: true, sentinel: context.DeadlineExceeded}, wantFake: want{timeout: true, sentinel: context.DeadlineExceeded}},
		{name: "1 GiB body", raw: rawHuge,
			wantRaw: want{malformed: true, text: "body exceeds"}},
		{name: "1 GiB error page", raw: rawHugeError,
			wantRaw: want{status: 502, text: "body over the size cap"}},
		{name: "429 with Retry-After", raw: raw429Retry,
			fake:     &oauthtest.Fault{Status: 429, Body: `{"message":"Too many requests"}`, Header: http.Header{"Retry-After": {"7"}}},
			wantRaw:  want{status: 429, sentinel: oauth.ErrRateLimited, retryAfter: 7 * time.Second},
			wantFake: want{status: 429, sentinel: oauth.ErrRateLimited, retryAfter: 7 * time.Second}},
		{name: "429 without Retry-After", raw: raw429,
			fake:    &oauthtest.Fault{Status: 429, Body: `{"message":"Too many requests"}`},
			wantRaw: want{status: 429, sentinel: oauth.ErrRateLimited}, wantFake: want{status: 429, sentinel: oauth.ErrRateLimited}},
	}
}

// faultTarget is one server playing the faults.
type faultTarget interface {
	config() oauth.Config // BaseURL, credentials and clock
	advance(d time.Duration)
	arm(fc faultCase) // the fault answers every request until disarm
	disarm()
	faulted() int // requests answered with the fault
	issued() int  // v2.1 tokens issued
	leakChecker(t *testing.T) *leakChecker
	close()
}

// rawTarget: the raw server with a fake clock.
type rawTarget struct {
	s   *rawServer
	clk *fakeClock
	key *oauth.AssertionKey
}

func (r *rawTarget) config() oauth.Config {
	return oauth.Config{ChannelID: testChannelID, ChannelSecret: testSecret, Key: r.key, BaseURL: r.s.URL, Clock: r.clk.Now}
}
func (r *rawTarget) advance(d time.Duration) { r.clk.Advance(d) }
func (r *rawTarget) arm(fc faultCase)        { r.s.mode.Store(int32(fc.raw)) }
func (r *rawTarget) disarm()                 { r.s.mode.Store(int32(rawNormal)) }
func (r *rawTarget) faulted() int            { return int(r.s.faulted.Load()) }
func (r *rawTarget) issued() int             { return int(r.s.issued.Load()) }
func (r *rawTarget) close()                  { r.s.Close() }
func (r *rawTarget) leakChecker(t *testing.T) *leakChecker {
	return newLeakChecker(t, r.key, faultPlanted, "plantedFaultToken")
}

// fakeTarget: oauthtest, its clock moved with Advance.
type fakeTarget struct {
	srv *oauthtest.Server
	cfg oauth.Config
}

// faultFakeKey is one assertion key registered on every fake of the suite
// (generating one per server is slow, under -race especially).
var faultFakeKey = sync.OnceValues(func() ([2][]byte, error) {
	priv, pub, err := oauth.GenerateAssertionKey()
	return [2][]byte{priv, pub}, err
})

func newFakeTarget(t *testing.T) *fakeTarget {
	t.Helper()
	pair, err := faultFakeKey()
	if err != nil {
		t.Fatal(err)
	}
	srv := oauthtest.NewServer()
	srv.AddChannel(testChannelID, testSecret)
	kid, err := srv.RegisterKey(testChannelID, pair[1])
	if err != nil {
		srv.Close()
		t.Fatal(err)
	}
	cfg := srv.Config(testChannelID)
	if cfg.Key, err = oauth.ParseAssertionKey(pair[0], kid); err != nil {
		srv.Close()
		t.Fatal(err)
	}
	return &fakeTarget{srv: srv, cfg: cfg}
}

func (f *fakeTarget) config() oauth.Config    { return f.cfg }
func (f *fakeTarget) advance(d time.Duration) { f.srv.Advance(d) }
func (f *fakeTarget) arm(fc faultCase)        { f.srv.InjectFault(1<<20, *fc.fake) }
func (f *fakeTarget) disarm()                 { f.srv.ClearFaults() }
func (f *fakeTarget) faulted() int            { return f.srv.Stats().Faulted }
func (f *fakeTarget) issued() int             { return f.srv.IssueCount(oauthtest.KindV21) }
func (f *fakeTarget) close()                  { f.srv.Close() }
func (f *fakeTarget) leakChecker(t *testing.T) *leakChecker {
	return newLeakChecker(t, f.cfg.Key, faultPlanted, "plantedFaultToken")
}

// newFaultHTTPClient is an http.Client the test owns, so that its idle
// connections can be closed before looking for leaked goroutines.
func newFaultHTTPClient() *http.Client {
	return &http.Client{
		Timeout:       faultHTTPTimeout,
		Transport:     &http.Transport{MaxIdleConnsPerHost: 4, DisableCompression: true},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

func faultClient(t *testing.T, tg faultTarget, hc *http.Client, logger *slog.Logger) *oauth.Client {
	t.Helper()
	cfg := tg.config()
	cfg.HTTPClient = hc
	cfg.Retry = oauth.RetryPolicy{MaxAttempts: 1} // one request per call: the fault answers it
	cfg.Logger = logger
	c, err := oauth.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// memDelta measures allocation across f: TotalAlloc grown and HeapInuse
// (after f, before any GC) over its level before.
func memDelta(f func()) (alloc uint64, heapGrowth int64) {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc, int64(after.HeapInuse) - int64(before.HeapInuse)
}

// faultRow is one line of the report.
type faultRow struct {
	fault, server, level, outcome, served, leaks, alloc string
}

func mib(n uint64) string { return fmt.Sprintf("%.2f MiB", float64(n)/(1<<20)) }

type faultTargetMaker struct {
	name string
	make func(t *testing.T) faultTarget
}

var faultTargets = []faultTargetMaker{
	{"oauthtest", func(t *testing.T) faultTarget { return newFakeTarget(t) }},
	{"raw TCP", func(t *testing.T) faultTarget {
		return &rawTarget{s: newRawServer(t), clk: newFakeClock(), key: mustKey(t)}
	}},
}

// TestFaultsDirect: each fault answers a direct IssueToken and VerifyToken
// with the right typed error, no secret in its message, no goroutine left
// behind and bounded allocation.
func TestFaultsDirect(t *testing.T) {
	var rows []faultRow
	defer func() { logFaultTable(t, "direct Client call", rows) }()
	for _, fc := range faultCases() {
		for _, mk := range faultTargets {
			w := fc.wantFake
			if mk.name == "raw TCP" {
				if fc.raw == rawNone {
					continue
				}
				w = fc.wantRaw
			} else if fc.fake == nil {
				rows = append(rows, faultRow{fc.name, mk.name, "direct", "n/a (the fake cannot send it)", "", "", ""})
				continue
			}
			t.Run(fc.name+"/"+mk.name, func(t *testing.T) {
				row := faultRow{fault: fc.name, server: mk.name, level: "direct", outcome: w.String()}
				defer func() {
					if t.Failed() {
						row.outcome = "FAIL: " + row.outcome
					}
					rows = append(rows, row)
				}()
				ignore := goleak.IgnoreCurrent()
				tg := mk.make(t)
				hc := newFaultHTTPClient()
				c := faultClient(t, tg, hc, nil)
				lc := tg.leakChecker(t)
				tg.arm(fc)
				ctx := context.Background()
				alloc, heap := memDelta(func() {
					for _, op := range []string{"issue", "verify"} {
						cctx, cancel := ctx, context.CancelFunc(func() {})
						if fc.callTimeout > 0 {
							cctx, cancel = context.WithTimeout(ctx, fc.callTimeout)
						}
						start := time.Now()
						var err error
						if op == "issue" {
							var tok *oauth.Token
							tok, err = c.IssueToken(cctx, time.Hour)
							if tok != nil {
								t.Errorf("issue under %s returned a token", fc.name)
							}
						} else {
							_, err = c.VerifyToken(cctx, faultPlanted)
						}
						took := time.Since(start)
						cancel()
						w.check(t, op, err)
						if err != nil {
							lc.check(t, op+" error", err.Error())
							lc.checkAllVerbs(t, op+" error", err)
						}
						if limit := faultHTTPTimeout + 8*time.Second; took > limit { // generous: CI machines are shared
							t.Errorf("%s took %v under %s; want under %v", op, took, fc.name, limit)
						}
					}
				})
				if got := tg.faulted(); got != 2 {
					t.Errorf("the fault answered %d requests, want 2 (one per call, no retry)", got)
				}
				if tg.issued() != 0 {
					t.Errorf("%d tokens issued under the fault", tg.issued())
				}
				row.alloc = fmt.Sprintf("%s (heap in use %+.2f MiB)", mib(alloc), float64(heap)/(1<<20))
				if alloc > faultAllocBudget || heap > faultAllocBudget {
					t.Errorf("allocated %s (heap in use +%d B) over two faulted calls; budget %s", mib(alloc), heap, mib(faultAllocBudget))
				}
				if rs, ok := tg.(*rawTarget); ok && (fc.raw == rawHuge || fc.raw == rawHugeError) {
					sent := rs.s.hugeSent.Load()
					row.alloc += fmt.Sprintf(" (server sent %s of 1 GiB before the hang-up)", mib(uint64(sent)))
					if sent >= faultHugeBody {
						t.Errorf("the client read the whole 1 GiB body")
					}
				}
				tg.close()
				hc.CloseIdleConnections()
				goleak.VerifyNone(t, ignore)
				row.leaks = "no secret, no goroutine left"
				if t.Failed() {
					row.leaks = "see failure"
				}
			})
		}
	}
}

// TestFaultsTokenSource: a TokenSource holding a valid token meets each
// fault in its background refresh (the clock moved into the early-refresh
// window): every Token call still gets the valid token, failed attempts
// back off, and once the fault ends one issue replaces it.
func TestFaultsTokenSource(t *testing.T) {
	var rows []faultRow
	defer func() { logFaultTable(t, "TokenSource background refresh", rows) }()
	for _, fc := range faultCases() {
		if fc.callTimeout > 0 {
			continue // a refresh is detached from callers' deadlines
		}
		for _, mk := range faultTargets {
			if (mk.name == "raw TCP" && fc.raw == rawNone) || (mk.name == "oauthtest" && fc.fake == nil) {
				if mk.name == "oauthtest" {
					rows = append(rows, faultRow{fc.name, mk.name, "TokenSource", "n/a", "", "", ""})
				}
				continue
			}
			t.Run(fc.name+"/"+mk.name, func(t *testing.T) {
				row := faultRow{fault: fc.name, server: mk.name, level: "TokenSource"}
				defer func() { rows = append(rows, row) }()
				row.served, row.outcome = "FAIL", "FAIL"
				ignore := goleak.IgnoreCurrent()
				tg := mk.make(t)
				hc := newFaultHTTPClient()
				var logs syncBuffer
				c := faultClient(t, tg, hc, nil)
				ts, err := oauth.NewTokenSource(c, oauth.TokenSourceOptions{Kind: oauth.KindV21, Lifetime: time.Hour,
					RefreshBefore: 10 * time.Minute, RevokeGrace: time.Minute, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
				if err != nil {
					t.Fatal(err)
				}
				ts.SetWatchInterval(5 * time.Millisecond)
				closed := false
				defer func() {
					if !closed {
						tg.disarm()
						_ = ts.Close()
						tg.close()
						hc.CloseIdleConnections()
					}
				}()
				ctx := context.Background()
				first, err := ts.Token(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if tg.issued() != 1 {
					t.Fatalf("%d issues for the first token", tg.issued())
				}
				const attempts = 2
				// retryAfter is LINE's Retry-After under this fault: the
				// source must wait all of it, not its own shorter backoff.
				retryAfter := fc.wantFake.retryAfter
				// slack is how much short of a wait's end the quiet check
				// stops: the fake server's clock also runs on in real time.
				slack := 250 * time.Millisecond
				if mk.name == "raw TCP" {
					retryAfter, slack = fc.wantRaw.retryAfter, time.Millisecond
				}
				alloc, heap := memDelta(func() {
					tg.arm(fc)
					tg.advance(51 * time.Minute) // into the 10-minute window
					for n := 1; n <= attempts; n++ {
						eventually(t, fmt.Sprintf("failed refresh #%d", n), func() bool {
							return strings.Count(logs.String(), "token refresh failed") >= n
						})
						for range 200 {
							tok, err := ts.Token(ctx)
							if err != nil || tok != first {
								t.Fatalf("Token under %s after %d failed refreshes = %v, %v; want the still-valid token", fc.name, n, tok, err)
							}
						}
						// The backoff after failure n is 2^(n-1)s less jitter of up
						// to half; a Retry-After, when sent, is waited in full. Up
						// to just before the earliest moment it may end, the fault
						// sees no new attempt.
						wait := time.Second << (n - 1)
						quiet := wait/2 - slack
						if retryAfter > 0 {
							wait, quiet = retryAfter, retryAfter-slack
						}
						tg.advance(quiet)
						time.Sleep(30 * time.Millisecond) // six watcher ticks
						if got := tg.faulted(); got != n {
							t.Fatalf("%d requests met the fault %v after failed refresh #%d, want %d: the source retried before its wait (%v) was over",
								got, quiet, n, n, wait)
						}
						if n < attempts {
							tg.advance(wait - quiet) // the wait is over: exactly one more attempt
						}
					}
					if got := tg.faulted(); got != attempts {
						t.Errorf("%d requests met the fault over %d refresh attempts", got, attempts)
					}
					tg.disarm()
					tg.advance(max(3*time.Second, retryAfter)) // past the second wait
					eventually(t, "recovery", func() bool {
						tok, err := ts.Token(ctx)
						return err == nil && tok != first
					})
				})
				row.served = "yes, through 2 failed refreshes; recovered"
				if got := tg.issued(); got != 2 {
					t.Errorf("issued %d tokens for one rotation under %s, want 2 in all", got, fc.name)
				}
				row.outcome = fmt.Sprintf("%d issue(s) for the rotation", tg.issued()-1)
				tok, _ := ts.Token(ctx)
				if _, err := c.VerifyToken(ctx, tok.AccessToken); err != nil && mk.name == "oauthtest" {
					t.Errorf("the new token does not verify: %v", err)
				}
				row.alloc = fmt.Sprintf("%s (heap in use %+.2f MiB)", mib(alloc), float64(heap)/(1<<20))
				if alloc > faultAllocBudget || heap > faultAllocBudget {
					t.Errorf("allocated %s (heap in use +%d B) over a faulted rotation; budget %s", mib(alloc), heap, mib(faultAllocBudget))
				}
				lc := tg.leakChecker(t)
				lc.secrets = append(lc.secrets, first.AccessToken, tok.AccessToken)
				lc.check(t, "TokenSource log", logs.String())
				if !strings.Contains(logs.String(), "serving_until") {
					t.Errorf("the failure log does not say until when the token is served:\n%s", logs.String())
				}
				closed = true
				if err := ts.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
				tg.close()
				hc.CloseIdleConnections()
				goleak.VerifyNone(t, ignore)
				row.leaks = "no secret in logs, no goroutine left"
				if t.Failed() {
					row.leaks = "see failure"
				}
			})
		}
	}
}

func logFaultTable(t *testing.T, title string, rows []faultRow) {
	var b strings.Builder
	fmt.Fprintf(&b, "fault table (%s):\n", title)
	fmt.Fprintf(&b, "| fault | server | level | outcome | token served | leaks | alloc |\n|---|---|---|---|---|---|---|\n")
	for _, r := range rows {
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s |\n", r.fault, r.server, r.level, r.outcome, r.served, r.leaks, r.alloc)
	}
	t.Log(b.String())
}

// TestFaultsCloseDuringCallerRefresh: a slow issue holds a refresh that a
// caller started (the token was invalidated, so callers wait), the caller
// gives up on its deadline, and the program shuts down. Close must wait
// for that refresh, as it does for a background one, and then, the store
// being private, revoke every token: none may stay active on LINE's side,
// where a v2.1 token holds one of the channel's 30 slots until it expires.
func TestFaultsCloseDuringCallerRefresh(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	tg := newFakeTarget(t)
	defer tg.close()
	hc := newFaultHTTPClient()
	defer hc.CloseIdleConnections()
	c := faultClient(t, tg, hc, nil)
	ts, err := oauth.NewTokenSource(c, oauth.TokenSourceOptions{Kind: oauth.KindV21, Lifetime: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	first, err := ts.Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ts.Invalidate(first.AccessToken) // LINE answered 401 for it, say
	tg.srv.InjectFault(1, oauthtest.Fault{Path: faultIssuePath, Delay: 5 * time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	_, err = ts.Token(ctx)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Token during the slow refresh = %v, want the caller's deadline", err)
	}
	closeErr := ts.Close()
	buf := make([]byte, 1<<20)
	stacks := string(buf[:runtime.Stack(buf, true)])
	if strings.Contains(stacks, "oauth.(*TokenSource).refresh") {
		t.Errorf("Close returned while the refresh a caller started still runs (it is not in Close's WaitGroup)")
	}
	time.Sleep(100 * time.Millisecond) // let anything late land
	if n := tg.srv.ActiveTokens(testChannelID); n != 0 {
		t.Errorf("after Close (private store, error %v) %d v2.1 token(s) stay active, want 0: Close found the store lock held by the unfinished refresh and skipped every revocation", closeErr, n)
	}
	tg.close()
	hc.CloseIdleConnections()
	goleak.VerifyNone(t, ignore)
}
