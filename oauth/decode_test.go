package oauth_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/linetoken/linetoken/oauth"
)

// TestDecodeDocumentedExamples decodes every 200 example of LINE's reference.
func TestDecodeDocumentedExamples(t *testing.T) {
	ctx := context.Background()
	t.Run("IssueToken", func(t *testing.T) {
		c := newClient(t, newTestServer(t, jsonAnswer(200, issueV21Body)).URL)
		tok, err := c.IssueToken(ctx, 0)
		if err != nil {
			t.Fatal(err)
		}
		want := oauth.Token{AccessToken: "eyJhbGciOiJIUz.....", TokenType: "Bearer", KeyID: "sDTOzw5wIfxxxxPEzcmeQA",
			ExpiresIn: 30 * 24 * time.Hour, Expiry: fixedNow.Add(30 * 24 * time.Hour)}
		if *tok != want {
			t.Errorf("token = %+v, want %+v", *tok, want)
		}
	})
	t.Run("IssueShortLivedToken", func(t *testing.T) {
		c := newClient(t, newTestServer(t, jsonAnswer(200, issueShortBody)).URL)
		tok, err := c.IssueShortLivedToken(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if tok.AccessToken != "W1TeHCgfH2Liwa....." || tok.TokenType != "Bearer" || tok.KeyID != "" ||
			tok.ExpiresIn != 2592000*time.Second || !tok.Expiry.Equal(fixedNow.Add(2592000*time.Second)) {
			t.Errorf("token = %+v", tok)
		}
	})
	t.Run("IssueStatelessToken", func(t *testing.T) {
		c := newClient(t, newTestServer(t, jsonAnswer(200, statelessBody)).URL)
		tok, err := c.IssueStatelessToken(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if tok.AccessToken != "eyJhbGciOiJIUz....." || tok.ExpiresIn != 899*time.Second {
			t.Errorf("token = %+v", tok)
		}
	})
	t.Run("VerifyToken", func(t *testing.T) {
		c := newClient(t, newTestServer(t, jsonAnswer(200, verifyV21Body)).URL)
		info, err := c.VerifyToken(ctx, "tok")
		if err != nil {
			t.Fatal(err)
		}
		want := oauth.TokenInfo{ClientID: "1573163733", Scope: "profile chat_message.write",
			ExpiresIn: 2591659 * time.Second, Expiry: fixedNow.Add(2591659 * time.Second)}
		if *info != want {
			t.Errorf("info = %+v, want %+v", *info, want)
		}
	})
	t.Run("VerifyShortLivedToken/long-lived", func(t *testing.T) {
		c := newClient(t, newTestServer(t, jsonAnswer(200, verifyLongBody)).URL)
		info, err := c.VerifyShortLivedToken(ctx, "tok")
		if err != nil {
			t.Fatal(err)
		}
		if info.ClientID != "1350031035" || info.Scope != "P CM" || info.ExpiresIn != 3138007490*time.Second {
			t.Errorf("info = %+v: expires_in 3138007490 must survive (> int32)", info)
		}
	})
	t.Run("VerifyToken/no scope", func(t *testing.T) {
		c := newClient(t, newTestServer(t, jsonAnswer(200, `{"client_id":"1","expires_in":5}`)).URL)
		info, err := c.VerifyToken(ctx, "tok")
		if err != nil || info.Scope != "" || info.ExpiresIn != 5*time.Second {
			t.Errorf("info = %+v, %v", info, err)
		}
	})
	t.Run("ValidKeyIDs", func(t *testing.T) {
		c := newClient(t, newTestServer(t, jsonAnswer(200, kidsBody)).URL)
		kids, err := c.ValidKeyIDs(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Join(kids, ",") != "U_gdnFYKTWRxxxxDVZexGg,sDTOzw5wIfWxxxxzcmeQA,73hDyp3PxGfxxxxD6U5qYA" {
			t.Errorf("kids = %v", kids)
		}
		c = newClient(t, newTestServer(t, jsonAnswer(200, `{"kids":[]}`)).URL)
		if kids, err := c.ValidKeyIDs(ctx); err != nil || kids == nil || len(kids) != 0 {
			t.Errorf("empty kids = %#v, %v; want an empty list", kids, err)
		}
	})
	t.Run("Revoke/empty 200", func(t *testing.T) {
		c := newClient(t, newTestServer(t, jsonAnswer(200, "")).URL)
		if err := c.RevokeToken(ctx, "tok"); err != nil {
			t.Error(err)
		}
		if err := c.RevokeShortLivedToken(ctx, "tok"); err != nil {
			t.Error(err)
		}
	})
}

// TestMalformedSuccess: a 200 that is not the documented JSON is an error
// matching ErrMalformedResponse, never a zero Token.
func TestMalformedSuccess(t *testing.T) {
	bodies := map[string]string{
		"empty":                "",
		"not JSON":             "<html>ok</html>",
		"truncated":            `{"access_token":"abc","expires_in":25`,
		"missing access_token": `{"expires_in":2592000,"token_type":"Bearer","key_id":"k"}`,
		"missing expires_in":   `{"access_token":"abc","token_type":"Bearer","key_id":"k"}`,
		"string expires_in":    `{"access_token":"abc","expires_in":"2592000","token_type":"Bearer","key_id":"k"}`,
		"number access_token":  `{"access_token":12,"expires_in":2592000,"token_type":"Bearer","key_id":"k"}`,
		"negative expires_in":  `{"access_token":"abc","expires_in":-1,"token_type":"Bearer","key_id":"k"}`,
		"JSON array":           `[1,2]`,
		"null":                 `null`,
	}
	for name, body := range bodies {
		t.Run(name, func(t *testing.T) {
			c := newClient(t, newTestServer(t, jsonAnswer(200, body)).URL)
			ops := map[string]func() (any, error){
				"IssueToken":           func() (any, error) { return c.IssueToken(context.Background(), 0) },
				"IssueShortLivedToken": func() (any, error) { return c.IssueShortLivedToken(context.Background()) },
				"IssueStatelessToken":  func() (any, error) { return c.IssueStatelessToken(context.Background()) },
			}
			for op, call := range ops {
				v, err := call()
				if !errors.Is(err, oauth.ErrMalformedResponse) {
					t.Errorf("%s: error = %v, want ErrMalformedResponse", op, err)
				}
				if tok, _ := v.(*oauth.Token); tok != nil {
					t.Errorf("%s returned a token with its error", op)
				}
			}
		})
	}
	verifyBodies := map[string]string{
		"missing client_id":  `{"expires_in":100}`,
		"missing expires_in": `{"client_id":"1"}`,
		"string expires_in":  `{"client_id":"1","expires_in":"100"}`,
		"empty":              ``,
	}
	for name, body := range verifyBodies {
		c := newClient(t, newTestServer(t, jsonAnswer(200, body)).URL)
		if info, err := c.VerifyToken(context.Background(), "tok"); !errors.Is(err, oauth.ErrMalformedResponse) || info != nil {
			t.Errorf("verify %s: %v, %v; want ErrMalformedResponse", name, info, err)
		}
		if info, err := c.VerifyShortLivedToken(context.Background(), "tok"); !errors.Is(err, oauth.ErrMalformedResponse) || info != nil {
			t.Errorf("verify short %s: %v, %v; want ErrMalformedResponse", name, info, err)
		}
	}
	c := newClient(t, newTestServer(t, jsonAnswer(200, `{"other":1}`)).URL)
	if kids, err := c.ValidKeyIDs(context.Background()); !errors.Is(err, oauth.ErrMalformedResponse) || kids != nil {
		t.Errorf("kids missing: %v, %v", kids, err)
	}
	c = newClient(t, newTestServer(t, jsonAnswer(200, `{"access_token":"abc","expires_in":60,"token_type":"Bearer"}`)).URL)
	if _, err := c.IssueToken(context.Background(), 0); !errors.Is(err, oauth.ErrMalformedResponse) {
		t.Errorf("v2.1 without key_id: %v, want ErrMalformedResponse", err)
	}
}

// hugeBody is the size of the oversized bodies the tests send: 40 times the
// client's 256 KiB cap.
const hugeBody = 10 << 20

// hugeAllocBudget bounds what one call may allocate while a hugeBody
// arrives: the cap plus slack for the HTTP machinery and the in-process
// test server. Reading the body whole would allocate well over hugeBody.
const hugeAllocBudget = 3 << 20

// writeHuge writes prefix, then n bytes of fill, then suffix, stopping at
// the first write error (the client hung up).
func writeHuge(w http.ResponseWriter, prefix string, fill byte, n int, suffix string) {
	if _, err := io.WriteString(w, prefix); err != nil {
		return
	}
	chunk := bytes.Repeat([]byte{fill}, 64<<10)
	for written := 0; written < n; written += len(chunk) {
		if _, err := w.Write(chunk); err != nil {
			return
		}
	}
	_, _ = io.WriteString(w, suffix)
}

// TestHugeSuccessBody: a 200 over the size cap is refused as malformed
// without reading it all. The body is valid JSON (a 10 MiB access token),
// so no parse error can stand in for the cap: a client reading it whole
// would accept it, and one reading it whole before checking its size would
// allocate over 10 MiB, which the allocation measured shows.
func TestHugeSuccessBody(t *testing.T) {
	ts := newTestServer(t, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(200)
		writeHuge(w, `{"token_type":"Bearer","expires_in":2592000,"access_token":"`, 'a', hugeBody, `"}`)
	})
	c := newClient(t, ts.URL)
	var err error
	alloc, _ := memDelta(func() { _, err = c.IssueShortLivedToken(context.Background()) })
	if !errors.Is(err, oauth.ErrMalformedResponse) {
		t.Fatalf("error = %v, want ErrMalformedResponse", err)
	}
	if !strings.Contains(err.Error(), "body exceeds") {
		t.Errorf("error %q should say the body is over the cap", err)
	}
	if alloc > hugeAllocBudget {
		t.Errorf("allocated %d bytes for a %d-byte body: it was read past the cap", alloc, hugeBody)
	}
	t.Logf("allocated %d KiB for a %d MiB body", alloc>>10, hugeBody>>20)
}
