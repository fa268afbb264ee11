package oauthtest

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"time"

	"github.com/linetoken/linetoken/oauth"
)

// LINE's limits and lifetimes (LINE reference, "Channel access token";
// ../../../shared/LINE-TOKEN-API.md).
const (
	// maxActiveV21 is how many v2.1 tokens a channel may hold; the next
	// issue is refused.
	maxActiveV21 = 30
	// maxShortLived is how many short-lived tokens a channel may hold; the
	// next issue revokes the oldest.
	maxShortLived = 30
	// shortLivedLifetime is the lifetime of a short-lived token (expires_in 2592000).
	shortLivedLifetime = 30 * 24 * time.Hour
	// statelessLifetime is the lifetime of a stateless token (expires_in 900).
	statelessLifetime = 15 * time.Minute
	// maxTokenExp is the largest token_exp claim LINE accepts, in seconds (30 days).
	maxTokenExp = 2592000
	// maxAssertionAhead is how far in the future an assertion's exp may lie.
	maxAssertionAhead = 30 * time.Minute
	// longLivedExpiresIn is the expires_in LINE reports for a fresh
	// long-lived token (about 99 years, beyond int32).
	longLivedExpiresIn = 3138007490
	// maxRequestBody caps a request body: LINE's largest request (an
	// assertion form) is under 2 KiB.
	maxRequestBody = 64 << 10
	// assertionAudience is the only aud LINE accepts, trailing slash included.
	assertionAudience = "https://api.line.me/"
	// requiredKeyBits is the only RSA key size LINE accepts.
	requiredKeyBits = 2048
	// channelIDDigits is the length of the IDs NewChannel makes (LINE's are 10 digits).
	channelIDDigits = 10
	// secretBytes is the size of a channel secret NewChannel makes (32 hex digits).
	secretBytes = 16
	// opaqueTokenBytes is the entropy of a short- or long-lived token: 128
	// bytes are 172 base64 characters, the length of LINE's.
	opaqueTokenBytes = 128
)

// Kind is a family of channel access tokens.
type Kind int

// The token kinds.
const (
	// KindV21 is a channel access token v2.1 (JWT-assertion issued).
	KindV21 Kind = iota + 1
	// KindShortLived is a short-lived token (client id + secret, 30 days).
	KindShortLived
	// KindStateless is a stateless token (15 minutes, not revocable).
	KindStateless
	// KindLongLived is a long-lived token (console issued, never expires).
	KindLongLived
)

// String names k.
func (k Kind) String() string {
	switch k {
	case KindV21:
		return "v2.1"
	case KindShortLived:
		return "short-lived"
	case KindStateless:
		return "stateless"
	case KindLongLived:
		return "long-lived"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Errors of [Server.RegisterKey].
var (
	// ErrUnknownChannel: the channel was never added to the server.
	ErrUnknownChannel = errors.New("oauthtest: unknown channel")
	// ErrInvalidJWK: the public key is not one the LINE Developers Console
	// accepts.
	ErrInvalidJWK = errors.New("oauthtest: JWK refused")
)

// Option configures a [Server].
type Option func(*options)

type options struct {
	shortLivedPerSecond int
	onSend              func(Send)
}

// WithShortLivedRateLimit makes the short-lived issue endpoint answer 429
// {"message":"Too many requests"} past n requests per second of the
// server's clock, counted over all channels and whatever their answer,
// refused requests included (LINE's limit is 370). n <= 0 means no limit,
// the default.
func WithShortLivedRateLimit(n int) Option {
	return func(o *options) { o.shortLivedPerSecond = n }
}

// Server is a fake of LINE's Channel Access Token API on a loopback port.
// It is safe for concurrent use. Create it with [NewServer] and Close it
// when done.
type Server struct {
	ts        *httptest.Server // api.line.me: every path but the data host's
	dataTS    *httptest.Server // api-data.line.me: the data host's paths only
	opts      options
	offset    atomic.Int64 // nanoseconds Advance added to the real clock
	tokenKey  []byte       // HMAC key signing the JWS-shaped tokens this server mints
	closed    chan struct{}
	closeOnce sync.Once
	chunk     []byte // contentChunk(): the content pattern, read-only

	mu       sync.Mutex
	channels map[string]*channel
	keys     map[string]*publicKey // by kid
	tokens   map[string]*token     // v2.1, short-lived and long-lived tokens by value
	faults   []*pendingFault
	log      []Request
	stats    Stats
	rate     rateWindow

	// The Messaging API (messaging.go).
	sends      []Send
	uploads    []Upload
	retryKeys  map[retryKeyID]acceptedKey
	firstTry   map[retryKeyID]time.Time // when a key's 24 hours began: its first attempt
	attempts   map[attemptKey]int
	faultSends func(retryKey string, attempt int) (Fault, bool)
}

type channel struct {
	id, secret string
	v21        []*token // in issue order
	short      []*token // in issue order
	longLived  *token
	key        *oauth.AssertionKey // set by NewChannel, used by Config
}

type token struct {
	kind      Kind
	value     string
	channelID string
	keyID     string // v2.1 only
	expiry    time.Time
	revoked   bool
}

func (t *token) active(now time.Time) bool { return !t.revoked && now.Before(t.expiry) }

// rateWindow counts requests in one second of the server's clock,
// starting at the first request after the previous window ended.
type rateWindow struct {
	start time.Time
	count int
}

// NewServer starts a fake on a free loopback port, like httptest.NewServer.
func NewServer(opts ...Option) *Server {
	s := &Server{
		tokenKey:  randomBytes(32),
		closed:    make(chan struct{}),
		channels:  map[string]*channel{},
		keys:      map[string]*publicKey{},
		tokens:    map[string]*token{},
		stats:     newStats(),
		chunk:     contentChunk(),
		retryKeys: map[retryKeyID]acceptedKey{},
		firstTry:  map[retryKeyID]time.Time{},
		attempts:  map[attemptKey]int{},
	}
	for _, o := range opts {
		o(&s.opts)
	}
	s.ts = startListener(hostHandler{s, hostAPI})
	s.dataTS = startListener(hostHandler{s, hostData})
	return s
}

func startListener(h http.Handler) *httptest.Server {
	ts := httptest.NewUnstartedServer(h)
	// The server never logs: net/http's own messages could quote a request.
	ts.Config.ErrorLog = log.New(io.Discard, "", 0)
	ts.Start()
	return ts
}

// Close stops the server, ending any injected delay at once. It is safe
// to call more than once.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		close(s.closed)
		s.ts.Close()
		s.dataTS.Close()
	})
}

// URL is the server's base URL (http://127.0.0.1:port), for Config.BaseURL.
// It plays api.line.me: the token API and every Messaging API path but
// the data host's, which answer 404 {"message":"Not found"} here.
func (s *Server) URL() string { return s.ts.URL }

// DataURL is the base URL of the server's second loopback listener,
// which plays api-data.line.me: it serves only the data host's paths
// (content downloads, rich menu image uploads, audience file uploads;
// see the package doc) and answers 404 {"message":"Not found"} to every
// other. Both listeners share one state, clock, fault queue and log.
func (s *Server) DataURL() string { return s.dataTS.URL }

// Now is the server's clock: real time plus everything given to Advance.
// Pass it as Config.Clock so assertions are signed in the server's time.
func (s *Server) Now() time.Time { return time.Now().Add(time.Duration(s.offset.Load())) }

// Advance moves the server's clock by d. Tokens and assertions expire by
// this clock, so a test can outlive a 30-day token in no time.
func (s *Server) Advance(d time.Duration) { s.offset.Add(int64(d)) }

// AddChannel adds a channel, or replaces the secret of an existing one.
// channelID must be digits only and secret non-empty: anything else is a
// bug in the test and panics. A new channel gets a long-lived token
// ([Server.LongLivedToken]).
func (s *Server) AddChannel(channelID, channelSecret string) {
	if !isDigits(channelID) {
		panic("oauthtest: AddChannel: channel ID must be digits only")
	}
	if channelSecret == "" {
		panic("oauthtest: AddChannel: empty channel secret")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.addChannelLocked(channelID, channelSecret)
}

func (s *Server) addChannelLocked(channelID, channelSecret string) *channel {
	if c, ok := s.channels[channelID]; ok {
		c.secret = channelSecret
		return c
	}
	c := &channel{id: channelID, secret: channelSecret}
	s.channels[channelID] = c
	s.newLongLivedLocked(c, s.Now())
	return c
}

func (s *Server) newLongLivedLocked(c *channel, now time.Time) {
	t := &token{
		kind:      KindLongLived,
		value:     opaqueToken(),
		channelID: c.id,
		expiry:    now.Add(longLivedExpiresIn * time.Second),
	}
	c.longLived = t
	s.tokens[t.value] = t
}

// LongLivedToken returns the channel's long-lived token, as the console
// shows it. If that token was revoked, a new one is made, as reissuing in
// the console does. It returns "" for an unknown channel.
func (s *Server) LongLivedToken(channelID string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.channels[channelID]
	if !ok {
		return ""
	}
	if c.longLived.revoked {
		s.newLongLivedLocked(c, s.Now())
	}
	return c.longLived.value
}

// ActiveTokens is the number of the channel's v2.1 tokens that are
// neither expired nor revoked: the slots in use out of 30.
func (s *Server) ActiveTokens(channelID string) int {
	return s.countActive(channelID, func(c *channel) []*token { return c.v21 })
}

// ActiveShortLivedTokens is the number of the channel's short-lived tokens
// that are neither expired nor revoked (at most 30).
func (s *Server) ActiveShortLivedTokens(channelID string) int {
	return s.countActive(channelID, func(c *channel) []*token { return c.short })
}

func (s *Server) countActive(channelID string, list func(*channel) []*token) int {
	now := s.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.channels[channelID]
	if !ok {
		return 0
	}
	n := 0
	for _, t := range list(c) {
		if t.active(now) {
			n++
		}
	}
	return n
}

// TokenInfo describes a token the server issued.
type TokenInfo struct {
	Kind      Kind
	ChannelID string
	// KeyID is the key_id of a v2.1 token, "" for other kinds.
	KeyID  string
	Expiry time.Time
}

// Lookup reports whether accessToken is a token of this server that is
// valid now (issued, not expired, not revoked), and what it is. A fake of
// an API that takes "Authorization: Bearer" tokens can use it.
func (s *Server) Lookup(accessToken string) (TokenInfo, bool) {
	now := s.Now()
	if c, ok := s.parseMinted(accessToken); ok && c.Kind == kindClaimStateless {
		exp := time.Unix(c.ExpiresAt.Unix(), 0)
		if !now.Before(exp) {
			return TokenInfo{}, false
		}
		return TokenInfo{Kind: KindStateless, ChannelID: c.Subject, Expiry: exp}, true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.tokens[accessToken]
	if !ok || !t.active(now) {
		return TokenInfo{}, false
	}
	return TokenInfo{Kind: t.kind, ChannelID: t.channelID, KeyID: t.keyID, Expiry: t.expiry}, true
}

// Stats counts what the server did.
type Stats struct {
	// Requests is every request received.
	Requests int
	// Faulted is the requests an injected fault applied to, queued
	// ([Server.InjectFault]) or scheduled ([Server.FaultSends]); a request
	// only delayed is also answered normally.
	Faulted int
	// IssueRequests counts the requests to each kind's issue endpoint,
	// whatever their answer (stateless: both forms).
	IssueRequests map[Kind]int
	// Issued counts the tokens issued, by kind.
	Issued map[Kind]int
	// Revoked counts the tokens revoked, by kind: by a revoke request or,
	// for short-lived tokens, by the 31st issue.
	Revoked map[Kind]int
}

func newStats() Stats {
	return Stats{IssueRequests: map[Kind]int{}, Issued: map[Kind]int{}, Revoked: map[Kind]int{}}
}

// Stats returns a copy of the server's counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	st.IssueRequests, st.Issued, st.Revoked = copyCounts(st.IssueRequests), copyCounts(st.Issued), copyCounts(st.Revoked)
	return st
}

// IssueCount is the number of tokens of kind k issued so far.
func (s *Server) IssueCount(k Kind) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats.Issued[k]
}

func copyCounts(m map[Kind]int) map[Kind]int {
	c := make(map[Kind]int, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return b
}

func randomHex(n int) string { return hex.EncodeToString(randomBytes(n)) }

// opaqueToken makes a short- or long-lived token: standard base64 with
// '+', '/' and '=', as LINE's are, so a client that forgets to form-encode
// it fails here too.
func opaqueToken() string { return base64.StdEncoding.EncodeToString(randomBytes(opaqueTokenBytes)) }

// newKeyID makes the key_id of a v2.1 token (22 base64url characters, as LINE's).
func newKeyID() string { return base64.RawURLEncoding.EncodeToString(randomBytes(16)) }
