package agent

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// HTTP API limits.
const (
	// HeaderRequest must be "1" on every /v1/ request: a bot tricked into
	// fetching a URL (SSRF) cannot add a header.
	HeaderRequest = "X-Linetoken-Request"
	// HeaderKey carries a caller key when callers are configured.
	HeaderKey = "X-Linetoken-Key"
	// maxInvalidateBody caps an invalidate request's body.
	maxInvalidateBody = 4 << 10
	// tokenWait bounds how long a GET waits for a refresh before 503:
	// well inside the server's WriteTimeout.
	tokenWait = 5 * time.Second
)

// Route labels of linetoken_http_requests_total.
const (
	routeToken      = "/v1/channels/{id}/token"
	routeInvalidate = "/v1/channels/{id}/token/invalidate"
	routeHealthz    = "/healthz"
	routeReadyz     = "/readyz"
	routeMetrics    = "/metrics"
	routeOther      = "other"
)

// callerKey is a configured caller, its key kept as a SHA-256 digest.
type callerKey struct {
	name     string
	digest   [sha256.Size]byte
	channels map[string]bool // nil: all
}

// apiError is the JSON body of every error answer.
type apiError struct {
	Error   string `json:"error"`
	Message string `json:"message"`
	Cause   string `json:"cause,omitempty"`
}

// answer is what one request got, for the metric and the access log.
type answer struct {
	route  string
	code   int
	caller string
}

// ServeHTTP serves the HTTP API.
func (a *Agent) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	ans := a.serve(w, r)
	a.m.requests.inc(ans.route, "", ans.code)
	if a.log.Enabled(r.Context(), slog.LevelDebug) {
		a.log.LogAttrs(r.Context(), slog.LevelDebug, "agent: request",
			slog.String("method", r.Method), slog.String("route", ans.route), slog.Int("code", ans.code),
			slog.String("caller", ans.caller), slog.Duration("took", time.Since(start)))
	}
}

func (a *Agent) serve(w http.ResponseWriter, r *http.Request) answer {
	path := r.URL.Path
	route := routeOther
	switch path {
	case routeHealthz, routeReadyz, routeMetrics:
		route = path
	}
	if !a.hostAllowed(r.Host) || r.Header.Get("Origin") != "" {
		return a.fail(w, route, http.StatusForbidden, "bad_host",
			"refused: the Host is not loopback or in allowed_hosts, or the request has an Origin header (a browser's, not a bot's)")
	}
	switch route {
	case routeHealthz, routeReadyz, routeMetrics:
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			return a.fail(w, route, http.StatusMethodNotAllowed, "method_not_allowed", "use GET")
		}
		switch route {
		case routeHealthz:
			return a.writeJSON(w, route, http.StatusOK, map[string]string{"status": "ok"})
		case routeReadyz:
			return a.readyz(w)
		default:
			a.mh.ServeHTTP(w, r)
			return answer{route: route, code: http.StatusOK}
		}
	}
	if r.Header.Get(HeaderRequest) != "1" {
		return a.fail(w, route, http.StatusForbidden, "missing_request_header",
			"every /v1/ request must carry the header "+HeaderRequest+": 1")
	}
	caller, ok := a.caller(r.Header.Get(HeaderKey))
	if !ok {
		return a.fail(w, route, http.StatusUnauthorized, "invalid_caller_key",
			"a caller key is required: send it in the "+HeaderKey+" header")
	}
	ans := a.serveV1(w, r, caller)
	if caller != nil {
		ans.caller = caller.name
	}
	return ans
}

// serveV1 serves an authorised /v1/ request.
func (a *Agent) serveV1(w http.ResponseWriter, r *http.Request, caller *callerKey) answer {
	rest, ok := strings.CutPrefix(r.URL.Path, "/v1/channels/")
	var id, tail string
	if ok {
		id, tail, _ = strings.Cut(rest, "/")
	}
	var route, method string
	switch {
	case ok && id != "" && tail == "token":
		route, method = routeToken, http.MethodGet
	case ok && id != "" && tail == "token/invalidate":
		route, method = routeInvalidate, http.MethodPost
	default:
		return a.fail(w, routeOther, http.StatusNotFound, "not_found",
			"no such route: GET /v1/channels/{id}/token and POST /v1/channels/{id}/token/invalidate are served")
	}
	if r.Method != method && !(method == http.MethodGet && r.Method == http.MethodHead) {
		w.Header().Set("Allow", method)
		return a.fail(w, route, http.StatusMethodNotAllowed, "method_not_allowed", "use "+method)
	}
	var body []byte
	if route == routeInvalidate {
		var err error
		body, err = io.ReadAll(http.MaxBytesReader(w, r.Body, maxInvalidateBody))
		var mbe *http.MaxBytesError
		switch {
		case errors.As(err, &mbe):
			return a.fail(w, route, http.StatusRequestEntityTooLarge, "body_too_large",
				"the body is larger than "+strconv.Itoa(maxInvalidateBody)+" bytes")
		case err != nil:
			return a.fail(w, route, http.StatusBadRequest, "bad_request", "the body could not be read")
		}
	}
	if caller != nil && caller.channels != nil && !caller.channels[id] {
		return a.fail(w, route, http.StatusForbidden, "channel_not_allowed", "this caller key may not read this channel")
	}
	chs := a.byID[id]
	if len(chs) == 0 {
		return a.fail(w, route, http.StatusNotFound, "unknown_channel", "the agent serves no such channel")
	}
	c := chs[0]
	if k := kindParam(r); k != "" {
		kind, ok := ParseKind(k)
		if !ok {
			return a.fail(w, route, http.StatusBadRequest, "bad_request", "kind must be v2.1, short-lived or stateless")
		}
		c = nil
		for _, x := range chs {
			if x.kind == kind {
				c = x
			}
		}
		if c == nil {
			return a.fail(w, route, http.StatusNotFound, "unknown_channel", "the agent serves no "+kind.String()+" tokens for this channel")
		}
	} else if len(chs) > 1 {
		kinds := make([]string, len(chs))
		for i, x := range chs {
			kinds[i] = x.kindS
		}
		return a.fail(w, route, http.StatusBadRequest, "ambiguous_kind",
			"the channel has several kinds: add ?kind= with one of "+strings.Join(kinds, ", "))
	}
	if route == routeInvalidate {
		var in struct {
			AccessToken string `json:"access_token"`
		}
		if err := json.Unmarshal(body, &in); err != nil || in.AccessToken == "" {
			return a.fail(w, route, http.StatusBadRequest, "bad_request", `the body must be JSON {"access_token":"..."}`)
		}
		ictx, cancel := context.WithTimeout(r.Context(), tokenWait)
		c.invalidate(ictx, in.AccessToken)
		cancel()
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusNoContent)
		return answer{route: route, code: http.StatusNoContent}
	}
	ctx, cancel := context.WithTimeout(r.Context(), tokenWait)
	s, err := c.token(ctx)
	cancel()
	if err != nil {
		return a.tokenUnavailable(w, route, err)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	buf := s.answer(make([]byte, 0, 512), a.now())
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(buf)
	}
	return answer{route: route, code: http.StatusOK}
}

// kindParam is the ?kind= query parameter; a request without a query
// (the usual one) parses none.
func kindParam(r *http.Request) string {
	if r.URL.RawQuery == "" {
		return ""
	}
	return r.URL.Query().Get("kind")
}

// readyz answers 200 when every channel holds a valid token and every
// sink is current, else 503 naming what is missing.
func (a *Agent) readyz(w http.ResponseWriter) answer {
	now := a.now()
	var missing []*channelState
	for _, c := range a.channels {
		if st := c.ready(now); st != nil {
			missing = append(missing, st)
		}
	}
	if len(missing) > 0 {
		return a.writeJSON(w, routeReadyz, http.StatusServiceUnavailable, map[string]any{"status": "not_ready", "not_ready": missing})
	}
	return a.writeJSON(w, routeReadyz, http.StatusOK, map[string]any{"status": "ready"})
}

// hostAllowed reports whether a request's Host is loopback's or in
// allowed_hosts, with or without a port.
func (a *Agent) hostAllowed(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	} else if strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]") {
		host = host[1 : len(host)-1]
	}
	return a.hosts[strings.ToLower(host)]
}

// caller finds the caller whose key is key, comparing SHA-256 digests in
// constant time over every caller. With no callers configured, every
// request passes (nil caller).
func (a *Agent) caller(key string) (*callerKey, bool) {
	if len(a.callers) == 0 {
		return nil, true
	}
	d := sha256.Sum256([]byte(key))
	var found *callerKey
	for i := range a.callers {
		if subtle.ConstantTimeCompare(d[:], a.callers[i].digest[:]) == 1 {
			found = &a.callers[i]
		}
	}
	return found, found != nil && key != ""
}

// tokenUnavailable answers 503 token_unavailable for err, the failure to
// get a token: its cause, and Retry-After (LINE's, or a few seconds).
func (a *Agent) tokenUnavailable(w http.ResponseWriter, route string, err error) answer {
	w.Header().Set("Retry-After", strconv.Itoa(retryAfter(err)))
	cs := cause(err)
	return a.failCause(w, route, http.StatusServiceUnavailable, "token_unavailable",
		"no valid token can be had now ("+cs+"); /readyz says more, and the agent keeps retrying", cs)
}

func (a *Agent) fail(w http.ResponseWriter, route string, code int, errCode, msg string) answer {
	return a.failCause(w, route, code, errCode, msg, "")
}

func (a *Agent) failCause(w http.ResponseWriter, route string, code int, errCode, msg, cause string) answer {
	return a.writeJSON(w, route, code, apiError{Error: errCode, Message: msg, Cause: cause})
}

func (a *Agent) writeJSON(w http.ResponseWriter, route string, code int, v any) answer {
	b, _ := json.Marshal(v)
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_, _ = w.Write(append(b, '\n'))
	return answer{route: route, code: code}
}
