package oauthtest

import (
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/big"
	"testing"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/linetoken/linetoken/oauth"
)

// publicKey is an assertion signing key registered for a channel.
type publicKey struct {
	kid       string
	channelID string
	key       *rsa.PublicKey
}

// jwkMember reports whether the console accepts member m in a public JWK; private
// members and kid are refused by name.
func jwkMember(m string) bool {
	switch m {
	case "kty", "alg", "use", "key_ops", "n", "e":
		return true
	}
	return false
}

// jwkPrivateMembers lists the private members of a JWK.
func jwkPrivateMembers() []string { return []string{"d", "p", "q", "dp", "dq", "qi", "oth", "k"} }

// RegisterKey registers a public assertion key for a channel, as the LINE
// Developers Console does, and returns the kid assertions signed with it
// must carry. Like the console it accepts only a public RSA-2048 JWK with
// kty "RSA", alg "RS256", use "sig" and/or key_ops ["verify"], n and e,
// and no other member: a kid, a private member ("d", "p", ...), another
// key type or size is refused with [ErrInvalidJWK]. An unknown channel is
// [ErrUnknownChannel].
func (s *Server) RegisterKey(channelID string, publicJWK []byte) (kid string, err error) {
	pub, err := parsePublicJWK(publicJWK)
	if err != nil {
		return "", err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.channels[channelID]; !ok {
		return "", fmt.Errorf("%w %q", ErrUnknownChannel, channelID)
	}
	kid = newUUID()
	s.keys[kid] = &publicKey{kid: kid, channelID: channelID, key: pub}
	return kid, nil
}

// UnregisterKey deletes a registered key, as the console does; assertions
// signed with it then get 404. Unknown kids are ignored.
func (s *Server) UnregisterKey(kid string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.keys, kid)
}

func parsePublicJWK(data []byte) (*rsa.PublicKey, error) {
	var members map[string]json.RawMessage
	if err := json.Unmarshal(data, &members); err != nil {
		return nil, fmt.Errorf("%w: not a JSON object", ErrInvalidJWK)
	}
	var hdr struct {
		Kty    string   `json:"kty"`
		Alg    string   `json:"alg"`
		Use    *string  `json:"use"`
		KeyOps []string `json:"key_ops"`
	}
	if err := json.Unmarshal(data, &hdr); err != nil {
		return nil, fmt.Errorf("%w: kty, alg, use or key_ops is not a string", ErrInvalidJWK)
	}
	if hdr.Kty != "RSA" {
		return nil, fmt.Errorf("%w: kty is %q; LINE requires RSA", ErrInvalidJWK, hdr.Kty)
	}
	if hdr.Alg != "RS256" {
		return nil, fmt.Errorf("%w: alg is %q; LINE requires RS256", ErrInvalidJWK, hdr.Alg)
	}
	if _, ok := members["kid"]; ok {
		return nil, fmt.Errorf("%w: it has a kid; the console assigns the kid", ErrInvalidJWK)
	}
	for _, m := range jwkPrivateMembers() {
		if _, ok := members[m]; ok {
			return nil, fmt.Errorf("%w: it has the private member %q; register the public key only", ErrInvalidJWK, m)
		}
	}
	for m := range members {
		if !jwkMember(m) {
			return nil, fmt.Errorf("%w: unexpected member %q", ErrInvalidJWK, m)
		}
	}
	_, hasOps := members["key_ops"]
	switch {
	case hdr.Use == nil && !hasOps:
		return nil, fmt.Errorf(`%w: it needs use "sig" or key_ops ["verify"]`, ErrInvalidJWK)
	case hdr.Use != nil && *hdr.Use != "sig":
		return nil, fmt.Errorf(`%w: use is %q; LINE requires "sig"`, ErrInvalidJWK, *hdr.Use)
	case hasOps && (len(hdr.KeyOps) != 1 || hdr.KeyOps[0] != "verify"):
		return nil, fmt.Errorf(`%w: key_ops must be ["verify"]`, ErrInvalidJWK)
	}
	var jwk jose.JSONWebKey
	if err := jwk.UnmarshalJSON(data); err != nil {
		return nil, fmt.Errorf("%w: n or e does not parse", ErrInvalidJWK)
	}
	pub, ok := jwk.Key.(*rsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("%w: not an RSA public key", ErrInvalidJWK)
	}
	if bits := pub.N.BitLen(); bits != requiredKeyBits {
		return nil, fmt.Errorf("%w: RSA-%d; LINE requires RSA-%d", ErrInvalidJWK, bits, requiredKeyBits)
	}
	if pub.E < 3 || pub.E%2 == 0 {
		return nil, fmt.Errorf("%w: bad public exponent", ErrInvalidJWK)
	}
	return pub, nil
}

// newUUID makes a kid in the console's format (a random UUID).
func newUUID() string {
	b := randomBytes(16)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// Channel is what a client needs to use a channel made by
// [Server.NewChannel].
type Channel struct {
	// ID is the channel ID: 10 random digits.
	ID string
	// Secret is the channel secret: 32 random hex digits.
	Secret string
	// PrivateJWK is the private assertion key as a JWK, as
	// oauth.GenerateAssertionKey writes it (no kid).
	PrivateJWK []byte
	// KeyID is the kid the server assigned to the key's public half.
	KeyID string
	// Key is PrivateJWK parsed, with KeyID.
	Key *oauth.AssertionKey
}

// String describes c without its secret or key.
func (c Channel) String() string {
	return fmt.Sprintf("oauthtest.Channel{ID: %q, Secret: REDACTED, KeyID: %q}", c.ID, c.KeyID)
}

// Format prints [Channel.String] under every verb, %#v included.
func (c Channel) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(c.String())) }

// LogValue keeps the channel's secret and key out of log/slog output.
func (c Channel) LogValue() slog.Value { return slog.StringValue(c.String()) }

// MarshalJSON encodes c without its secret or key, so json.Marshal and
// slog's JSON handler (with c nested in another value) print neither.
func (c Channel) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		ID     string `json:"id"`
		Secret string `json:"secret"`
		KeyID  string `json:"key_id"`
	}{c.ID, "REDACTED", c.KeyID})
}

// NewChannel adds a channel with a random numeric ID and a random secret,
// generates an RSA-2048 assertion key with oauth.GenerateAssertionKey and
// registers its public half. It fails t on any error.
func (s *Server) NewChannel(t testing.TB) Channel {
	t.Helper()
	c, err := s.CreateChannel()
	if err != nil {
		t.Fatalf("oauthtest: NewChannel: %v", err)
	}
	return c
}

// CreateChannel is [Server.NewChannel] for code outside tests (a demo, a
// local fake server): it returns its error instead of failing a test.
func (s *Server) CreateChannel() (Channel, error) {
	privateJWK, publicJWK, err := oauth.GenerateAssertionKey()
	if err != nil {
		return Channel{}, fmt.Errorf("oauthtest: CreateChannel: %w", err)
	}
	secret := randomHex(secretBytes)
	s.mu.Lock()
	id := s.newChannelIDLocked()
	c := s.addChannelLocked(id, secret)
	s.mu.Unlock()
	kid, err := s.RegisterKey(id, publicJWK)
	if err != nil {
		return Channel{}, fmt.Errorf("oauthtest: CreateChannel: %w", err)
	}
	key, err := oauth.ParseAssertionKey(privateJWK, kid)
	if err != nil {
		return Channel{}, fmt.Errorf("oauthtest: CreateChannel: %w", err)
	}
	s.mu.Lock()
	c.key = key
	s.mu.Unlock()
	return Channel{ID: id, Secret: secret, PrivateJWK: privateJWK, KeyID: kid, Key: key}, nil
}

func (s *Server) newChannelIDLocked() string {
	limit := new(big.Int).Exp(big.NewInt(10), big.NewInt(channelIDDigits-1), nil) // 10^9
	for {
		n := new(big.Int).SetBytes(randomBytes(8))
		n.Mod(n, new(big.Int).Mul(limit, big.NewInt(9)))
		n.Add(n, limit) // [10^9, 10^10): exactly 10 digits
		id := n.String()
		if _, taken := s.channels[id]; !taken {
			return id
		}
	}
}

// Config returns a client configuration for the channel: BaseURL is the
// server, Clock its clock, and the channel's ID, secret and (for a channel
// made by NewChannel) assertion key are filled in. An unknown channel gets
// only BaseURL, Clock and ChannelID.
func (s *Server) Config(channelID string) oauth.Config {
	cfg := oauth.Config{BaseURL: s.URL(), Clock: s.Now, ChannelID: channelID}
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.channels[channelID]; ok {
		cfg.ChannelSecret = c.secret
		cfg.Key = c.key
	}
	return cfg
}

// Client returns an oauth.Client for [Server.Config](channelID), failing t
// if it cannot be made.
func (s *Server) Client(t testing.TB, channelID string) *oauth.Client {
	t.Helper()
	c, err := oauth.NewClient(s.Config(channelID))
	if err != nil {
		t.Fatalf("oauthtest: Client: %v", err)
	}
	return c
}
