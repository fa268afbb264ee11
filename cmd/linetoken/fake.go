package main

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"math/big"

	"github.com/linetoken/linetoken/oauth"
	"github.com/linetoken/linetoken/oauth/oauthtest"
)

const (
	// fakeChannelIDDigits: LINE channel IDs are 10 digits.
	fakeChannelIDDigits = 10
	// fakeSecretBytes: a channel secret is 32 hex digits.
	fakeSecretBytes = 16
)

// fakeChannel is a throwaway channel on a fake server, set up as in the
// LINE Developers Console: added, its public key registered, the kid kept.
// (oauthtest.Server.NewChannel does the same but needs a testing.TB.)
type fakeChannel struct {
	id, secret string
	privateJWK []byte
	kid        string
	key        *oauth.AssertionKey
}

func newFakeChannel(srv *oauthtest.Server) (*fakeChannel, error) {
	id, err := randomDigits(fakeChannelIDDigits)
	if err != nil {
		return nil, err
	}
	b := make([]byte, fakeSecretBytes)
	if _, err := rand.Read(b); err != nil {
		return nil, err
	}
	ch := &fakeChannel{id: id, secret: hex.EncodeToString(b)}
	srv.AddChannel(ch.id, ch.secret)
	priv, pub, err := oauth.GenerateAssertionKey()
	if err != nil {
		return nil, fmt.Errorf("generating the key: %w", err)
	}
	if ch.kid, err = srv.RegisterKey(ch.id, pub); err != nil {
		return nil, fmt.Errorf("registering the key: %w", err)
	}
	if ch.key, err = oauth.ParseAssertionKey(priv, ch.kid); err != nil {
		return nil, err
	}
	ch.privateJWK = priv
	return ch, nil
}

// randomDigits returns n random decimal digits, the first not 0.
func randomDigits(n int) (string, error) {
	out := make([]byte, n)
	for i := range out {
		lo := int64(0)
		if i == 0 {
			lo = 1
		}
		v, err := rand.Int(rand.Reader, big.NewInt(10-lo))
		if err != nil {
			return "", err
		}
		out[i] = byte('0' + lo + v.Int64())
	}
	return string(out), nil
}
