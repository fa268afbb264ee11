package main

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/linetoken/linetoken/oauth"
	"github.com/linetoken/linetoken/oauth/oauthtest"
)

const fakeServerUsage = `Usage: linetoken fake-server [--addr 127.0.0.1:8080] [--json]

Runs the fake LINE token service (oauthtest) on --addr for a bot's local
tests, and prints a ready channel: its ID, secret, a private key file and the
key's kid, as environment variables. They are throwaway fake credentials,
valid only on this server and gone when it stops (the key file is deleted):
the one place linetoken prints a secret. --addr also serves the Messaging API
calls the fake knows (push, multicast, narrowcast, broadcast, bot info,
message content, rich menu image upload; tokens this server issued only): use
it as both api_url and data_url. Each request is logged on stderr (method,
path, status; never a token), and so is each message send it accepts
(channel, path, retry key, request ID, body size; never the body). Runs until
Ctrl-C or SIGTERM.

--json prints {"base_url","channel_id","channel_secret","private_key_file",
"key_id","long_lived_token"} once the server is ready.`

const (
	// defaultFakeAddr: loopback, so nothing outside this machine reaches it.
	defaultFakeAddr = "127.0.0.1:8080"
	// fakeShutdownTimeout bounds the wait for requests in flight at exit.
	fakeShutdownTimeout = 5 * time.Second
	// fakeReadHeaderTimeout drops clients that never finish their headers.
	fakeReadHeaderTimeout = 10 * time.Second
)

// fakeServerInfo is what fake-server prints (--json form).
type fakeServerInfo struct {
	BaseURL        string `json:"base_url"`
	ChannelID      string `json:"channel_id"`
	ChannelSecret  string `json:"channel_secret"`
	PrivateKeyFile string `json:"private_key_file"`
	KeyID          string `json:"key_id"`
	LongLivedToken string `json:"long_lived_token"`
}

func runFakeServer(e *env, args []string) error {
	fs := flag.NewFlagSet("fake-server", flag.ContinueOnError)
	addr := fs.String("addr", defaultFakeAddr, "address to listen on (host:port; port 0 picks a free one)")
	asJSON := fs.Bool("json", false, "print the credentials as one JSON object")
	pos, err := parseFlags(e, fs, fakeServerUsage, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("fake-server takes no arguments; the address is --addr")
	}
	if _, _, err := net.SplitHostPort(*addr); err != nil {
		return usagef("--addr must be host:port, e.g. %s", defaultFakeAddr)
	}

	// oauthtest.NewServer listens on free loopback ports of its own; the
	// handler serving every path (Server.ServeHTTP) is served on --addr
	// too, and that is the URL printed.
	logger := &requestLogger{w: e.stderr}
	srv := oauthtest.NewServer(oauthtest.WithOnSend(logger.logSend))
	defer srv.Close()
	logger.next = srv
	var lc net.ListenConfig // with the context: Ctrl-C ends a slow host lookup
	ln, err := lc.Listen(e.ctx, "tcp", *addr)
	if err != nil {
		return fmt.Errorf("listening on %s: %s", addrLabel(*addr), listenProblem(err))
	}
	defer ln.Close()
	ch, err := e.createChannel(srv)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "linetoken-fake-")
	if err != nil {
		return fmt.Errorf("making a directory for the key file: %w", err)
	}
	defer os.RemoveAll(dir)
	keyFile := filepath.Join(dir, "private.jwk")
	if err := writePrivateFile(keyFile, ch.PrivateJWK, false); err != nil {
		return fmt.Errorf("writing the throwaway key file: %w", err)
	}

	hs := &http.Server{
		Handler:           logger,
		ReadHeaderTimeout: fakeReadHeaderTimeout,
		ErrorLog:          log.New(io.Discard, "", 0), // net/http's messages could quote a request
	}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()

	info := fakeServerInfo{
		BaseURL:        "http://" + printableAddr(ln.Addr()),
		ChannelID:      ch.ID,
		ChannelSecret:  ch.Secret,
		PrivateKeyFile: keyFile,
		KeyID:          ch.KeyID,
		LongLivedToken: srv.LongLivedToken(ch.ID),
	}
	if *asJSON {
		if err := writeJSON(e.stdout, info); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(e.stdout, `Fake LINE token service (oauthtest) listening on %s
A ready channel. These are THROWAWAY FAKE credentials, valid only on this
server until it stops (the key file is deleted then):

export %s=%s
export %s=%s
export %s=%s
export %s=%s
export %s=%s

The channel's long-lived token: %s
In Go: oauth.ConfigFromEnv() reads these. Requests are logged on stderr.
Press Ctrl-C to stop.
`, info.BaseURL,
			oauth.EnvBaseURL, info.BaseURL,
			oauth.EnvChannelID, info.ChannelID,
			oauth.EnvChannelSecret, info.ChannelSecret,
			oauth.EnvPrivateKeyFile, shellQuote(info.PrivateKeyFile),
			oauth.EnvKeyID, info.KeyID,
			info.LongLivedToken)
	}
	if f, ok := e.stdout.(interface{ Sync() error }); ok {
		f.Sync()
	}

	select {
	case <-e.ctx.Done():
	case err := <-served:
		return fmt.Errorf("serving: %w", err)
	}
	sctx, cancel := context.WithTimeout(context.Background(), fakeShutdownTimeout)
	defer cancel()
	srv.Close() // ends injected delays, so Shutdown need not wait them out
	if err := hs.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("stopping: %w", err)
	}
	fmt.Fprintln(e.stderr, "fake-server: stopped")
	return nil
}

// addrLabel names --addr in an error: with its value when that cannot hide
// a secret (an IP address, or none, and a port number), else the flag
// alone, as clip treats any other misplaced argument.
func addrLabel(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	const maxPortDigits = 5 // 65535
	portOK := port != "" && len(port) <= maxPortDigits && strings.Trim(port, "0123456789") == ""
	if err == nil && portOK && (host == "" || net.ParseIP(host) != nil) {
		return "--addr " + addr
	}
	return "--addr"
}

// listenProblem is why listening failed, without the address: net's
// errors quote the host and port as given ("lookup <host>: no such host",
// "lookup tcp/<port>: unknown port").
func listenProblem(err error) string {
	var dnsErr *net.DNSError
	var addrErr *net.AddrError
	var errno syscall.Errno
	switch {
	case errors.Is(err, context.Canceled):
		return "interrupted"
	case errors.As(err, &dnsErr) && strings.HasPrefix(dnsErr.Name, "tcp/"): // a port name looked up
		return "unknown port"
	case errors.As(err, &dnsErr) && dnsErr.IsNotFound:
		return "no such host"
	case errors.As(err, &dnsErr) && dnsErr.IsTimeout:
		return "looking up the host timed out"
	case errors.As(err, &dnsErr):
		return "the host could not be looked up"
	case errors.As(err, &addrErr):
		return addrErr.Err // a fixed text: "invalid port", "missing port in address", ...
	case errors.As(err, &errno):
		return errno.Error() // "address already in use", "cannot assign requested address", ...
	}
	return "the address cannot be used"
}

// printableAddr is a listener's address as a client should dial it: an
// unspecified host (0.0.0.0, ::) becomes loopback.
func printableAddr(a net.Addr) string {
	host, port, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

// requestLogger logs each request's method, path and status: never its
// query or body, where tokens and secrets travel.
type requestLogger struct {
	next http.Handler
	mu   sync.Mutex
	w    io.Writer
}

func (l *requestLogger) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	sw := &statusWriter{ResponseWriter: w}
	l.next.ServeHTTP(sw, r)
	status := "dropped"
	if sw.status != 0 {
		status = fmt.Sprint(sw.status)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(l.w, "fake-server: %s %s -> %s\n", r.Method, r.URL.Path, status)
}

// logSend logs a message send the fake accepted: its channel, path,
// retry key ("-" for none; the fake accepts only UUIDs), request ID and
// body size. Never the body: it holds user IDs and message texts.
func (l *requestLogger) logSend(s oauthtest.Send) {
	key := cmp.Or(s.RetryKey, "-")
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(l.w, "fake-server: accepted %s channel=%s retry_key=%s request_id=%s bytes=%d\n",
		s.Path, s.ChannelID, key, s.RequestID, len(s.Body))
}

// statusWriter records the status. It must pass on what the fake needs of
// the connection: Unwrap serves http.ResponseController (Flush, deadlines),
// and Hijack serves the fake's dropped-connection fault (Fault.Drop,
// Server.DropNext), which type-asserts http.Hijacker: without it the fake
// falls back to panicking with http.ErrAbortHandler, and this logger never
// logs the request.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Hijack hands over the connection, when the wrapped writer can; the
// status stays unset, so the request is logged as dropped.
func (w *statusWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return http.NewResponseController(w.ResponseWriter).Hijack()
}
