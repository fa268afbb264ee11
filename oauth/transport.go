package oauth

import (
	"context"
	"errors"
	"io"
	"net/http"

	"golang.org/x/oauth2"
)

// maxDrain caps what is read of a 401 body before its connection is reused.
const maxDrain = 64 << 10

// Transport is an http.RoundTripper that sends each request with
// "Authorization: Bearer <token>" from Source, replacing any Authorization
// header already there (line-bot-sdk-go's clients set their own). On a 401
// it invalidates that token and, when the body can be sent again (no body,
// or Request.GetBody set, as http.NewRequest does for in-memory bodies),
// retries once with a fresh token.
type Transport struct {
	// Source supplies the tokens.
	Source *TokenSource
	// Base sends the requests; nil means http.DefaultTransport.
	Base http.RoundTripper
	// Invalidate, when set, is called instead of Source.Invalidate with
	// the token LINE answered 401 to, for a caller that limits how often
	// a 401 may cause a refresh (the token agent's proxy does). The retry
	// follows only if Source then returns another token. nil means
	// Source.Invalidate.
	Invalidate func(ctx context.Context, accessToken string)
}

func (t *Transport) base() http.RoundTripper {
	if t.Base != nil {
		return t.Base
	}
	return http.DefaultTransport
}

// RoundTrip implements http.RoundTripper. It does not modify req.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if t.Source == nil {
		closeBody(req)
		return nil, errors.New("oauth: Transport.Source is nil")
	}
	tok, err := t.Source.Token(req.Context())
	if err != nil {
		closeBody(req)
		return nil, err
	}
	resp, err := t.base().RoundTrip(withBearer(req, tok.AccessToken, req.Body))
	if err != nil || resp.StatusCode != http.StatusUnauthorized {
		return resp, err
	}
	if t.Invalidate != nil {
		t.Invalidate(req.Context(), tok.AccessToken)
	} else {
		t.Source.Invalidate(tok.AccessToken)
	}
	var body io.ReadCloser
	if req.Body != nil && req.Body != http.NoBody {
		if req.GetBody == nil {
			return resp, nil // cannot replay: the caller sees the 401
		}
		if body, err = req.GetBody(); err != nil {
			return resp, nil
		}
	}
	fresh, err := t.Source.Token(req.Context())
	if err != nil || fresh.AccessToken == tok.AccessToken {
		if body != nil {
			body.Close()
		}
		return resp, nil
	}
	_, _ = io.CopyN(io.Discard, resp.Body, maxDrain)
	resp.Body.Close()
	return t.base().RoundTrip(withBearer(req, fresh.AccessToken, body))
}

// withBearer clones req with body and the Authorization header set.
func withBearer(req *http.Request, accessToken string, body io.ReadCloser) *http.Request {
	r := req.Clone(req.Context())
	r.Body = body
	r.Header.Set("Authorization", "Bearer "+accessToken)
	return r
}

func closeBody(req *http.Request) {
	if req.Body != nil {
		req.Body.Close()
	}
}

// OAuth2TokenSource adapts ts to golang.org/x/oauth2, for libraries that
// take an oauth2.TokenSource. Its Token has no context: it uses
// context.Background, so prefer ts.Token where a context is at hand.
func OAuth2TokenSource(ts *TokenSource) oauth2.TokenSource { return oauth2Adapter{ts} }

type oauth2Adapter struct{ ts *TokenSource }

func (a oauth2Adapter) Token() (*oauth2.Token, error) {
	t, err := a.ts.Token(context.Background())
	if err != nil {
		return nil, err
	}
	return &oauth2.Token{AccessToken: t.AccessToken, TokenType: t.TokenType, Expiry: t.Expiry,
		ExpiresIn: int64(t.ExpiresIn.Seconds())}, nil
}

type tokenContextKey struct{}

// Middleware puts a valid token from ts in each request's context, for
// handlers to read with [TokenFromContext]. When no token can be had it
// answers 503 Service Unavailable with a plain-text body saying so (and no
// secret), without calling the handler.
func Middleware(ts *TokenSource) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			tok, err := ts.Token(r.Context())
			if err != nil {
				w.Header().Set("Content-Type", "text/plain; charset=utf-8")
				w.Header().Set("Retry-After", "5")
				w.WriteHeader(http.StatusServiceUnavailable)
				_, _ = io.WriteString(w, "linetoken: no LINE channel access token is available right now; try again shortly\n")
				return
			}
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), tokenContextKey{}, tok)))
		})
	}
}

// TokenFromContext returns the token [Middleware] put in ctx.
func TokenFromContext(ctx context.Context) (*Token, bool) {
	t, ok := ctx.Value(tokenContextKey{}).(*Token)
	return t, ok && t != nil
}
