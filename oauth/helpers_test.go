package oauth_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/linetoken/linetoken/oauth"
)

// Planted secrets: unique values that must never show up in an error or in
// printed values.
const (
	testChannelID = "1234567890"
	testSecret    = "s3cr3t5ecretvalue0123456789abcdef"
	testKeyID     = "kid-under-test"
)

// recorded is one request as the test server saw it.
type recorded struct {
	Method, Path, ContentType string
	Query, Form               url.Values
	Header                    http.Header
	RawBody                   string
}

// testServer is an httptest server that records every request and answers
// with the handler the test sets.
type testServer struct {
	*httptest.Server
	mu     sync.Mutex
	reqs   []recorded
	answer func(w http.ResponseWriter, r *http.Request)
}

func newTestServer(t *testing.T, answer func(w http.ResponseWriter, r *http.Request)) *testServer {
	t.Helper()
	ts := &testServer{answer: answer}
	ts.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		rec := recorded{
			Method: r.Method, Path: r.URL.Path, ContentType: r.Header.Get("Content-Type"),
			Query: r.URL.Query(), Header: r.Header.Clone(), RawBody: string(body),
		}
		rec.Form, _ = url.ParseQuery(string(body))
		r.Body = io.NopCloser(strings.NewReader(string(body)))
		ts.mu.Lock()
		ts.reqs = append(ts.reqs, rec)
		ts.mu.Unlock()
		ts.answer(w, r)
	}))
	t.Cleanup(ts.Close)
	return ts
}

func (ts *testServer) last(t *testing.T) recorded {
	t.Helper()
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if len(ts.reqs) == 0 {
		t.Fatal("the server received no request")
	}
	return ts.reqs[len(ts.reqs)-1]
}

func (ts *testServer) count() int {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return len(ts.reqs)
}

// jsonAnswer answers status with body as JSON.
func jsonAnswer(status int, body string) func(http.ResponseWriter, *http.Request) {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}
}

// testKey is one RSA-2048 key shared by the tests (generation is slow).
var testKey = sync.OnceValues(func() (*oauth.AssertionKey, error) {
	priv, _, err := oauth.GenerateAssertionKey()
	if err != nil {
		return nil, err
	}
	return oauth.ParseAssertionKey(priv, testKeyID)
})

func mustKey(t testing.TB) *oauth.AssertionKey {
	t.Helper()
	k, err := testKey()
	if err != nil {
		t.Fatalf("test key: %v", err)
	}
	return k
}

// fastRetry keeps the default attempts but waits only milliseconds.
var fastRetry = oauth.RetryPolicy{MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond}

var fixedNow = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

// newClient returns a client with every credential set, talking to base.
func newClient(t testing.TB, base string) *oauth.Client {
	t.Helper()
	c, err := oauth.NewClient(oauth.Config{
		ChannelID:     testChannelID,
		ChannelSecret: testSecret,
		Key:           mustKey(t),
		BaseURL:       base,
		Clock:         func() time.Time { return fixedNow },
		Retry:         fastRetry,
	})
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	return c
}

func keys(v url.Values) []string {
	out := make([]string, 0, len(v))
	for k := range v {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func sameKeys(t *testing.T, what string, got url.Values, want ...string) {
	t.Helper()
	sort.Strings(want)
	if g := strings.Join(keys(got), ","); g != strings.Join(want, ",") {
		t.Errorf("%s fields = [%s], want exactly [%s]", what, g, strings.Join(want, ","))
	}
	for k, vs := range got {
		if len(vs) != 1 {
			t.Errorf("%s field %s sent %d times", what, k, len(vs))
		}
	}
}
