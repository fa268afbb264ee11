package oauthtest

import (
	"crypto/rand"
	"crypto/rsa"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
)

// These tests speak raw HTTP: the wire-level rules the client never breaks.

const (
	badParams = `{"error":"invalid_request","error_description":"some parameters missed or invalid"}`
	badCT     = `{"error":"invalid_request","error_description":"Content-Type must be application/x-www-form-urlencoded"}`
	// badStatelessCredentials is LINE's one documented 400 of the
	// stateless endpoint, by secret or by JWT.
	badStatelessCredentials = `{"error":"invalid_request","error_description":"Invalid 'client_credentials'."}`
)

// validForms returns a valid request form for every POST endpoint.
func validForms(t *testing.T, srv *Server, ch Channel) map[string]url.Values {
	t.Helper()
	h, c := goodAssertion(srv, ch)
	return map[string]url.Values{
		"/oauth2/v2.1/token":    assertionForm(signJWT(t, h, c, ch.Key.PrivateKey)),
		"/oauth2/v2.1/revoke":   {"client_id": {ch.ID}, "client_secret": {ch.Secret}, "access_token": {"e30.e30.e30"}},
		"/v2/oauth/accessToken": {"grant_type": {"client_credentials"}, "client_id": {ch.ID}, "client_secret": {ch.Secret}},
		"/v2/oauth/verify":      {"access_token": {srv.LongLivedToken(ch.ID)}},
		"/v2/oauth/revoke":      {"access_token": {"unknown"}},
		"/oauth2/v3/token":      {"grant_type": {"client_credentials"}, "client_id": {ch.ID}, "client_secret": {ch.Secret}},
	}
}

func TestWireValidFormsSucceed(t *testing.T) {
	srv := newServer(t)
	ch := srv.NewChannel(t)
	for path, form := range validForms(t, srv, ch) {
		w := postForm(t, srv, path, form)
		if w.status != http.StatusOK {
			t.Errorf("%s: %d %s", path, w.status, w.body)
		}
		if ct := w.header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("%s: Content-Type %q", path, ct)
		}
		if id := w.header.Get("X-Line-Request-Id"); !requestIDs.MatchString(id) {
			t.Errorf("%s: X-Line-Request-Id %q", path, id)
		}
	}
	// A charset parameter is fine.
	form := validForms(t, srv, ch)["/v2/oauth/verify"]
	w := do(t, srv, "POST", "/v2/oauth/verify", "application/x-www-form-urlencoded; charset=UTF-8", form.Encode(), nil)
	if w.status != http.StatusOK {
		t.Errorf("with charset: %d %s", w.status, w.body)
	}
}

func TestWireWrongContentType(t *testing.T) {
	srv := newServer(t)
	ch := srv.NewChannel(t)
	for path, form := range validForms(t, srv, ch) {
		for _, ct := range []string{"", "application/json", "text/plain", "multipart/form-data; boundary=x"} {
			w := do(t, srv, "POST", path, ct, form.Encode(), nil)
			w.wantError(t, http.StatusBadRequest, badCT)
		}
	}
	if n := srv.IssueCount(KindShortLived) + srv.IssueCount(KindV21) + srv.IssueCount(KindStateless); n != 0 {
		t.Errorf("%d tokens issued", n)
	}
}

func TestWireMissingExtraRepeatedEmptyFields(t *testing.T) {
	srv := newServer(t)
	ch := srv.NewChannel(t)
	for path, form := range validForms(t, srv, ch) {
		for name := range form {
			missing := cloneValues(form)
			missing.Del(name)
			postForm(t, srv, path, missing).wantError(t, http.StatusBadRequest, badParams)

			empty := cloneValues(form)
			empty.Set(name, "")
			postForm(t, srv, path, empty).wantError(t, http.StatusBadRequest, badParams)

			repeated := cloneValues(form)
			repeated.Add(name, form.Get(name))
			postForm(t, srv, path, repeated).wantError(t, http.StatusBadRequest, badParams)
		}
		extra := cloneValues(form)
		extra.Set("scope", "x")
		postForm(t, srv, path, extra).wantError(t, http.StatusBadRequest, badParams)

		// A field in the query string instead of the body.
		w := do(t, srv, "POST", path+"?foo=bar", "application/x-www-form-urlencoded", form.Encode(), nil)
		w.wantError(t, http.StatusBadRequest, badParams)

		// A body that does not parse.
		w = do(t, srv, "POST", path, "application/x-www-form-urlencoded", form.Encode()+"&%zz=1", nil)
		w.wantError(t, http.StatusBadRequest, badParams)
	}
	if n := srv.IssueCount(KindShortLived) + srv.IssueCount(KindV21) + srv.IssueCount(KindStateless); n != 0 {
		t.Errorf("%d tokens issued", n)
	}
}

func TestWireGETQueries(t *testing.T) {
	srv := newServer(t)
	ch := srv.NewChannel(t)
	h, c := goodAssertion(srv, ch)
	kidQuery := url.Values{
		"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
		"client_assertion":      {signJWT(t, h, c, ch.Key.PrivateKey)},
	}
	w := get(t, srv, "/oauth2/v2.1/tokens/kid", kidQuery)
	if w.status != 200 || w.body != `{"kids":[]}` {
		t.Fatalf("key IDs: %d %s", w.status, w.body)
	}
	extra := cloneValues(kidQuery)
	extra.Set("grant_type", "client_credentials")
	get(t, srv, "/oauth2/v2.1/tokens/kid", extra).wantError(t, 400, badParams)
	missing := cloneValues(kidQuery)
	missing.Del("client_assertion")
	get(t, srv, "/oauth2/v2.1/tokens/kid", missing).wantError(t, 400, badParams)
	get(t, srv, "/oauth2/v2.1/verify", url.Values{}).wantError(t, 400, badParams)
	get(t, srv, "/oauth2/v2.1/verify", url.Values{"access_token": {"a.b.c"}, "x": {"1"}}).wantError(t, 400, badParams)
}

func TestWireStatelessExactlyOneForm(t *testing.T) {
	srv := newServer(t)
	ch := srv.NewChannel(t)
	h, c := goodAssertion(srv, ch)
	delete(c, "token_exp")
	jwtForm := assertionForm(signJWT(t, h, c, ch.Key.PrivateKey))
	if w := postForm(t, srv, "/oauth2/v3/token", jwtForm); w.status != 200 {
		t.Fatalf("JWT form: %d %s", w.status, w.body)
	}
	mixed := cloneValues(jwtForm)
	mixed.Set("client_id", ch.ID)
	mixed.Set("client_secret", ch.Secret)
	postForm(t, srv, "/oauth2/v3/token", mixed).wantError(t, 400, badParams)
	half := url.Values{"grant_type": {"client_credentials"}, "client_id": {ch.ID}, "client_assertion": {jwtForm.Get("client_assertion")}}
	postForm(t, srv, "/oauth2/v3/token", half).wantError(t, 400, badParams)
	if n := srv.IssueCount(KindStateless); n != 1 {
		t.Errorf("IssueCount = %d, want 1", n)
	}
}

func TestWireGrantAndAssertionType(t *testing.T) {
	srv := newServer(t)
	ch := srv.NewChannel(t)
	h, c := goodAssertion(srv, ch)
	good := signJWT(t, h, c, ch.Key.PrivateKey)
	wrongGrant := `{"error":"invalid_request","error_description":"grant_type must be client_credentials"}`
	wrongType := `{"error":"invalid_request","error_description":"client_assertion_type must be urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}`
	for _, path := range []string{"/oauth2/v2.1/token", "/oauth2/v3/token"} {
		f := assertionForm(good)
		f.Set("grant_type", "authorization_code")
		postForm(t, srv, path, f).wantError(t, 400, wrongGrant)
		f = assertionForm(good)
		f.Set("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:saml2-bearer")
		postForm(t, srv, path, f).wantError(t, 400, wrongType)
	}
	for _, path := range []string{"/v2/oauth/accessToken", "/oauth2/v3/token"} {
		f := url.Values{"grant_type": {"password"}, "client_id": {ch.ID}, "client_secret": {ch.Secret}}
		postForm(t, srv, path, f).wantError(t, 400, wrongGrant)
	}
	q := url.Values{"client_assertion_type": {"jwt"}, "client_assertion": {good}}
	get(t, srv, "/oauth2/v2.1/tokens/kid", q).wantError(t, 400, wrongType)
}

func TestWireUnknownPathAndWrongMethod(t *testing.T) {
	srv := newServer(t)
	for _, path := range []string{"/", "/oauth2/v2.1/tokens", "/v2/oauth/accesstoken", "/oauth2/v3/token/"} {
		do(t, srv, "POST", path, "application/x-www-form-urlencoded", "", nil).wantError(t, 404, `{"message":"Not Found"}`)
	}
	for path, allow := range map[string]string{
		"/oauth2/v2.1/token":      "POST",
		"/oauth2/v2.1/tokens/kid": "GET",
		"/oauth2/v2.1/verify":     "GET",
		"/v2/oauth/verify":        "POST",
		"/oauth2/v3/token":        "POST",
	} {
		method := "GET"
		if allow == "GET" {
			method = "POST"
		}
		w := do(t, srv, method, path, "application/x-www-form-urlencoded", "", nil)
		w.wantError(t, 405, `{"message":"Method Not Allowed"}`)
		if got := w.header.Get("Allow"); got != allow {
			t.Errorf("%s: Allow = %q, want %q", path, got, allow)
		}
		if w := do(t, srv, "PUT", path, "", "", nil); w.status != 405 {
			t.Errorf("PUT %s: %d", path, w.status)
		}
	}
}

func TestWireBodySizeCap(t *testing.T) {
	srv := newServer(t)
	ch := srv.NewChannel(t)
	body := "access_token=" + strings.Repeat("A", 64<<10)
	w := do(t, srv, "POST", "/v2/oauth/verify", "application/x-www-form-urlencoded", body, nil)
	w.wantError(t, http.StatusRequestEntityTooLarge, `{"message":"Request Entity Too Large"}`)
	// Just under the cap is read (and refused as a malformed token).
	body = "access_token=" + strings.Repeat("A", 64<<10-len("access_token="))
	w = do(t, srv, "POST", "/v2/oauth/verify", "application/x-www-form-urlencoded", body, nil)
	w.wantError(t, 400, `{"error":"invalid_request","error_description":"access_token in invalid format"}`)
	_ = ch
}

func TestWireAuthorizationIgnoredRetryKeyRefused(t *testing.T) {
	srv := newServer(t)
	ch := srv.NewChannel(t)
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {ch.ID}, "client_secret": {ch.Secret}}
	hdr := http.Header{"Authorization": {"Bearer " + srv.LongLivedToken(ch.ID)}}
	w := do(t, srv, "POST", "/v2/oauth/accessToken", "application/x-www-form-urlencoded", form.Encode(), hdr)
	if w.status != 200 {
		t.Fatalf("with Authorization: %d %s", w.status, w.body)
	}
	req, _ := srv.LastRequest()
	if req.Header.Get("Authorization") == "" {
		t.Error("Authorization header not logged")
	}
	if strings.Contains(req.String(), srv.LongLivedToken(ch.ID)) {
		t.Error("Request.String shows the Authorization header")
	}
	hdr = http.Header{"X-Line-Retry-Key": {"123e4567-e89b-12d3-a456-426614174000"}}
	w = do(t, srv, "POST", "/v2/oauth/accessToken", "application/x-www-form-urlencoded", form.Encode(), hdr)
	w.wantError(t, 400, `{"error":"invalid_request","error_description":"X-Line-Retry-Key is not supported by this endpoint"}`)
}

func TestWireSuccessBodies(t *testing.T) {
	srv := newServer(t)
	ch := srv.NewChannel(t)
	h, c := goodAssertion(srv, ch)
	w := postForm(t, srv, "/oauth2/v2.1/token", assertionForm(signJWT(t, h, c, ch.Key.PrivateKey)))
	m := w.json(t)
	if len(m) != 4 || m["token_type"] != "Bearer" || m["expires_in"] != float64(3600) || m["key_id"] == "" || !isJWS(m["access_token"].(string)) {
		t.Errorf("v2.1 issue body = %v", m)
	}
	w = get(t, srv, "/oauth2/v2.1/verify", url.Values{"access_token": {m["access_token"].(string)}})
	v := w.json(t)
	if len(v) != 3 || v["client_id"] != ch.ID || v["expires_in"] != float64(3600) || v["scope"] == "" {
		t.Errorf("v2.1 verify body = %v", v)
	}
	w = postForm(t, srv, "/v2/oauth/accessToken", url.Values{"grant_type": {"client_credentials"}, "client_id": {ch.ID}, "client_secret": {ch.Secret}})
	m = w.json(t)
	if len(m) != 3 || m["expires_in"] != float64(2592000) || m["token_type"] != "Bearer" {
		t.Errorf("short-lived issue body = %v", m)
	}
	// The long-lived expires_in is above int32: it must be sent as a plain integer.
	w = postForm(t, srv, "/v2/oauth/verify", url.Values{"access_token": {srv.LongLivedToken(ch.ID)}})
	if !strings.Contains(w.body, `"expires_in":313800`) {
		t.Errorf("long-lived verify body = %s", w.body)
	}
	w = postForm(t, srv, "/v2/oauth/revoke", url.Values{"access_token": {"unknown"}})
	if w.status != 200 || w.body != "" {
		t.Errorf("revoke: %d %q, want 200 and an empty body", w.status, w.body)
	}
}

func TestWireAssertionClaims(t *testing.T) {
	srv := newServer(t)
	ch := srv.NewChannel(t)
	other := srv.NewChannel(t)
	now := srv.Now()
	otherKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	invalid := func(desc string) string {
		return `{"error":"invalid_client","error_description":"` + desc + `"}`
	}
	const notFound = `{"message":"Cannot find channel key that satisfies the conditions"}`
	mismatch := invalid("iss and clientId of key do not match")
	for _, tc := range []struct {
		name   string
		edit   func(h, c map[string]any)
		key    *rsa.PrivateKey // nil: the channel's key
		status int
		issue  string // body on v2.1 issue
		kids   string // body on the key-ID list ("" = same as issue)
	}{
		{"valid", func(h, c map[string]any) {}, nil, 200, "", ""},
		{"exp as string", func(h, c map[string]any) { c["exp"] = strconv.FormatInt(c["exp"].(int64), 10) }, nil, 400, mismatch, invalid("Invalid exp")},
		{"exp fraction", func(h, c map[string]any) { c["exp"] = float64(c["exp"].(int64)) + 0.5 }, nil, 400, mismatch, invalid("Invalid exp")},
		{"exp missing", func(h, c map[string]any) { delete(c, "exp") }, nil, 400, mismatch, invalid("Invalid exp")},
		{"exp past", func(h, c map[string]any) { c["exp"] = now.Add(-time.Second).Unix() }, nil, 400, mismatch, invalid("Invalid exp")},
		{"exp over 30 min", func(h, c map[string]any) { c["exp"] = now.Add(31 * time.Minute).Unix() }, nil, 400, mismatch, invalid("Invalid exp")},
		{"exp at 29 min", func(h, c map[string]any) { c["exp"] = now.Add(29 * time.Minute).Unix() }, nil, 200, "", ""},
		{"token_exp as string", func(h, c map[string]any) { c["token_exp"] = "3600" }, nil, 400, invalid("Invalid token_exp"), ""},
		{"token_exp over 30 days", func(h, c map[string]any) { c["token_exp"] = 2592001 }, nil, 400, invalid("Invalid token_exp"), ""},
		{"token_exp 30 days", func(h, c map[string]any) { c["token_exp"] = 2592000 }, nil, 200, "", ""},
		{"token_exp zero", func(h, c map[string]any) { c["token_exp"] = 0 }, nil, 400, invalid("Invalid token_exp"), ""},
		{"token_exp missing", func(h, c map[string]any) { delete(c, "token_exp") }, nil, 400, invalid("Invalid token_exp"), "ok"},
		{"aud without slash", func(h, c map[string]any) { c["aud"] = "https://api.line.me" }, nil, 400, invalid("Invalid aud"), ""},
		{"aud as array", func(h, c map[string]any) { c["aud"] = []string{"https://api.line.me/"} }, nil, 400, invalid("Invalid aud"), ""},
		{"aud other host", func(h, c map[string]any) { c["aud"] = "https://access.line.me/" }, nil, 400, invalid("Invalid aud"), ""},
		{"iss other channel", func(h, c map[string]any) { c["iss"], c["sub"] = other.ID, other.ID }, nil, 400, mismatch, ""},
		{"sub differs", func(h, c map[string]any) { c["sub"] = other.ID }, nil, 400, mismatch, ""},
		{"iss as number", func(h, c map[string]any) { c["iss"] = 1234567890 }, nil, 400, mismatch, ""},
		{"kid of other channel", func(h, c map[string]any) { h["kid"] = other.KeyID }, other.Key.PrivateKey, 400, mismatch, ""},
		{"kid unknown", func(h, c map[string]any) { h["kid"] = "nope" }, nil, 404, notFound, ""},
		{"kid missing", func(h, c map[string]any) { delete(h, "kid") }, nil, 404, notFound, ""},
		{"signed by another key", func(h, c map[string]any) {}, otherKey, 400, invalid("Invalid signature"), ""},
		{"alg HS256", func(h, c map[string]any) { h["alg"] = "HS256" }, nil, 400, invalid("Invalid alg"), ""},
		{"alg none", func(h, c map[string]any) { h["alg"] = "none" }, nil, 400, invalid("Invalid alg"), ""},
		{"typ missing", func(h, c map[string]any) { delete(h, "typ") }, nil, 400, invalid("Invalid typ"), ""},
		{"typ JWS", func(h, c map[string]any) { h["typ"] = "JWS" }, nil, 400, invalid("Invalid typ"), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, c := goodAssertion(srv, ch)
			c["exp"] = now.Add(25 * time.Minute).Unix()
			tc.edit(h, c)
			key := tc.key
			if key == nil {
				key = ch.Key.PrivateKey
			}
			a := signJWT(t, h, c, key)
			w := postForm(t, srv, "/oauth2/v2.1/token", assertionForm(a))
			if tc.status == 200 {
				if w.status != 200 {
					t.Fatalf("issue: %d %s", w.status, w.body)
				}
			} else {
				w.wantError(t, tc.status, tc.issue)
			}
			kids := tc.kids
			switch kids {
			case "":
				kids = tc.issue
			case "ok":
				kids = ""
			}
			q := url.Values{"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}, "client_assertion": {a}}
			w = get(t, srv, "/oauth2/v2.1/tokens/kid", q)
			if kids == "" {
				if w.status != 200 {
					t.Fatalf("key IDs: %d %s", w.status, w.body)
				}
			} else {
				w.wantError(t, tc.status, kids)
			}
			// Stateless by JWT: the same 404, and for any other refusal
			// the endpoint's one documented 400, never invalid_client.
			// token_exp is optional there, as on the key-ID list.
			w = postForm(t, srv, "/oauth2/v3/token", assertionForm(a))
			switch {
			case tc.status == 200 || tc.kids == "ok":
				if w.status != 200 {
					t.Fatalf("stateless: %d %s", w.status, w.body)
				}
			case tc.status == 404:
				w.wantError(t, 404, notFound)
			default:
				w.wantError(t, 400, badStatelessCredentials)
			}
		})
	}
	// A bad or malformed assertion string.
	for a, desc := range map[string]string{
		"x":                   "Invalid client_assertion",
		"a.b.c":               "Invalid client_assertion",
		"not base64!.e30.e30": "Invalid client_assertion",
		"e30.e30.e30":         "Invalid alg",
	} {
		postForm(t, srv, "/oauth2/v2.1/token", assertionForm(a)).wantError(t, 400, invalid(desc))
		postForm(t, srv, "/oauth2/v3/token", assertionForm(a)).wantError(t, 400, badStatelessCredentials)
	}
}

// TestWireCacheControlAndRequestID checks that every answer of every
// endpoint, success or error, carries Cache-Control: no-store and an
// X-Line-Request-Id, and that an injected fault's answer carries neither.
func TestWireCacheControlAndRequestID(t *testing.T) {
	srv := newServer(t)
	ch := srv.NewChannel(t)
	limited := newServer(t, WithShortLivedRateLimit(1))
	lch := limited.NewChannel(t)
	forms := validForms(t, srv, ch)
	h, c := goodAssertion(srv, ch)
	delete(c, "token_exp")
	kidsAssertion := signJWT(t, h, c, ch.Key.PrivateKey)
	v21 := postForm(t, srv, "/oauth2/v2.1/token", forms["/oauth2/v2.1/token"]).json(t)["access_token"].(string)
	secretForm := func(id, secret string) url.Values {
		return url.Values{"grant_type": {"client_credentials"}, "client_id": {id}, "client_secret": {secret}}
	}
	shortForm := secretForm(lch.ID, lch.Secret)
	retryKey := http.Header{"X-Line-Retry-Key": {"123e4567-e89b-12d3-a456-426614174000"}}
	const ct = "application/x-www-form-urlencoded"
	for _, tc := range []struct {
		name   string
		send   func() wire
		status int
	}{
		{"v2.1 issue", func() wire {
			// A fresh assertion: the valid form's was used above.
			h, c := goodAssertion(srv, ch)
			return postForm(t, srv, "/oauth2/v2.1/token", assertionForm(signJWT(t, h, c, ch.Key.PrivateKey)))
		}, 200},
		{"v2.1 issue, bad assertion", func() wire { return postForm(t, srv, "/oauth2/v2.1/token", assertionForm("x")) }, 400},
		{"v2.1 issue, kid unknown", func() wire {
			h, c := goodAssertion(srv, ch)
			h["kid"] = "nope"
			return postForm(t, srv, "/oauth2/v2.1/token", assertionForm(signJWT(t, h, c, ch.Key.PrivateKey)))
		}, 404},
		{"key IDs", func() wire {
			return get(t, srv, "/oauth2/v2.1/tokens/kid", url.Values{
				"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
				"client_assertion":      {kidsAssertion},
			})
		}, 200},
		{"key IDs, missing field", func() wire { return get(t, srv, "/oauth2/v2.1/tokens/kid", url.Values{}) }, 400},
		{"v2.1 verify", func() wire { return get(t, srv, "/oauth2/v2.1/verify", url.Values{"access_token": {v21}}) }, 200},
		{"v2.1 verify, not JWS", func() wire { return get(t, srv, "/oauth2/v2.1/verify", url.Values{"access_token": {"a.b"}}) }, 400},
		{"v2.1 revoke", func() wire { return postForm(t, srv, "/oauth2/v2.1/revoke", forms["/oauth2/v2.1/revoke"]) }, 200},
		{"v2.1 revoke, wrong secret", func() wire {
			f := cloneValues(forms["/oauth2/v2.1/revoke"])
			f.Set("client_secret", "wrong")
			return postForm(t, srv, "/oauth2/v2.1/revoke", f)
		}, 400},
		{"short-lived issue", func() wire { return postForm(t, limited, "/v2/oauth/accessToken", shortForm) }, 200},
		{"short-lived issue, rate limited", func() wire { return postForm(t, limited, "/v2/oauth/accessToken", shortForm) }, 429},
		{"short-lived issue, wrong secret", func() wire {
			return postForm(t, srv, "/v2/oauth/accessToken", secretForm(ch.ID, "wrong"))
		}, 400},
		{"v2 verify", func() wire { return postForm(t, srv, "/v2/oauth/verify", forms["/v2/oauth/verify"]) }, 200},
		{"v2 verify, malformed", func() wire {
			return postForm(t, srv, "/v2/oauth/verify", url.Values{"access_token": {"not a token!"}})
		}, 400},
		{"v2 revoke", func() wire { return postForm(t, srv, "/v2/oauth/revoke", forms["/v2/oauth/revoke"]) }, 200},
		{"v2 revoke, malformed", func() wire {
			return postForm(t, srv, "/v2/oauth/revoke", url.Values{"access_token": {"not a token!"}})
		}, 400},
		{"stateless by secret", func() wire { return postForm(t, srv, "/oauth2/v3/token", secretForm(ch.ID, ch.Secret)) }, 200},
		{"stateless by secret, wrong secret", func() wire {
			return postForm(t, srv, "/oauth2/v3/token", secretForm(ch.ID, "wrong"))
		}, 400},
		{"stateless by JWT", func() wire {
			return postForm(t, srv, "/oauth2/v3/token", assertionForm(kidsAssertion))
		}, 200},
		{"stateless by JWT, bad assertion", func() wire { return postForm(t, srv, "/oauth2/v3/token", assertionForm("x")) }, 400},
		{"wrong Content-Type", func() wire {
			return do(t, srv, "POST", "/v2/oauth/verify", "text/plain", forms["/v2/oauth/verify"].Encode(), nil)
		}, 400},
		{"X-Line-Retry-Key", func() wire {
			return do(t, srv, "POST", "/v2/oauth/verify", ct, forms["/v2/oauth/verify"].Encode(), retryKey)
		}, 400},
		{"unknown path", func() wire { return do(t, srv, "POST", "/nowhere", ct, "", nil) }, 404},
		{"wrong method", func() wire { return do(t, srv, "GET", "/v2/oauth/verify", "", "", nil) }, 405},
		{"body too large", func() wire {
			return do(t, srv, "POST", "/v2/oauth/verify", ct, "access_token="+strings.Repeat("A", 64<<10), nil)
		}, 413},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := tc.send()
			if w.status != tc.status {
				t.Fatalf("status = %d, want %d (body %s)", w.status, tc.status, w.body)
			}
			if got := w.header.Values("Cache-Control"); len(got) != 1 || got[0] != "no-store" {
				t.Errorf("Cache-Control = %q, want exactly no-store", got)
			}
			if id := w.header.Get("X-Line-Request-Id"); !requestIDs.MatchString(id) {
				t.Errorf("X-Line-Request-Id = %q, want 32 hex digits", id)
			}
		})
	}

	// An injected fault answers exactly what it says.
	srv.FailNext(1, http.StatusInternalServerError, `{"message":"Internal Server Error"}`)
	w := postForm(t, srv, "/v2/oauth/verify", forms["/v2/oauth/verify"])
	if w.status != 500 || w.header.Get("Cache-Control") != "" || w.header.Get("X-Line-Request-Id") != "" {
		t.Errorf("fault: %d, Cache-Control %q, X-Line-Request-Id %q; want 500 and neither header",
			w.status, w.header.Get("Cache-Control"), w.header.Get("X-Line-Request-Id"))
	}
	srv.InjectFault(1, Fault{Status: 503, Body: `{}`, Header: http.Header{"Cache-Control": {"max-age=60"}}})
	w = postForm(t, srv, "/v2/oauth/verify", forms["/v2/oauth/verify"])
	if got := w.header.Values("Cache-Control"); w.status != 503 || len(got) != 1 || got[0] != "max-age=60" {
		t.Errorf("fault with its own Cache-Control: %d %q", w.status, got)
	}
}

// TestWireShortLivedRateLimitCountsRefusedRequests checks that every
// POST to the short-lived issue endpoint counts toward the rate limit,
// whatever its answer (doc.go, "Choices where LINE documents nothing"),
// and that other endpoints, other methods and faults do not.
func TestWireShortLivedRateLimitCountsRefusedRequests(t *testing.T) {
	const path = "/v2/oauth/accessToken"
	srv := newServer(t, WithShortLivedRateLimit(5))
	ch := srv.NewChannel(t)
	good := url.Values{"grant_type": {"client_credentials"}, "client_id": {ch.ID}, "client_secret": {ch.Secret}}
	wrongSecret := cloneValues(good)
	wrongSecret.Set("client_secret", "wrong")
	missing := cloneValues(good)
	missing.Del("grant_type")
	const ct = "application/x-www-form-urlencoded"
	const tooMany = `{"message":"Too many requests"}`
	retryKey := http.Header{"X-Line-Retry-Key": {"123e4567-e89b-12d3-a456-426614174000"}}

	// Neither a fault's answer, nor a wrong method, nor another endpoint
	// counts.
	for range 3 {
		do(t, srv, "GET", path, "", "", nil).wantError(t, http.StatusMethodNotAllowed, `{"message":"Method Not Allowed"}`)
	}
	srv.FailNext(3, http.StatusInternalServerError, `{"message":"Internal Server Error"}`)
	for range 3 {
		if w := postForm(t, srv, path, good); w.status != 500 {
			t.Fatalf("fault: %d %s", w.status, w.body)
		}
	}
	for range 3 {
		if w := postForm(t, srv, "/oauth2/v3/token", good); w.status != 200 {
			t.Fatalf("stateless: %d %s", w.status, w.body)
		}
	}

	// Five refused requests use up the second...
	postForm(t, srv, path, wrongSecret).wantError(t, 400,
		`{"error":"invalid_client","error_description":"invalid client_secret"}`)
	postForm(t, srv, path, missing).wantError(t, 400, badParams)
	do(t, srv, "POST", path, "text/plain", good.Encode(), nil).wantError(t, 400, badCT)
	do(t, srv, "POST", path, ct, good.Encode(), retryKey).wantError(t, 400,
		`{"error":"invalid_request","error_description":"X-Line-Retry-Key is not supported by this endpoint"}`)
	postForm(t, srv, path, wrongSecret).wantError(t, 400,
		`{"error":"invalid_client","error_description":"invalid client_secret"}`)
	// ...so a valid one is refused, and so is every request after it.
	postForm(t, srv, path, good).wantError(t, http.StatusTooManyRequests, tooMany)
	do(t, srv, "POST", path, ct, good.Encode(), retryKey).wantError(t, http.StatusTooManyRequests, tooMany)
	if n := srv.IssueCount(KindShortLived); n != 0 {
		t.Errorf("IssueCount = %d, want 0", n)
	}

	// A second later the window is new.
	srv.Advance(time.Second)
	if w := postForm(t, srv, path, good); w.status != 200 {
		t.Fatalf("next second: %d %s", w.status, w.body)
	}
	// That request opened the window: four refused ones fill it.
	for range 4 {
		postForm(t, srv, path, wrongSecret)
	}
	postForm(t, srv, path, good).wantError(t, http.StatusTooManyRequests, tooMany)
	if st := srv.Stats(); st.Issued[KindShortLived] != 1 || st.IssueRequests[KindShortLived] != 3+7+6 {
		t.Errorf("stats = %+v", st)
	}
}
