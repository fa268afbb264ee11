package oauth

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// DefaultBaseURL is LINE's API host.
const DefaultBaseURL = "https://api.line.me"

const (
	// defaultTimeout bounds one request of the default HTTP client: token
	// endpoints answer in well under a second; 30s survives a slow network.
	defaultTimeout = 30 * time.Second
	// libraryUserAgent identifies linetoken in the User-Agent header.
	libraryUserAgent = "linetoken/0.1 (+https://github.com/linetoken/linetoken)"
)

// Config says how a [Client] reaches LINE and authenticates. The zero value
// of every field is usable; which fields an operation needs is said on the
// operation.
//
// A Config never prints its channel secret or key material under any fmt
// verb, through log/slog or through encoding/json.
type Config struct {
	// ChannelID is the channel's numeric ID. Needed by every issue
	// operation and by RevokeToken.
	ChannelID string
	// ChannelSecret is the channel secret. Needed by IssueShortLivedToken,
	// RevokeToken and stateless issue without a Key. A secret.
	ChannelSecret string
	// Key signs JWT assertions: needed by IssueToken and ValidKeyIDs; when
	// set, IssueStatelessToken uses it instead of the secret.
	Key *AssertionKey
	// BaseURL is the API host. "" means [DefaultBaseURL]. It must be https,
	// or http to a loopback host (a local fake) unless InsecureAllowHTTP is
	// set. It may not carry a query, fragment or user info.
	BaseURL string
	// HTTPClient sends the requests. nil means a client of our own with a
	// 30s timeout, proxies from the environment and no redirects followed
	// (never http.DefaultClient).
	HTTPClient *http.Client
	// UserAgent is prefixed to linetoken's own User-Agent. "" sends ours alone.
	UserAgent string
	// Clock tells the time for assertions and Expiry. nil means time.Now.
	// Tests against oauthtest pass the fake server's Now.
	Clock func() time.Time
	// Logger receives retries and, from a [TokenSource], refreshes and
	// their failures. nil means silent. Nothing logged carries a secret.
	Logger *slog.Logger
	// Retry says how failed requests are retried; the zero value is the
	// default policy (see [RetryPolicy]).
	Retry RetryPolicy
	// InsecureAllowHTTP permits http:// BaseURLs to non-loopback hosts (a
	// fake in another container). Never set it for LINE.
	InsecureAllowHTTP bool
}

// String describes c without its secret or key material.
func (c Config) String() string {
	key := "nil"
	if c.Key != nil {
		key = c.Key.String()
	}
	return fmt.Sprintf("oauth.Config{ChannelID: %q, ChannelSecret: %s, Key: %s, BaseURL: %q, UserAgent: %q, InsecureAllowHTTP: %t}",
		c.ChannelID, secretMark(c.ChannelSecret), key, redactURL(c.BaseURL), c.UserAgent, c.InsecureAllowHTTP)
}

// Format prints [Config.String] under every verb, %#v included.
func (c Config) Format(f fmt.State, _ rune) { writeString(f, c.String()) }

// LogValue keeps secrets out of log/slog output.
func (c Config) LogValue() slog.Value {
	keyID := ""
	if c.Key != nil {
		keyID = c.Key.KeyID
	}
	return slog.GroupValue(
		slog.String("channel_id", c.ChannelID),
		slog.String("channel_secret", secretMark(c.ChannelSecret)),
		slog.String("key_id", keyID),
		slog.String("base_url", redactURL(c.BaseURL)),
	)
}

// MarshalJSON encodes c for display as LogValue does, with its channel
// secret REDACTED and its key shown by key ID only, so that encoding/json
// and JSON log handlers never expose them.
func (c Config) MarshalJSON() ([]byte, error) {
	keyID := ""
	if c.Key != nil {
		keyID = c.Key.KeyID
	}
	return json.Marshal(struct {
		ChannelID     string `json:"channel_id"`
		ChannelSecret string `json:"channel_secret"`
		KeyID         string `json:"key_id"`
		BaseURL       string `json:"base_url"`
	}{c.ChannelID, secretMark(c.ChannelSecret), keyID, redactURL(c.BaseURL)})
}

// validate checks c and returns the normalised base URL.
func (c *Config) validate() (string, error) {
	if c.ChannelID != "" {
		if err := validChannelID(c.ChannelID); err != nil {
			return "", fmt.Errorf("oauth: Config.ChannelID: %w", err)
		}
	}
	if c.ChannelSecret != "" && strings.TrimSpace(c.ChannelSecret) != c.ChannelSecret {
		return "", fmt.Errorf("oauth: Config.ChannelSecret has leading or trailing white space (read from a file with a newline?)")
	}
	if c.Key != nil {
		if c.ChannelID == "" {
			return "", fmt.Errorf("oauth: Config.ChannelID is required with Config.Key (the assertion's iss and sub)")
		}
		if err := c.Key.validate(); err != nil {
			return "", fmt.Errorf("oauth: Config.Key: %w", err)
		}
	}
	base := c.BaseURL
	if base == "" {
		base = DefaultBaseURL
	}
	u, err := url.Parse(base)
	if err != nil {
		return "", fmt.Errorf("oauth: Config.BaseURL does not parse as a URL")
	}
	switch {
	case u.User != nil:
		return "", fmt.Errorf("oauth: Config.BaseURL may not carry user info")
	case u.RawQuery != "" || u.Fragment != "" || u.ForceQuery:
		return "", fmt.Errorf("oauth: Config.BaseURL %q may not carry a query or fragment", origin(u))
	case u.Host == "":
		return "", fmt.Errorf("oauth: Config.BaseURL has no host (want https://api.line.me or a fake's URL)")
	case u.Scheme == "https":
	case u.Scheme == "http":
		if !c.InsecureAllowHTTP && !isLoopback(u.Hostname()) {
			return "", fmt.Errorf("oauth: Config.BaseURL %q: http:// is allowed only to loopback hosts; use https, or set Config.InsecureAllowHTTP for a test fake", origin(u))
		}
	default:
		return "", fmt.Errorf("oauth: Config.BaseURL %q: scheme must be https (or http to a loopback host)", origin(u))
	}
	return strings.TrimRight(u.String(), "/"), nil
}

// origin is the scheme and host of u: all an error quotes of a base URL.
func origin(u *url.URL) string { return u.Scheme + "://" + u.Host }

// validChannelID checks that id looks like a LINE channel ID: digits only.
func validChannelID(id string) error {
	if id == "" {
		return invalidInput("channel ID is empty")
	}
	for i := 0; i < len(id); i++ {
		if id[i] < '0' || id[i] > '9' {
			return invalidInput("channel ID must be the channel's numeric ID (digits only)")
		}
	}
	return nil
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") || strings.HasSuffix(strings.ToLower(host), ".localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// newDefaultHTTPClient is the client used when Config.HTTPClient is nil:
// its own transport (proxy from the environment), a whole-request timeout
// and no redirects: a token endpoint never redirects, and following one
// would send credentials elsewhere.
func newDefaultHTTPClient() *http.Client {
	var tr *http.Transport
	if dt, ok := http.DefaultTransport.(*http.Transport); ok {
		tr = dt.Clone()
	} else {
		tr = &http.Transport{}
	}
	tr.Proxy = http.ProxyFromEnvironment
	return &http.Client{
		Transport: tr,
		Timeout:   defaultTimeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}
