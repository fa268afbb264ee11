package oauthtest

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/linetoken/linetoken/oauth"
)

// newServer starts a fake that the test closes.
func newServer(t *testing.T, opts ...Option) *Server {
	t.Helper()
	srv := NewServer(opts...)
	t.Cleanup(srv.Close)
	return srv
}

// newChannel starts a fake that the test closes, with one channel and a
// client for it.
func newChannel(t *testing.T) (*Server, Channel, *oauth.Client) {
	t.Helper()
	srv := newServer(t)
	ch := srv.NewChannel(t)
	return srv, ch, srv.Client(t, ch.ID)
}

// clientFor returns a client for ch, edited by edit (may be nil).
func clientFor(t *testing.T, srv *Server, ch Channel, edit func(*oauth.Config)) *oauth.Client {
	t.Helper()
	cfg := srv.Config(ch.ID)
	if edit != nil {
		edit(&cfg)
	}
	c, err := oauth.NewClient(cfg)
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	return c
}

// wantAPIError checks that err is an *oauth.APIError with status that
// matches sentinel (nil: no sentinel check), and returns it.
func wantAPIError(t *testing.T, err error, status int, sentinel error) *oauth.APIError {
	t.Helper()
	var ae *oauth.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("error = %v (%T), want *oauth.APIError", err, err)
	}
	if ae.StatusCode != status {
		t.Fatalf("status = %d, want %d (%v)", ae.StatusCode, status, err)
	}
	if sentinel != nil && !errors.Is(err, sentinel) {
		t.Fatalf("error %v does not match %v", err, sentinel)
	}
	return ae
}

// wire is a raw answer.
type wire struct {
	status int
	header http.Header
	body   string
}

// json decodes the body as LINE's error shape or any object.
func (w wire) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(w.body), &m); err != nil {
		t.Fatalf("body %q is not a JSON object: %v", w.body, err)
	}
	return m
}

// wantError checks a raw error answer's status and exact JSON body.
func (w wire) wantError(t *testing.T, status int, body string) {
	t.Helper()
	if w.status != status {
		t.Fatalf("status = %d, want %d (body %s)", w.status, status, w.body)
	}
	var got, want any
	if err := json.Unmarshal([]byte(w.body), &got); err != nil {
		t.Fatalf("body %q is not JSON", w.body)
	}
	if err := json.Unmarshal([]byte(body), &want); err != nil {
		t.Fatalf("bad want %q", body)
	}
	gb, _ := json.Marshal(got)
	wb, _ := json.Marshal(want)
	if string(gb) != string(wb) {
		t.Fatalf("body = %s, want %s", gb, wb)
	}
	if ct := w.header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type = %q, want application/json", ct)
	}
}

// do sends a raw request.
func do(t *testing.T, srv *Server, method, path, contentType, body string, header http.Header) wire {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, srv.URL()+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return wire{status: resp.StatusCode, header: resp.Header, body: string(data)}
}

func postForm(t *testing.T, srv *Server, path string, form url.Values) wire {
	t.Helper()
	return do(t, srv, http.MethodPost, path, "application/x-www-form-urlencoded", form.Encode(), nil)
}

func get(t *testing.T, srv *Server, path string, query url.Values) wire {
	t.Helper()
	return do(t, srv, http.MethodGet, path+"?"+query.Encode(), "", "", nil)
}

// signJWT builds a JWT from header and claims exactly as given and signs
// it RS256 with key, whatever the header says.
func signJWT(t *testing.T, header, claims map[string]any, key *rsa.PrivateKey) string {
	t.Helper()
	enc := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return base64.RawURLEncoding.EncodeToString(b)
	}
	input := enc(header) + "." + enc(claims)
	sum := sha256.Sum256([]byte(input))
	sig, err := rsa.SignPKCS1v15(nil, key, crypto.SHA256, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	return input + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// goodAssertion returns the header and claims of a valid assertion for
// ch at the server's time, to be edited.
func goodAssertion(srv *Server, ch Channel) (header, claims map[string]any) {
	header = map[string]any{"alg": "RS256", "typ": "JWT", "kid": ch.KeyID}
	claims = map[string]any{
		"iss":       ch.ID,
		"sub":       ch.ID,
		"aud":       "https://api.line.me/",
		"exp":       srv.Now().Add(25 * time.Minute).Unix(),
		"token_exp": 3600,
	}
	return header, claims
}

func assertionForm(assertion string) url.Values {
	return url.Values{
		"grant_type":            {"client_credentials"},
		"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
		"client_assertion":      {assertion},
	}
}

var (
	jwsShape   = regexp.MustCompile(`^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$`)
	requestIDs = regexp.MustCompile(`^[0-9a-f]{32}$`)
)

func isJWS(s string) bool { return jwsShape.MatchString(s) }
