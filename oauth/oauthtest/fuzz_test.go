package oauthtest

// Fuzz targets of the hardening issue (go test -fuzz) for the fake: its
// assertion check and its request handling. Seeds are LINE's documented
// requests (../../../shared/LINE-TOKEN-API.md) and boundary values. Each
// target skips inputs over fuzzMaxInput, sends nothing over the network
// (requests go straight to ServeHTTP with an httptest.ResponseRecorder)
// and leaves no goroutine behind. Fuzz one with
//
//	go test -run '^$' -fuzz '^FuzzForm$' -fuzztime 2m ./oauth/oauthtest/
//
// or all with `make fuzz` / `make fuzz-smoke` (fuzz.mk).

import (
	"bytes"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/linetoken/linetoken/internal/testkit"
)

const (
	// fuzzMaxInput is the largest input a target works on: the fake
	// reads at most maxRequestBody (64 KiB) of a request.
	fuzzMaxInput = 64 << 10
	// The planted channel, its secret and its registered key's kid.
	fuzzChannelID = "1234567890"
	fuzzSecret    = "0123456789abcdef0123456789abcdef"
	fuzzKid       = "6a1d3c2e-9f4b-4d8a-b1c7-0e5f2a9d8c41"
	// fuzzShortLived and fuzzLongLived are tokens the fake knows at every
	// run, so seeds can verify and revoke them.
	fuzzShortLived = "W1TeHCgfH2Liwa+fuzz/short/lived/token="
	fuzzLongLived  = "fuzzLongLivedTokenAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA+/="
	// fuzzKeyP and fuzzKeyQ are the primes of a throwaway RSA-2048 key
	// used only by these tests, fixed so that seeds and signatures are the
	// same in every fuzz worker process.
	fuzzKeyP = "f6f5005286f3cbea706e61bed95460a06df38a2a0c5568940eb4f1f8950ccaa08140d8cfbf59cd04032dc5a37b9dfc68" +
		"b3974a9b0881390789eb209fc0678476094bd2830ae10033cf9d29750fd9dc177ff01868ed87213857d240bec987721aa686" +
		"9d22b4f6606c3d12139c2e9922c5801abaf421ff8b87a86ffaf1d7219227"
	fuzzKeyQ = "d2e3d5afd0b1bdd2b67e1b62e99a430d875fda50177eadaed5ea7c53179d8d6dcc27fd199505b6cb8f5cb8401214cb58" +
		"cab8ff10342fd87330ccb9cd87560f2a18ddfc607ac3d90285bfade192a3ee64ed155cf574256a7ce263c43e17fad189e471" +
		"0e433159c8b6ec38a62ed35595c0c4c81ccdbb45d9fc1a29c8e09cbd859d"
)

// fuzzNow is the fake's clock during every fuzzed request.
var fuzzNow = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// fuzzTokenKey replaces the fake's random HMAC key, so the v2.1 token it
// knows (fuzzV21Token) is the same in every process.
var fuzzTokenKey = []byte("oauthtest fuzz token key, 32 b..")

// fuzzKey is the fixed test key, built once from its primes.
var fuzzKey = testkit.FixedRSAKey(fuzzKeyP, fuzzKeyQ)

// fuzzFake is a fake with one channel and its key registered under
// fuzzKid, closed when tb ends.
type fuzzFake struct {
	*Server
	v21Token string // a v2.1 token the fake knows at every run
}

func newFuzzFake(tb testing.TB) *fuzzFake {
	tb.Helper()
	key := fuzzKey(tb)
	s := NewServer()
	tb.Cleanup(s.Close)
	s.AddChannel(fuzzChannelID, fuzzSecret)
	s.mu.Lock()
	s.tokenKey = fuzzTokenKey
	s.keys[fuzzKid] = &publicKey{kid: fuzzKid, channelID: fuzzChannelID, key: &key.PublicKey}
	s.mu.Unlock()
	return &fuzzFake{Server: s, v21Token: s.mint(kindClaimV21, fuzzChannelID, "sDTOzw5wIfxxxxPEzcmeQA", fuzzNow, fuzzNow.Add(time.Hour))}
}

// reset puts the fake back in the same state before each input: clock at
// fuzzNow, one known token of each revocable kind, empty logs, no faults.
func (ff *fuzzFake) reset() {
	s := ff.Server
	s.offset.Store(int64(time.Until(fuzzNow)))
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.channels[fuzzChannelID]
	c.secret = fuzzSecret
	c.longLived = &token{kind: KindLongLived, value: fuzzLongLived, channelID: c.id, expiry: fuzzNow.Add(longLivedExpiresIn * time.Second)}
	c.v21 = []*token{{kind: KindV21, value: ff.v21Token, channelID: c.id, keyID: "sDTOzw5wIfxxxxPEzcmeQA", expiry: fuzzNow.Add(time.Hour)}}
	c.short = []*token{{kind: KindShortLived, value: fuzzShortLived, channelID: c.id, expiry: fuzzNow.Add(shortLivedLifetime)}}
	s.tokens = map[string]*token{c.longLived.value: c.longLived, c.v21[0].value: c.v21[0], c.short[0].value: c.short[0]}
	s.faults, s.log, s.stats, s.rate = nil, nil, newStats(), rateWindow{}
	s.sends, s.uploads, s.retryKeys, s.attempts = nil, nil, map[retryKeyID]acceptedKey{}, map[attemptKey]int{}
	s.firstTry = map[retryKeyID]time.Time{}
}

// fuzzJWT encodes header and claims as given and signs them RS256 with
// key, whatever they say.
func fuzzJWT(header, claims []byte, key *rsa.PrivateKey) string {
	input := base64.RawURLEncoding.EncodeToString(header) + "." + base64.RawURLEncoding.EncodeToString(claims)
	sum := sha256.Sum256([]byte(input))
	sig, err := rsa.SignPKCS1v15(nil, key, crypto.SHA256, sum[:])
	if err != nil {
		panic("signing with the test key: " + err.Error())
	}
	return input + "." + base64.RawURLEncoding.EncodeToString(sig)
}

const fuzzHeader = `{"alg":"RS256","typ":"JWT","kid":"` + fuzzKid + `"}`

// fuzzClaims is a valid claims set at fuzzNow, with extra members (",..." or "").
func fuzzClaims(exp int64, extra string) string {
	return `{"iss":"` + fuzzChannelID + `","sub":"` + fuzzChannelID + `","aud":"https://api.line.me/","exp":` +
		strconv.FormatInt(exp, 10) + extra + `}`
}

// fuzzLineRules re-checks an assertion against LINE's documented rules
// (LINE-TOKEN-API.md, "JWT client assertion"), independently of the fake:
// three base64url segments; a JSON object header with alg RS256, typ JWT
// and the registered kid; a valid RS256 signature by that key; a JSON
// object claims set with iss = sub = the channel, aud exactly
// "https://api.line.me/", exp a JSON integer in (now, now+30min] and
// token_exp, when present or for v2.1 issue, a JSON integer in
// [1, 2592000]. It returns token_exp (0 when absent) and whether LINE
// would accept the assertion; kidOK says whether the header named the
// registered key.
func fuzzLineRules(pub *rsa.PublicKey, raw string, use assertionUse, now time.Time) (tokenExp int64, ok, kidOK bool) {
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return 0, false, false
	}
	seg := func(s string) ([]byte, bool) {
		b, err := base64.RawURLEncoding.DecodeString(s)
		return b, err == nil
	}
	hb, hOK := seg(parts[0])
	var hdr map[string]any
	if !hOK || json.Unmarshal(hb, &hdr) != nil || hdr == nil {
		return 0, false, false
	}
	if hdr["alg"] != "RS256" || hdr["typ"] != "JWT" {
		return 0, false, false
	}
	if hdr["kid"] != fuzzKid {
		return 0, false, false
	}
	kidOK = true
	sig, sOK := seg(parts[2])
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if !sOK || rsa.VerifyPKCS1v15(pub, crypto.SHA256, sum[:], sig) != nil {
		return 0, false, kidOK
	}
	cb, cOK := seg(parts[1])
	if !cOK || !json.Valid(cb) {
		return 0, false, kidOK
	}
	dec := json.NewDecoder(bytes.NewReader(cb))
	dec.UseNumber()
	var claims map[string]any
	if dec.Decode(&claims) != nil || claims == nil {
		return 0, false, kidOK
	}
	integer := func(name string) (int64, bool) {
		n, isNum := claims[name].(json.Number)
		if !isNum {
			return 0, false
		}
		v, err := strconv.ParseInt(string(n), 10, 64)
		return v, err == nil
	}
	if claims["iss"] != fuzzChannelID || claims["sub"] != fuzzChannelID || claims["aud"] != "https://api.line.me/" {
		return 0, false, kidOK
	}
	exp, expOK := integer("exp")
	if !expOK || exp <= now.Unix() || exp > now.Unix()+int64(30*time.Minute/time.Second) {
		return 0, false, kidOK
	}
	if _, present := claims["token_exp"]; present || use == useIssueV21 {
		te, teOK := integer("token_exp")
		if !teOK || te < 1 || te > 2592000 {
			return 0, false, kidOK
		}
		tokenExp = te
	}
	return tokenExp, true, kidOK
}

// FuzzAssertion runs the fake's assertion check on arbitrary JWT-ish
// strings (sign false) and on arbitrary header and claims JSON signed with
// the registered key (sign true, to get past the signature): it accepts
// exactly what LINE's rules accept (fuzzLineRules), with the channel and
// token_exp of the claims, and refuses everything else with LINE's error
// shapes (400 invalid_client, or on the stateless endpoint 400
// invalid_request "Invalid 'client_credentials'.", or 404 for an unknown
// kid).
func FuzzAssertion(f *testing.F) {
	key := fuzzKey(f)
	now := fuzzNow.Unix()
	latest := now + 1800
	claims := []string{
		fuzzClaims(now+25*60, `,"token_exp":2592000`), // what oauth.SignAssertion writes
		fuzzClaims(now+25*60, ``),                     // key IDs, stateless
		fuzzClaims(latest, `,"token_exp":1`),
		fuzzClaims(latest+1, `,"token_exp":3600`),
		fuzzClaims(now, `,"token_exp":3600`),
		fuzzClaims(now+1, `,"token_exp":0`),
		fuzzClaims(now+60, `,"token_exp":2592001`),
		fuzzClaims(now+60, `,"token_exp":"3600"`),
		fuzzClaims(now+60, `,"token_exp":3600.0`),
		fuzzClaims(now+60, `,"token_exp":1e3`),
		fuzzClaims(now+60, `,"token_exp":null`),
		fuzzClaims(now+60, `,"aud":["https://api.line.me/"]`),
		fuzzClaims(now+60, `,"aud":"https://api.line.me"`),
		fuzzClaims(now+60, `,"iss":"1234567891"`),
		fuzzClaims(now+60, `,"sub":1234567890`),
		fuzzClaims(now+60, `,"iat":`+strconv.FormatInt(now, 10)+`,"jti":"x","nbf":0`),
		`{"iss":"1234567890","sub":"1234567890","aud":"https://api.line.me/","exp":"` + strconv.FormatInt(now+60, 10) + `"}`,
		`{}`, `null`, `[]`, `"x"`,
	}
	headers := []string{
		fuzzHeader,
		`{"alg":"RS256","kid":"` + fuzzKid + `"}`,
		`{"alg":"none","typ":"JWT","kid":"` + fuzzKid + `"}`,
		`{"alg":"RS512","typ":"JWT","kid":"` + fuzzKid + `"}`,
		`{"alg":"RS256","typ":"JWT","kid":"unregistered"}`,
		`{"alg":"RS256","typ":"JWT"}`,
	}
	for i, c := range claims {
		f.Add("", []byte(headers[0]), []byte(c), uint8(i%3), true)
	}
	for i, h := range headers {
		f.Add("", []byte(h), []byte(claims[0]), uint8(i%3), true)
	}
	good := fuzzJWT([]byte(fuzzHeader), []byte(claims[0]), key)
	parts := strings.Split(good, ".")
	for _, raw := range []string{
		good,
		parts[0] + "." + parts[1] + ".",
		parts[0] + "." + parts[1],
		parts[0] + "." + parts[1] + "." + parts[2] + ".",
		parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(claims[1])) + "." + parts[2],
		strings.ToUpper(good),
		"eyJhbGciOiJub25lIn0.e30.",
		"a.b.c", "..", "", "not a jwt",
	} {
		f.Add(raw, []byte(nil), []byte(nil), uint8(0), false)
	}

	ff := newFuzzFake(f)
	f.Fuzz(func(t *testing.T, raw string, header, claims []byte, useN uint8, sign bool) {
		if len(raw)+len(header)+len(claims) > fuzzMaxInput {
			return
		}
		if sign {
			raw = fuzzJWT(header, claims, key)
		}
		use := assertionUse(useN % 3)
		a, resp := ff.checkAssertion(raw, use, fuzzNow)
		tokenExp, want, kidOK := fuzzLineRules(&key.PublicKey, raw, use, fuzzNow)
		if resp == nil {
			switch {
			case !want:
				t.Fatalf("use %d: accepted an assertion LINE refuses: %q", use, raw)
			case a.channelID != fuzzChannelID || a.tokenExp != tokenExp:
				t.Fatalf("use %d: accepted as channel %q token_exp %d; the claims say %q, %d", use, a.channelID, a.tokenExp, fuzzChannelID, tokenExp)
			}
			return
		}
		if want {
			t.Fatalf("use %d: refused an assertion LINE accepts (%d %+v): %q", use, resp.status, resp.body, raw)
		}
		body, isErr := resp.body.(errorBody)
		switch {
		case !isErr:
			t.Fatalf("refusal body is %T, not LINE's error shape", resp.body)
		case resp.status == http.StatusNotFound:
			if body.Message != msgKeyNotFound || body.Error != "" || body.ErrorDescription != "" {
				t.Fatalf("404 body %+v, want {message: %q}", body, msgKeyNotFound)
			}
			if kidOK {
				t.Fatalf("404 for the registered kid: %q", raw)
			}
		case resp.status == http.StatusBadRequest && use == useStateless:
			// LINE documents one 400 for the stateless endpoint.
			if body.Error != codeInvalidRequest || body.ErrorDescription != descBadCredentials || body.Message != "" {
				t.Fatalf("stateless 400 body %+v, want invalid_request %q", body, descBadCredentials)
			}
		case resp.status == http.StatusBadRequest:
			if body.Error != codeInvalidClient || body.ErrorDescription == "" || body.Message != "" {
				t.Fatalf("400 body %+v, want invalid_client with a description", body)
			}
		default:
			t.Fatalf("refused with status %d", resp.status)
		}
	})
}

// fuzzRoute is an endpoint of the fake, or (path "/nowhere",
// "/v2/bot/nowhere") none.
type fuzzRoute struct {
	path, method string
	ok200        func(t *testing.T, m map[string]json.RawMessage) // checks a 200 body
	// messaging: a Messaging API path, called with a valid Bearer token
	// and checked by fuzzCheckMessaging.
	messaging bool
}

// Checks of the documented 200 bodies.
func fuzzWantKeys(t *testing.T, m map[string]json.RawMessage, keys ...string) {
	t.Helper()
	if len(m) != len(keys) {
		t.Fatalf("200 body has members %v, want exactly %v", fuzzKeys(m), keys)
	}
	for _, k := range keys {
		if _, found := m[k]; !found {
			t.Fatalf("200 body has members %v, want exactly %v", fuzzKeys(m), keys)
		}
	}
}

func fuzzKeys(m map[string]json.RawMessage) []string { return sortedKeys(m) }

func fuzzString(t *testing.T, m map[string]json.RawMessage, k string) string {
	t.Helper()
	var s string
	if err := json.Unmarshal(m[k], &s); err != nil || s == "" {
		t.Fatalf("%s = %s, want a non-empty string", k, m[k])
	}
	return s
}

func fuzzInt(t *testing.T, m map[string]json.RawMessage, k string, lo, hi int64) {
	t.Helper()
	n, err := strconv.ParseInt(string(m[k]), 10, 64)
	if err != nil || n < lo || n > hi {
		t.Fatalf("%s = %s, want an integer in [%d, %d]", k, m[k], lo, hi)
	}
}

func fuzzIssued(lo, hi int64, keyID bool) func(*testing.T, map[string]json.RawMessage) {
	return func(t *testing.T, m map[string]json.RawMessage) {
		t.Helper()
		keys := []string{"access_token", "expires_in", "token_type"}
		if keyID {
			keys = append(keys, "key_id")
			fuzzString(t, m, "key_id")
		}
		fuzzWantKeys(t, m, keys...)
		fuzzString(t, m, "access_token")
		if tt := fuzzString(t, m, "token_type"); tt != "Bearer" {
			t.Fatalf("token_type = %q", tt)
		}
		fuzzInt(t, m, "expires_in", lo, hi)
	}
}

func fuzzVerified(t *testing.T, m map[string]json.RawMessage) {
	t.Helper()
	fuzzWantKeys(t, m, "client_id", "expires_in", "scope")
	if id := fuzzString(t, m, "client_id"); id != fuzzChannelID {
		t.Fatalf("client_id = %q", id)
	}
	fuzzString(t, m, "scope")
	fuzzInt(t, m, "expires_in", 1, longLivedExpiresIn)
}

var fuzzRoutes = []fuzzRoute{
	{"/oauth2/v2.1/token", http.MethodPost, fuzzIssued(1, maxTokenExp, true), false},
	{"/oauth2/v2.1/tokens/kid", http.MethodGet, func(t *testing.T, m map[string]json.RawMessage) {
		fuzzWantKeys(t, m, "kids")
		var kids []string
		if err := json.Unmarshal(m["kids"], &kids); err != nil || kids == nil {
			t.Fatalf("kids = %s, want a list of strings", m["kids"])
		}
	}, false},
	{"/oauth2/v2.1/verify", http.MethodGet, fuzzVerified, false},
	{"/oauth2/v2.1/revoke", http.MethodPost, nil, false},
	{"/v2/oauth/accessToken", http.MethodPost, fuzzIssued(2592000, 2592000, false), false},
	{"/v2/oauth/verify", http.MethodPost, fuzzVerified, false},
	{"/v2/oauth/revoke", http.MethodPost, nil, false},
	{"/oauth2/v3/token", http.MethodPost, fuzzIssued(899, 900, false), false},
	{"/nowhere", http.MethodPost, nil, false},
	// The Messaging API (index 9 on).
	{pushPath, http.MethodPost, nil, true},
	{multicastPath, http.MethodPost, nil, true},
	{narrowcastPath, http.MethodPost, nil, true},
	{broadcastPath, http.MethodPost, nil, true},
	{infoPath, http.MethodGet, nil, true},
	{"/v2/bot/message/" + fuzzContentID + "/content", http.MethodGet, nil, true},
	{"/v2/bot/richmenu/richmenu-1/content", http.MethodPost, nil, true},
	{"/v2/bot/nowhere", http.MethodPost, nil, true},
}

// fuzzContentID is the message whose content FuzzForm fetches.
const fuzzContentID = "bytes-16"

// fuzzStatuses are the statuses the fake may answer without a fault.
var fuzzStatuses = map[int]bool{200: true, 400: true, 404: true, 405: true, 413: true, 429: true}

// FuzzForm sends arbitrary bodies, content types and queries to every
// endpoint of the fake (and to no endpoint), through ServeHTTP: it never
// panics, never answers 5xx, and always answers application/json with a
// documented body: LINE's error shapes ({"error"[, "error_description"]}
// or {"message"}), an endpoint's documented 200 body, or the empty 200 of
// a revoke.
func FuzzForm(f *testing.F) {
	key := fuzzKey(f)
	ff := newFuzzFake(f)
	now := fuzzNow.Unix()
	assertion := fuzzJWT([]byte(fuzzHeader), []byte(fuzzClaims(now+25*60, `,"token_exp":2592000`)), key)
	kidsAssertion := fuzzJWT([]byte(fuzzHeader), []byte(fuzzClaims(now+25*60, ``)), key)
	form := func(kv ...string) []byte {
		v := url.Values{}
		for i := 0; i+1 < len(kv); i += 2 {
			v.Add(kv[i], kv[i+1])
		}
		return []byte(v.Encode())
	}
	const ct = "application/x-www-form-urlencoded"
	jwtForm := form("grant_type", "client_credentials", "client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer", "client_assertion", assertion)
	secretForm := form("grant_type", "client_credentials", "client_id", fuzzChannelID, "client_secret", fuzzSecret)
	type seed struct {
		route  uint8
		ct     string
		body   []byte
		query  string
		method uint8
	}
	seeds := []seed{
		// LINE's documented requests (LINE-TOKEN-API.md, Endpoints).
		{0, ct, jwtForm, "", 0},
		{1, "", nil, string(form("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer", "client_assertion", kidsAssertion)), 0},
		{2, "", nil, string(form("access_token", ff.v21Token)), 0},
		{3, ct, form("client_id", fuzzChannelID, "client_secret", fuzzSecret, "access_token", ff.v21Token), "", 0},
		{4, ct, secretForm, "", 0},
		{5, ct, form("access_token", fuzzShortLived), "", 0},
		{5, ct, form("access_token", fuzzLongLived), "", 0},
		{6, ct, form("access_token", fuzzShortLived), "", 0},
		{7, ct, secretForm, "", 0},
		{7, ct, form("grant_type", "client_credentials", "client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer", "client_assertion", kidsAssertion), "", 0},
		// Framing and near misses.
		{0, "application/x-www-form-urlencoded; charset=UTF-8", jwtForm, "", 0},
		{0, "application/json", []byte(`{"grant_type":"client_credentials"}`), "", 0},
		{0, ct, jwtForm, "x=1", 0},
		{0, ct, append(append([]byte{}, jwtForm...), "&client_assertion=x"...), "", 0},
		{4, ct, []byte("grant_type=client_credentials&client_id=1234567890&client_secret=%zz"), "", 0},
		{4, ct, []byte("a=1;b=2"), "", 0},
		{4, "text/plain; charset", secretForm, "", 0},
		{4, ct, secretForm, "", 1},
		{2, ct, form("access_token", ff.v21Token), "", 1},
		{2, "", nil, "access_token=%", 0},
		{5, ct, form("access_token", strings.Repeat("A", 2049)), "", 0},
		{6, ct, form("access_token", "not base64 !"), "", 0},
		{3, ct, form("client_id", fuzzChannelID, "client_secret", fuzzSecret, "access_token", "a.b"), "", 0},
		{7, ct, form("grant_type", "client_credentials", "client_id", fuzzChannelID, "client_secret", "wrong"), "", 0},
		{8, ct, secretForm, "", 2},
		{4, ct, bytes.Repeat([]byte("a"), maxRequestBody+1), "", 0},
	}
	for _, s := range seeds {
		f.Add(s.route, s.method, s.ct, s.body, s.query, false)
	}
	f.Add(uint8(4), uint8(0), ct, secretForm, "", true) // X-Line-Retry-Key: refused
	// The Messaging API: valid sends (with and without a retry key), near
	// misses, and the other operations.
	const js = "application/json"
	for _, s := range []seed{
		{9, js, []byte(pushBody1), "", 0},
		{10, js, []byte(multicastBody1), "", 0},
		{11, js, []byte(castBody1), "", 0},
		{12, js, []byte(castBody1), "", 0},
		{13, "", nil, "", 0},
		{14, "", nil, "", 0},
		{15, "image/png", []byte("\x89PNG"), "", 0},
		{16, js, []byte(castBody1), "", 0},
		{9, js, []byte(`{"to":"U1","messages":[{"type":""},{}]}`), "", 0},
		{10, js, []byte(`{"to":[""],"messages":[]}`), "", 0},
		{12, ct, []byte(castBody1), "", 0},
		{12, js, []byte(castBody1), "", 1},
		{9, js, bytes.Repeat([]byte("a"), maxRequestBody+1), "", 0},
	} {
		f.Add(s.route, s.method, s.ct, s.body, s.query, false)
		f.Add(s.route, s.method, s.ct, s.body, s.query, true)
	}

	f.Fuzz(func(t *testing.T, routeN, methodN uint8, contentType string, body []byte, query string, retryKey bool) {
		if len(body) > fuzzMaxInput+1 || len(contentType)+len(query) > fuzzMaxInput {
			return
		}
		rt := fuzzRoutes[int(routeN)%len(fuzzRoutes)]
		method := rt.method
		switch methodN % 4 {
		case 1:
			method = map[string]string{http.MethodGet: http.MethodPost, http.MethodPost: http.MethodGet}[rt.method]
		case 2:
			method = http.MethodPut
		case 3:
			method = http.MethodDelete
		}
		ff.reset()
		req := httptest.NewRequest(method, rt.path, bytes.NewReader(body))
		req.URL.RawQuery = query
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		if retryKey {
			req.Header.Set(headerRetryKey, "123e4567-e89b-12d3-a456-426614174000")
		}
		if rt.messaging {
			req.Header.Set("Authorization", "Bearer "+fuzzLongLived)
		}
		rec := httptest.NewRecorder()
		ff.ServeHTTP(rec, req)
		res := rec.Result()
		defer res.Body.Close()
		got, err := io.ReadAll(res.Body)
		if err != nil {
			t.Fatal(err)
		}
		if rt.messaging {
			fuzzCheckMessaging(t, ff, rt, req, body, res, got)
			return
		}

		if res.StatusCode >= 500 || !fuzzStatuses[res.StatusCode] {
			t.Fatalf("%s %s: status %d (body %q)", method, rt.path, res.StatusCode, got)
		}
		if h := res.Header.Get("Content-Type"); h != contentTypeJSON {
			t.Fatalf("%s %s: Content-Type %q", method, rt.path, h)
		}
		if id := res.Header.Get(headerRequestID); len(id) != 2*requestIDBytes {
			t.Fatalf("%s %s: X-Line-Request-Id %q", method, rt.path, id)
		}
		if n := len(ff.Requests()); n != 1 {
			t.Fatalf("the request log has %d entries, want 1", n)
		}
		if res.StatusCode == http.StatusOK {
			if method != rt.method || retryKey {
				t.Fatalf("%s %s answered 200 (retry key %v)", method, rt.path, retryKey)
			}
			if mt, _, err := mime.ParseMediaType(contentType); rt.method == http.MethodPost && (err != nil || mt != contentTypeForm) {
				t.Fatalf("POST %s answered 200 to Content-Type %q", rt.path, contentType)
			}
			if rt.ok200 == nil {
				if len(got) != 0 {
					t.Fatalf("%s: 200 body %q, want empty", rt.path, got)
				}
				return
			}
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal(got, &m); err != nil || m == nil {
			t.Fatalf("%s %s: %d body %q is not a JSON object", method, rt.path, res.StatusCode, got)
		}
		if res.StatusCode == http.StatusOK {
			rt.ok200(t, m)
			return
		}
		// LINE's two error shapes.
		if _, isMsg := m["message"]; isMsg {
			fuzzWantKeys(t, m, "message")
			fuzzString(t, m, "message")
			return
		}
		fuzzString(t, m, "error")
		if _, hasDesc := m["error_description"]; hasDesc {
			fuzzWantKeys(t, m, "error", "error_description")
			fuzzString(t, m, "error_description")
		} else {
			fuzzWantKeys(t, m, "error")
		}
	})
}

// fuzzMessagingStatuses are the statuses the Messaging API may answer a
// valid token without a fault, on a fake with no accepted retry key.
var fuzzMessagingStatuses = map[int]bool{200: true, 202: true, 400: true, 404: true, 413: true}

// fuzzCheckMessaging checks a Messaging API answer of FuzzForm: a
// documented status with an X-Line-Request-Id, one request logged; a
// success only for a served operation with its method, its body shape
// (re-checked here for sends: JSON, 1 to 5 messages) and its record; any
// other answer in LINE's {"message"[, "details"]} shape, with nothing
// accepted.
func fuzzCheckMessaging(t *testing.T, ff *fuzzFake, rt fuzzRoute, req *http.Request, body []byte, res *http.Response, got []byte) {
	t.Helper()
	ep := messagingRoute(rt.method, rt.path)
	where := req.Method + " " + rt.path
	if !fuzzMessagingStatuses[res.StatusCode] {
		t.Fatalf("%s: status %d (body %q)", where, res.StatusCode, got)
	}
	if id := res.Header.Get(headerRequestID); len(id) != 2*requestIDBytes {
		t.Fatalf("%s: X-Line-Request-Id %q", where, id)
	}
	if n := len(ff.Requests()); n != 1 {
		t.Fatalf("the request log has %d entries, want 1", n)
	}
	sends := ff.Sends()
	if res.StatusCode >= 300 {
		if len(sends) != 0 || len(ff.Uploads()) != 0 {
			t.Fatalf("%s answered %d and recorded %d sends", where, res.StatusCode, len(sends))
		}
		if h := res.Header.Get("Content-Type"); h != contentTypeJSON {
			t.Fatalf("%s: Content-Type %q", where, h)
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal(got, &m); err != nil || m == nil {
			t.Fatalf("%s: %d body %q is not a JSON object", where, res.StatusCode, got)
		}
		if _, hasDetails := m["details"]; hasDetails && res.StatusCode == http.StatusBadRequest {
			fuzzWantKeys(t, m, "details", "message")
		} else {
			fuzzWantKeys(t, m, "message")
		}
		fuzzString(t, m, "message")
		return
	}
	if req.Method != rt.method || ep == epNone || req.Header.Get(headerRetryKey) != "" && !ep.send() {
		t.Fatalf("%s answered %d (retry key %q)", where, res.StatusCode, req.Header.Get(headerRetryKey))
	}
	if (res.StatusCode == http.StatusAccepted) != (ep == epNarrowcast) {
		t.Fatalf("%s answered %d", where, res.StatusCode)
	}
	switch ep {
	case epContent:
		if err := VerifyContent(bytes.NewReader(got), 16); err != nil || res.Header.Get("Content-Type") != contentTypeOctets {
			t.Fatalf("content: %v, Content-Type %q", err, res.Header.Get("Content-Type"))
		}
		return
	case epRichMenuUpload:
		if up := ff.Uploads(); len(up) != 1 || up[0].Bytes != int64(len(body)) {
			t.Fatalf("uploads %+v, want one of %d bytes", up, len(body))
		}
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(got, &m); err != nil || m == nil {
		t.Fatalf("%s: %d body %q is not a JSON object", where, res.StatusCode, got)
	}
	switch {
	case ep == epInfo:
		fuzzWantKeys(t, m, "basicId", "chatMode", "displayName", "markAsReadMode", "pictureUrl", "userId")
	case ep == epPush:
		fuzzWantKeys(t, m, "sentMessages")
	default:
		fuzzWantKeys(t, m)
	}
	if !ep.send() {
		return
	}
	if mt, _, err := mime.ParseMediaType(req.Header.Get("Content-Type")); err != nil || mt != contentTypeJSON {
		t.Fatalf("%s accepted Content-Type %q", where, req.Header.Get("Content-Type"))
	}
	var sent map[string]json.RawMessage // a map: member names match exactly, as the fake's
	var messages []map[string]json.RawMessage
	if json.Unmarshal(body, &sent) != nil || json.Unmarshal(sent["messages"], &messages) != nil ||
		len(messages) < 1 || len(messages) > maxMessages {
		t.Fatalf("%s accepted a body without 1 to 5 messages: %q", where, body)
	}
	if len(sends) != 1 || !bytes.Equal(sends[0].Body, body) || sends[0].RequestID != res.Header.Get(headerRequestID) {
		t.Fatalf("%s answered %d and recorded %+v", where, res.StatusCode, sends)
	}
}
