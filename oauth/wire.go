package oauth

import (
	"context"
	"errors"
	"fmt"
	"net/url"
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
// request scrubbed; it unwraps to a sanitised *url.Error and to the
// context's error when the context ended.
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
		err = &url.Error{Op: ue.Op, URL: redactURL(ue.URL), Err: ue.Err}
	}
	errs := []error{err}
	if ctxErr := ctx.Err(); ctxErr != nil && !errors.Is(err, ctxErr) {
		errs = append(errs, ctxErr)
	}
	msg := scrub("oauth: "+op+": "+what+err.Error(), secrets)
	return &requestError{msg: msg, errs: errs}
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
