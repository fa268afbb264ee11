package oauth_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/linetoken/linetoken/oauth"
)

// Load test: many goroutines call TokenSource.Token in a loop, and a few
// send requests through oauth.Transport to a loopback Messaging API
// stand-in that checks the Bearer token, while a driver moves a fake clock
// through refresh windows so that the token rotates several times. The
// same senders time the same requests through a plain http.Transport (the
// token set by hand, outside the timing) as the baseline for the latency
// the Transport adds. It asserts no error and exactly one issue per
// rotation, and reports its figures through t.Logf and, when
// LINETOKEN_LOAD_REPORT names a file, as JSON (.json) or markdown.
//
// It runs in every `go test ./oauth`: 3s by default, 1s with -short,
// LINETOKEN_LOAD_SECONDS to run longer.

const (
	loadLifetime      = 10 * time.Minute
	loadRefreshBefore = 2 * time.Minute
	// loadStep moves the clock from an issue into the early-refresh window
	// (after 8m, before the 9m30s expiry-less-margin).
	loadStep          = 8*time.Minute + 15*time.Second
	loadRevokeGrace   = time.Minute
	loadMaxCallsPerG  = 1 << 40 // a bound on the count besides the clock's
	loadMaxRequests   = 1 << 24 // per sender
	loadMaxSamples    = 1 << 18 // latencies kept per sender and path
	loadYieldEvery    = 64      // Token calls between yields, so that senders and the watcher get the CPU
	loadRotationLimit = 10 * time.Second
)

// loadLINE stands in for LINE's token endpoints (issuing and revoking
// unique tokens by the fake clock) and for the Messaging API (accepting
// only a Bearer token issued, unrevoked and unexpired).
type loadLINE struct {
	clk              *fakeClock
	oauth, api       *httptest.Server
	issues, revokes  atomic.Int64
	apiOK, api401    atomic.Int64
	mu               sync.RWMutex
	valid            map[string]time.Time // access token → expiry
	revoked          map[string]bool
	issueRequestsBad atomic.Int64
}

func newLoadLINE(clk *fakeClock) *loadLINE {
	l := &loadLINE{clk: clk, valid: map[string]time.Time{}, revoked: map[string]bool{}}
	l.oauth = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			w.WriteHeader(400)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/oauth2/v2.1/token":
			if r.PostForm.Get("client_assertion") == "" {
				l.issueRequestsBad.Add(1)
				w.WriteHeader(400)
				return
			}
			n := l.issues.Add(1)
			tok := "load-token-" + strconv.FormatInt(n, 10)
			l.mu.Lock()
			l.valid[tok] = clk.Now().Add(loadLifetime)
			l.mu.Unlock()
			fmt.Fprintf(w, `{"access_token":%q,"token_type":"Bearer","expires_in":%d,"key_id":"kid-%d"}`, tok, int(loadLifetime/time.Second), n)
		case "/oauth2/v2.1/revoke":
			l.revokes.Add(1)
			l.mu.Lock()
			delete(l.valid, r.PostForm.Get("access_token"))
			l.revoked[r.PostForm.Get("access_token")] = true
			l.mu.Unlock()
		default:
			w.WriteHeader(404)
		}
	}))
	l.api = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		l.mu.RLock()
		exp, found := l.valid[tok]
		l.mu.RUnlock()
		if !ok || !found || !l.clk.Now().Before(exp) {
			l.api401.Add(1)
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = io.WriteString(w, `{"message":"Authentication failed"}`)
			return
		}
		l.apiOK.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"sentMessages":[{"id":"1"}]}`)
	}))
	return l
}

func (l *loadLINE) wasRevoked(tok string) bool {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.revoked[tok]
}

func (l *loadLINE) close() {
	l.api.Close()
	l.oauth.Close()
}

// loadReport is what the load test measured.
type loadReport struct {
	RaceDetector        bool           `json:"race_detector"`
	GOMAXPROCS          int            `json:"gomaxprocs"`
	Seconds             float64        `json:"seconds"`
	LoadedSeconds       float64        `json:"loaded_seconds"`
	TokenGoroutines     int            `json:"token_goroutines"`
	Senders             int            `json:"senders"`
	TokenCalls          int64          `json:"token_calls"`
	TokenCallsPerSec    float64        `json:"token_calls_per_sec"`
	TokenBytesPerCall   float64        `json:"bytes_allocated_per_token_call"`
	Phases              [2]phaseReport `json:"phases"`
	Rotations           int            `json:"rotations"`
	Issues              int64          `json:"issues"`
	IssuesPerRotation   []int64        `json:"issues_per_rotation"`
	RotationMaxMillis   float64        `json:"rotation_max_ms"`
	Revocations         int64          `json:"revocations"`
	Answered401         int64          `json:"answered_401"`
	BaselineRevoked     int64          `json:"baseline_sent_revoked_token"`
	Errors              int64          `json:"errors"`
	HeapInuseAfterMiB   float64        `json:"heap_inuse_after_mib"`
	MaxGoroutinesDuring int            `json:"max_goroutines"`
}

// phaseReport: the senders' figures in one phase.
type phaseReport struct {
	Name               string  `json:"name"`
	Seconds            float64 `json:"seconds"`
	TransportRequests  int64   `json:"transport_requests"`
	TransportReqPerSec float64 `json:"transport_requests_per_sec"`
	BaselineRequests   int64   `json:"baseline_requests"`
	BaselineReqPerSec  float64 `json:"baseline_requests_per_sec"`
	TransportP50Micros float64 `json:"transport_p50_us"`
	TransportP99Micros float64 `json:"transport_p99_us"`
	BaselineP50Micros  float64 `json:"baseline_p50_us"`
	BaselineP99Micros  float64 `json:"baseline_p99_us"`
	AddedP50Micros     float64 `json:"added_p50_us"`
	AddedP99Micros     float64 `json:"added_p99_us"`
}

func (r loadReport) markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "## linetoken load report\n\n")
	fmt.Fprintf(&b, "%.1fs (%.1fs loaded, then the senders alone), GOMAXPROCS=%d, race detector: %t, %d Token goroutines, %d senders (each alternating oauth.Transport and a plain http.Transport)\n\n",
		r.Seconds, r.LoadedSeconds, r.GOMAXPROCS, r.RaceDetector, r.TokenGoroutines, r.Senders)
	fmt.Fprintf(&b, "| measure | value |\n|---|---|\n")
	fmt.Fprintf(&b, "| Token calls/s | %.0f (%d calls in %.1fs; %.3f B allocated per call, HTTP included) |\n", r.TokenCallsPerSec, r.TokenCalls, r.LoadedSeconds, r.TokenBytesPerCall)
	for _, p := range r.Phases {
		fmt.Fprintf(&b, "| %s: oauth.Transport / plain requests/s | %.0f / %.0f (%d / %d) |\n", p.Name, p.TransportReqPerSec, p.BaselineReqPerSec, p.TransportRequests, p.BaselineRequests)
		fmt.Fprintf(&b, "| %s: p50 Transport / baseline / added | %.0fµs / %.0fµs / %+.0fµs |\n", p.Name, p.TransportP50Micros, p.BaselineP50Micros, p.AddedP50Micros)
		fmt.Fprintf(&b, "| %s: p99 Transport / baseline / added | %.0fµs / %.0fµs / %+.0fµs |\n", p.Name, p.TransportP99Micros, p.BaselineP99Micros, p.AddedP99Micros)
	}
	fmt.Fprintf(&b, "| rotations | %d (slowest %.1fms of real time) |\n", r.Rotations, r.RotationMaxMillis)
	fmt.Fprintf(&b, "| upstream issues | %d (per rotation: %v) |\n", r.Issues, r.IssuesPerRotation)
	fmt.Fprintf(&b, "| revocations (replaced tokens, then Close) | %d |\n", r.Revocations)
	fmt.Fprintf(&b, "| 401s answered (revoked token in flight; the Transport retries) | %d (baseline requests with a just-revoked token: %d) |\n", r.Answered401, r.BaselineRevoked)
	fmt.Fprintf(&b, "| errors | %d |\n", r.Errors)
	fmt.Fprintf(&b, "| goroutines (max) / heap in use after | %d / %.1f MiB |\n", r.MaxGoroutinesDuring, r.HeapInuseAfterMiB)
	return b.String()
}

func loadDuration(t *testing.T) time.Duration {
	if v := os.Getenv("LINETOKEN_LOAD_SECONDS"); v != "" {
		s, err := strconv.ParseFloat(v, 64)
		if err != nil || s <= 0 || s > 3600 {
			t.Fatalf("LINETOKEN_LOAD_SECONDS=%q: want seconds in (0, 3600]", v)
		}
		return time.Duration(s * float64(time.Second))
	}
	if testing.Short() {
		return time.Second
	}
	return 3 * time.Second
}

func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted)-1) * p)
	return sorted[i]
}

func micros(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

// Load phases: the senders' latencies are kept apart for each.
const (
	phaseLoaded = iota // Token goroutines, senders and rotations together
	phaseCalm          // the senders alone (rotations go on): a quieter latency figure
)

type latencies struct {
	viaTransport, baseline []time.Duration
	nTransport, nBaseline  int64
}

func (l *latencies) add(transport bool, d time.Duration) {
	p, n := &l.baseline, &l.nBaseline
	if transport {
		p, n = &l.viaTransport, &l.nTransport
	}
	*n++
	if len(*p) < loadMaxSamples {
		*p = append(*p, d)
	}
}

func TestLoadTokenSourceAndTransport(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	dur := loadDuration(t)
	tokenGoroutines, senders := 10_000, 16
	if raceDetector {
		// The race runtime allows 8128 live goroutines and runs much slower.
		tokenGoroutines, senders = 1_000, 8
	}

	clk := newFakeClock()
	line := newLoadLINE(clk)
	defer line.close()
	base := &http.Transport{MaxIdleConns: 4 * senders, MaxIdleConnsPerHost: 4 * senders, DisableCompression: true}
	defer base.CloseIdleConnections()
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	defer hc.CloseIdleConnections()
	c, err := oauth.NewClient(oauth.Config{ChannelID: testChannelID, ChannelSecret: testSecret, Key: mustKey(t),
		BaseURL: line.oauth.URL, Clock: clk.Now, HTTPClient: hc, Retry: oauth.RetryPolicy{MaxAttempts: 1}})
	if err != nil {
		t.Fatal(err)
	}
	ts, err := oauth.NewTokenSource(c, oauth.TokenSourceOptions{Kind: oauth.KindV21, Lifetime: loadLifetime,
		RefreshBefore: loadRefreshBefore, RevokeGrace: loadRevokeGrace})
	if err != nil {
		t.Fatal(err)
	}
	ts.SetWatchInterval(5 * time.Millisecond)
	closed := false
	defer func() {
		if !closed {
			_ = ts.Close()
		}
	}()
	ctx := context.Background()
	if _, err := ts.Token(ctx); err != nil {
		t.Fatal(err)
	}
	issuedAt := clk.Now()

	var (
		stopTokens, stopSenders atomic.Bool
		phase                   atomic.Int32
		errCount                atomic.Int64
		firstErr                atomic.Pointer[string]
		tokenCalls              atomic.Int64
		baselineRevoked         atomic.Int64
		tokenWG, senderWG       sync.WaitGroup
	)
	fail := func(format string, args ...any) {
		errCount.Add(1)
		msg := fmt.Sprintf(format, args...)
		firstErr.CompareAndSwap(nil, &msg)
	}

	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	start := time.Now()
	loadedEnd := start.Add(dur * 3 / 4)
	deadline := start.Add(dur)

	// The Token callers.
	for range tokenGoroutines {
		tokenWG.Go(func() {
			var n int64
			for n < loadMaxCallsPerG && !stopTokens.Load() {
				tok, err := ts.Token(ctx)
				if err != nil || tok == nil || tok.AccessToken == "" {
					fail("Token: %v", err)
				}
				n++
				if n%loadYieldEvery == 0 {
					runtime.Gosched()
				}
			}
			tokenCalls.Add(n)
		})
	}

	// The senders: each alternates a request through oauth.Transport and
	// the same request through the plain transport underneath it.
	results := make([][2]latencies, senders)
	authed := &http.Client{Transport: &oauth.Transport{Source: ts, Base: base}}
	plain := &http.Client{Transport: base}
	body := []byte(`{"to":"U0123456789abcdef0123456789abcdef","messages":[{"type":"text","text":"hello"}]}`)
	for i := range senders {
		senderWG.Go(func() {
			send := func(cl *http.Client, bearer string) (time.Duration, int) {
				req, err := http.NewRequestWithContext(ctx, http.MethodPost, line.api.URL+"/v2/bot/message/push", bytes.NewReader(body))
				if err != nil {
					fail("NewRequest: %v", err)
					return 0, 0
				}
				req.Header.Set("Content-Type", "application/json")
				if bearer != "" {
					req.Header.Set("Authorization", "Bearer "+bearer)
				}
				t0 := time.Now()
				resp, err := cl.Do(req)
				if err != nil {
					fail("request: %v", err)
					return 0, 0
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				return time.Since(t0), resp.StatusCode
			}
			for n := 0; n < loadMaxRequests && !stopSenders.Load(); n++ {
				ph := phase.Load()
				switch d, status := send(authed, ""); status {
				case http.StatusOK:
					results[i][ph].add(true, d)
				case 0:
				default:
					fail("a request through oauth.Transport answered %d", status)
				}
				tok, err := ts.Token(ctx) // outside the baseline's timing
				if err != nil {
					fail("Token for the baseline: %v", err)
					continue
				}
				switch d, status := send(plain, tok.AccessToken); {
				case status == http.StatusOK:
					results[i][ph].add(false, d)
				case status == http.StatusUnauthorized && line.wasRevoked(tok.AccessToken):
					// Revoked (a rotation's grace passed) between Token and
					// the request: oauth.Transport retries that case, a
					// bare request cannot. Not the library's error.
					baselineRevoked.Add(1)
				case status != 0:
					fail("a baseline request answered %d", status)
				}
			}
		})
	}

	// The driver: moves the clock into each token's refresh window, waits
	// for the one background refresh to replace it, then moves past the
	// revocation grace and waits for the replaced token's revocation.
	var (
		rotations   int
		perRotation []int64
		slowest     time.Duration
		maxG        int
		tokenCount  int64
		loadedSecs  float64
	)
	pause := max(dur/16, 20*time.Millisecond)
	// The calm phase lasts at least minCalm however long the loaded phase
	// took to wind down on a busy machine, so it always has requests.
	minCalm := max(dur/4, 500*time.Millisecond)
	var calmStart time.Time
	calmDone := func() bool { return !calmStart.IsZero() && time.Since(calmStart) >= minCalm }
	for time.Now().Before(deadline) || rotations < 3 || !calmDone() {
		time.Sleep(pause)
		maxG = max(maxG, runtime.NumGoroutine())
		if phase.Load() == phaseLoaded && !time.Now().Before(loadedEnd) {
			stopTokens.Store(true)
			tokenWG.Wait()
			loadedSecs = time.Since(start).Seconds()
			tokenCount = tokenCalls.Load()
			phase.Store(phaseCalm)
			calmStart = time.Now()
		}
		if rotations >= 3 && !time.Now().Before(deadline) && calmDone() || time.Since(start) > dur+loadRotationLimit+minCalm {
			break
		}
		cur, err := ts.Token(ctx)
		if err != nil {
			fail("driver Token: %v", err)
			break
		}
		issuesBefore := line.issues.Load()
		r0 := time.Now()
		clk.Advance(issuedAt.Add(loadStep).Sub(clk.Now()))
		if !waitFor(loadRotationLimit, func() bool {
			tok, err := ts.Token(ctx)
			return err == nil && tok.AccessToken != cur.AccessToken
		}) {
			fail("rotation %d: the token was not replaced within %v", rotations+1, loadRotationLimit)
			break
		}
		issuedAt = clk.Now()
		slowest = max(slowest, time.Since(r0))
		rotations++
		revokedBefore := line.revokes.Load()
		clk.Advance(loadRevokeGrace + time.Second)
		if !waitFor(loadRotationLimit, func() bool { return line.revokes.Load() > revokedBefore }) {
			fail("rotation %d: the replaced token was not revoked after its grace", rotations)
		}
		perRotation = append(perRotation, line.issues.Load()-issuesBefore)
	}
	stopTokens.Store(true)
	stopSenders.Store(true)
	tokenWG.Wait()
	senderWG.Wait()
	elapsed := time.Since(start)
	if loadedSecs == 0 {
		loadedSecs, tokenCount = elapsed.Seconds(), tokenCalls.Load()
	}
	var after runtime.MemStats
	runtime.ReadMemStats(&after)

	closed = true
	if err := ts.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	line.close()
	base.CloseIdleConnections()
	hc.CloseIdleConnections()
	goleak.VerifyNone(t, ignore)

	rep := loadReport{RaceDetector: raceDetector, GOMAXPROCS: runtime.GOMAXPROCS(0), Seconds: elapsed.Seconds(),
		LoadedSeconds: loadedSecs, TokenGoroutines: tokenGoroutines, Senders: senders, TokenCalls: tokenCount,
		TokenCallsPerSec: float64(tokenCount) / loadedSecs,
		Rotations:        rotations, Issues: line.issues.Load(), IssuesPerRotation: perRotation,
		RotationMaxMillis: float64(slowest) / float64(time.Millisecond), Revocations: line.revokes.Load(),
		Answered401: line.api401.Load(), BaselineRevoked: baselineRevoked.Load(), Errors: errCount.Load(), MaxGoroutinesDuring: maxG,
		HeapInuseAfterMiB: float64(after.HeapInuse) / (1 << 20)}
	if tokenCount > 0 {
		// Everything the process allocated (HTTP included) over the Token
		// calls: an upper bound on what one Token call costs.
		rep.TokenBytesPerCall = float64(after.TotalAlloc-before.TotalAlloc) / float64(tokenCount)
	}
	phaseSecs := [2]float64{loadedSecs, elapsed.Seconds() - loadedSecs}
	for ph := range rep.Phases {
		var viaTransport, baseline []time.Duration
		pr := &rep.Phases[ph]
		pr.Name = [2]string{"loaded (Token goroutines running)", "calm (senders alone)"}[ph]
		pr.Seconds = phaseSecs[ph]
		for _, r := range results {
			viaTransport = append(viaTransport, r[ph].viaTransport...)
			baseline = append(baseline, r[ph].baseline...)
			pr.TransportRequests += r[ph].nTransport
			pr.BaselineRequests += r[ph].nBaseline
		}
		slices.Sort(viaTransport)
		slices.Sort(baseline)
		if pr.Seconds > 0 {
			pr.TransportReqPerSec = float64(pr.TransportRequests) / pr.Seconds
			pr.BaselineReqPerSec = float64(pr.BaselineRequests) / pr.Seconds
		}
		pr.TransportP50Micros, pr.TransportP99Micros = micros(percentile(viaTransport, .50)), micros(percentile(viaTransport, .99))
		pr.BaselineP50Micros, pr.BaselineP99Micros = micros(percentile(baseline, .50)), micros(percentile(baseline, .99))
		pr.AddedP50Micros = pr.TransportP50Micros - pr.BaselineP50Micros
		pr.AddedP99Micros = pr.TransportP99Micros - pr.BaselineP99Micros
	}

	md := rep.markdown()
	t.Log("\n" + md)
	if path := os.Getenv("LINETOKEN_LOAD_REPORT"); path != "" {
		out := []byte(md)
		if strings.HasSuffix(path, ".json") {
			out, _ = json.MarshalIndent(rep, "", "  ")
			out = append(out, '\n')
		}
		if err := os.WriteFile(path, out, 0o644); err != nil {
			t.Errorf("writing the report: %v", err)
		}
	}

	if n := errCount.Load(); n != 0 {
		t.Errorf("%d errors; the first: %s", n, *firstErr.Load())
	}
	if rotations < 3 {
		t.Errorf("only %d rotations in %v; want several", rotations, elapsed)
	}
	for i, n := range perRotation {
		if n != 1 {
			t.Errorf("rotation %d issued %d tokens, want exactly 1", i+1, n)
		}
	}
	if got, want := line.issues.Load(), int64(rotations)+1; got != want {
		t.Errorf("%d issues for the first token and %d rotations, want %d", got, rotations, want)
	}
	if line.issueRequestsBad.Load() != 0 {
		t.Errorf("%d issue requests without an assertion", line.issueRequestsBad.Load())
	}
	for _, pr := range rep.Phases {
		if pr.TransportRequests == 0 || pr.BaselineRequests == 0 {
			t.Errorf("phase %s: %d Transport and %d baseline requests; want some of each", pr.Name, pr.TransportRequests, pr.BaselineRequests)
		}
	}
	if tokenCount == 0 {
		t.Error("no Token call was made")
	}
}

// waitFor polls cond every millisecond for up to limit.
func waitFor(limit time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(time.Millisecond)
	}
	return true
}
