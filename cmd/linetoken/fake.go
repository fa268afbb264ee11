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

func newFakeChannel(srv *oauthtest.Server) (*fakeChannel, error) {
	c, err := srv.CreateChannel()
	if err != nil {
		return nil, err
	}
	return &fakeChannel{id: c.ID, secret: c.Secret, privateJWK: c.PrivateJWK, kid: c.KeyID, key: c.Key}, nil
}
