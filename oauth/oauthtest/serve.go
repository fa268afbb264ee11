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
}

type pendingFault struct {
	f    Fault
	left int
}

// InjectFault makes the next n requests matching f.Path answer f. Faults
// queue: a request takes the first pending fault whose Path matches. A
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

func (s *Server) takeFaultLocked(path string) (Fault, bool) {
	for i, p := range s.faults {
		if p.f.Path != "" && p.f.Path != path {
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
	// ContentType is the Content-Type header.
	ContentType string
	// Query is the URL query.
	Query url.Values
	// Form is the body parsed as a form; nil for a GET without a body.
	Form url.Values
	// Header is the request's header (Authorization included, if sent).
	Header http.Header
	// Status is the status answered; 0 when the connection was dropped or
	// the client left during a delay.
	Status int
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

// ServeHTTP answers one request: it reads the body (at most 64 KiB),
// applies a pending fault, logs the request and answers it. It is what
// the server's listener runs; tests can also mount it elsewhere.
func (s *Server) ServeHTTP(w http.ResponseWriter, hr *http.Request) {
	rec := Request{
		Time:        s.Now(),
		Method:      hr.Method,
		Path:        hr.URL.Path,
		ContentType: hr.Header.Get("Content-Type"),
		Query:       hr.URL.Query(),
		Header:      hr.Header.Clone(),
	}
	body, readErr := io.ReadAll(http.MaxBytesReader(w, hr.Body, maxRequestBody))
	form, formErr := url.ParseQuery(string(body))
	if readErr == nil && (len(body) > 0 || hr.Method == http.MethodPost) {
		rec.Form = form
	}

	s.mu.Lock()
	s.stats.Requests++
	if rt, found := routeFor(hr.URL.Path); found && rt.kind != 0 && hr.Method == rt.method {
		s.stats.IssueRequests[rt.kind]++
	}
	f, faulted := s.takeFaultLocked(hr.URL.Path)
	if faulted {
		s.stats.Faulted++
	}
	s.mu.Unlock()
	rec.Fault = faulted

	if faulted {
		if f.Delay > 0 && !s.wait(hr.Context(), f.Delay) {
			s.record(rec)
			return
		}
		if f.Drop {
			s.record(rec)
			drop(w)
			return
		}
		if f.Status != 0 {
			r := response{status: f.Status, raw: []byte(f.Body), contentType: f.ContentType, header: f.Header, fault: true}
			rec.Status = r.status
			s.record(rec)
			s.write(w, r)
			return
		}
	}

	var r response
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(readErr, &tooLarge):
		r = messageError(http.StatusRequestEntityTooLarge, "Request Entity Too Large")
	case readErr != nil:
		r = badRequest(descBadParams)
	default:
		r = s.dispatch(hr, form, formErr, s.Now())
	}
	rec.Status = r.status
	s.record(rec)
	s.write(w, r)
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
		h.Set(headerRequestID, randomHex(requestIDBytes))
		h.Set("Cache-Control", "no-store")
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
