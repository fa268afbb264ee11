package oauth

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Sentinel errors. Use errors.Is: an [*APIError] matches the sentinel that
// fits its status and body, and input refused before any request is sent
// matches [ErrInvalidInput].
var (
	// ErrTokenLimitReached: the channel already has the maximum number of
	// active v2.1 tokens (30); revoke one or wait for one to expire.
	ErrTokenLimitReached = errors.New("oauth: maximum number of access tokens already issued")
	// ErrKeyNotRegistered: the assertion's kid names no key registered for
	// the channel (LINE answers 404 "Cannot find channel key that satisfies
	// the conditions").
	ErrKeyNotRegistered = errors.New("oauth: assertion key not registered for the channel")
	// ErrInvalidCredentials: LINE refused the channel ID, channel secret or
	// JWT assertion (400 invalid_client, or the stateless endpoint's
	// "Invalid 'client_credentials'.").
	ErrInvalidCredentials = errors.New("oauth: invalid client credentials")
	// ErrInvalidToken: a verify or revoke endpoint refused the access token
	// (expired, revoked, unknown, malformed, not JWS).
	ErrInvalidToken = errors.New("oauth: invalid access token")
	// ErrRateLimited: LINE answered 429 Too Many Requests.
	ErrRateLimited = errors.New("oauth: rate limited")
	// ErrInvalidInput: the call was refused before any request was sent
	// (a lifetime out of range, no key for a JWT operation, an empty token,
	// an unusable key).
	ErrInvalidInput = errors.New("oauth: invalid input")
	// ErrMalformedResponse: LINE answered 2xx with a body that is not the
	// documented JSON (not JSON, a required field missing or of the wrong
	// type, or larger than the size cap). Never a zero [Token].
	ErrMalformedResponse = errors.New("oauth: malformed response")
	// ErrStoreUnavailable: a [TokenSource] could not use its [Store] (Load,
	// Lock or Save failed: Redis down, a file that cannot be read or
	// written). The error also unwraps to the store's own error, e.g. a
	// *net.OpError or a syscall.Errno. A lost lock ([ErrLockLost]) or an
	// ended context is not this: the store worked.
	ErrStoreUnavailable = errors.New("oauth: token store unreachable")
)

// LINE's error texts that select a sentinel (../shared/LINE-TOKEN-API.md).
const (
	msgTokenLimit           = "maximum number of access tokens"
	msgKeyNotFound          = "cannot find channel key"
	msgClientCredentials    = "invalid 'client_credentials'"
	msgParameters           = "parameter" // "some parameters missed or invalid": the request, not the token
	codeInvalidClient       = "invalid_client"
	headerRequestID         = "X-Line-Request-Id"
	headerRetryAfter        = "Retry-After"
	maxRetryAfter           = 24 * time.Hour // a longer Retry-After is treated as this
	maxErrorTextLen         = 512            // cap on each error text kept from a body
	maxQuotedLen            = 300            // cap on each text as quoted in Error()
	bodyKindJSON            = ""             // the body was an ErrorResponse
	bodyKindEmpty           = "empty body"
	bodyKindNotJSON         = "non-JSON body"
	bodyKindTooLarge        = "body over the size cap"
	bodyKindCutShort        = "body cut short"
	operationVerifyV21      = "verifyChannelTokenByJWT"
	operationRevokeV21      = "revokeChannelTokenByJWT"
	operationVerifyShort    = "verifyChannelToken"
	operationRevokeShort    = "revokeChannelToken"
	operationIssueV21       = "issueChannelTokenByJWT"
	operationKeyIDs         = "getsAllValidChannelAccessTokenKeyIds"
	operationIssueShort     = "issueChannelToken"
	operationIssueStateless = "issueStatelessChannelToken"
)

// APIError is LINE's answer to a request that did not succeed: any status
// outside 2xx. errors.Is matches it against the sentinel errors (see
// [APIError.Is]); [APIError.Temporary] tells whether a retry may help.
type APIError struct {
	// Operation is the upstream operationId, e.g. "issueChannelTokenByJWT".
	Operation string
	// StatusCode is the HTTP status.
	StatusCode int
	// Code, Description and Message are the body's "error",
	// "error_description" and "message" (LINE sends one of two shapes).
	Code, Description, Message string
	// RequestID is the X-Line-Request-Id header, when present.
	RequestID string
	// RetryAfter is the Retry-After header (seconds or HTTP date), when present.
	RetryAfter time.Duration

	bodyKind string // bodyKindJSON or why the body could not be read as one
}

// Error describes the failure without any secret: only the operation,
// status and LINE's own error texts.
func (e *APIError) Error() string {
	var b strings.Builder
	b.WriteString("oauth: ")
	b.WriteString(e.Operation)
	b.WriteString(": HTTP ")
	b.WriteString(strconv.Itoa(e.StatusCode))
	if t := http.StatusText(e.StatusCode); t != "" {
		b.WriteByte(' ')
		b.WriteString(t)
	}
	var parts []string
	if e.Code != "" {
		parts = append(parts, quoteCapped(e.Code))
	}
	if e.Description != "" {
		parts = append(parts, quoteCapped(e.Description))
	}
	if e.Message != "" {
		parts = append(parts, quoteCapped(e.Message))
	}
	if e.bodyKind != bodyKindJSON {
		parts = append(parts, "("+e.bodyKind+")")
	}
	if len(parts) > 0 {
		b.WriteString(": ")
		b.WriteString(strings.Join(parts, " "))
	}
	if e.RetryAfter > 0 {
		fmt.Fprintf(&b, " (retry after %v)", e.RetryAfter)
	}
	if e.RequestID != "" {
		b.WriteString(" [request ")
		b.WriteString(quoteCapped(e.RequestID))
		b.WriteByte(']')
	}
	return b.String()
}

// quoteCapped quotes a text from LINE's answer (so a newline cannot forge
// a log line) and caps the result at maxQuotedLen bytes.
func quoteCapped(s string) string {
	q := strconv.Quote(s)
	if len(q) <= maxQuotedLen {
		return q
	}
	cut := maxQuotedLen - 4
	for cut > 0 && q[cut-1] == '\\' { // do not split an escape
		cut--
	}
	return q[:cut] + `..."`
}

// Temporary reports whether the failure may pass if the request is
// retried later: a 5xx or a 429.
func (e *APIError) Temporary() bool {
	return e.StatusCode >= 500 || e.StatusCode == http.StatusTooManyRequests
}

// Is matches e against the sentinels, following LINE's documented bodies:
// 429 is [ErrRateLimited]; 404 "Cannot find channel key..." is
// [ErrKeyNotRegistered]; 400 "The maximum number of access tokens..." is
// [ErrTokenLimitReached]; 400 invalid_client and the stateless endpoint's
// "Invalid 'client_credentials'." are [ErrInvalidCredentials]; any other
// 400 from a verify or revoke endpoint, except one about the request's
// parameters, is [ErrInvalidToken].
func (e *APIError) Is(target error) bool {
	switch target {
	case ErrRateLimited:
		return e.StatusCode == http.StatusTooManyRequests
	case ErrKeyNotRegistered:
		return e.StatusCode == http.StatusNotFound && e.says(msgKeyNotFound)
	case ErrTokenLimitReached:
		return e.StatusCode == http.StatusBadRequest && e.says(msgTokenLimit)
	case ErrInvalidCredentials:
		return e.StatusCode == http.StatusBadRequest &&
			(e.Code == codeInvalidClient || e.says(msgClientCredentials))
	case ErrInvalidToken:
		return e.StatusCode == http.StatusBadRequest && e.Code != codeInvalidClient &&
			!e.says(msgClientCredentials) && !e.says(msgParameters) && isTokenOperation(e.Operation)
	}
	return false
}

// says reports whether LINE's description or message contains text,
// ignoring case.
func (e *APIError) says(text string) bool {
	return containsFold(e.Message, text) || containsFold(e.Description, text)
}

func containsFold(s, substr string) bool {
	return len(s) >= len(substr) && strings.Contains(strings.ToLower(s), substr)
}

func isTokenOperation(op string) bool {
	switch op {
	case operationVerifyV21, operationRevokeV21, operationVerifyShort, operationRevokeShort:
		return true
	}
	return false
}

// parseRetryAfter reads a Retry-After header: delay seconds or an HTTP date
// (relative to now). It returns 0 when the header is absent or unusable.
func parseRetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	var d time.Duration
	if secs, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err == nil {
		if secs <= 0 {
			return 0
		}
		if secs > int64(maxRetryAfter/time.Second) {
			return maxRetryAfter
		}
		d = time.Duration(secs) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now)
	}
	if d <= 0 {
		return 0
	}
	return min(d, maxRetryAfter)
}

// truncate caps an error text taken from a response body.
func truncate(s string) string {
	if len(s) <= maxErrorTextLen {
		return s
	}
	return s[:maxErrorTextLen] + "..."
}

func invalidInput(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalidInput}, args...)...)
}
