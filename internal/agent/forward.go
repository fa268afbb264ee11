package agent

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"golang.org/x/sync/semaphore"
)

// proxy is the LINE API endpoint: it checks who is asking and for which
// channel, then forwards to LINE with the real token, retrying what is
// safe to retry.
type proxy struct {
	a         *Agent
	cfg       *ProxyConfig
	api, data upstream
	base      *http.Transport
	backoff   time.Duration // the first retry's wait before jitter
	chans     map[*channel]proxyChannel
	kept      *semaphore.Weighted // bytes of bodies kept for replay, across requests in flight
	// onConn, set by tests only (export_test.go), is told every host:port
	// an attempt connects to.
	onConn func(hostPort string)
}

func newProxy(a *Agent, cfg *ProxyConfig) *proxy {
	p := &proxy{a: a, cfg: cfg, api: newUpstream(cfg.APIURL), data: newUpstream(cfg.DataURL),
		base: proxyTransport(cfg.AttemptTimeout), backoff: defaultSendBackoff, chans: map[*channel]proxyChannel{},
		kept: semaphore.NewWeighted(replayBudget(cfg.MaxReplayBody))}
	if a.opts.SendBackoff > 0 {
		p.backoff = a.opts.SendBackoff
	}
	for _, c := range a.channels {
		p.chans[c] = proxyChannel{
			bot:      channelTransport(c, p.base, c.refused),
			other:    channelTransport(c, p.base, c.refusedElsewhere),
			duration: a.m.proxy.duration.WithLabelValues(c.id, c.kindS),
		}
	}
	return p
}

// minReplayBudget caps the bytes of bodies kept for replay across all
// requests in flight (64 pushes of 1 MiB; thousands of ordinary ones),
// unless 4 x max_replay_body is more.
const minReplayBudget = 64 << 20

func replayBudget(maxReplayBody int64) int64 { return max(minReplayBudget, 4*maxReplayBody) }

// proxyAnswer is what one proxied request got, for the metric and the
// access log.
type proxyAnswer struct {
	c        *channel // nil when refused before a channel was known
	code     int
	err      string // the proxy's error code, when it answered one
	caller   string
	attempts int
}

// codeClientGone labels a request whose client left before its answer
// (nginx's 499).
const codeClientGone = 499

// ServeHTTP serves one request to the proxy.
func (p *proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	ans := p.serve(w, r)
	ch, kind := "", ""
	if ans.c != nil {
		ch, kind = ans.c.id, ans.c.kindS
		p.chans[ans.c].duration.Observe(time.Since(start).Seconds())
	}
	p.a.m.proxy.requests.inc(ch, kind, ans.code)
	if p.a.log.Enabled(r.Context(), slog.LevelDebug) {
		p.a.log.LogAttrs(r.Context(), slog.LevelDebug, "agent: proxy request",
			slog.String("method", r.Method), slog.String("endpoint", endpoint(r.URL.Path)),
			slog.String("channel", ch), slog.String("kind", kind), slog.Int("code", ans.code),
			slog.String("error", ans.err), slog.String("caller", ans.caller),
			slog.Int("attempts", ans.attempts), slog.Duration("took", time.Since(start)))
	}
}

func (p *proxy) serve(w http.ResponseWriter, r *http.Request) proxyAnswer {
	if r.Method == http.MethodConnect || !strings.HasPrefix(r.RequestURI, "/") {
		return p.fail(w, nil, http.StatusBadRequest, "not_a_proxy",
			"this is a LINE API endpoint, not a forward proxy: send origin-form requests (GET /v2/bot/info), never CONNECT or a full URL")
	}
	if !p.a.hostAllowed(r.Host) || r.Header.Get("Origin") != "" {
		return p.fail(w, nil, http.StatusForbidden, "bad_host",
			"refused: the Host is not loopback or in allowed_hosts, or the request has an Origin header (a browser's, not a bot's)")
	}
	if r.Header.Get("Upgrade") != "" {
		return p.fail(w, nil, http.StatusBadRequest, "upgrade_refused", "protocol upgrades (WebSocket, h2c) are not forwarded")
	}
	if bad := badPath(r); bad != "" {
		return p.fail(w, nil, http.StatusBadRequest, "bad_path", bad)
	}
	if isTokenEndpoint(r.URL.Path) {
		return p.fail(w, nil, http.StatusForbidden, "token_endpoint_refused",
			"LINE's token endpoints are never forwarded (their forms carry secrets): the agent issues tokens itself; read one from its token API")
	}
	ph, ok := parsePlaceholder(r.Header.Get("Authorization"))
	if !ok {
		return p.fail(w, nil, http.StatusUnauthorized, "missing_placeholder",
			"the proxy takes only Authorization: Bearer linetoken[...]: "+placeholderConfigureHelp)
	}
	key := ph.key
	if hk := r.Header.Get(HeaderKey); hk != "" {
		if key != "" && key != hk {
			return p.fail(w, nil, http.StatusUnauthorized, "invalid_caller_key",
				"the placeholder and the "+HeaderKey+" header carry different caller keys")
		}
		key = hk
	}
	caller, ok := p.a.caller(key)
	if !ok {
		return p.fail(w, nil, http.StatusUnauthorized, "invalid_caller_key",
			`a caller key is required: add it to the placeholder ("linetoken/KEY") or send it in the `+HeaderKey+" header")
	}
	name := ""
	if caller != nil {
		name = caller.name
	}
	if caller != nil && caller.channels != nil && ph.channel != "" && !caller.channels[ph.channel] {
		// Before the channel is looked up, as on the token API: a key
		// limited to some channels cannot learn which others exist.
		ans := p.fail(w, nil, http.StatusForbidden, "channel_not_allowed", "this caller key may not use this channel")
		ans.caller = name
		return ans
	}
	c, ans := p.channelFor(w, ph, caller)
	if c == nil {
		ans.caller = name
		return ans
	}
	if caller != nil && caller.channels != nil && !caller.channels[c.id] {
		ans := p.fail(w, nil, http.StatusForbidden, "channel_not_allowed", "this caller key may not use this channel")
		ans.caller = name
		return ans
	}
	ans = p.forward(w, r, c)
	ans.c, ans.caller = c, name
	return ans
}

// channelFor finds the channel and kind a placeholder names; on failure
// it has answered and returns nil.
func (p *proxy) channelFor(w http.ResponseWriter, ph placeholder, caller *callerKey) (*channel, proxyAnswer) {
	chs := p.a.channels
	if ph.channel == "" && caller != nil && caller.channels != nil {
		// A key limited to some channels names them: plain
		// "linetoken/KEY" picks its one channel.
		chs = nil
		for _, c := range p.a.channels {
			if caller.channels[c.id] {
				chs = append(chs, c)
			}
		}
		if len(chs) == 0 { // a key limited to no channel (channels: [])
			return nil, p.fail(w, nil, http.StatusForbidden, "channel_not_allowed", "this caller key may not use any channel")
		}
	}
	if ph.channel != "" {
		chs = p.a.byID[ph.channel]
		if len(chs) == 0 {
			return nil, p.fail(w, nil, http.StatusNotFound, "unknown_channel", "the agent serves no such channel")
		}
	}
	if ph.kind != "" {
		for _, c := range chs {
			if c.kindS == ph.kind {
				return c, proxyAnswer{}
			}
		}
		return nil, p.fail(w, nil, http.StatusNotFound, "unknown_channel", "the agent serves no "+ph.kind+" tokens for this channel")
	}
	if len(chs) == 1 {
		return chs[0], proxyAnswer{}
	}
	if ph.channel == "" && !oneChannel(chs) {
		return nil, p.fail(w, nil, http.StatusBadRequest, "ambiguous_channel",
			"the agent serves several channels: name one in the placeholder, linetoken:CHANNEL_ID")
	}
	kinds := make([]string, len(chs))
	for i, c := range chs {
		kinds[i] = c.kindS
	}
	return nil, p.fail(w, nil, http.StatusBadRequest, "ambiguous_kind",
		"the channel has several kinds: name one in the placeholder, linetoken:CHANNEL_ID:KIND with KIND one of "+strings.Join(kinds, ", "))
}

// oneChannel reports whether chs are kinds of one channel ID.
func oneChannel(chs []*channel) bool {
	for _, c := range chs {
		if c.id != chs[0].id {
			return false
		}
	}
	return true
}

// badPath says what is wrong with a request's path, or "": a dot
// segment or an encoded slash could reach a path other than the one
// checked.
func badPath(r *http.Request) string {
	raw := r.URL.EscapedPath()
	lower := strings.ToLower(raw)
	if strings.Contains(lower, "%2f") || strings.Contains(lower, "%5c") || strings.ContainsRune(r.URL.Path, '\\') {
		return "an encoded slash or a backslash in the path is refused"
	}
	for seg := range strings.SplitSeq(r.URL.Path, "/") {
		if seg == "." || seg == ".." {
			return "a . or .. segment in the path is refused"
		}
	}
	return ""
}

// endpoint is a path for logs: segments holding an ID (a digit, or
// longer than a word) become {id}, so user IDs are not logged.
func endpoint(path string) string {
	if len(path) > 256 {
		path = path[:256]
	}
	segs := strings.Split(path, "/")
	for i, s := range segs {
		if len(s) > 24 || strings.ContainsAny(s, "0123456789") && s != "v2" {
			segs[i] = "{id}"
		}
	}
	return strings.Join(segs, "/")
}

// class is what may be retried of a request.
type class int

const (
	classOther class = iota // never retried (a 401 heal aside)
	classGet                // retried on 5xx, timeouts and connection failures
	classSend               // a message send: retried with its retry key
)

func classify(r *http.Request) class {
	switch {
	case r.Method == http.MethodPost && sendSuccess[r.URL.Path] != 0:
		return classSend
	case r.Method == http.MethodGet || r.Method == http.MethodHead:
		return classGet
	}
	return classOther
}

// forward sends r to LINE for c and answers w with LINE's answer: an
// attempt's, after retries where they are safe.
func (p *proxy) forward(w http.ResponseWriter, r *http.Request, c *channel) proxyAnswer {
	ctx := r.Context()
	// Have a token before anything is read or sent; the Transport then
	// finds it cached.
	tctx, cancel := context.WithTimeout(ctx, tokenWait)
	_, err := c.token(tctx)
	cancel()
	if err != nil {
		return p.tokenUnavailable(w, c, err)
	}
	cl := classify(r)
	h := outHeader(r.Header)
	if cl == classSend && h.Get(headerRetryKey) == "" {
		h.Set(headerRetryKey, uuid.NewString()) // on the first attempt, so every retry may carry it
	}
	up := p.api
	if isDataPath(r.URL.Path) {
		up = p.data
	}
	target := up.target(r.URL)
	host := strings.TrimSuffix(target.Host, ":") // an empty port dropped, as http.NewRequest does

	// The body: kept for a replay when small, else streamed once.
	var kept []byte
	var stream io.Reader
	hasBody := r.Body != nil && r.Body != http.NoBody && r.ContentLength != 0
	if hasBody {
		limit := p.cfg.MaxReplayBody
		want := limit + 1 // an unknown length is read up to limit+1 bytes
		if r.ContentLength > 0 {
			want = r.ContentLength
		}
		switch {
		case limit <= 0 || r.ContentLength > limit:
			stream = r.Body
		case !p.kept.TryAcquire(want):
			// The bytes kept across requests in flight are capped: past
			// the cap a body streams once, as a large one does.
			p.a.m.proxy.unkept.WithLabelValues(c.id, c.kindS).Inc()
			stream = r.Body
		default:
			kept, err = readKept(r.Body, r.ContentLength, limit)
			held := want
			if err == nil && int64(len(kept)) <= limit {
				held = int64(len(kept)) // an unknown length holds what it turned out to be
				p.kept.Release(want - held)
			}
			defer p.kept.Release(held)
			if err != nil {
				return p.fail(w, c, http.StatusBadRequest, "bad_request", "the request body could not be read")
			}
			if int64(len(kept)) > limit { // a body of unknown length, larger than max
				stream, kept = io.MultiReader(bytes.NewReader(kept), r.Body), nil
			}
		}
	}
	attempts := 1
	if cl != classOther && stream == nil {
		attempts = p.cfg.SendRetry.Attempts
	}
	deadline := time.Now().Add(p.cfg.SendRetry.MaxElapsed)
	ambiguous := false // an earlier attempt may have been accepted
	rt := p.chans[c].other
	if takesChannelToken(r.URL.Path) {
		rt = p.chans[c].bot
	}
	for n := 1; ; n++ {
		at := &attempt{onConn: p.onConn}
		// What http.NewRequestWithContext makes of target.String(),
		// without printing and parsing the URL again (nobody below
		// mutates target: the Transports clone what they change).
		req := (&http.Request{Method: r.Method, URL: target, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
			Header: h, Host: host}).WithContext(context.WithValue(ctx, attemptKey{}, at))
		switch {
		case kept != nil:
			body := kept // GetBody captures this copy: kept itself stays off the heap for bodiless requests
			req.ContentLength = int64(len(body))
			req.Body = io.NopCloser(bytes.NewReader(body))
			req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
		case stream != nil:
			req.ContentLength = r.ContentLength
			req.Body = io.NopCloser(stream)
		}
		resp, err := rt.RoundTrip(req)
		if err != nil {
			switch {
			case ctx.Err() != nil:
				return proxyAnswer{code: codeClientGone, attempts: n}
			case !errors.As(err, new(*upstreamError)):
				// The Transport could not get a token (it expired and
				// its refresh failed meanwhile): it sent nothing.
				c.noteErr(err)
				return p.tokenUnavailable(w, c, err)
			}
			reason := "connection"
			if isTimeout(err) {
				reason = "timeout"
			}
			ambiguous = ambiguous || at.wrote()
			if wait := p.backoffFor(n, 0); n < attempts && time.Now().Add(wait).Before(deadline) {
				if !p.sleep(ctx, c, n, wait, reason, h) {
					return proxyAnswer{code: codeClientGone, attempts: n}
				}
				continue
			}
			ans := p.unreachable(w, c, cl, h, reason, err)
			ans.attempts = n
			return ans
		}
		if cl == classSend && resp.StatusCode == http.StatusConflict && ambiguous {
			return p.accepted(w, r, c, resp, n)
		}
		switch resp.StatusCode {
		case http.StatusInternalServerError, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
			if cl == classSend {
				ambiguous = true
			}
			if n < attempts {
				wait := p.backoffFor(n, retryAfterHeader(resp.Header, time.Now()))
				if time.Now().Add(wait).Before(deadline) {
					_, _ = io.CopyN(io.Discard, resp.Body, maxDrain)
					resp.Body.Close()
					if !p.sleep(ctx, c, n, wait, "status_"+strconv.Itoa(resp.StatusCode), h) {
						return proxyAnswer{code: codeClientGone, attempts: n}
					}
					continue
				}
			}
		}
		return p.pass(w, r, resp, resp.StatusCode, n)
	}
}

// readKept reads a body to keep for replay: exactly its length when known
// (one allocation of that size), else up to limit+1 bytes.
func readKept(body io.Reader, length, limit int64) ([]byte, error) {
	if length > 0 {
		b := make([]byte, length)
		_, err := io.ReadFull(body, b)
		return b, err
	}
	return io.ReadAll(io.LimitReader(body, limit+1))
}

// maxDrain caps what is read of an answer thrown away before a retry, so
// its connection can be reused.
const maxDrain = 64 << 10

// sleep waits before attempt n+1, counting and logging the retry; false
// when the client left first. Callers have checked that the wait ends
// before the request's deadline.
func (p *proxy) sleep(ctx context.Context, c *channel, n int, wait time.Duration, reason string, h http.Header) bool {
	p.a.m.proxy.retries.WithLabelValues(c.id, c.kindS, reason).Inc()
	p.a.log.LogAttrs(ctx, slog.LevelInfo, "agent: proxy: retrying",
		slog.String("channel", c.id), slog.String("kind", c.kindS), slog.String("reason", reason),
		slog.Int("attempt", n+1), slog.Duration("wait", wait), slog.String("retry_key", h.Get(headerRetryKey)))
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// backoffFor is the wait after attempt n: exponential from p.backoff,
// capped, with full jitter over its upper half, and never less than
// LINE's Retry-After.
func (p *proxy) backoffFor(n int, retryAfter time.Duration) time.Duration {
	d := min(p.backoff<<min(n-1, 16), maxSendBackoff)
	d = d/2 + rand.N(d/2+1)
	return max(d, retryAfter)
}

// maxRetryAfterSecs is the longest Retry-After a Duration can hold.
const maxRetryAfterSecs = uint64(math.MaxInt64 / int64(time.Second))

// retryAfterHeader reads Retry-After (seconds or an HTTP date); 0 when
// absent or unreadable.
func retryAfterHeader(h http.Header, now time.Time) time.Duration {
	v := h.Get("Retry-After")
	if v == "" {
		return 0
	}
	// Digits beyond what a Duration holds (ParseUint's ErrRange gives its
	// maximum) are a wait too long for any retry, never no wait.
	if secs, err := strconv.ParseUint(v, 10, 63); err == nil || errors.Is(err, strconv.ErrRange) {
		return time.Duration(min(secs, maxRetryAfterSecs)) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
}

// accepted answers a 409 to a send whose earlier attempt ended
// ambiguously: LINE had accepted that attempt, so the client gets the
// send's success status with LINE's body and the accepted request's ID.
func (p *proxy) accepted(w http.ResponseWriter, r *http.Request, c *channel, resp *http.Response, n int) proxyAnswer {
	p.a.m.proxy.conflicts.WithLabelValues(c.id, c.kindS).Inc()
	p.a.log.LogAttrs(r.Context(), slog.LevelInfo, "agent: proxy: an earlier attempt of this send was accepted; answering success",
		slog.String("channel", c.id), slog.String("kind", c.kindS), slog.Int("attempts", n),
		slog.String("accepted_request_id", resp.Header.Get(headerAcceptedRequestID)))
	if id := resp.Header.Get(headerAcceptedRequestID); id != "" {
		resp.Header.Set(headerRequestID, id)
	}
	return p.pass(w, r, resp, sendSuccess[r.URL.Path], n)
}

// pass answers w with resp (status code), its body streamed.
func (p *proxy) pass(w http.ResponseWriter, r *http.Request, resp *http.Response, code, n int) proxyAnswer {
	defer resp.Body.Close()
	h := w.Header()
	for k, v := range resp.Header {
		h[k] = v
	}
	removeHopByHop(h)
	w.WriteHeader(code)
	if r.Method != http.MethodHead {
		if _, err := io.Copy(w, resp.Body); err != nil && r.Context().Err() == nil {
			p.a.log.LogAttrs(r.Context(), slog.LevelWarn, "agent: proxy: the answer's body was cut short",
				slog.String("endpoint", endpoint(r.URL.Path)), slog.String("error", scrubNetErr(err)))
		}
	}
	return proxyAnswer{code: code, attempts: n}
}

// unreachable answers an attempt that got no answer from LINE. A send's
// answer carries its X-Line-Retry-Key (the proxy's own when the client
// sent none), so the client can send it again safely.
func (p *proxy) unreachable(w http.ResponseWriter, c *channel, cl class, h http.Header, reason string, err error) proxyAnswer {
	p.a.log.LogAttrs(context.Background(), slog.LevelWarn, "agent: proxy: LINE could not be reached",
		slog.String("channel", c.id), slog.String("kind", c.kindS), slog.String("reason", reason), slog.String("error", scrubNetErr(err)))
	again := ""
	if cl == classSend {
		w.Header().Set(headerRetryKey, h.Get(headerRetryKey))
		again = "; the send may or may not have been accepted: send it again with this answer's X-Line-Retry-Key"
	}
	if reason == "timeout" {
		return p.fail(w, c, http.StatusGatewayTimeout, "upstream_timeout", "LINE did not answer within attempt_timeout"+again)
	}
	return p.fail(w, c, http.StatusBadGateway, "upstream_unreachable", "LINE could not be reached: "+scrubNetErr(err)+again)
}

// scrubNetErr describes a transport error without anything a request
// carried: the error's own text names hosts and addresses only (it never
// holds a header), so it is kept, cut to its last part.
func scrubNetErr(err error) string {
	msg := err.Error()
	if len(msg) > 200 {
		msg = msg[len(msg)-200:]
	}
	return msg
}

// tokenUnavailable answers 503 token_unavailable, as the token API does.
func (p *proxy) tokenUnavailable(w http.ResponseWriter, c *channel, err error) proxyAnswer {
	ans := p.a.tokenUnavailable(w, "", err)
	return proxyAnswer{c: c, code: ans.code, err: "token_unavailable"}
}

func (p *proxy) fail(w http.ResponseWriter, c *channel, code int, errCode, msg string) proxyAnswer {
	p.a.writeJSON(w, "", code, apiError{Error: errCode, Message: msg})
	return proxyAnswer{c: c, code: code, err: errCode}
}
