package oauth_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"time"

	"github.com/linetoken/linetoken/oauth"
)

// exampleLINE stands in for api.line.me so the examples run offline.
func exampleLINE() *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/oauth2/v2.1/token":
			fmt.Fprint(w, `{"access_token":"eyJhbGciOiJIUz.....","token_type":"Bearer","expires_in":2592000,"key_id":"sDTOzw5wIfxxxxPEzcmeQA"}`)
		case "/v2/oauth/accessToken":
			fmt.Fprint(w, `{"access_token":"W1TeHCgfH2Liwa.....","expires_in":2592000,"token_type":"Bearer"}`)
		case "/v2/oauth/verify":
			fmt.Fprint(w, `{"client_id":"1350031035","expires_in":3138007490,"scope":"P CM"}`)
		default:
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprint(w, `{"message":"The maximum number of access tokens has already been issued"}`)
		}
	}))
}

// Issue a channel access token v2.1 with a JWT assertion. In production
// BaseURL is left empty and the key comes from LINE_PRIVATE_KEY.
func ExampleClient_IssueToken() {
	line := exampleLINE()
	defer line.Close()

	privateJWK, _, err := oauth.GenerateAssertionKey() // normally: os.ReadFile("private.jwk")
	if err != nil {
		log.Fatal(err)
	}
	key, err := oauth.ParseAssertionKey(privateJWK, "kid-from-the-console")
	if err != nil {
		log.Fatal(err)
	}
	client, err := oauth.NewClient(oauth.Config{ChannelID: "1234567890", Key: key, BaseURL: line.URL,
		Clock: func() time.Time { return time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC) }}) // a fixed clock for the output below
	if err != nil {
		log.Fatal(err)
	}
	tok, err := client.IssueToken(context.Background(), 24*time.Hour)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(tok.TokenType, tok.KeyID, tok.ExpiresIn)
	fmt.Println(tok) // never prints the token itself
	// Output:
	// Bearer sDTOzw5wIfxxxxPEzcmeQA 720h0m0s
	// oauth.Token{AccessToken: REDACTED, TokenType: "Bearer", KeyID: "sDTOzw5wIfxxxxPEzcmeQA", ExpiresIn: 720h0m0s, Expiry: 2026-12-25T12:00:00Z}
}

// Issue a short-lived token with the channel ID and secret, then verify it.
func ExampleClient_IssueShortLivedToken() {
	line := exampleLINE()
	defer line.Close()

	client, err := oauth.NewClient(oauth.Config{
		ChannelID:     "1234567890",
		ChannelSecret: "0123456789abcdef0123456789abcdef", // normally os.Getenv("LINE_CHANNEL_SECRET")
		BaseURL:       line.URL,
	})
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	tok, err := client.IssueShortLivedToken(ctx)
	if err != nil {
		log.Fatal(err)
	}
	info, err := client.VerifyShortLivedToken(ctx, tok.AccessToken)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(tok.ExpiresIn, info.ClientID, info.Scope)
	// Output: 720h0m0s 1350031035 P CM
}

// Typed errors: react to LINE's answers with errors.Is.
func ExampleAPIError() {
	line := exampleLINE()
	defer line.Close()

	key, _ := loadExampleKey()
	client, err := oauth.NewClient(oauth.Config{ChannelID: "1234567890", Key: key, BaseURL: line.URL})
	if err != nil {
		log.Fatal(err)
	}
	_, err = client.ValidKeyIDs(context.Background()) // the stand-in answers every other path with the limit error
	var apiErr *oauth.APIError
	switch {
	case errors.Is(err, oauth.ErrTokenLimitReached):
		fmt.Println("30 active v2.1 tokens: revoke one first")
	case errors.As(err, &apiErr) && apiErr.Temporary():
		fmt.Println("retry later")
	}
	if errors.As(err, &apiErr) {
		fmt.Println(apiErr.StatusCode, apiErr.Message)
	}
	// Output:
	// 30 active v2.1 tokens: revoke one first
	// 400 The maximum number of access tokens has already been issued
}

func loadExampleKey() (*oauth.AssertionKey, error) {
	if data, err := os.ReadFile(os.Getenv("LINE_PRIVATE_KEY_FILE")); err == nil {
		return oauth.ParseAssertionKey(data, os.Getenv("LINE_KEY_ID"))
	}
	priv, _, err := oauth.GenerateAssertionKey()
	if err != nil {
		return nil, err
	}
	return oauth.ParseAssertionKey(priv, "kid-from-the-console")
}
