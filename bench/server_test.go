package bench

import (
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"
	"time"
)

// Fixed values of the fake: a channel, its secret and a token, and LINE's
// documented 200 bodies for the two endpoints measured.
const (
	channelID     = "1350031035"
	channelSecret = "9a6f3b1c0d2e4f5a8b7c6d5e4f3a2b1c"
	accessToken   = "W1TeHCgfH2Liwa....."

	issueBody  = `{"access_token":"W1TeHCgfH2Liwa.....","expires_in":2592000,"token_type":"Bearer"}`
	verifyBody = `{"client_id":"1350031035","expires_in":3138007490,"scope":"P CM"}`

	// What a client must read back from those bodies.
	wantIssueExpiresIn  = 2592000
	wantVerifyExpiresIn = 3138007490
	wantScope           = "P CM"

	issuePath  = "/v2/oauth/accessToken"
	verifyPath = "/v2/oauth/verify"

	formType = "application/x-www-form-urlencoded"
)

var (
	issueBytes  = []byte(issueBody)
	verifyBytes = []byte(verifyBody)
	issueLen    = strconv.Itoa(len(issueBody))
	verifyLen   = strconv.Itoa(len(verifyBody))
	badRequest  = []byte(`{"error":"invalid_request","error_description":"some parameters are missing or invalid"}`)
)

// fake is a loopback stand-in for LINE's short-lived token endpoints. It
// checks method, path, Content-Type and every form field, exactly (no
// missing, extra or repeated field), and answers 400 otherwise, so a client
// that sends the wrong request fails the benchmark instead of looking fast.
type fake struct {
	srv   *httptest.Server
	conns atomic.Int64 // TCP connections accepted so far
}

func newFake(tb testing.TB) *fake {
	tb.Helper()
	f := &fake{}
	f.srv = httptest.NewUnstartedServer(http.HandlerFunc(f.serve))
	f.srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			f.conns.Add(1)
		}
	}
	f.srv.Start()
	tb.Cleanup(f.srv.Close)
	return f
}

func (f *fake) URL() string { return f.srv.URL }

func (f *fake) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.Header.Get("Content-Type") != formType {
		fail(w)
		return
	}
	var body []byte
	var n string
	switch r.URL.Path {
	case issuePath:
		if !formIs(r, "grant_type", "client_credentials", "client_id", channelID, "client_secret", channelSecret) {
			fail(w)
			return
		}
		body, n = issueBytes, issueLen
	case verifyPath:
		if !formIs(r, "access_token", accessToken) {
			fail(w)
			return
		}
		body, n = verifyBytes, verifyLen
	default:
		http.NotFound(w, r)
		return
	}
	h := w.Header()
	h["Content-Type"] = []string{"application/json"}
	h["Content-Length"] = []string{n}
	_, _ = w.Write(body)
}

// formIs reports whether r's body holds exactly the given key, value pairs.
func formIs(r *http.Request, kv ...string) bool {
	if err := r.ParseForm(); err != nil || len(r.URL.RawQuery) != 0 || len(r.PostForm) != len(kv)/2 {
		return false
	}
	for i := 0; i < len(kv); i += 2 {
		v := r.PostForm[kv[i]]
		if len(v) != 1 || v[0] != kv[i+1] {
			return false
		}
	}
	return true
}

func fail(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusBadRequest)
	_, _ = w.Write(badRequest)
}

// maxIdleConnsPerHost is the one pool setting every client gets.
const maxIdleConnsPerHost = 16

// newHTTPClient is the HTTP client every contender is built on: its own
// transport of identical configuration (keep-alive on, the same idle pool,
// no proxy, no HTTP/2 since the fake speaks plain HTTP/1.1), no timeout
// and default redirect handling, so only client-library overhead differs.
func newHTTPClient() *http.Client {
	return &http.Client{Transport: &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        100,
		MaxIdleConnsPerHost: maxIdleConnsPerHost,
		IdleConnTimeout:     90 * time.Second,
		DisableKeepAlives:   false,
		ForceAttemptHTTP2:   false,
	}}
}
