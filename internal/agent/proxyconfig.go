package agent

import (
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/linetoken/linetoken/oauth"
)

// The proxy's defaults and limits (LINE-MESSAGING-API.md, "Hosts" and
// "Retry key").
const (
	// DefaultProxyListen is the proxy's address unless the config says
	// otherwise: the token API's port plus one.
	DefaultProxyListen = "127.0.0.1:7879"
	// DefaultAPIURL serves every Messaging API path but the data ones.
	DefaultAPIURL = "https://api.line.me"
	// DefaultDataURL serves content uploads and downloads.
	DefaultDataURL = "https://api-data.line.me"
	// DefaultMaxReplayBody: a request body up to this size is kept so it
	// can be sent again; a push of five messages is a few KiB.
	DefaultMaxReplayBody = 1 << 20
	// maxMaxReplayBody caps max_replay_body: each request in flight may
	// hold that much memory.
	maxMaxReplayBody = 64 << 20
	// DefaultAttemptTimeout bounds the wait for an attempt's response
	// headers.
	DefaultAttemptTimeout = 10 * time.Second
	// DefaultSendAttempts counts the first try of a message send.
	DefaultSendAttempts = 5
	// maxSendAttempts: more only adds to a rate limit LINE counts retries
	// against.
	maxSendAttempts = 10
	// DefaultSendMaxElapsed bounds a send's retries in all, well inside
	// the retry key's 24 hours and a bot's patience.
	DefaultSendMaxElapsed = 60 * time.Second
)

// ProxyConfig is the LINE API endpoint: bots set their SDK's base URL to
// it and a placeholder as their access token (README, "Use the agent as
// your LINE API endpoint").
type ProxyConfig struct {
	// Listen is the proxy's TCP address; "" means [DefaultProxyListen].
	Listen string
	// APIURL is where every path but the data ones goes; "" means
	// [DefaultAPIURL], or the config's base_url when that is not LINE's
	// (a fake serves both).
	APIURL string
	// DataURL is where content paths go; "" as for APIURL, with
	// [DefaultDataURL].
	DataURL string
	// MaxReplayBody: bodies up to this many bytes are kept for a retry or
	// a 401's replay; larger ones stream and are never sent twice. 0
	// means [DefaultMaxReplayBody]; use NoReplay to keep none.
	MaxReplayBody int64
	// AttemptTimeout bounds the wait for one attempt's response headers
	// (not the body, which may stream for long); 0 means
	// [DefaultAttemptTimeout].
	AttemptTimeout time.Duration
	// SendRetry bounds the retries of a message send.
	SendRetry SendRetry
}

// NoReplay as MaxReplayBody keeps no body: nothing with a body is ever
// sent twice.
const NoReplay = -1

// SendRetry bounds the retries of a message send (and of a GET).
type SendRetry struct {
	// Attempts counts the first try; 0 means [DefaultSendAttempts].
	Attempts int
	// MaxElapsed bounds the time from the first try to the start of the
	// last; 0 means [DefaultSendMaxElapsed].
	MaxElapsed time.Duration
}

type rawProxy struct {
	Listen         string        `yaml:"listen"`
	APIURL         string        `yaml:"api_url"`
	DataURL        string        `yaml:"data_url"`
	MaxReplayBody  any           `yaml:"max_replay_body"`
	AttemptTimeout string        `yaml:"attempt_timeout"`
	SendRetry      *rawSendRetry `yaml:"send_retry"`
}

type rawSendRetry struct {
	Attempts   *int   `yaml:"attempts"`
	MaxElapsed string `yaml:"max_elapsed"`
}

// build reads the proxy section; proxy: {} (or proxy: with no keys) turns
// it on with every default.
func (r *rawProxy) build(ps *problems) *ProxyConfig {
	p := &ProxyConfig{Listen: r.Listen, APIURL: r.APIURL, DataURL: r.DataURL}
	if r.MaxReplayBody != nil {
		n, ok := parseSize(r.MaxReplayBody)
		switch {
		case !ok:
			ps.add("proxy.max_replay_body", `must be a size in bytes, such as 1048576, "512KiB" or "1MiB"`)
		case n == 0:
			p.MaxReplayBody = NoReplay
		default:
			p.MaxReplayBody = n
		}
	}
	p.AttemptTimeout = parseDuration(ps, "proxy.attempt_timeout", r.AttemptTimeout)
	if r.SendRetry != nil {
		if r.SendRetry.Attempts != nil {
			p.SendRetry.Attempts = *r.SendRetry.Attempts
			if p.SendRetry.Attempts < 1 {
				ps.add("proxy.send_retry.attempts", "must be from 1 (no retry) to %d", maxSendAttempts)
			}
		}
		p.SendRetry.MaxElapsed = parseDuration(ps, "proxy.send_retry.max_elapsed", r.SendRetry.MaxElapsed)
	}
	return p
}

// sizeUnits are the suffixes max_replay_body takes.
var sizeUnits = []struct {
	suffix string
	mult   int64
}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"B", 1}}

// parseSize reads a byte count: a YAML integer, or a string of digits
// with an optional KiB, MiB, GiB or B suffix.
func parseSize(v any) (int64, bool) {
	switch n := v.(type) {
	case uint64:
		return int64(min(n, maxMaxReplayBody+1)), true // Validate refuses more
	case int64:
		return n, n >= 0
	case int:
		return int64(n), n >= 0
	case string:
		s := strings.TrimSpace(n)
		mult := int64(1)
		for _, u := range sizeUnits {
			if num, ok := strings.CutSuffix(s, u.suffix); ok {
				s, mult = strings.TrimSpace(num), u.mult
				break
			}
		}
		x, err := strconv.ParseInt(s, 10, 64)
		if err != nil || x < 0 {
			return 0, false
		}
		return min(x, maxMaxReplayBody/mult+1) * mult, true // Validate refuses more
	}
	return 0, false
}

// validateProxy fills in the proxy's defaults and checks it.
func (c *Config) validateProxy(ps *problems) {
	p := c.Proxy
	if p == nil {
		return
	}
	if p.Listen == "" {
		p.Listen = DefaultProxyListen
	}
	host, _, err := net.SplitHostPort(p.Listen)
	switch {
	case err != nil:
		ps.add("proxy.listen", "must be HOST:PORT, such as %s (port 0 picks a free port)", DefaultProxyListen)
	case !isLoopbackHost(host):
		if len(c.Callers) == 0 {
			ps.add("proxy.listen", "a non-loopback address sends LINE requests for anyone on the network: it needs callers (keys), and tls or insecure_plaintext: true")
		} else if c.TLS == nil && !c.InsecurePlaintext {
			ps.add("proxy.listen", "a non-loopback address needs tls (cert_file, key_file), or insecure_plaintext: true to accept cleartext caller keys and messages on the wire")
		}
	}
	if _, port, err := net.SplitHostPort(p.Listen); err == nil && port != "0" && p.Listen == c.Listen {
		ps.add("proxy.listen", "is the token API's listen address: give the proxy its own port")
	}
	// A fake (base_url not LINE's) serves the Messaging API too.
	fallback := func(def string) string {
		if c.BaseURL != "" && c.BaseURL != oauth.DefaultBaseURL {
			return c.BaseURL
		}
		return def
	}
	if p.APIURL == "" {
		p.APIURL = fallback(DefaultAPIURL)
	}
	if p.DataURL == "" {
		p.DataURL = fallback(DefaultDataURL)
	}
	checkUpstream(ps, "proxy.api_url", p.APIURL)
	checkUpstream(ps, "proxy.data_url", p.DataURL)
	switch {
	case p.MaxReplayBody == 0:
		p.MaxReplayBody = DefaultMaxReplayBody
	case p.MaxReplayBody == NoReplay:
	case p.MaxReplayBody < 0 || p.MaxReplayBody > maxMaxReplayBody:
		ps.add("proxy.max_replay_body", "must be from 0 (keep no body) to %d bytes (64MiB)", maxMaxReplayBody)
	}
	if p.AttemptTimeout == 0 {
		p.AttemptTimeout = DefaultAttemptTimeout
	}
	if p.SendRetry.Attempts == 0 {
		p.SendRetry.Attempts = DefaultSendAttempts
	}
	if p.SendRetry.Attempts < 1 || p.SendRetry.Attempts > maxSendAttempts {
		ps.add("proxy.send_retry.attempts", "must be from 1 (no retry) to %d", maxSendAttempts)
	}
	if p.SendRetry.MaxElapsed == 0 {
		p.SendRetry.MaxElapsed = DefaultSendMaxElapsed
	}
	if p.AttemptTimeout < 0 {
		ps.add("proxy.attempt_timeout", "must be a positive duration")
	}
	if p.SendRetry.MaxElapsed < 0 {
		ps.add("proxy.send_retry.max_elapsed", "must be a positive duration")
	}
}

// checkUpstream: an upstream follows base_url's rule (the oauth
// package's, checked the same way): https://, or http:// on loopback
// (tests, a local fake), with no user info, query or fragment.
func checkUpstream(ps *problems, key, raw string) {
	if _, err := oauth.NewClient(oauth.Config{BaseURL: raw}); err != nil {
		ps.add(key, "must be an https:// URL (http:// only to a loopback host) without user info, query or fragment, such as %s", DefaultAPIURL)
	}
}
