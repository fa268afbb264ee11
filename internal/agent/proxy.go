package agent

import (
	"context"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"regexp"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/linetoken/linetoken/oauth"
)

// The proxy's wire names (LINE-MESSAGING-API.md, "Retry key").
const (
	headerRetryKey           = "X-Line-Retry-Key"
	headerAcceptedRequestID  = "X-Line-Accepted-Request-Id"
	headerRequestID          = "X-Line-Request-Id"
	headerPrefixLinetoken    = "X-Linetoken-"
	placeholderWord          = "linetoken"
	defaultSendBackoff       = 250 * time.Millisecond // the first retry's wait, before jitter
	maxSendBackoff           = 8 * time.Second        // no single wait is longer (Retry-After aside)
	proxyReadHeaderTimeout   = 10 * time.Second
	proxyIdleTimeout         = 2 * time.Minute
	maxProxyHeaderBytes      = 64 << 10 // LINE's requests carry a few small headers
	placeholderConfigureHelp = `set your SDK's channel access token to "linetoken" (or "linetoken:CHANNEL_ID[:KIND][/CALLER_KEY]") and its base URL to this address`
)

// sendSuccess is the success status of each message send LINE accepts a
// retry key on: what a 409 after an ambiguous attempt is answered as.
var sendSuccess = map[string]int{
	"/v2/bot/message/push":       http.StatusOK,
	"/v2/bot/message/multicast":  http.StatusOK,
	"/v2/bot/message/narrowcast": http.StatusAccepted,
	"/v2/bot/message/broadcast":  http.StatusOK,
}

// isDataPath reports whether LINE serves path on api-data.line.me
// (LINE-MESSAGING-API.md, "Hosts"): content downloads and uploads.
func isDataPath(path string) bool {
	if rest, ok := strings.CutPrefix(path, "/v2/bot/message/"); ok {
		id, tail, _ := strings.Cut(rest, "/")
		return id != "" && (tail == "content" || tail == "content/preview" || tail == "content/transcoding")
	}
	if rest, ok := strings.CutPrefix(path, "/v2/bot/richmenu/"); ok {
		id, tail, _ := strings.Cut(rest, "/")
		return id != "" && tail == "content"
	}
	return path == "/v2/bot/audienceGroup/upload/byFile"
}

// isTokenEndpoint reports whether path is one of LINE's token endpoints,
// which the proxy never forwards: their forms and queries carry secrets,
// and they take no Bearer token. Empty segments and ";" path parameters
// are skipped, as a server in front of LINE may skip them (nginx merges
// slashes; servlet containers drop ";..."), so no other spelling passes.
func isTokenEndpoint(path string) bool {
	first := ""
	for seg := range strings.SplitSeq(path, "/") {
		seg, _, _ = strings.Cut(seg, ";")
		switch {
		case seg == "":
		case first == "":
			if strings.EqualFold(seg, "oauth2") {
				return true
			}
			first = seg
		default:
			return strings.EqualFold(first, "v2") && strings.EqualFold(seg, "oauth")
		}
	}
	return false
}

// placeholder is a parsed placeholder access token.
type placeholder struct {
	channel string // "" when not named
	kind    string // "" when not named
	key     string // the caller key riding in it; "" when none
}

// placeholderPattern is the placeholder's exact grammar (README):
//
//	"linetoken" [ ":" channel-id [ ":" kind ] ] [ "/" caller-key ]
var placeholderPattern = regexp.MustCompile(`^linetoken(?::([0-9]+)(?::(v2\.1|short-lived|stateless))?)?(?:/([A-Za-z0-9_-]+))?$`)

// parsePlaceholder reads an Authorization header value; ok is false for
// anything but "Bearer <placeholder>".
func parsePlaceholder(auth string) (placeholder, bool) {
	scheme, v, found := strings.Cut(auth, " ")
	if !found || !strings.EqualFold(scheme, "Bearer") || !strings.HasPrefix(v, placeholderWord) {
		return placeholder{}, false
	}
	if v == placeholderWord { // the usual one, without the regexp
		return placeholder{}, true
	}
	m := placeholderPattern.FindStringSubmatch(v)
	if m == nil {
		return placeholder{}, false
	}
	return placeholder{channel: m[1], kind: m[2], key: m[3]}, true
}

// hopByHop are the headers that describe one connection, not the
// request (RFC 9110, section 7.6.1), removed in both directions.
var hopByHop = []string{
	"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization",
	"Te", "Trailer", "Transfer-Encoding", "Upgrade",
}

// removeHopByHop deletes h's hop-by-hop headers, those Connection names
// included.
func removeHopByHop(h http.Header) {
	for _, f := range h["Connection"] {
		for _, name := range strings.Split(f, ",") {
			if name = strings.TrimSpace(name); name != "" {
				h.Del(name)
			}
		}
	}
	for _, k := range hopByHop {
		delete(h, k)
	}
}

// outHeader is what is forwarded of an incoming request's header: every
// header but the hop-by-hop ones, Authorization and X-Linetoken-*.
func outHeader(in http.Header) http.Header {
	h := make(http.Header, len(in))
	for k, v := range in {
		if k == "Authorization" || strings.HasPrefix(k, headerPrefixLinetoken) {
			continue
		}
		h[k] = v
	}
	removeHopByHop(h)
	return h
}

// upstream is one of the proxy's two hosts.
type upstream struct {
	scheme, host string
	prefix       string // the URL's path, without a trailing slash
}

func newUpstream(raw string) upstream {
	u, _ := url.Parse(raw) // checked by Config.Validate
	return upstream{scheme: u.Scheme, host: u.Host, prefix: strings.TrimSuffix(u.EscapedPath(), "/")}
}

// target is the upstream URL of an incoming request's path and query.
func (u upstream) target(in *url.URL) *url.URL {
	t := &url.URL{Scheme: u.scheme, Host: u.host, Path: u.prefix + in.Path, RawQuery: in.RawQuery}
	if in.RawPath != "" {
		t.RawPath = u.prefix + in.RawPath
	}
	return t
}

// proxyTransport is the upstream client's transport: Go's defaults, the
// standard proxy variables honoured (HTTPS_PROXY, NO_PROXY), and an
// attempt's wait for response headers bounded.
func proxyTransport(attemptTimeout time.Duration) *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.Proxy = http.ProxyFromEnvironment
	t.ResponseHeaderTimeout = attemptTimeout
	t.MaxIdleConnsPerHost = 64 // a busy bot's sends share a few hosts
	return t
}

// proxyChannel is what the proxy keeps per channel and kind: two
// oauth.Transports, which differ in what a 401 does to the token, and its
// latency histogram's child.
type proxyChannel struct {
	bot      *oauth.Transport // Messaging API paths: a 401 is proof the token is bad
	other    *oauth.Transport // any other path: a 401 is checked with LINE first
	duration prometheus.Observer
}

// takesChannelToken reports whether path is one of the Messaging API's,
// which all take the channel access token: a 401 there means LINE
// refused that token. Elsewhere (a LINE Login path that takes a user's
// token, say) a 401 proves nothing about it.
func takesChannelToken(path string) bool {
	return strings.HasPrefix(path, "/v2/bot/") || strings.HasPrefix(path, "/bot/")
}

// channelTransport is c's oauth.Transport over the proxy's upstream
// transport: it sets the real token and heals a 401 once, through
// invalidate (limited to one drop per 30 s).
func channelTransport(c *channel, base http.RoundTripper, invalidate func(context.Context, string)) *oauth.Transport {
	return &oauth.Transport{Source: c.ts, Base: upstreamRT{base}, Invalidate: invalidate}
}

// upstreamRT marks the upstream transport's errors as *upstreamError, to
// tell them from the token errors oauth.Transport returns before sending
// anything (an unusable HTTPS_PROXY fails before any connection, and is
// not a token problem).
type upstreamRT struct{ base http.RoundTripper }

func (u upstreamRT) RoundTrip(r *http.Request) (*http.Response, error) {
	if at, ok := r.Context().Value(attemptKey{}).(*attempt); ok {
		// Traced here, not on the request's context: LINE's token and
		// verify calls a 401 heal makes share that context, and their
		// writes must not count as this request's.
		rt := new(roundTrip)
		at.last.Store(rt)
		r = r.WithContext(httptrace.WithClientTrace(r.Context(), &httptrace.ClientTrace{GetConn: at.onConn, WroteRequest: rt.wroteRequest}))
	}
	resp, err := u.base.RoundTrip(r)
	if err != nil {
		return nil, &upstreamError{err}
	}
	return resp, nil
}

// attempt is one attempt of a proxied request, found by upstreamRT in its
// request's context (attemptKey).
type attempt struct {
	onConn func(hostPort string) // the proxy's test-only observer, or nil
	// last is the attempt's last round trip to LINE: a healed 401's
	// retry replaces the first.
	last atomic.Pointer[roundTrip]
}

type attemptKey struct{}

// wrote reports whether the attempt's last round trip wrote its request
// whole: LINE may have acted on it.
func (at *attempt) wrote() bool {
	rt := at.last.Load()
	return rt != nil && rt.wrote.Load()
}

// roundTrip is what one round trip's trace saw. wrote is atomic: a
// connection's write loop may report after RoundTrip returned (a 401
// answered before the body was written).
type roundTrip struct{ wrote atomic.Bool }

func (rt *roundTrip) wroteRequest(i httptrace.WroteRequestInfo) {
	if i.Err == nil {
		rt.wrote.Store(true)
	}
}

// upstreamError is an error of the upstream transport.
type upstreamError struct{ err error }

func (e *upstreamError) Error() string { return e.err.Error() }
func (e *upstreamError) Unwrap() error { return e.err }
