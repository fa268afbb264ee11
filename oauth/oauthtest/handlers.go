package oauthtest

import (
	"io"
	"mime"
	"net/http"
	"net/url"
	"time"
)

// Wire constants (LINE reference, "Channel access token").
const (
	grantClientCredentials = "client_credentials"
	assertionTypeJWTBearer = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
	contentTypeForm        = "application/x-www-form-urlencoded"
	contentTypeJSON        = "application/json"
	headerRequestID        = "X-Line-Request-Id"
	headerRetryKey         = "X-Line-Retry-Key"
	tokenTypeBearer        = "Bearer"
	// scopeV21 and scopeV2 are the scopes verify reports (LINE's examples).
	scopeV21 = "profile chat_message.write"
	scopeV2  = "P CM"
)

// LINE's error codes and texts (LINE-TOKEN-API.md, "Errors").
const (
	codeInvalidClient   = "invalid_client"
	codeInvalidRequest  = "invalid_request"
	msgKeyNotFound      = "Cannot find channel key that satisfies the conditions"
	msgTokenLimit       = "The maximum number of access tokens has already been issued"
	descIssMismatch     = "iss and clientId of key do not match"
	descInvalidExp      = "Invalid exp"
	descNotJWS          = "The access token not JWS"
	descMalformed       = "The access token malformed"
	descExpired         = "The access token expired"
	descV2Invalid       = "access_token invalid"
	descV2Format        = "access_token in invalid format"
	descBadClientID     = "invalid client_id"
	descBadClientSecret = "invalid client_secret"
	descBadCredentials  = "Invalid 'client_credentials'."
	// descBadParams is the upstream spec's example text for a request
	// whose fields are missing, extra or invalid.
	descBadParams = "some parameters missed or invalid"
)

// Texts LINE documents nothing for: this fake's choices (doc.go, "Choices
// where LINE documents nothing").
const (
	// msgTooManyRequests: LINE documents the 429, not its body.
	msgTooManyRequests = "Too many requests"
	descBadAssertion   = "Invalid client_assertion"
)

// response is what an endpoint answers.
type response struct {
	status      int
	body        any    // encoded as JSON; nil: empty body
	raw         []byte // used instead of body when set (faults)
	contentType string // "" means application/json
	header      http.Header
	fault       bool
	// requestID is the X-Line-Request-Id to answer; "" makes one.
	requestID string
	// stream, when set, writes a body of length bytes instead of body or
	// raw (content downloads, never held whole).
	stream func(w io.Writer)
	length int64
}

// errorBody is LINE's error JSON: OAuth style or {"message"}.
type errorBody struct {
	Error            string `json:"error,omitempty"`
	ErrorDescription string `json:"error_description,omitempty"`
	Message          string `json:"message,omitempty"`
}

func oauthError(status int, code, desc string) response {
	return response{status: status, body: errorBody{Error: code, ErrorDescription: desc}}
}

func badRequest(desc string) response {
	return oauthError(http.StatusBadRequest, codeInvalidRequest, desc)
}

func messageError(status int, msg string) response {
	return response{status: status, body: errorBody{Message: msg}}
}

func ok(body any) response { return response{status: http.StatusOK, body: body} }

// route is one endpoint.
type route struct {
	method string
	kind   Kind // the kind an issue endpoint issues; 0 otherwise
	handle func(s *Server, in *input, now time.Time) response
}

// routeFor returns the endpoint served at path.
func routeFor(path string) (route, bool) {
	switch path {
	case "/oauth2/v2.1/token":
		return route{http.MethodPost, KindV21, (*Server).issueV21}, true
	case "/oauth2/v2.1/tokens/kid":
		return route{http.MethodGet, 0, (*Server).keyIDs}, true
	case "/oauth2/v2.1/verify":
		return route{http.MethodGet, 0, (*Server).verifyV21}, true
	case "/oauth2/v2.1/revoke":
		return route{http.MethodPost, 0, (*Server).revokeV21}, true
	case "/v2/oauth/accessToken":
		return route{http.MethodPost, KindShortLived, (*Server).issueShortLived}, true
	case "/v2/oauth/verify":
		return route{http.MethodPost, 0, (*Server).verifyV2}, true
	case "/v2/oauth/revoke":
		return route{http.MethodPost, 0, (*Server).revokeV2}, true
	case "/oauth2/v3/token":
		return route{http.MethodPost, KindStateless, (*Server).issueStateless}, true
	}
	return route{}, false
}

// input is a request as an endpoint sees it.
type input struct {
	params url.Values // the form of a POST, the query of a GET
}

// dispatch checks the request's framing and runs its endpoint.
func (s *Server) dispatch(hr *http.Request, form url.Values, formErr error, now time.Time) response {
	rt, found := routeFor(hr.URL.Path)
	if !found {
		return messageError(http.StatusNotFound, "Not Found")
	}
	if hr.Method != rt.method {
		r := messageError(http.StatusMethodNotAllowed, "Method Not Allowed")
		r.header = http.Header{"Allow": {rt.method}}
		return r
	}
	// The short-lived rate limit counts every request the endpoint
	// answers with its method, refused ones included, so it comes before
	// every check of the request itself.
	if rt.kind == KindShortLived && s.rateLimited(now) {
		return messageError(http.StatusTooManyRequests, msgTooManyRequests)
	}
	if hr.Header.Get(headerRetryKey) != "" {
		return badRequest(headerRetryKey + " is not supported by this endpoint")
	}
	in := &input{}
	if rt.method == http.MethodPost {
		mt, _, err := mime.ParseMediaType(hr.Header.Get("Content-Type"))
		if err != nil || mt != contentTypeForm {
			return badRequest("Content-Type must be " + contentTypeForm)
		}
		if formErr != nil {
			return badRequest(descBadParams)
		}
		if hr.URL.RawQuery != "" {
			return badRequest(descBadParams) // every field belongs in the body
		}
		in.params = form
	} else {
		q, err := url.ParseQuery(hr.URL.RawQuery)
		if err != nil {
			return badRequest(descBadParams)
		}
		in.params = q
	}
	return rt.handle(s, in, now)
}

// exactly checks that the parameters are exactly names, each once and
// non-empty.
func (in *input) exactly(names ...string) bool {
	if len(in.params) != len(names) {
		return false
	}
	for _, n := range names {
		if v, ok := in.params[n]; !ok || len(v) != 1 || v[0] == "" {
			return false
		}
	}
	return true
}

func (in *input) get(name string) string { return in.params.Get(name) }

// rateLimited counts a short-lived issue request and reports whether it is
// past the limit of WithShortLivedRateLimit.
func (s *Server) rateLimited(now time.Time) bool {
	limit := s.opts.shortLivedPerSecond
	if limit <= 0 {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	w := &s.rate
	if w.start.IsZero() || !now.Before(w.start.Add(time.Second)) || now.Before(w.start) {
		w.start, w.count = now, 0
	}
	w.count++
	return w.count > limit
}

// checkSecret checks a channel ID and secret, answering LINE's
// invalid_client texts.
func (s *Server) checkSecret(id, secret string) *response {
	s.mu.Lock()
	c, found := s.channels[id]
	s.mu.Unlock()
	var r response
	switch {
	case !found:
		r = oauthError(http.StatusBadRequest, codeInvalidClient, descBadClientID)
	case c.secret != secret:
		r = oauthError(http.StatusBadRequest, codeInvalidClient, descBadClientSecret)
	default:
		return nil
	}
	return &r
}

// checkAssertionForm checks grant_type/client_assertion_type and the
// assertion of a JWT-form request.
func (s *Server) checkAssertionForm(in *input, use assertionUse, now time.Time) (assertion, *response) {
	if use != useKeyIDs && in.get("grant_type") != grantClientCredentials {
		r := badRequest("grant_type must be " + grantClientCredentials)
		return assertion{}, &r
	}
	if in.get("client_assertion_type") != assertionTypeJWTBearer {
		r := badRequest("client_assertion_type must be " + assertionTypeJWTBearer)
		return assertion{}, &r
	}
	return s.checkAssertion(in.get("client_assertion"), use, now)
}

// issueV21 is POST /oauth2/v2.1/token.
func (s *Server) issueV21(in *input, now time.Time) response {
	if !in.exactly("grant_type", "client_assertion_type", "client_assertion") {
		return badRequest(descBadParams)
	}
	a, errResp := s.checkAssertionForm(in, useIssueV21, now)
	if errResp != nil {
		return *errResp
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.channels[a.channelID]
	active := c.v21[:0]
	for _, t := range c.v21 {
		if t.active(now) {
			active = append(active, t)
		}
	}
	c.v21 = active
	if len(active) >= maxActiveV21 {
		return messageError(http.StatusBadRequest, msgTokenLimit)
	}
	lifetime := time.Duration(a.tokenExp) * time.Second
	kid := newKeyID()
	t := &token{
		kind:      KindV21,
		value:     s.mint(kindClaimV21, c.id, kid, now, now.Add(lifetime)),
		channelID: c.id,
		keyID:     kid,
		expiry:    now.Add(lifetime),
	}
	c.v21 = append(c.v21, t)
	s.tokens[t.value] = t
	s.stats.Issued[KindV21]++
	return ok(struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
		ExpiresIn   int64  `json:"expires_in"`
		KeyID       string `json:"key_id"`
	}{t.value, tokenTypeBearer, a.tokenExp, kid})
}

// keyIDs is GET /oauth2/v2.1/tokens/kid.
func (s *Server) keyIDs(in *input, now time.Time) response {
	if !in.exactly("client_assertion_type", "client_assertion") {
		return badRequest(descBadParams)
	}
	a, errResp := s.checkAssertionForm(in, useKeyIDs, now)
	if errResp != nil {
		return *errResp
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	kids := []string{}
	for _, t := range s.channels[a.channelID].v21 {
		if t.active(now) {
			kids = append(kids, t.keyID)
		}
	}
	return ok(struct {
		Kids []string `json:"kids"`
	}{kids})
}

type verifyBody struct {
	ClientID  string `json:"client_id"`
	ExpiresIn int64  `json:"expires_in"`
	Scope     string `json:"scope"`
}

// verifyV21 is GET /oauth2/v2.1/verify.
func (s *Server) verifyV21(in *input, now time.Time) response {
	if !in.exactly("access_token") {
		return badRequest(descBadParams)
	}
	v := in.get("access_token")
	if p := jwsProblem(v); p != "" {
		return badRequest(p)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t, found := s.tokens[v]
	switch {
	case !found || t.kind != KindV21 || t.revoked:
		return badRequest(descV2Invalid)
	case !t.active(now):
		return badRequest(descExpired)
	}
	return ok(verifyBody{t.channelID, expiresIn(t.expiry, now), scopeV21})
}

// revokeV21 is POST /oauth2/v2.1/revoke.
func (s *Server) revokeV21(in *input, now time.Time) response {
	if !in.exactly("client_id", "client_secret", "access_token") {
		return badRequest(descBadParams)
	}
	if r := s.checkSecret(in.get("client_id"), in.get("client_secret")); r != nil {
		return *r
	}
	v := in.get("access_token")
	if p := jwsProblem(v); p != "" {
		return badRequest(p)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if t, found := s.tokens[v]; found && t.kind == KindV21 && t.channelID == in.get("client_id") && t.active(now) {
		t.revoked = true
		s.stats.Revoked[KindV21]++
	}
	return ok(nil)
}

// issueShortLived is POST /v2/oauth/accessToken.
func (s *Server) issueShortLived(in *input, now time.Time) response {
	if !in.exactly("grant_type", "client_id", "client_secret") {
		return badRequest(descBadParams)
	}
	if in.get("grant_type") != grantClientCredentials {
		return badRequest("grant_type must be " + grantClientCredentials)
	}
	if r := s.checkSecret(in.get("client_id"), in.get("client_secret")); r != nil {
		return *r
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.channels[in.get("client_id")]
	active := c.short[:0]
	for _, t := range c.short {
		if t.active(now) {
			active = append(active, t)
		}
	}
	for len(active) >= maxShortLived {
		active[0].revoked = true
		s.stats.Revoked[KindShortLived]++
		active = active[1:]
	}
	t := &token{kind: KindShortLived, value: opaqueToken(), channelID: c.id, expiry: now.Add(shortLivedLifetime)}
	c.short = append(append([]*token(nil), active...), t)
	s.tokens[t.value] = t
	s.stats.Issued[KindShortLived]++
	return ok(struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   int64  `json:"expires_in"`
		TokenType   string `json:"token_type"`
	}{t.value, int64(shortLivedLifetime / time.Second), tokenTypeBearer})
}

// verifyV2 is POST /v2/oauth/verify.
func (s *Server) verifyV2(in *input, now time.Time) response {
	if !in.exactly("access_token") {
		return badRequest(descBadParams)
	}
	v := in.get("access_token")
	if !opaqueWellFormed(v) {
		return badRequest(descV2Format)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t, found := s.tokens[v]
	if !found || (t.kind != KindShortLived && t.kind != KindLongLived) || !t.active(now) {
		return badRequest(descV2Invalid)
	}
	return ok(verifyBody{t.channelID, expiresIn(t.expiry, now), scopeV2})
}

// revokeV2 is POST /v2/oauth/revoke.
func (s *Server) revokeV2(in *input, now time.Time) response {
	if !in.exactly("access_token") {
		return badRequest(descBadParams)
	}
	v := in.get("access_token")
	if !opaqueWellFormed(v) {
		return response{status: http.StatusBadRequest, body: errorBody{Error: codeInvalidRequest}}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if t, found := s.tokens[v]; found && (t.kind == KindShortLived || t.kind == KindLongLived) && t.active(now) {
		t.revoked = true
		s.stats.Revoked[t.kind]++
	}
	return ok(nil)
}

// issueStateless is POST /oauth2/v3/token, in either form.
func (s *Server) issueStateless(in *input, now time.Time) response {
	var channelID string
	switch {
	case in.exactly("grant_type", "client_id", "client_secret"):
		if in.get("grant_type") != grantClientCredentials {
			return badRequest("grant_type must be " + grantClientCredentials)
		}
		if s.checkSecret(in.get("client_id"), in.get("client_secret")) != nil {
			return badRequest(descBadCredentials)
		}
		channelID = in.get("client_id")
	case in.exactly("grant_type", "client_assertion_type", "client_assertion"):
		a, errResp := s.checkAssertionForm(in, useStateless, now)
		if errResp != nil {
			return *errResp
		}
		channelID = a.channelID
	default:
		return badRequest(descBadParams)
	}
	// exp is whole seconds, so the token lives 899 to 900 seconds, and
	// expires_in says which (LINE's example says 899).
	exp := now.Add(statelessLifetime).Truncate(time.Second)
	v := s.mint(kindClaimStateless, channelID, newKeyID(), now, exp)
	s.mu.Lock()
	s.stats.Issued[KindStateless]++
	s.mu.Unlock()
	return ok(struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   int64  `json:"expires_in"`
		TokenType   string `json:"token_type"`
	}{v, int64(exp.Sub(now) / time.Second), tokenTypeBearer})
}
