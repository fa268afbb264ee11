package oauth

// Fuzz targets of the hardening issue (go test -fuzz). Each is seeded with
// LINE's documented bodies (../../shared/LINE-TOKEN-API.md) and boundary
// values, skips inputs over fuzzMaxInput, makes no network call (answers
// come from an in-memory RoundTripper) and leaves no goroutine behind.
// Plain `go test` runs the seeds and testdata/fuzz/<Target>/; fuzz one
// target with
//
//	go test -run '^$' -fuzz '^FuzzDecodeSuccess$' -fuzztime 2m ./oauth/
//
// or all of them with `make fuzz` / `make fuzz-smoke` (fuzz.mk).

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/linetoken/linetoken/gen"
	"github.com/linetoken/linetoken/internal/testkit"
)

const (
	// fuzzMaxInput is the largest input a target works on: nothing LINE
	// sends or a user loads comes near it, and it keeps each run short.
	fuzzMaxInput = 64 << 10
	// fuzzLeakWindow is the shortest run of input bytes that counts as
	// quoted when found in an error: shorter runs match common words.
	fuzzLeakWindow = 16
	// fuzzMaxAPIErrorLen bounds APIError.Error() whatever the answer.
	fuzzMaxAPIErrorLen = 4 << 10
	// fuzzMaxMalformedLen bounds a malformed-response error: it names
	// fields and offsets, never the body.
	fuzzMaxMalformedLen = 512
	// fuzzChannelID and fuzzSecret are the planted credentials.
	fuzzChannelID = "1234567890"
	fuzzSecret    = "fuzz5ecretvalue0123456789abcdef"
	fuzzKeyID     = "fuzz-kid"
	// fuzzKeyP and fuzzKeyQ are the primes of a throwaway RSA-2048 key
	// used only by these tests. They are fixed (not generated) so that
	// seeds and signatures are the same in every fuzz worker process.
	fuzzKeyP = "ed1497b1c52bde59afa91472e8d5d40c9d94914b7b5fb48655c4a7ea268c98ce97cc5760ec0b3ce275572aa50e8b049c" +
		"4172bfb5df3eded8134a02c909198362a1449a26e9e71d68dc139120191c61db246a7f0ab691df13d2f417aeb126fc4a31da" +
		"a8ef45e17e577741aadde0e4ab79efe230b8fd51ab7636bc0228fef6510f"
	fuzzKeyQ = "fb1663250ca869b9d5c60404a04c96b9dcd8508bb732cdd35f01c1341633be9c73939787b7aa56262a0a37b846514525" +
		"804192f6012da820aaeaa9826d542853e0725c724850902d010e4113b64af1666cc578ceaae0d1f2b75e42ccfc065ca2e38c" +
		"94b585373f51327d8936a6fa3b188c9ca9adc48956626e9ab1fb44f9ab65"
)

// fuzzArrival is when every fuzzed answer arrives (Config.Clock).
var fuzzArrival = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// fuzzKey is the fixed test key, built once from its primes.
var fuzzKey = testkit.FixedRSAKey(fuzzKeyP, fuzzKeyQ)

// fuzzTransport answers every request in memory with one status, header
// and body.
type fuzzTransport struct {
	status int
	header http.Header
	body   []byte
}

func (ft fuzzTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		_ = r.Body.Close()
	}
	return &http.Response{
		StatusCode:    ft.status,
		Status:        strconv.Itoa(ft.status) + " " + http.StatusText(ft.status),
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        ft.header.Clone(),
		Body:          io.NopCloser(bytes.NewReader(ft.body)),
		ContentLength: -1,
		Request:       r,
	}, nil
}

// fuzzClient is a Client whose every request gets status and body. With
// key it signs assertions with the test key.
func fuzzClient(tb testing.TB, status int, body []byte, key bool) *Client {
	tb.Helper()
	cfg := Config{
		ChannelID:     fuzzChannelID,
		ChannelSecret: fuzzSecret,
		HTTPClient: &http.Client{Transport: fuzzTransport{
			status: status,
			header: http.Header{"Content-Type": {"application/json"}},
			body:   body,
		}},
		Clock: func() time.Time { return fuzzArrival },
	}
	if key {
		cfg.Key = &AssertionKey{KeyID: fuzzKeyID, PrivateKey: fuzzKey(tb)}
	}
	c, err := NewClient(cfg)
	if err != nil {
		tb.Fatalf("NewClient: %v", err)
	}
	return c
}

// The documented 200 bodies, decoded independently of the client: nil
// pointers are absent (or null) members; expires_in is read by
// fuzzSeconds.
type (
	fuzzIssueWire struct {
		AccessToken *string          `json:"access_token"`
		TokenType   *string          `json:"token_type"`
		ExpiresIn   *json.RawMessage `json:"expires_in"`
	}
	fuzzIssueV21Wire struct {
		fuzzIssueWire
		KeyID *string `json:"key_id"`
	}
	fuzzVerifyWire struct {
		ClientID  *string          `json:"client_id"`
		Scope     *string          `json:"scope"`
		ExpiresIn *json.RawMessage `json:"expires_in"`
	}
	fuzzKidsWire struct {
		Kids *[]string `json:"kids"`
	}
)

// fuzzDecode decodes body into v and reports whether it is JSON that fits.
func fuzzDecode(body []byte, v any) bool { return len(body) > 0 && json.Unmarshal(body, v) == nil }

func str(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// fuzzSeconds reads expires_in as the client must: a JSON integer that
// fits int64, 0 when absent or null; ok is false for any other JSON value.
func fuzzSeconds(v *json.RawMessage) (n int64, ok bool) {
	if v == nil || string(*v) == "null" {
		return 0, true
	}
	raw := string(*v)
	if raw == "" || !(raw[0] == '-' || raw[0] >= '0' && raw[0] <= '9') {
		return 0, false
	}
	n, err := strconv.ParseInt(raw, 10, 64)
	return n, err == nil
}

// fuzzWantDuration is expires_in seconds as a Duration, clamped to
// maxExpiresIn (about 250 years) without overflow.
func fuzzWantDuration(secs int64) time.Duration {
	if secs > maxExpiresIn {
		secs = maxExpiresIn
	}
	return time.Duration(secs) * time.Second
}

func fuzzCheckMalformed(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, ErrMalformedResponse) {
		t.Fatalf("%s: error %q (%T) does not match ErrMalformedResponse", what, err, err)
	}
	if n := len(err.Error()); n > fuzzMaxMalformedLen {
		t.Fatalf("%s: error is %d bytes long: %.200q...", what, n, err.Error())
	}
}

// fuzzCheckToken checks an issue operation's result against the body.
// keyID is nil for the kinds without key IDs.
func fuzzCheckToken(t *testing.T, what string, tok *Token, err error, w *fuzzIssueWire, keyID *string, decoded, v21 bool) {
	t.Helper()
	secs, secsOK := fuzzSeconds(w.ExpiresIn)
	want := decoded && secsOK && str(w.AccessToken) != "" && secs > 0 && (!v21 || str(keyID) != "")
	if err != nil {
		if tok != nil {
			t.Fatalf("%s: both a token and an error (%v)", what, err)
		}
		fuzzCheckMalformed(t, what, err)
		if want {
			t.Fatalf("%s: documented body refused: %v", what, err)
		}
		if at := str(w.AccessToken); len(at) >= 2*fuzzLeakWindow && strings.Contains(err.Error(), at) {
			t.Fatalf("%s: error quotes the access token: %q", what, err)
		}
		return
	}
	switch {
	case tok == nil:
		t.Fatalf("%s: nil token and nil error", what)
	case !want:
		t.Fatalf("%s: accepted a body that is not the documented JSON: %+v", what, *tok)
	case tok.AccessToken == "" || tok.AccessToken != str(w.AccessToken):
		t.Fatalf("%s: AccessToken = %q, body says %q", what, tok.AccessToken, str(w.AccessToken))
	case tok.ExpiresIn <= 0 || tok.ExpiresIn > maxExpiresIn*time.Second:
		t.Fatalf("%s: ExpiresIn = %v out of (0, %ds]", what, tok.ExpiresIn, int64(maxExpiresIn))
	case tok.ExpiresIn != fuzzWantDuration(secs):
		t.Fatalf("%s: ExpiresIn = %v for expires_in %d, want %v", what, tok.ExpiresIn, secs, fuzzWantDuration(secs))
	case !tok.Expiry.After(fuzzArrival) || !tok.Expiry.Equal(fuzzArrival.Add(tok.ExpiresIn)):
		t.Fatalf("%s: Expiry = %v, want arrival %v + %v", what, tok.Expiry, fuzzArrival, tok.ExpiresIn)
	case tok.TokenType == "" || (str(w.TokenType) != "" && tok.TokenType != str(w.TokenType)):
		t.Fatalf("%s: TokenType = %q, body says %q", what, tok.TokenType, str(w.TokenType))
	case tok.KeyID != str(keyID):
		t.Fatalf("%s: KeyID = %q, body says %q", what, tok.KeyID, str(keyID))
	}
}

// fuzzCheckInfo checks a verify operation's result against the body.
func fuzzCheckInfo(t *testing.T, what string, info *TokenInfo, err error, w *fuzzVerifyWire, decoded bool) {
	t.Helper()
	secs, secsOK := fuzzSeconds(w.ExpiresIn)
	want := decoded && secsOK && str(w.ClientID) != "" && secs > 0
	if err != nil {
		if info != nil {
			t.Fatalf("%s: both a result and an error (%v)", what, err)
		}
		fuzzCheckMalformed(t, what, err)
		if want {
			t.Fatalf("%s: documented body refused: %v", what, err)
		}
		return
	}
	switch {
	case info == nil:
		t.Fatalf("%s: nil result and nil error", what)
	case !want:
		t.Fatalf("%s: accepted a body that is not the documented JSON: %+v", what, *info)
	case info.ClientID != str(w.ClientID) || info.Scope != str(w.Scope):
		t.Fatalf("%s: ClientID, Scope = %q, %q; body says %q, %q", what, info.ClientID, info.Scope, str(w.ClientID), str(w.Scope))
	case info.ExpiresIn != fuzzWantDuration(secs):
		t.Fatalf("%s: ExpiresIn = %v for expires_in %d, want %v", what, info.ExpiresIn, secs, fuzzWantDuration(secs))
	case !info.Expiry.After(fuzzArrival) || !info.Expiry.Equal(fuzzArrival.Add(info.ExpiresIn)):
		t.Fatalf("%s: Expiry = %v, want arrival %v + %v", what, info.Expiry, fuzzArrival, info.ExpiresIn)
	}
}

// FuzzDecodeSuccess feeds arbitrary bytes as the 200 body of every
// operation that decodes one: a result is never zero (non-empty token or
// client ID, ExpiresIn > 0, Expiry after the arrival), a huge expires_in
// clamps to maxExpiresIn without overflow, and anything else is an error
// matching ErrMalformedResponse. withJWT also runs the two operations that
// sign an assertion (v2.1 issue, key IDs), which costs an RSA signature.
func FuzzDecodeSuccess(f *testing.F) {
	for _, body := range []string{
		// LINE's documented 200 bodies (LINE-TOKEN-API.md, Endpoints).
		`{"access_token":"eyJhbGciOiJIUz.....","token_type":"Bearer","expires_in":2592000,"key_id":"sDTOzw5wIfxxxxPEzcmeQA"}`,
		`{"access_token":"W1TeHCgfH2Liwa.....","expires_in":2592000,"token_type":"Bearer"}`,
		`{"token_type":"Bearer","access_token":"eyJhbGciOiJIUz.....","expires_in":899}`,
		`{"client_id":"1573163733","expires_in":2591659,"scope":"profile chat_message.write"}`,
		`{"client_id":"1350031035","expires_in":3138007490,"scope":"P CM"}`,
		`{"client_id":"1","expires_in":5}`,
		`{"kids":["U_gdnFYKTWRxxxxDVZexGg","sDTOzw5wIfWxxxxzcmeQA","73hDyp3PxGfxxxxD6U5qYA"]}`,
		`{"kids":[]}`,
		// Boundaries and near misses.
		`{"access_token":"a","expires_in":9223372036854775807,"key_id":"k","client_id":"1"}`,
		`{"access_token":"a","expires_in":7884000000,"key_id":"k","client_id":"1"}`,
		`{"access_token":"a","expires_in":7884000001,"key_id":"k","client_id":"1"}`,
		`{"access_token":"a","expires_in":9223372036854775808}`,
		`{"access_token":"a","expires_in":1,"key_id":"k","client_id":"1","kids":null}`,
		`{"access_token":"a","expires_in":0}`,
		`{"access_token":"a","expires_in":-1}`,
		`{"access_token":"a","expires_in":1e3}`,
		`{"access_token":"a","expires_in":"900"}`,
		`{"access_token":"","expires_in":900}`,
		`{"access_token":null,"expires_in":900,"token_type":null}`,
		`{"ACCESS_TOKEN":"a","Expires_In":900,"KEY_ID":"k"}`,
		`{"access_token":"a","access_token":"","expires_in":900}`,
		`{"access_token":"a\u0000b","expires_in":900,"token_type":"\ud800"}`,
		`{"kids":[null,""]}`,
		`{"kids":"U_gdnFYKTWRxxxxDVZexGg"}`,
		`{"access_token":"abc","expires_in":25`,
		`<html>ok</html>`,
		`[]`, `null`, `""`, `0`, ` `, ``,
	} {
		f.Add([]byte(body), false)
	}
	f.Add([]byte(`{"access_token":"eyJhbGciOiJIUz.....","token_type":"Bearer","expires_in":2592000,"key_id":"sDTOzw5wIfxxxxPEzcmeQA"}`), true)
	f.Add([]byte(`{"kids":["U_gdnFYKTWRxxxxDVZexGg"]}`), true)
	f.Add([]byte(`{"access_token":"a","expires_in":1,"key_id":""}`), true)

	ctx := context.Background()
	f.Fuzz(func(t *testing.T, body []byte, withJWT bool) {
		if len(body) > fuzzMaxInput {
			return
		}
		var issue fuzzIssueWire
		issueOK := fuzzDecode(body, &issue)
		var verify fuzzVerifyWire
		verifyOK := fuzzDecode(body, &verify)

		c := fuzzClient(t, http.StatusOK, body, false)
		tok, err := c.IssueShortLivedToken(ctx)
		fuzzCheckToken(t, "IssueShortLivedToken", tok, err, &issue, nil, issueOK, false)
		tok, err = c.IssueStatelessToken(ctx)
		fuzzCheckToken(t, "IssueStatelessToken", tok, err, &issue, nil, issueOK, false)
		info, err := c.VerifyToken(ctx, "tok")
		fuzzCheckInfo(t, "VerifyToken", info, err, &verify, verifyOK)
		info, err = c.VerifyShortLivedToken(ctx, "tok")
		fuzzCheckInfo(t, "VerifyShortLivedToken", info, err, &verify, verifyOK)
		if !withJWT {
			return
		}

		c = fuzzClient(t, http.StatusOK, body, true)
		var v21 fuzzIssueV21Wire
		v21OK := fuzzDecode(body, &v21)
		tok, err = c.IssueToken(ctx, time.Hour)
		fuzzCheckToken(t, "IssueToken", tok, err, &v21.fuzzIssueWire, v21.KeyID, v21OK, true)
		var w fuzzKidsWire
		wantKids := fuzzDecode(body, &w) && w.Kids != nil
		kids, err := c.ValidKeyIDs(ctx)
		switch {
		case err != nil:
			fuzzCheckMalformed(t, "ValidKeyIDs", err)
			if wantKids {
				t.Fatalf("ValidKeyIDs: documented body refused: %v", err)
			}
		case !wantKids || kids == nil:
			t.Fatalf("ValidKeyIDs: accepted %#v from a body without a kids list", kids)
		case len(kids) != len(*w.Kids) || strings.Join(kids, "\x00") != strings.Join(*w.Kids, "\x00"):
			t.Fatalf("ValidKeyIDs = %q, body says %q", kids, *w.Kids)
		}
	})
}

// fuzzOps are the operation names an APIError can carry.
var fuzzOps = []string{
	operationIssueV21, operationKeyIDs, operationVerifyV21, operationRevokeV21,
	operationIssueShort, operationVerifyShort, operationRevokeShort, operationIssueStateless,
}

// fuzzSays reports whether LINE's text contains what, ignoring case.
func fuzzSays(what string, texts ...string) bool {
	for _, s := range texts {
		if strings.Contains(strings.ToLower(s), what) {
			return true
		}
	}
	return false
}

// fuzzQuoted returns a run of fuzzLeakWindow bytes of input that msg
// contains and that no allowed text explains, or "".
func fuzzQuoted(msg string, input []byte, allowed ...string) string {
	if len(msg) < fuzzLeakWindow || len(input) < fuzzLeakWindow {
		return ""
	}
	windows := make(map[string]bool, len(msg))
	for i := 0; i+fuzzLeakWindow <= len(msg); i++ {
		windows[msg[i:i+fuzzLeakWindow]] = true
	}
next:
	for i := 0; i+fuzzLeakWindow <= len(input); i++ {
		w := input[i : i+fuzzLeakWindow]
		if !windows[string(w)] {
			continue
		}
		for _, a := range allowed {
			if strings.Contains(a, string(w)) {
				continue next
			}
		}
		return string(w)
	}
	return ""
}

// FuzzAPIError builds the error for an arbitrary non-2xx answer (status
// 400..599, body, Content-Type, Retry-After, X-Line-Request-Id): Error()
// stays under 4 KiB and never quotes a body that is not a JSON object,
// each sentinel matches only for its status, and RetryAfter is in
// [0, 24h].
func FuzzAPIError(f *testing.F) {
	type seed struct {
		op     uint8
		status int
		body   string
	}
	seeds := []seed{
		// LINE's documented error answers (LINE-TOKEN-API.md, Errors).
		{0, 400, `{"error":"invalid_client","error_description":"iss and clientId of key do not match"}`},
		{0, 400, `{"message":"The maximum number of access tokens has already been issued"}`},
		{0, 404, `{"message":"Cannot find channel key that satisfies the conditions"}`},
		{1, 404, `{"message":"Cannot find channel key that satisfies the conditions"}`},
		{7, 404, `{"message":"Cannot find channel key that satisfies the conditions"}`},
		{1, 400, `{"error":"invalid_client","error_description":"Invalid exp"}`},
		{2, 400, `{"error":"invalid_request","error_description":"The access token expired"}`},
		{2, 400, `{"error":"invalid_request","error_description":"The access token not JWS"}`},
		{3, 400, `{"error":"invalid_request","error_description":"The access token malformed"}`},
		{4, 400, `{"error":"invalid_client","error_description":"invalid client_id"}`},
		{4, 400, `{"error":"invalid_client","error_description":"invalid client_secret"}`},
		{4, 429, `{"message":"Too many requests"}`},
		{5, 400, `{"error":"invalid_request","error_description":"access_token invalid"}`},
		{5, 400, `{"error":"invalid_request","error_description":"access_token in invalid format"}`},
		{6, 400, `{"error":"invalid_request"}`},
		{7, 400, `{"error":"invalid_request","error_description":"Invalid 'client_credentials'."}`},
		{5, 400, `{"error":"invalid_request","error_description":"some parameters missed or invalid"}`},
		{2, 500, `{"message":"Internal Server Error"}`},
		// What proxies and broken servers send.
		{4, 502, "<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1></body></html>\n"},
		{2, 503, "upstream connect error or disconnect/reset before headers. reset reason: overflow"},
		{0, 400, `{"error":"` + strings.Repeat("\\u0001", 600) + `","error_description":"` + strings.Repeat("\\u0000", 600) + `"}`},
		{0, 400, `{"message":"` + strings.Repeat("é", 400) + `"}`},
		{0, 599, `[1,2,3]`},
		{0, 400, `null`},
		{0, 400, `{"error":1}`},
		{0, 400, ""},
	}
	for i, s := range seeds {
		ct, ra, rid := "application/json", "", "3f2a6c2e9b1d4e7f8a0b1c2d3e4f5a6b"
		switch i % 4 {
		case 1:
			ra = "120"
		case 2:
			ra = "Wed, 21 Oct 2015 07:28:00 GMT"
			ct = "text/html; charset=utf-8"
		case 3:
			ra, rid = "9223372036854775807", ""
		}
		f.Add(s.op, s.status, []byte(s.body), ct, ra, rid, false, false)
	}
	f.Add(uint8(0), 500, []byte("x"), "", "-1", "", true, false)
	f.Add(uint8(2), 400, []byte(""), "", "", strings.Repeat("r", 600), false, true)

	f.Fuzz(func(t *testing.T, opIdx uint8, status int, body []byte, contentType, retryAfter, requestID string, tooLarge, unreadable bool) {
		if len(body)+len(contentType)+len(retryAfter)+len(requestID) > fuzzMaxInput {
			return
		}
		status = 400 + int(uint(status)%200)
		op := fuzzOps[int(opIdx)%len(fuzzOps)]
		header := http.Header{}
		for k, v := range map[string]string{"Content-Type": contentType, "Retry-After": retryAfter, "X-Line-Request-Id": requestID} {
			if v != "" {
				header[k] = []string{v}
			}
		}
		resp := &http.Response{StatusCode: status, Header: header}
		var readErr error
		if unreadable {
			readErr = io.ErrUnexpectedEOF
		}
		e := newAPIError(op, resp, body, tooLarge, readErr, fuzzArrival)
		msg := e.Error()

		// Bounded, and the identifying fields are what was answered.
		if len(msg) >= fuzzMaxAPIErrorLen {
			t.Fatalf("Error() is %d bytes (limit %d): %.300q...", len(msg), fuzzMaxAPIErrorLen, msg)
		}
		if e.Operation != op || e.StatusCode != status {
			t.Fatalf("Operation, StatusCode = %q, %d; want %q, %d", e.Operation, e.StatusCode, op, status)
		}
		for name, v := range map[string]string{"Code": e.Code, "Description": e.Description, "Message": e.Message, "RequestID": e.RequestID} {
			if len(v) > maxErrorTextLen+len("...") {
				t.Fatalf("%s is %d bytes, over the %d cap", name, len(v), maxErrorTextLen)
			}
		}

		// A body that is not a JSON object says nothing: Error() is the
		// same as for any other such body, and quotes none of it.
		var obj map[string]any
		if !tooLarge && len(bytes.TrimSpace(body)) > 0 && json.Unmarshal(body, &obj) != nil {
			if e.Code != "" || e.Description != "" || e.Message != "" {
				t.Fatalf("non-JSON body gave Code %q, Description %q, Message %q", e.Code, e.Description, e.Message)
			}
			ref := newAPIError(op, resp, []byte("<"), false, readErr, fuzzArrival).Error()
			if msg != ref {
				t.Fatalf("Error() depends on a non-JSON body:\n got %q\nwant %q", msg, ref)
			}
			if w := fuzzQuoted(msg, body, contentType, requestID, ref); w != "" {
				t.Fatalf("Error() quotes the body (%q): %q", w, msg)
			}
		}
		if tooLarge {
			if e.Code != "" || e.Description != "" || e.Message != "" {
				t.Fatalf("a body over the cap gave Code %q, Description %q, Message %q", e.Code, e.Description, e.Message)
			}
		}

		// Sentinels follow the status (LINE-TOKEN-API.md, Errors).
		is := func(target error) bool { return errors.Is(e, target) }
		if is(ErrRateLimited) != (status == http.StatusTooManyRequests) {
			t.Fatalf("status %d: errors.Is(ErrRateLimited) = %v", status, is(ErrRateLimited))
		}
		if e.Temporary() != (status >= 500 || status == http.StatusTooManyRequests) {
			t.Fatalf("status %d: Temporary() = %v", status, e.Temporary())
		}
		if is(ErrKeyNotRegistered) && status != http.StatusNotFound {
			t.Fatalf("status %d matches ErrKeyNotRegistered", status)
		}
		for _, s := range []error{ErrTokenLimitReached, ErrInvalidCredentials, ErrInvalidToken} {
			if is(s) && status != http.StatusBadRequest {
				t.Fatalf("status %d matches %v", status, s)
			}
		}
		if is(ErrInvalidToken) && !isTokenOperation(op) {
			t.Fatalf("%s: an issue operation's error matches ErrInvalidToken", op)
		}
		if is(ErrInvalidToken) && is(ErrInvalidCredentials) {
			t.Fatalf("matches both ErrInvalidToken and ErrInvalidCredentials: %q", msg)
		}
		for _, s := range []error{ErrInvalidInput, ErrMalformedResponse, ErrLockLost} {
			if is(s) {
				t.Fatalf("an answer from LINE matches %v", s)
			}
		}
		// LINE's documented texts select their sentinel.
		var eb gen.ErrorResponse
		if !tooLarge && json.Unmarshal(body, &eb) == nil {
			code, desc, m := str(eb.Error), str(eb.ErrorDescription), str(eb.Message)
			if len(desc) <= maxErrorTextLen && len(m) <= maxErrorTextLen && len(code) <= maxErrorTextLen {
				want := map[error]bool{
					ErrKeyNotRegistered:  status == 404 && fuzzSays("cannot find channel key", desc, m),
					ErrTokenLimitReached: status == 400 && fuzzSays("maximum number of access tokens", desc, m),
					ErrInvalidCredentials: status == 400 && (code == "invalid_client" ||
						fuzzSays("invalid 'client_credentials'", desc, m)),
				}
				for s, w := range want {
					if w && !is(s) {
						t.Fatalf("status %d body %q: does not match %v", status, body, s)
					}
				}
			}
		}

		// Retry-After: [0, 24h]; delay seconds are taken as they are.
		if e.RetryAfter < 0 || e.RetryAfter > 24*time.Hour {
			t.Fatalf("Retry-After %q gave RetryAfter %v, outside [0, 24h]", retryAfter, e.RetryAfter)
		}
		if n, err := strconv.ParseInt(strings.TrimSpace(retryAfter), 10, 64); err == nil {
			want := time.Duration(0)
			if n > 0 {
				want = time.Duration(min(n, int64(24*time.Hour/time.Second))) * time.Second
			}
			if e.RetryAfter != want {
				t.Fatalf("Retry-After %q gave RetryAfter %v, want %v", retryAfter, e.RetryAfter, want)
			}
		}
	})
}

// fuzzKeyMetadata lists the parts of a key input that name rather than
// hold key material, which an error may quote: the PEM block label and a
// JWK's kty, alg, crv, use, kid and x5u/x5t members.
func fuzzKeyMetadata(data []byte) []string {
	var meta []string
	if block, _ := pem.Decode(bytes.TrimSpace(data)); block != nil {
		meta = append(meta, block.Type)
	}
	var members map[string]json.RawMessage
	if json.Unmarshal(bytes.TrimSpace(data), &members) == nil {
		for _, m := range []string{"kty", "alg", "crv", "use", "kid", "x5u", "x5t", "x5t#S256"} {
			var s string
			if json.Unmarshal(members[m], &s) == nil {
				meta = append(meta, s)
			}
		}
	}
	return meta
}

// FuzzParseAssertionKey parses arbitrary bytes and key IDs as a private
// assertion key: either an error matching ErrInvalidInput that quotes no
// key material, or a valid RSA-2048 key with the given (or the JWK's) kid.
func FuzzParseAssertionKey(f *testing.F) {
	k := fuzzKey(f)
	jwkOf := func(key any, kid, alg string) []byte {
		b, err := jose.JSONWebKey{Key: key, KeyID: kid, Algorithm: alg, Use: "sig"}.MarshalJSON()
		if err != nil {
			f.Fatal(err)
		}
		return b
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		f.Fatal(err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		f.Fatal(err)
	}
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	ecDER, err := x509.MarshalPKCS8PrivateKey(ec)
	if err != nil {
		f.Fatal(err)
	}
	pemOf := func(typ string, der []byte) []byte { return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}) }
	seeds := [][]byte{
		jwkOf(k, "", "RS256"),                       // as GenerateAssertionKey writes it
		jwkOf(k, "0b51b5c4-b0f1-4a2c-9b1d-kid", ""), // with its own kid, no alg
		jwkOf(k, "", "RS512"),
		jwkOf(&k.PublicKey, "", "RS256"), // the public half, as registered
		jwkOf(ec, "", "ES256"),
		pemOf("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(k)),
		pemOf("PRIVATE KEY", pkcs8),
		append([]byte("\n  garbage before\n"), pemOf("PRIVATE KEY", pkcs8)...),
		pemOf("PRIVATE KEY", ecDER),
		pemOf("PUBLIC KEY", pubDER),
		pemOf("ENCRYPTED PRIVATE KEY", []byte{1, 2, 3}),
		pemOf("RSA PRIVATE KEY", []byte{1, 2, 3}),
		pemOf("OPENSSH PRIVATE KEY", []byte("openssh-key-v1\x00")),
		[]byte(`{"kty":"RSA","n":"AQAB","e":"AQAB","d":"AQAB","p":"AQAB","q":"AQAB"}`),
		[]byte(`{"kty":"RSA","x5u":"http://[::1/not a url"}`),
		[]byte(`{"kty":`),
		[]byte("not a key"),
		{},
	}
	for i, s := range seeds {
		kid := []string{"", "kid-under-test", "0b51b5c4-b0f1-4a2c-9b1d-4e0b1f0e0c0a"}[i%3]
		f.Add(s, kid)
	}

	f.Fuzz(func(t *testing.T, data []byte, keyID string) {
		if len(data) > fuzzMaxInput || len(keyID) > fuzzMaxInput {
			return
		}
		key, err := ParseAssertionKey(data, keyID)
		if err != nil {
			if key != nil {
				t.Fatalf("both a key and an error (%v)", err)
			}
			if !errors.Is(err, ErrInvalidInput) {
				t.Fatalf("error %q (%T) does not match ErrInvalidInput", err, err)
			}
			if w := fuzzQuoted(err.Error(), data, fuzzKeyMetadata(data)...); w != "" {
				t.Fatalf("error quotes the key input (%q): %q", w, err)
			}
			return
		}
		switch {
		case key == nil || key.PrivateKey == nil:
			t.Fatal("nil key and nil error")
		case key.PrivateKey.N.BitLen() != requiredKeyBits:
			t.Fatalf("accepted an RSA-%d key", key.PrivateKey.N.BitLen())
		case key.PrivateKey.Validate() != nil:
			t.Fatalf("accepted an inconsistent RSA key: %v", key.PrivateKey.Validate())
		case key.KeyID == "":
			t.Fatal("accepted a key without a key ID")
		case keyID != "" && key.KeyID != keyID:
			t.Fatalf("KeyID = %q, want the given %q", key.KeyID, keyID)
		}
		if keyID == "" {
			var members map[string]json.RawMessage
			var kid string
			if json.Unmarshal(bytes.TrimSpace(data), &members) != nil || json.Unmarshal(members["kid"], &kid) != nil || kid != key.KeyID {
				t.Fatalf("KeyID = %q without a given kid; the input's kid is %q", key.KeyID, kid)
			}
		}
		if s := key.String(); strings.Contains(s, key.PrivateKey.D.String()[:40]) {
			t.Fatalf("String() shows the private exponent: %s", s)
		}
	})
}

// fuzzSameTime reports whether a and b are the same instant in the same
// zone offset.
func fuzzSameTime(a, b time.Time) bool {
	_, ao := a.Zone()
	_, bo := b.Zone()
	return a.Equal(b) && ao == bo
}

func fuzzSameToken(a, b Token) bool {
	return a.AccessToken == b.AccessToken && a.TokenType == b.TokenType && a.KeyID == b.KeyID &&
		a.ExpiresIn == b.ExpiresIn && fuzzSameTime(a.Expiry, b.Expiry)
}

func fuzzSameEntry(a, b *StoreEntry) bool {
	if (a.Token == nil) != (b.Token == nil) || len(a.Pending) != len(b.Pending) {
		return false
	}
	if a.Token != nil && !fuzzSameToken(*a.Token, *b.Token) {
		return false
	}
	for i := range a.Pending {
		if !fuzzSameToken(a.Pending[i].Token, b.Pending[i].Token) || !fuzzSameTime(a.Pending[i].RevokeAfter, b.Pending[i].RevokeAfter) {
			return false
		}
	}
	return true
}

// FuzzStoreEntry decodes arbitrary bytes as a stored entry: whatever
// decodes has its tokens' access token and expiry, and encodes and
// decodes again to an equal entry (and to the same bytes).
func FuzzStoreEntry(f *testing.F) {
	exp := fuzzArrival.Add(30 * 24 * time.Hour)
	for _, e := range []StoreEntry{
		{},
		{Token: &Token{AccessToken: "eyJhbGciOiJIUz.....", TokenType: "Bearer", KeyID: "sDTOzw5wIfxxxxPEzcmeQA", ExpiresIn: 30 * 24 * time.Hour, Expiry: exp}},
		{Token: &Token{AccessToken: "W1TeHCgfH2Liwa.....", TokenType: "Bearer", ExpiresIn: 2592000 * time.Second, Expiry: exp.In(time.FixedZone("JST", 9*3600))},
			Pending: []PendingRevocation{{Token: Token{AccessToken: "old", KeyID: "U_gdnFYKTWRxxxxDVZexGg", ExpiresIn: time.Minute, Expiry: exp}, RevokeAfter: fuzzArrival}}},
		{Pending: []PendingRevocation{{Token: Token{AccessToken: "p", Expiry: exp}}}},
	} {
		b, err := e.MarshalBinary()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, s := range []string{
		`{"token":{"access_token":"a","expires_in_ms":9223372036854775807,"expiry":"2026-01-02T03:04:05Z"}}`,
		`{"token":{"access_token":"a","expires_in_ms":-1,"expiry":"9999-12-31T23:59:59.999999999+23:59"}}`,
		`{"token":{"access_token":"a","expires_in_ms":1,"expiry":"0001-01-01T00:00:00Z"}}`,
		`{"token":{"access_token":"a","expires_in_ms":1,"expiry":"0001-01-01T00:00:00+00:01"}}`,
		`{"token":{"access_token":"","expires_in_ms":1,"expiry":"2026-01-02T03:04:05Z"}}`,
		`{"token":null,"pending":[]}`,
		`{"pending":[{"token":{"access_token":"a"},"revoke_after":"2026-01-02T03:04:05.123456789123-07:00"}]}`,
		`{"pending":[{"token":{}}]}`,
		`{"token":{"access_token":"a","expires_in_ms":"1","expiry":"2026-01-02"}}`,
		`null`, `[]`, `{}`, ``, `{"token":`,
	} {
		f.Add([]byte(s))
	}

	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > fuzzMaxInput {
			return
		}
		var e1 StoreEntry
		if err := e1.UnmarshalBinary(data); err != nil {
			if !strings.HasPrefix(err.Error(), "oauth: store entry: ") {
				t.Fatalf("error %q does not say what failed", err)
			}
			if w := fuzzQuoted(err.Error(), data); w != "" {
				t.Fatalf("error quotes the entry (%q): %q", w, err)
			}
			return
		}
		if tok := e1.Token; tok != nil && (tok.AccessToken == "" || tok.Expiry.IsZero()) {
			t.Fatalf("loaded a token without access token or expiry: %+v", *tok)
		}
		for _, p := range e1.Pending {
			if p.Token.AccessToken == "" {
				t.Fatal("loaded a pending revocation without access token")
			}
		}
		b1, err := e1.MarshalBinary()
		if err != nil {
			t.Fatalf("an entry that loaded does not save: %v", err)
		}
		var e2 StoreEntry
		if err := e2.UnmarshalBinary(b1); err != nil {
			t.Fatalf("a saved entry does not load: %v\n%s", err, b1)
		}
		if !fuzzSameEntry(&e1, &e2) {
			t.Fatalf("round trip changed the entry:\nloaded %s\nsaved  %s\nloaded %+v\nagain  %+v", data, b1, fuzzEntryDump(&e1), fuzzEntryDump(&e2))
		}
		b2, err := e2.MarshalBinary()
		if err != nil || !bytes.Equal(b1, b2) {
			t.Fatalf("saving twice differs (%v):\n%s\n%s", err, b1, b2)
		}
	})
}

// fuzzEntryDump shows an entry with its tokens, for failure messages only.
func fuzzEntryDump(e *StoreEntry) string {
	var b strings.Builder
	dump := func(t Token) {
		b.WriteString("{" + strconv.Quote(t.AccessToken) + " " + t.TokenType + " " + t.KeyID + " " + strconv.FormatInt(int64(t.ExpiresIn), 10) + "ns " + t.Expiry.String() + "}")
	}
	if e.Token != nil {
		dump(*e.Token)
	} else {
		b.WriteString("nil")
	}
	for _, p := range e.Pending {
		b.WriteString(" pending ")
		dump(p.Token)
		b.WriteString(" after " + p.RevokeAfter.String())
	}
	return b.String()
}

// fuzzOverlapsRedacted reports whether s could be formed again around a
// REDACTED marker put in its place (it contains the marker, starts with
// one of its suffixes or ends with one of its prefixes): such a "secret"
// would be found in any scrubbed text.
func fuzzOverlapsRedacted(s string) bool {
	if strings.Contains(s, redacted) {
		return true
	}
	for i := 1; i < len(redacted); i++ {
		if strings.HasPrefix(s, redacted[i:]) || strings.HasSuffix(s, redacted[:i]) {
			return true
		}
	}
	return false
}

// fuzzSecretForms are the forms of a secret a leak would show.
func fuzzSecretForms(secret string) []string {
	return []string{secret, url.QueryEscape(secret), url.PathEscape(secret)}
}

func fuzzContainsAny(s string, subs []string) (string, bool) {
	for _, sub := range subs {
		if sub != "" && strings.Contains(s, sub) {
			return sub, true
		}
	}
	return "", false
}

// FuzzRedact plants a secret in a URL's query (form-encoded, as the client
// builds it) or user info, and in an error text: redactURL's output never
// depends on the secret nor contains it, and scrub (alone and through
// newRequestError) removes every raw or form-encoded occurrence.
func FuzzRedact(f *testing.F) {
	f.Add("https://api.line.me/oauth2/v2.1/verify", "access_token", "eyJhbGciOiJIUzI1NiJ9.e30.sig", "", "dial tcp 203.0.113.1:443: i/o timeout", false)
	f.Add("https://api.line.me/oauth2/v2.1/tokens/kid", "client_assertion", "eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiIxIn0.c2ln",
		"client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer", "read: connection reset by peer", false)
	f.Add("https://api.line.me/v2/oauth/verify", "access_token", "W1TeHCgfH2Liwa+/abc==", "a=1;b=2", "x", false)
	f.Add("http://127.0.0.1:8080", "client_secret", "s3cr3t5ecretvalue0123456789abcdef", "", "", true)
	f.Add("mailto:someone", "k", "secret with spaces & symbols=%", "k=v&k=w", "", false)
	f.Add("https://[::1", "k", "eyJzZWNyZXQiOnRydWV9", "", "", false)
	f.Add("", "", "ssssssss", "", "ssssssss", true)

	f.Fuzz(func(t *testing.T, base, key, secret, extra, text string, userinfo bool) {
		if len(base)+len(key)+len(secret)+len(extra)+len(text) > fuzzMaxInput {
			return
		}
		// The URL: base has no query or fragment of its own and, like
		// extra, no escapes (an escape that decodes to the secret is not
		// a planted secret).
		if i := strings.IndexAny(base, "?#"); i >= 0 {
			base = base[:i]
		}
		if i := strings.IndexByte(extra, '#'); i >= 0 {
			extra = extra[:i]
		}
		base = strings.ReplaceAll(base, "%", "")
		extra = strings.ReplaceAll(extra, "%", "")
		build := func(value string) string {
			if userinfo {
				rest, _ := strings.CutPrefix(base, "https://")
				return "https://" + url.UserPassword(key, value).String() + "@" + rest + "?" + extra
			}
			return base + "?" + extra + "&" + formBody(key, value)
		}
		raw := build(secret)
		out := redactURL(raw)
		ref := redactURL(build("x"))
		if out != ref {
			t.Fatalf("redactURL depends on the secret:\nraw %q\ngot %q\nref %q", raw, out, ref)
		}
		plantable := len(secret) >= 8 && !fuzzOverlapsRedacted(secret)
		if _, inRest := fuzzContainsAny(ref, fuzzSecretForms(secret)); plantable && !inRest {
			if form, leak := fuzzContainsAny(out, fuzzSecretForms(secret)); leak {
				t.Fatalf("redactURL(%q) = %q: contains the secret (%q)", raw, out, form)
			}
		}
		if !plantable {
			return
		}

		// scrub: every raw or form-encoded occurrence goes, wherever it is.
		q := url.QueryEscape(secret)
		if fuzzOverlapsRedacted(q) {
			return
		}
		s := text + secret + text + q + text
		for _, got := range []string{
			scrub(s, []string{secret}),
			scrub(s, []string{"", fuzzSecret, secret}),
			newRequestError(context.Background(), "fuzz", "", &url.Error{Op: "Get", URL: raw, Err: errors.New(s)}, []string{secret}).Error(),
		} {
			for _, form := range []string{secret, q} {
				if strings.Contains(got, form) {
					t.Fatalf("scrubbed text contains the secret (%q): %q", form, got)
				}
			}
		}
	})
}
