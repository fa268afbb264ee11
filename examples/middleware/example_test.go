package middleware_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"

	"github.com/linetoken/linetoken/oauth"
	"github.com/linetoken/linetoken/oauth/oauthtest"
)

// The handler reads the token Middleware put in the request's context;
// it would hand it to the Messaging API client for a reply.
func Example() {
	tokens := oauthtest.NewServer() // stands in for api.line.me
	defer tokens.Close()
	tokens.AddChannel("1573163733", "0123456789abcdef0123456789abcdef")

	client, err := oauth.NewClient(tokens.Config("1573163733"))
	if err != nil {
		panic(err)
	}
	ts, err := oauth.NewTokenSource(client, oauth.TokenSourceOptions{Kind: oauth.KindShortLived})
	if err != nil {
		panic(err)
	}
	defer ts.Close()

	webhook := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, ok := oauth.TokenFromContext(r.Context())
		if !ok {
			http.Error(w, "no token", http.StatusInternalServerError)
			return
		}
		info, valid := tokens.Lookup(tok.AccessToken)
		fmt.Fprintf(w, "got a valid %v token: %v", info.Kind, valid)
	})
	srv := httptest.NewServer(oauth.Middleware(ts)(webhook))
	defer srv.Close()

	resp, err := http.Post(srv.URL+"/webhook", "application/json", nil)
	if err != nil {
		panic(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Println(resp.StatusCode, string(body))
	// Output:
	// 200 got a valid short-lived token: true
}

// When the token service fails (here the fake answers 500 to the issue
// request), Middleware answers 503 with a Retry-After and does not call
// the handler. The body names no secret.
func Example_unavailable() {
	tokens := oauthtest.NewServer()
	defer tokens.Close()
	tokens.AddChannel("1573163733", "0123456789abcdef0123456789abcdef")
	tokens.FailNext(1, http.StatusInternalServerError, `{"message":"Internal Server Error"}`)

	client, err := oauth.NewClient(tokens.Config("1573163733"))
	if err != nil {
		panic(err)
	}
	ts, err := oauth.NewTokenSource(client, oauth.TokenSourceOptions{Kind: oauth.KindShortLived})
	if err != nil {
		panic(err)
	}
	defer ts.Close()

	called := false
	webhook := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { called = true })
	rec := httptest.NewRecorder()
	oauth.Middleware(ts)(webhook).ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/webhook", nil))

	fmt.Println(rec.Code, "Retry-After:", rec.Header().Get("Retry-After"), "handler called:", called)
	fmt.Print(rec.Body.String())
	fmt.Println("issue requests:", tokens.Stats().IssueRequests[oauthtest.KindShortLived], "issued:", tokens.IssueCount(oauthtest.KindShortLived))
	// Output:
	// 503 Retry-After: 5 handler called: false
	// linetoken: no LINE channel access token is available right now; try again shortly
	// issue requests: 1 issued: 0
}
