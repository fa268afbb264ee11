package main

import (
	"github.com/linetoken/linetoken/oauth"
	"github.com/linetoken/linetoken/oauth/oauthtest"
)

// fakeChannel is a throwaway channel on a fake server, set up as in the
// LINE Developers Console: added, its public key registered, the kid kept.
type fakeChannel struct {
	id, secret string
	privateJWK []byte
	kid        string
	key        *oauth.AssertionKey
}

// createChannel is oauthtest's Server.CreateChannel. It is a variable so
// that FuzzArgs can register a ready key instead: CreateChannel generates
// an RSA-2048 key, tens of milliseconds, too long for every fuzzed input.
var createChannel = (*oauthtest.Server).CreateChannel

func newFakeChannel(srv *oauthtest.Server) (*fakeChannel, error) {
	c, err := createChannel(srv)
	if err != nil {
		return nil, err
	}
	return &fakeChannel{id: c.ID, secret: c.Secret, privateJWK: c.PrivateJWK, kid: c.KeyID, key: c.Key}, nil
}
