package oauthtest_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/linetoken/linetoken/oauth"
	"github.com/linetoken/linetoken/oauth/oauthtest"
)

// A channel set up by hand, as in the LINE Developers Console: add it,
// register the public key, and give the client the kid.
func Example() {
	srv := oauthtest.NewServer()
	defer srv.Close()

	srv.AddChannel("1573163733", "0123456789abcdef0123456789abcdef")
	privateJWK, publicJWK, err := oauth.GenerateAssertionKey()
	if err != nil {
		panic(err)
	}
	kid, err := srv.RegisterKey("1573163733", publicJWK)
	if err != nil {
		panic(err)
	}
	key, err := oauth.ParseAssertionKey(privateJWK, kid)
	if err != nil {
		panic(err)
	}
	client, err := oauth.NewClient(oauth.Config{
		BaseURL:       srv.URL(),
		Clock:         srv.Now, // assertions signed in the server's time
		ChannelID:     "1573163733",
		ChannelSecret: "0123456789abcdef0123456789abcdef",
		Key:           key,
	})
	if err != nil {
		panic(err)
	}
	ctx := context.Background()

	tok, err := client.IssueToken(ctx, time.Hour)
	if err != nil {
		panic(err)
	}
	fmt.Println("issued, expires in", tok.ExpiresIn, "active:", srv.ActiveTokens("1573163733"))

	srv.Advance(time.Hour) // an hour passes in no time
	_, err = client.VerifyToken(ctx, tok.AccessToken)
	fmt.Println("after an hour, invalid:", errors.Is(err, oauth.ErrInvalidToken))
	fmt.Println("active:", srv.ActiveTokens("1573163733"))
	// Output:
	// issued, expires in 1h0m0s active: 1
	// after an hour, invalid: true
	// active: 0
}

// Injected faults make the next requests fail.
func ExampleServer_FailNext() {
	srv := oauthtest.NewServer()
	defer srv.Close()
	srv.AddChannel("1573163733", "secret")
	client, err := oauth.NewClient(srv.Config("1573163733"))
	if err != nil {
		panic(err)
	}

	srv.FailNext(1, 500, `{"message":"Internal Server Error"}`)
	_, err = client.IssueShortLivedToken(context.Background()) // issue is not retried by default
	var ae *oauth.APIError
	fmt.Println(errors.As(err, &ae), ae.StatusCode, ae.Message)

	tok, err := client.IssueShortLivedToken(context.Background())
	fmt.Println(err, tok.ExpiresIn)
	// Output:
	// true 500 Internal Server Error
	// <nil> 720h0m0s
}
