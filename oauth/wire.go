package oauth

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"reflect"
	"slices"
	"strings"
)

// formBody encodes key, value pairs as an application/x-www-form-urlencoded
// body (or query) holding exactly those fields, in order.
func formBody(kv ...string) string {
	var b strings.Builder
	n := 0
	for _, s := range kv {
		n += len(s) + 8 // room for a few escapes and the separators
	}
	b.Grow(n)
	for i := 0; i+1 < len(kv); i += 2 {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(url.QueryEscape(kv[i]))
		b.WriteByte('=')
		b.WriteString(url.QueryEscape(kv[i+1]))
	}
	return b.String()
}

// requestError is a failure to send a request or read its answer. Its
// message has the URL's query redacted and every secret value of the
// request scrubbed; it unwraps to a sanitised *url.Error (whose Err is a
// [scrubbedError] in place of the transport's own) and to the context's
// error when the context ended.
type requestError struct {
	msg  string
	errs []error
}

func (e *requestError) Error() string   { return e.msg }
func (e *requestError) Unwrap() []error { return e.errs }

// Format prints only the sanitised message, under every verb.
func (e *requestError) Format(f fmt.State, _ rune) { writeString(f, e.msg) }

func newRequestError(ctx context.Context, op, what string, err error, secrets []string) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		// The inner error is the transport's own: a custom RoundTripper may
		// quote the request's URL (its query holding a token or assertion)
		// or its form body.
		safeURL := redactURL(ue.URL)
		inner := ue.Err
		if inner != nil {
			inner = newScrubbedError(inner, secrets, ue.URL, safeURL)
		}
		err = &url.Error{Op: ue.Op, URL: safeURL, Err: inner}
	} else {
		err = newScrubbedError(err, secrets, "", "")
	}
	errs := []error{err}
	if ctxErr := ctx.Err(); ctxErr != nil && !errors.Is(err, ctxErr) {
		errs = append(errs, ctxErr)
	}
	msg := scrub("oauth: "+op+": "+what+err.Error(), secrets)
	return &requestError{msg: msg, errs: errs}
}

// maxErrorTreeWalk bounds how many errors of a chain leaks inspects: real
// transport chains are a handful deep; the cap guards against cycles.
const maxErrorTreeWalk = 64

// scrubbedError stands in for an error of the transport (or of reading a
// body) whose text may quote a secret. Error() is the original text with
// every secret and the request's raw URL replaced. It does not unwrap, so
// no unscrubbed text is reachable through errors.Unwrap; instead:
//   - errors.Is is answered by the original chain (context.Canceled,
//     context.DeadlineExceeded, io.ErrUnexpectedEOF, ...): a yes or no
//     carries no text.
//   - errors.As reaches an error of the original chain only when no error
//     in the found one's own chain quotes a secret.
//   - Timeout and Temporary are the original chain's, so it is a net.Error
//     and *url.Error's Timeout still works.
type scrubbedError struct {
	msg     string
	err     error
	secrets []string
}

func newScrubbedError(err error, secrets []string, rawURL, safeURL string) *scrubbedError {
	msg := err.Error()
	if rawURL != "" && rawURL != safeURL {
		msg = strings.ReplaceAll(msg, rawURL, safeURL)
	}
	// A copy: keeping the caller's slice would make every request's
	// secrets slice escape to the heap, failed or not (one allocation per
	// call on the success path).
	return &scrubbedError{msg: scrub(msg, secrets), err: err, secrets: slices.Clone(secrets)}
}

func (e *scrubbedError) Error() string { return e.msg }

// Format prints only the scrubbed message, under every verb.
func (e *scrubbedError) Format(f fmt.State, _ rune) { writeString(f, e.msg) }

// Is reports whether the original error matches target.
func (e *scrubbedError) Is(target error) bool { return errors.Is(e.err, target) }

// As finds target in the original chain unless what it would hand out (or
// anything that error wraps) quotes a secret.
func (e *scrubbedError) As(target any) bool {
	if !errors.As(e.err, target) {
		return false
	}
	v := reflect.ValueOf(target).Elem()
	if found, ok := v.Interface().(error); ok && !leaks(found, e.secrets) {
		return true
	}
	v.SetZero()
	return false
}

// Timeout reports whether the original error is a timeout.
func (e *scrubbedError) Timeout() bool {
	var t interface{ Timeout() bool }
	return errors.As(e.err, &t) && t.Timeout()
}

// Temporary reports what the original error says (net.Error needs it).
func (e *scrubbedError) Temporary() bool {
	var t interface{ Temporary() bool }
	return errors.As(e.err, &t) && t.Temporary()
}

// leaks reports whether err or any error in its chain has a secret in its
// text.
func leaks(err error, secrets []string) bool {
	stack := []error{err}
	for n := 0; len(stack) > 0; n++ {
		if n == maxErrorTreeWalk {
			return true // too deep to vouch for
		}
		e := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if e == nil {
			continue
		}
		if s := e.Error(); scrub(s, secrets) != s {
			return true
		}
		switch u := e.(type) {
		case interface{ Unwrap() error }:
			stack = append(stack, u.Unwrap())
		case interface{ Unwrap() []error }:
			stack = append(stack, u.Unwrap()...)
		}
	}
	return false
}

// scrub replaces every occurrence of a secret, raw or URL-encoded, in s.
func scrub(s string, secrets []string) string {
	for _, v := range secrets {
		if v == "" {
			continue
		}
		s = strings.ReplaceAll(s, v, redacted)
		if q := url.QueryEscape(v); q != v {
			s = strings.ReplaceAll(s, q, redacted)
		}
	}
	return s
}

// redactURL replaces every query value and any user info in a URL.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "<unparseable URL>"
	}
	if u.Fragment != "" || u.RawFragment != "" {
		u.Fragment, u.RawFragment = redacted, ""
	}
	if u.User != nil {
		u.User = url.User(redacted)
	}
	if u.RawQuery != "" {
		q := u.Query()
		for k := range q {
			q[k] = []string{redacted}
		}
		u.RawQuery = q.Encode()
	}
	return u.String()
}
