package specdiff

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

const (
	// FetchTimeout is the default bound on a whole fetch, redirects and body
	// included ([ClientOptions.Timeout]): LINE's file is served in well
	// under a second, and a stalled host must fail a CI job, not hold it.
	FetchTimeout = 30 * time.Second
	// MaxSpecBytes caps a fetched spec: LINE's file is about 15 KiB, so
	// anything near 4 MiB is not it.
	MaxSpecBytes = 4 << 20
	// maxRedirects bounds the redirects followed, each checked like the URL.
	maxRedirects = 5
	// dialTimeout bounds one TCP connection attempt.
	dialTimeout = 10 * time.Second
	// htmlSniffBytes is how much of a body is searched for an HTML start.
	htmlSniffBytes = 512

	// redactedMark stands for a URL's userinfo or a query value when shown.
	redactedMark = "xxxxx"

	httpsScheme = "https"
	httpScheme  = "http"
	localhost   = "localhost"
)

// IsURL reports whether the -upstream value s is a URL ("scheme://...")
// rather than a file; [CheckURL] says whether it may be fetched.
func IsURL(s string) bool { return strings.Contains(s, "://") }

// Resolver looks up a host's addresses; *net.Resolver is one.
type Resolver interface {
	LookupHost(ctx context.Context, host string) ([]string, error)
}

// ClientOptions configure [NewHTTPClient].
type ClientOptions struct {
	// Resolver resolves host names; nil means net.DefaultResolver.
	Resolver Resolver
	// TLS is the TLS configuration; nil means Go's default (system roots).
	TLS *tls.Config
	// Proxy picks a proxy per request, as http.Transport.Proxy; nil means
	// none. The command passes http.ProxyFromEnvironment.
	Proxy func(*http.Request) (*url.URL, error)
	// Timeout bounds a whole fetch, redirects and body included; zero means
	// FetchTimeout.
	Timeout time.Duration
}

// NewHTTPClient returns the client [Fetch] uses: host names resolved by
// opts.Resolver, opts.Timeout (default FetchTimeout) on the whole exchange,
// and every redirect target checked as the URL is (https, or http to
// loopback only).
func NewHTTPClient(opts ClientOptions) *http.Client {
	timeout := FetchTimeout
	if opts.Timeout > 0 {
		timeout = opts.Timeout
	}
	var resolver Resolver = net.DefaultResolver
	if opts.Resolver != nil {
		resolver = opts.Resolver
	}
	dialer := &net.Dialer{Timeout: dialTimeout}
	transport := &http.Transport{
		Proxy:               opts.Proxy,
		TLSClientConfig:     opts.TLS,
		TLSHandshakeTimeout: dialTimeout,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			host, port, err := net.SplitHostPort(addr)
			if err != nil {
				return nil, err
			}
			if net.ParseIP(host) != nil {
				return dialer.DialContext(ctx, network, addr)
			}
			addrs, err := resolver.LookupHost(ctx, host)
			if err != nil {
				return nil, err
			}
			var errs []error
			for _, a := range addrs {
				conn, err := dialer.DialContext(ctx, network, net.JoinHostPort(a, port))
				if err == nil {
					return conn, nil
				}
				errs = append(errs, err)
			}
			if len(errs) == 0 {
				return nil, &net.DNSError{Err: "no addresses", Name: host, IsNotFound: true}
			}
			return nil, errors.Join(errs...)
		},
	}
	return &http.Client{
		Transport: transport,
		Timeout:   timeout,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= maxRedirects {
				return fmt.Errorf("more than %d redirects", maxRedirects)
			}
			if err := checkURL(req.URL); err != nil {
				return fmt.Errorf("redirected to %s: %w", redactURL(req.URL), err)
			}
			return nil
		},
	}
}

// CheckURL reports why raw cannot be fetched, or nil: it must be https://,
// or http:// to a loopback host (for tests).
func CheckURL(raw string) error {
	_, err := parseURL(raw)
	return err
}

// parseURL parses and checks a URL to fetch. Its errors show the URL as
// [Redact] does: an unparsable one not at all, since url.Parse's errors
// quote it, and its password may be what broke it.
func parseURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, errors.New("specdiff: upstream URL: not a valid URL (not shown: it may hold a password; percent-encode special characters in a user name or password)")
	}
	if err := checkURL(u); err != nil {
		return nil, fmt.Errorf("specdiff: upstream URL %s: %w", redactURL(u), err)
	}
	return u, nil
}

// Redact returns the -upstream value raw as errors, output and reports may
// show it. A file name is shown as it is. A URL is shown without its
// userinfo or its query values, either of which may hold a token (a
// password, a user name that is a token, or a raw-file host's ?token=);
// an unparsable URL is not shown at all.
func Redact(raw string) string {
	if !IsURL(raw) {
		return raw
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "(an unparsable URL, not shown)"
	}
	return redactURL(u)
}

// redactURL is u without its userinfo and query values, see [Redact].
func redactURL(u *url.URL) string {
	r := *u
	if r.User != nil {
		r.User = url.User(redactedMark)
	}
	if r.RawQuery != "" {
		parts := strings.Split(r.RawQuery, "&")
		for i, p := range parts {
			if key, _, ok := strings.Cut(p, "="); ok {
				parts[i] = key + "=" + redactedMark
			} else if p != "" {
				parts[i] = redactedMark // a bare value may be a token too
			}
		}
		r.RawQuery = strings.Join(parts, "&")
	}
	r.ForceQuery = false
	return r.String()
}

func checkURL(u *url.URL) error {
	switch {
	case u.Host == "":
		return errors.New("no host")
	case u.Scheme == httpsScheme:
		return nil
	case u.Scheme == httpScheme && isLoopback(u.Hostname()):
		return nil
	case u.Scheme == httpScheme:
		return errors.New("http:// is allowed only to a loopback host; use https://")
	default:
		return fmt.Errorf("scheme %q: want https://", u.Scheme)
	}
}

func isLoopback(host string) bool {
	if host == localhost {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Fetch downloads an upstream spec from rawURL with client (nil: a
// [NewHTTPClient] with default options), within the client's Timeout
// (FetchTimeout if it has none) and MaxSpecBytes. Its errors say what went
// wrong: the host did not resolve, no answer in time, the server answered
// other than 200, it sent an HTML page instead of YAML, or the body is too
// large. They show the URL as [Redact] does.
func Fetch(ctx context.Context, client *http.Client, rawURL string) ([]byte, error) {
	u, err := parseURL(rawURL)
	if err != nil {
		return nil, err
	}
	name := redactURL(u)
	if client == nil {
		client = NewHTTPClient(ClientOptions{})
	}
	timeout := FetchTimeout
	if client.Timeout > 0 {
		timeout = client.Timeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("specdiff: fetch %s: cannot make the request", name)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fetchError(name, timeout, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("specdiff: fetch %s: HTTP %s, want 200 OK: check the URL (UPSTREAM_URL)", name, resp.Status)
	}
	if resp.ContentLength > MaxSpecBytes {
		return nil, tooLarge(name, fmt.Sprintf("%d bytes", resp.ContentLength))
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, MaxSpecBytes+1))
	if err != nil {
		return nil, fetchError(name, timeout, err)
	}
	if len(data) > MaxSpecBytes {
		return nil, tooLarge(name, "more than that")
	}
	if isHTML(resp.Header.Get("Content-Type"), data) {
		return nil, fmt.Errorf("specdiff: fetch %s: the server sent an HTML page, not the YAML spec (a login or error page, a proxy, or a web page URL rather than the raw file?)", name)
	}
	return data, nil
}

func tooLarge(name, size string) error {
	return fmt.Errorf("specdiff: fetch %s: the body is larger than %d MiB (%s): not LINE's spec", name, MaxSpecBytes>>20, size)
}

// fetchError names the failure class of a failed exchange, for the URL
// shown as name. It drops net/http's *url.Error wrapper, which quotes the
// URL with its user name and query.
func fetchError(name string, timeout time.Duration, err error) error {
	cause := err
	if urlErr, ok := errors.AsType[*url.Error](err); ok {
		cause = urlErr.Err
	}
	var dnsErr *net.DNSError
	switch {
	case errors.As(err, &dnsErr):
		return fmt.Errorf("specdiff: fetch %s: cannot resolve %s (DNS): is the network up? %w", name, dnsErr.Name, dnsErr)
	case errors.Is(err, context.DeadlineExceeded) || isTimeout(err):
		return fmt.Errorf("specdiff: fetch %s: timed out: no complete answer within %s: %w", name, timeout, cause)
	default:
		return fmt.Errorf("specdiff: fetch %s: %w", name, cause)
	}
}

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}

// isHTML reports whether a response is an HTML page: by its declared type,
// or by how its body starts.
func isHTML(contentType string, body []byte) bool {
	if mt, _, err := mime.ParseMediaType(contentType); err == nil && (mt == "text/html" || mt == "application/xhtml+xml") {
		return true
	}
	head := bytes.ToLower(bytes.TrimSpace(body[:min(len(body), htmlSniffBytes)]))
	return bytes.HasPrefix(head, []byte("<!doctype html")) || bytes.HasPrefix(head, []byte("<html"))
}
