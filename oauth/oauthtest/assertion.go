package oauthtest

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	jwt "github.com/golang-jwt/jwt/v5"
)

// assertionUse is the endpoint an assertion was sent to: it decides the
// error texts.
type assertionUse int

const (
	useIssueV21 assertionUse = iota
	useKeyIDs
	useStateless
)

// assertion is what a valid client assertion says.
type assertion struct {
	channelID string
	tokenExp  int64 // seconds; 0 when absent
}

// checkAssertion verifies a JWT client assertion the way LINE does (LINE
// guide "Issue channel access token v2.1"): header alg RS256, typ JWT and
// a registered kid; an RS256 signature by that key; iss = sub = the
// key's channel; aud exactly "https://api.line.me/"; exp a JSON integer
// in (now, now+30min]; token_exp, when present (required for v2.1 issue),
// a JSON integer in [1, 2592000].
//
// An unregistered kid is 404 on every endpoint (documented). Any other
// failure is 400: on the stateless endpoint LINE's one documented answer,
// invalid_request "Invalid 'client_credentials'."; elsewhere
// invalid_client with a description saying what is wrong (doc.go lists
// which descriptions LINE documents and which are this fake's choice).
func (s *Server) checkAssertion(raw string, use assertionUse, now time.Time) (assertion, *response) {
	invalid := func(desc string) (assertion, *response) {
		r := oauthError(http.StatusBadRequest, codeInvalidClient, desc)
		if use == useStateless {
			// LINE documents this body for the stateless endpoint
			// whatever the form, and no invalid_client there.
			r = badRequest(descBadCredentials)
		}
		return assertion{}, &r
	}
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return invalid(descBadAssertion)
	}
	hdrJSON, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		return invalid(descBadAssertion)
	}
	var hdr map[string]any
	if err := json.Unmarshal(hdrJSON, &hdr); err != nil {
		return invalid(descBadAssertion)
	}
	if hdr["alg"] != "RS256" {
		return invalid("Invalid alg")
	}
	if hdr["typ"] != "JWT" {
		return invalid("Invalid typ")
	}
	kid, _ := hdr["kid"].(string)
	s.mu.Lock()
	key, ok := s.keys[kid]
	s.mu.Unlock()
	if !ok {
		r := messageError(http.StatusNotFound, msgKeyNotFound)
		return assertion{}, &r
	}

	claims := jwt.MapClaims{}
	_, err = jwt.NewParser(
		jwt.WithValidMethods([]string{"RS256"}),
		jwt.WithJSONNumber(),
		jwt.WithoutClaimsValidation(),
	).ParseWithClaims(raw, claims, func(*jwt.Token) (any, error) { return key.key, nil })
	switch {
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return invalid("Invalid signature")
	case err != nil:
		return invalid(descBadAssertion)
	}
	// golang-jwt stops decoding after the first JSON value; the claims
	// segment must be exactly one JSON object.
	if payload, err := base64.RawURLEncoding.DecodeString(parts[1]); err != nil || !json.Valid(payload) {
		return invalid(descBadAssertion)
	}

	iss, _ := claims["iss"].(string)
	sub, _ := claims["sub"].(string)
	if iss != key.channelID || sub != key.channelID {
		// LINE documents this text for v2.1 issue; the key-ID list
		// reuses it (a choice: LINE documents only "Invalid exp" there).
		return invalid(descIssMismatch)
	}
	if aud, _ := claims["aud"].(string); aud != assertionAudience {
		return invalid("Invalid aud")
	}
	exp, ok := intClaim(claims, "exp")
	if !ok || exp <= now.Unix() || exp > now.Add(maxAssertionAhead).Unix() {
		if use == useKeyIDs {
			return invalid(descInvalidExp)
		}
		// LINE documents this text for a bad or expired assertion on
		// v2.1 issue (the stateless endpoint answers its own text).
		return invalid(descIssMismatch)
	}
	var a assertion
	a.channelID = key.channelID
	if _, present := claims["token_exp"]; present || use == useIssueV21 {
		te, ok := intClaim(claims, "token_exp")
		if !ok || te < 1 || te > maxTokenExp {
			return invalid("Invalid token_exp")
		}
		a.tokenExp = te
	}
	return a, nil
}

// intClaim reads a claim that must be a JSON integer (not a string, not a
// fraction).
func intClaim(claims jwt.MapClaims, name string) (int64, bool) {
	n, ok := claims[name].(json.Number)
	if !ok {
		return 0, false
	}
	v, err := n.Int64()
	return v, err == nil
}
