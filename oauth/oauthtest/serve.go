package oauthtest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
)

// requestIDBytes is the size of an X-Line-Request-Id (32 hex digits).
const requestIDBytes = 16

// htmlErrorPage is what a proxy or load balancer in front of LINE answers
// instead of JSON; HTMLNext sends it.
const htmlErrorPage = "<!DOCTYPE html>\n<html><head><title>%d %s</title></head>" +
	"<body><h1>%d %s</h1><hr><center>nginx</center></body></html>\n"

// Fault is an injected answer to the next requests, replacing (or, with
// only Delay set, delaying) what the server would have answered.
type Fault struct {
	// Path limits the fault to requests for this path ("/v2/oauth/verify");
	// "" matches every request.
	Path string
	// Delay is waited, in real time, before anything else: a client with a
	// shorter timeout gives up. Close ends the wait at once.
	Delay time.Duration
	// Drop closes the connection without an answer.
	Drop bool
	// Status is the status to answer; 0 answers normally (after Delay).
	Status int
	// Body is the body answered with Status.
	Body string
	// ContentType is the Content-Type answered with Status; "" means
	// application/json.
	ContentType string
	// Header is added to the answer, e.g. Retry-After.
	Header http.Header
	// RetryKey limits the fault to requests whose X-Line-Retry-Key header
	// is exactly this value; "" matches every request.
	RetryKey string
	// AfterAccept applies the fault after the request is processed: a
	// valid send is accepted and recorded ([Server.Sends]) first, then
	// Status and Body, or Drop, replace the answer, or Delay is waited
	// before the normal answer ("accepted but slow"). Without it a fault
	// answers before anything is processed or accepted.
	AfterAccept bool
}

type pendingFault struct {
	f    Fault
	left int
}

// InjectFault makes the next n requests matching f.Path (and f.RetryKey)
// answer f. Faults queue: a request takes the first pending fault whose
// Path and RetryKey match. A
// request the client's transport resends by itself (Go resends a GET on
// a reused connection that closed) takes a fault of its own.
func (s *Server) InjectFault(n int, f Fault) {
	if n <= 0 {
		return
	}
	f.Header = f.Header.Clone()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, &pendingFault{f: f, left: n})
}

// FailNext makes the next n requests answer status with body as JSON
// (e.g. 500 `{"message":"Internal Server Error"}`).
func (s *Server) FailNext(n, status int, body string) {
	s.InjectFault(n, Fault{Status: status, Body: body})
}

// HTMLNext makes the next n requests answer status with an HTML error
// page (text/html), as a proxy in front of LINE does.
func (s *Server) HTMLNext(n, status int) {
	text := http.StatusText(status)
	s.InjectFault(n, Fault{
		Status:      status,
		Body:        fmt.Sprintf(htmlErrorPage, status, text, status, text),
		ContentType: "text/html; charset=utf-8",
	})
}

// DelayNext makes the next n requests wait d (real time) before being
// answered normally.
func (s *Server) DelayNext(n int, d time.Duration) { s.InjectFault(n, Fault{Delay: d}) }

// DropNext makes the next n requests lose their connection unanswered.
func (s *Server) DropNext(n int) { s.InjectFault(n, Fault{Drop: true}) }

// PendingFaults is the number of requests that faults still await.
func (s *Server) PendingFaults() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, p := range s.faults {
		n += p.left
	}
	return n
}

// ClearFaults drops every pending fault.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = nil
}

func (s *Server) takeFaultLocked(path, retryKey string) (Fault, bool) {
	for i, p := range s.faults {
		if p.f.Path != "" && p.f.Path != path || p.f.RetryKey != "" && p.f.RetryKey != retryKey {
			continue
		}
		p.left--
		if p.left == 0 {
			s.faults = append(s.faults[:i:i], s.faults[i+1:]...)
		}
		return p.f, true
	}
	return Fault{}, false
}

// Request is one request as the server received it. It holds the
// request's secrets (client_secret, client_assertion, access_token) so
// that tests can check them; its String and Format show them REDACTED.
type Request struct {
	// Time is the server's clock when the request arrived.
	Time   time.Time
	Method string
	// Path is the URL path.
	Path string
	// Host is the Host the request named (the listener's host:port):
	// [Server.URL] and [Server.DataURL] differ by port.
	Host string
	// ContentType is the Content-Type header.
	ContentType string
	// Query is the URL query.
	Query url.Values
	// Form is the body parsed as a form; nil for a GET without a body
	// and for every Messaging API path (whose bodies are JSON or content:
	// [Server.Sends] and [Server.Uploads] hold what was accepted).
	Form url.Values
	// Header is the request's header (Authorization included, if sent).
	Header http.Header
	// Status is the status answered; 0 when the connection was dropped or
	// the client left during a delay.
	Status int
	// RequestID is the X-Line-Request-Id answered; "" for a fault's
	// answer, which carries none, and when nothing was answered.
	RequestID string
	// Fault reports that an injected fault applied.
	Fault bool
}

// secretField reports whether form or query field k holds a secret
// (shown REDACTED by Request.String).
func secretField(k string) bool {
	return k == "client_secret" || k == "client_assertion" || k == "access_token"
}

// secretHeader reports whether header k holds a secret.
func secretHeader(k string) bool { return k == "Authorization" || k == "Cookie" }

// String describes r with its secret values REDACTED.
func (r Request) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s", r.Method, r.Path)
	if len(r.Query) > 0 {
		b.WriteString(" query=" + redactValues(r.Query, secretField))
	}
	if r.Form != nil {
		b.WriteString(" form=" + redactValues(r.Form, secretField))
	}
	if r.ContentType != "" {
		fmt.Fprintf(&b, " content-type=%q", r.ContentType)
	}
	for _, k := range sortedKeys(r.Header) {
		if secretHeader(k) {
			fmt.Fprintf(&b, " %s=REDACTED", k)
		}
	}
	fmt.Fprintf(&b, " -> %d", r.Status)
	if r.Fault {
		b.WriteString(" (fault)")
	}
	return b.String()
}

// Format prints [Request.String] under every verb, %#v included.
func (r Request) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, r.String()) }

func redactValues(v url.Values, secret func(string) bool) string {
	parts := make([]string, 0, len(v))
	for _, k := range sortedKeys(v) {
		for _, x := range v[k] {
			if secret(k) {
				x = "REDACTED"
			}
			parts = append(parts, k+"="+x)
		}
	}
	return "{" + strings.Join(parts, " ") + "}"
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Requests returns a copy of the request log, oldest first.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Request, len(s.log))
	for i, r := range s.log {
		r.Query, r.Form, r.Header = cloneValues(r.Query), cloneValues(r.Form), r.Header.Clone()
		out[i] = r
	}
	return out
}

// LastRequest returns the latest request logged, if any.
func (s *Server) LastRequest() (Request, bool) {
	reqs := s.Requests()
	if len(reqs) == 0 {
		return Request{}, false
	}
	return reqs[len(reqs)-1], true
}

// ResetRequests empties the request log.
func (s *Server) ResetRequests() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.log = nil
}

func cloneValues(v url.Values) url.Values {
	if v == nil {
		return nil
	}
	return url.Values(http.Header(v).Clone())
}

// ServeHTTP answers one request for any path: the token API, the
// Messaging API and its content paths, as fake-server serves them all on
// one address. It reads the body (at most 64 KiB on token paths; see the
// package doc for the Messaging API's caps), applies a pending fault, logs
// the request and answers it. Tests can mount it elsewhere; the server's
// own listeners split the paths by host ([Server.URL], [Server.DataURL]).
func (s *Server) ServeHTTP(w http.ResponseWriter, hr *http.Request) { s.serve(w, hr, hostAll) }

// exchange is one request, read and ready to be processed.
type exchange struct {
	// issueKind is the kind an issue endpoint issues (counted in
	// Stats.IssueRequests); 0 otherwise.
	issueKind Kind
	// send: a POST to one of the four send paths; channelID is its
	// token's channel ("" for a token not valid), which with the retry
	// key names its attempt count.
	send      bool
	channelID string
	// process answers the request; requestID is the X-Line-Request-Id
	// it will carry. It returns the send it accepted, if any.
	process func(requestID string) (response, *Send)
}

func (s *Server) serve(w http.ResponseWriter, hr *http.Request, host hostRole) {
	rec := Request{
		Time:        s.Now(),
		Method:      hr.Method,
		Path:        hr.URL.Path,
		Host:        hr.Host,
		ContentType: hr.Header.Get("Content-Type"),
		Query:       hr.URL.Query(),
		Header:      hr.Header.Clone(),
	}
	requestID := randomHex(requestIDBytes)
	var ex exchange
	switch {
	case !host.serves(hr.URL.Path):
		ex.process = func(string) (response, *Send) { return messageError(http.StatusNotFound, msgNotFound), nil }
	case isMessagingPath(hr.URL.Path):
		ex = s.readMessaging(w, hr)
	default:
		ex = s.readToken(w, hr, &rec)
	}
	retryKey := hr.Header.Get(headerRetryKey)

	s.mu.Lock()
	s.stats.Requests++
	if ex.issueKind != 0 {
		s.stats.IssueRequests[ex.issueKind]++
	}
	attempt := 0
	if ex.send && retryKey != "" {
		k := attemptKey{channelID: ex.channelID, retryKey: retryKey}
		s.attempts[k]++
		attempt = s.attempts[k]
		// A key is valid for 24 hours from its first attempt, accepted
		// or not; after that it starts afresh.
		if key, err := uuid.Parse(retryKey); err == nil {
			id := retryKeyID{channelID: ex.channelID, key: key}
			if ft, seen := s.firstTry[id]; !seen || !rec.Time.Before(ft.Add(retryKeyTTL)) {
				s.firstTry[id] = rec.Time
			}
		}
	}
	var f Fault
	faulted := false
	if host.serves(hr.URL.Path) {
		f, faulted = s.takeFaultLocked(hr.URL.Path, retryKey)
	}
	schedule := s.faultSends
	s.mu.Unlock()
	if !faulted && attempt > 0 && schedule != nil {
		// Outside the lock: the schedule may call the server.
		if f, faulted = schedule(retryKey, attempt); faulted {
			f.Header = f.Header.Clone()
			s.mu.Lock()
			s.stats.Faulted++
			s.mu.Unlock()
		}
	} else if faulted {
		s.mu.Lock()
		s.stats.Faulted++
		s.mu.Unlock()
	}
	rec.Fault = faulted

	if faulted && !f.AfterAccept && !s.applyFault(w, hr, &rec, f) {
		return
	}
	r, sent := ex.process(requestID)
	if sent != nil && s.opts.onSend != nil {
		s.opts.onSend(sent.clone()) // before the answer: a client with its answer finds the send reported
	}
	if faulted && f.AfterAccept && !s.applyFault(w, hr, &rec, f) {
		return
	}
	r.requestID = requestID
	rec.Status, rec.RequestID = r.status, requestID
	s.record(rec)
	s.write(w, r)
}

// readToken reads a token API request: a body of at most 64 KiB, parsed
// as a form.
func (s *Server) readToken(w http.ResponseWriter, hr *http.Request, rec *Request) exchange {
	body, readErr := io.ReadAll(http.MaxBytesReader(w, hr.Body, maxRequestBody))
	form, formErr := url.ParseQuery(string(body))
	if readErr == nil && (len(body) > 0 || hr.Method == http.MethodPost) {
		rec.Form = form
	}
	var ex exchange
	if rt, found := routeFor(hr.URL.Path); found && hr.Method == rt.method {
		ex.issueKind = rt.kind
	}
	ex.process = func(string) (response, *Send) {
		var tooLarge *http.MaxBytesError
		switch {
		case errors.As(readErr, &tooLarge):
			return messageError(http.StatusRequestEntityTooLarge, "Request Entity Too Large"), nil
		case readErr != nil:
			return badRequest(descBadParams), nil
		}
		return s.dispatch(hr, form, formErr, s.Now()), nil
	}
	return ex
}

// applyFault applies f to the request: it waits f.Delay, then drops the
// connection or answers f.Status. It reports whether the request is still
// to be answered normally (a fault with only a Delay that passed).
func (s *Server) applyFault(w http.ResponseWriter, hr *http.Request, rec *Request, f Fault) bool {
	if f.Delay > 0 && !s.wait(hr.Context(), f.Delay) {
		s.record(*rec)
		return false
	}
	if f.Drop {
		s.record(*rec)
		drop(w)
		return false
	}
	if f.Status == 0 {
		return true
	}
	r := response{status: f.Status, raw: []byte(f.Body), contentType: f.ContentType, header: f.Header, fault: true}
	rec.Status = r.status
	s.record(*rec)
	s.write(w, r)
	return false
}

// record appends to the request log. It runs before the answer is
// written, so a client that has its answer finds its request logged.
func (s *Server) record(r Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.log = append(s.log, r)
}

// wait sleeps d unless the request or the server ends first; it reports
// whether d passed.
func (s *Server) wait(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
	case <-s.closed:
	}
	return false
}

func (s *Server) write(w http.ResponseWriter, r response) {
	h := w.Header()
	for k, v := range r.header {
		h[k] = v
	}
	if h.Get("Content-Type") == "" || r.contentType != "" {
		ct := r.contentType
		if ct == "" {
			ct = contentTypeJSON
		}
		h.Set("Content-Type", ct)
	}
	if !r.fault {
		id := r.requestID
		if id == "" {
			id = randomHex(requestIDBytes)
		}
		h.Set(headerRequestID, id)
		h.Set("Cache-Control", "no-store")
	}
	if r.stream != nil {
		h.Set("Content-Length", strconv.FormatInt(r.length, 10))
		w.WriteHeader(r.status)
		r.stream(w)
		return
	}
	data := r.raw
	if data == nil && r.body != nil {
		var err error
		if data, err = json.Marshal(r.body); err != nil {
			panic("oauthtest: encoding a response: " + err.Error()) // our own types always encode
		}
	}
	h.Set("Content-Length", strconv.Itoa(len(data)))
	w.WriteHeader(r.status)
	_, _ = w.Write(data)
}

// drop closes the request's connection without an answer.
func drop(w http.ResponseWriter) {
	if hj, isHijacker := w.(http.Hijacker); isHijacker {
		if conn, _, err := hj.Hijack(); err == nil {
			_ = conn.Close()
			return
		}
	}
	panic(http.ErrAbortHandler) // net/http closes the connection quietly
}
