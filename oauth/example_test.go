package oauth_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"sort"
	"time"

	"github.com/linetoken/linetoken/oauth"
	"github.com/linetoken/linetoken/oauth/oauthtest"
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
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprint(w, `{"message":"Not Found"}`)
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

// Make an assertion signing key for v2.1 tokens: register the public JWK
// in the LINE Developers Console, keep the private JWK secret, and load it
// with the kid the console returns for the public one.
func ExampleGenerateAssertionKey() {
	privateJWK, publicJWK, err := oauth.GenerateAssertionKey()
	if err != nil {
		log.Fatal(err)
	}
	// Keep privateJWK secret, e.g. os.WriteFile("private.jwk", privateJWK, 0o600).
	// publicJWK is what goes to the console: a real program would print it,
	//	fmt.Println(string(publicJWK))
	// Here only its shape is shown, as the key differs on every run.
	var pub map[string]any
	if err := json.Unmarshal(publicJWK, &pub); err != nil {
		log.Fatal(err)
	}
	members := make([]string, 0, len(pub))
	for m := range pub {
		members = append(members, m)
	}
	sort.Strings(members)
	fmt.Println("register the public JWK in the LINE Developers Console:", members, pub["kty"], pub["alg"], pub["use"])

	key, err := oauth.ParseAssertionKey(privateJWK, "kid-from-the-console")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(key) // never prints key material
	// Output:
	// register the public JWK in the LINE Developers Console: [alg e kty n use] RSA RS256 sig
	// oauth.AssertionKey{KeyID: "kid-from-the-console", PrivateKey: RSA-2048 REDACTED}
}

// Issue a stateless token: valid 15 minutes, unlimited in number, not
// revocable. Without Config.Key it authenticates by channel ID and secret;
// with one, by a JWT assertion. An oauthtest server stands in for LINE; in
// production BaseURL is left empty.
func ExampleClient_IssueStatelessToken() {
	line := oauthtest.NewServer()
	defer line.Close()
	ch, err := line.CreateChannel() // as set up in the console: ID, secret, registered key
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()

	bySecret, err := oauth.NewClient(oauth.Config{
		ChannelID:     ch.ID,
		ChannelSecret: ch.Secret, // normally os.Getenv("LINE_CHANNEL_SECRET")
		BaseURL:       line.URL(),
	})
	if err != nil {
		log.Fatal(err)
	}
	tok, err := bySecret.IssueStatelessToken(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("by secret:", tok.TokenType, tok.ExpiresIn.Round(time.Minute))

	byKey, err := oauth.NewClient(oauth.Config{
		ChannelID: ch.ID,
		Key:       ch.Key,     // normally ParseAssertionKey(LINE_PRIVATE_KEY, LINE_KEY_ID)
		Clock:     line.Now,   // the fake's clock; leave nil against LINE
		BaseURL:   line.URL(), // leave empty against LINE
	})
	if err != nil {
		log.Fatal(err)
	}
	tok, err = byKey.IssueStatelessToken(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("by assertion:", tok.TokenType, tok.ExpiresIn.Round(time.Minute))
	// Output:
	// by secret: Bearer 15m0s
	// by assertion: Bearer 15m0s
}

// Revoke a v2.1 token to free its slot among the channel's 30. LINE needs
// the channel ID and secret for it, and the token itself: keep every issued
// token until it is revoked or expires.
func ExampleClient_RevokeToken() {
	line := oauthtest.NewServer()
	defer line.Close()
	ch, err := line.CreateChannel()
	if err != nil {
		log.Fatal(err)
	}
	client, err := oauth.NewClient(line.Config(ch.ID)) // ChannelID, ChannelSecret, Key, and the fake's BaseURL and Clock
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()

	tok, err := client.IssueToken(ctx, time.Hour)
	if err != nil {
		log.Fatal(err)
	}
	kids, err := client.ValidKeyIDs(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("active v2.1 tokens:", len(kids))

	if err := client.RevokeToken(ctx, tok.AccessToken); err != nil {
		log.Fatal(err)
	}
	kids, err = client.ValidKeyIDs(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("after revoking:", len(kids))
	_, err = client.VerifyToken(ctx, tok.AccessToken)
	fmt.Println("revoked token invalid:", errors.Is(err, oauth.ErrInvalidToken))
	// Output:
	// active v2.1 tokens: 1
	// after revoking: 0
	// revoked token invalid: true
}

// Typed errors: react to LINE's answers with errors.Is. LINE refuses a v2.1
// issue while the channel has 30 active tokens.
func ExampleAPIError() {
	line := oauthtest.NewServer()
	defer line.Close()
	ch, err := line.CreateChannel()
	if err != nil {
		log.Fatal(err)
	}
	client, err := oauth.NewClient(line.Config(ch.ID))
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	for range 30 { // take every slot
		if _, err := client.IssueToken(ctx, time.Hour); err != nil {
			log.Fatal(err)
		}
	}

	_, err = client.IssueToken(ctx, time.Hour)
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
