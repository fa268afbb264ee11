package agent

import (
	"cmp"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/user"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/linetoken/linetoken/oauth"
	"github.com/linetoken/linetoken/oauth/redisstore"
)

// Lifecycle and server limits.
const (
	// drainTimeout: requests in flight at shutdown finish within this.
	drainTimeout = 10 * time.Second
	// stopTimeout bounds the whole shutdown: drain, then the TokenSources'
	// revocations.
	stopTimeout = 20 * time.Second
	// defaultPollInterval: how often a channel's keeper looks at its token
	// (a TokenSource refreshes only when asked) and retries sink writes.
	defaultPollInterval = time.Second
	// defaultSlotsInterval: how often the v2.1 key-ID list is polled for
	// linetoken_v21_slots_in_use.
	defaultSlotsInterval = 5 * time.Minute
	// Server timeouts: a token request is small and answered within
	// tokenWait.
	readHeaderTimeout = 5 * time.Second
	readTimeout       = 10 * time.Second
	writeTimeout      = tokenWait + 5*time.Second
	idleTimeout       = 2 * time.Minute
	maxHeaderBytes    = 16 << 10
	// socketMode is the unix socket's mode: owner and group.
	socketMode = 0o660
)

// Options are the agent's run-time collaborators, not configuration.
type Options struct {
	// Logger receives the agent's and the library's logs; nil: silent.
	Logger *slog.Logger
	// OnListen is told each listener's bound address (host:port, or the
	// socket's path) once it accepts connections; nil: nobody.
	OnListen func(addr string)
	// Clock tells the time (a fake's Now in tests); nil: time.Now.
	Clock func() time.Time
	// HTTPClient reaches LINE; nil: the library's default client.
	HTTPClient *http.Client
	// PollInterval is how often each channel's keeper looks at its token;
	// 0: one second.
	PollInterval time.Duration
	// SlotsInterval is how often the v2.1 key-ID list is polled; 0: five
	// minutes.
	SlotsInterval time.Duration
	// OnProxyListen is told the proxy's bound address once it accepts
	// connections; nil: nobody.
	OnProxyListen func(addr string)
	// SendBackoff is the proxy's first wait before a retry, doubled per
	// attempt and jittered; 0: 250ms. Tests shorten it.
	SendBackoff time.Duration
}

// Agent serves one validated Config. Create it with [New], then [Agent.Run].
type Agent struct {
	cfg      *Config
	opts     Options
	log      *slog.Logger
	m        *metrics
	mh       http.Handler
	channels []*channel
	byID     map[string][]*channel
	callers  []callerKey
	hosts    map[string]bool
	private  bool          // memory store: Close revokes every token
	slotsNow chan struct{} // a token was issued: poll the key-ID list now
	closed   sync.Once     // closeAll runs once: at Run's end or at Close
	closeRDB func() error
	proxy    *proxy // nil: no proxy configured
}

// New builds the agent for cfg (validated by [Config.Validate] or
// [ParseConfig]): clients, TokenSources and the store. It contacts
// nothing; [Agent.Run] does.
func New(cfg *Config, opts Options) (*Agent, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	opts.PollInterval = cmp.Or(opts.PollInterval, defaultPollInterval)
	opts.SlotsInterval = cmp.Or(opts.SlotsInterval, defaultSlotsInterval)
	a := &Agent{cfg: cfg, opts: opts, log: opts.Logger, m: newMetrics(), byID: map[string][]*channel{},
		hosts: map[string]bool{"127.0.0.1": true, "::1": true, "localhost": true}, slotsNow: make(chan struct{}, 1)}
	a.mh = a.m.handler()
	for _, h := range cfg.AllowedHosts {
		a.hosts[strings.ToLower(strings.Trim(h, "[]"))] = true
	}
	for _, c := range cfg.Callers {
		ck := callerKey{name: c.Name, digest: sha256.Sum256([]byte(c.Key))}
		if c.Channels != nil {
			ck.channels = map[string]bool{}
			for _, id := range c.Channels {
				ck.channels[id] = true
			}
		}
		a.callers = append(a.callers, ck)
	}
	var store oauth.Store
	switch {
	case cfg.Store.Redis != "":
		ro, err := redis.ParseURL(cfg.Store.Redis)
		if err != nil {
			return nil, &ConfigError{Problems: []*FieldError{cfg.problem("store.redis", "not a valid Redis URL")}}
		}
		ro.Password = string(cfg.Store.RedisPassword)
		rdb := redis.NewClient(ro)
		a.closeRDB = rdb.Close
		store = redisstore.New(rdb, redisstore.WithLogger(a.log))
	case cfg.Store.File != "":
		fs, err := oauth.NewFileStore(cfg.Store.File)
		if err != nil {
			return nil, &ConfigError{Problems: []*FieldError{cfg.problem("store.file", err.Error())}}
		}
		fs.SetLogger(a.log)
		store = fs
	default:
		a.private = true // nil Store: each TokenSource's own MemoryStore
	}
	for i, cc := range cfg.Channels {
		key := fmt.Sprintf("channels[%d]", i)
		client, err := oauth.NewClient(oauth.Config{
			ChannelID: cc.ID, ChannelSecret: string(cc.Secret), Key: cc.Key, BaseURL: cfg.BaseURL,
			HTTPClient: opts.HTTPClient, Clock: opts.Clock, Logger: a.log, UserAgent: "linetoken-agent",
		})
		if err != nil {
			a.closeStore()
			return nil, &ConfigError{Problems: []*FieldError{cfg.problem(key, err.Error())}}
		}
		c := &channel{a: a, id: cc.ID, kind: cc.Kind, kindS: cc.Kind.String(), client: client, wake: make(chan struct{}, 1)}
		for _, s := range cc.Sinks {
			c.sinks = append(c.sinks, &sink{Sink: s})
		}
		c.ts, err = oauth.NewTokenSource(client, oauth.TokenSourceOptions{
			Kind: cc.Kind, Lifetime: cc.Lifetime, RefreshBefore: cc.RefreshBefore,
			Store: store, Logger: a.log, OnRefresh: c.onRefresh,
		})
		if err != nil {
			a.closeStore()
			return nil, &ConfigError{Problems: []*FieldError{cfg.problem(key, err.Error())}}
		}
		a.channels = append(a.channels, c)
		a.byID[cc.ID] = append(a.byID[cc.ID], c)
	}
	if cfg.Proxy != nil {
		a.proxy = newProxy(a, cfg.Proxy)
	}
	return a, nil
}

func (a *Agent) now() time.Time { return a.opts.Clock() }

func (a *Agent) closeStore() {
	if a.closeRDB != nil {
		_ = a.closeRDB()
	}
}

// ListenError: a listener could not be set up (the address is taken, the
// socket's directory is missing). The linetoken command exits 3.
type ListenError struct {
	Addr string
	Err  error
}

func (e *ListenError) Error() string {
	return "agent: cannot listen on " + e.Addr + ": " + e.Err.Error()
}

func (e *ListenError) Unwrap() error { return e.Err }

// listener is one bound listener and its server.
type listener struct {
	l      net.Listener
	srv    *http.Server
	addr   string
	socket string // the unix socket's path, removed at exit
	proxy  bool   // the LINE API endpoint's listener
}

// Run binds the listeners, keeps every channel's token fresh and serves
// until ctx ends, then shuts down: it stops accepting, lets requests in
// flight finish (10s at most), closes the TokenSources (a memory store
// revokes its tokens, and sinks of revoked tokens are removed) and
// removes the socket, within 20s in all. It returns nil after a shutdown
// (a failed revocation is logged, not returned), a *[ListenError] when a
// listener cannot be set up, and a *[CredentialsError] when LINE refuses a
// channel's credentials before any token was had.
func (a *Agent) Run(ctx context.Context) error {
	ls, err := a.listen()
	if err != nil {
		_ = a.Close()
		return err
	}
	for _, l := range ls {
		go func() { _ = l.srv.Serve(l.l) }()
		if l.proxy {
			a.log.LogAttrs(ctx, slog.LevelInfo, "agent: LINE API endpoint (proxy) listening", slog.String("addr", l.addr))
			if a.opts.OnProxyListen != nil {
				a.opts.OnProxyListen(l.addr)
			}
			continue
		}
		a.log.LogAttrs(ctx, slog.LevelInfo, "agent: listening", slog.String("addr", l.addr))
		if a.opts.OnListen != nil {
			a.opts.OnListen(l.addr)
		}
	}
	kctx, stopKeepers := context.WithCancel(context.Background())
	var fatalOnce sync.Once
	fatalCh := make(chan error, 1)
	fatal := func(err error) { fatalOnce.Do(func() { fatalCh <- err }) }
	var wg sync.WaitGroup
	for _, c := range a.channels {
		wg.Add(1)
		go func() { defer wg.Done(); c.keep(kctx, fatal) }()
	}
	wg.Add(1)
	go func() { defer wg.Done(); a.pollSlots(kctx) }()

	var runErr error
	select {
	case <-ctx.Done():
		a.log.LogAttrs(context.Background(), slog.LevelInfo, "agent: shutting down")
	case runErr = <-fatalCh:
		a.log.LogAttrs(context.Background(), slog.LevelError, "agent: stopping: LINE refused a channel's credentials",
			slog.String("error", runErr.Error()))
	}
	stopCtx, cancel := context.WithTimeout(context.Background(), stopTimeout)
	defer cancel()
	dctx, dcancel := context.WithTimeout(stopCtx, drainTimeout)
	var sw sync.WaitGroup
	for _, l := range ls {
		sw.Add(1)
		go func() {
			defer sw.Done()
			if err := l.srv.Shutdown(dctx); err != nil {
				_ = l.srv.Close()
			}
		}()
	}
	sw.Wait()
	dcancel()
	stopKeepers()
	wg.Wait()
	a.closed.Do(func() { a.closeAll(stopCtx) })
	for _, l := range ls {
		if l.socket != "" {
			if err := os.Remove(l.socket); err != nil && !errors.Is(err, os.ErrNotExist) {
				a.log.LogAttrs(context.Background(), slog.LevelWarn, "agent: removing the socket failed",
					slog.String("path", l.socket), slog.String("error", errors.Unwrap(err).Error()))
			}
		}
	}
	a.log.LogAttrs(context.Background(), slog.LevelInfo, "agent: stopped")
	return runErr
}

// Close releases an agent that New made and Run never ran (or that Run
// has finished with): it closes the TokenSources, revoking memory-store
// tokens as Run does at exit, and the store's client. After Run it does
// nothing. It is for tests and embedders that serve the agent's handler
// themselves; the error is always nil (failures are logged, as at Run's
// exit).
func (a *Agent) Close() error {
	a.closed.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), stopTimeout)
		defer cancel()
		a.closeAll(ctx)
	})
	return nil
}

// closeAll closes every TokenSource in parallel, within ctx: with a
// memory store that revokes their tokens, and the sinks of a channel
// whose tokens were revoked are removed. Failures are logged.
func (a *Agent) closeAll(ctx context.Context) {
	var wg sync.WaitGroup
	for _, c := range a.channels {
		wg.Add(1)
		go func() {
			defer wg.Done()
			done := make(chan error, 1)
			go func() { done <- c.ts.Close() }()
			select {
			case err := <-done:
				if err != nil {
					a.log.LogAttrs(context.Background(), slog.LevelError, "agent: closing the channel's token source: a revocation failed",
						slog.String("channel", c.id), slog.String("kind", c.kindS), slog.String("error", err.Error()))
					return
				}
			case <-ctx.Done():
				a.log.LogAttrs(context.Background(), slog.LevelError, "agent: closing the channel's token source took too long; exiting",
					slog.String("channel", c.id), slog.String("kind", c.kindS))
				return
			}
			if !a.private || c.kind == oauth.KindStateless {
				return // shared tokens live on; stateless ones cannot be revoked
			}
			for _, s := range c.sinks {
				if err := s.remove(); err != nil {
					a.log.LogAttrs(context.Background(), slog.LevelWarn, "agent: removing a sink failed",
						slog.String("path", s.Path), slog.String("error", err.Error()))
				}
			}
		}()
	}
	wg.Wait()
	a.closeStore()
	if a.proxy != nil {
		a.proxy.base.CloseIdleConnections()
	}
}

// listen binds the TCP listener and the unix socket.
func (a *Agent) listen() ([]*listener, error) {
	var ls []*listener
	closeAll := func() {
		for _, l := range ls {
			_ = l.l.Close()
		}
	}
	if a.cfg.Listen != "" {
		l, err := a.listenTCP(a.cfg.Listen)
		if err != nil {
			return nil, err
		}
		ls = append(ls, &listener{l: l, srv: a.server(), addr: l.Addr().String()})
	}
	if a.proxy != nil {
		l, err := a.listenTCP(a.cfg.Proxy.Listen)
		if err != nil {
			closeAll()
			return nil, err
		}
		ls = append(ls, &listener{l: l, srv: newProxyServer(a.proxy, a.log), addr: l.Addr().String(), proxy: true})
	}
	if a.cfg.Socket != "" {
		l, err := a.listenSocket()
		if err != nil {
			closeAll()
			return nil, err
		}
		ls = append(ls, &listener{l: l, srv: a.server(), addr: a.cfg.Socket, socket: a.cfg.Socket})
	}
	return ls, nil
}

// listenTCP binds addr, over TLS when the config has a certificate.
func (a *Agent) listenTCP(addr string) (net.Listener, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, &ListenError{Addr: addr, Err: errors.Unwrap(err)}
	}
	if a.cfg.TLS != nil && a.cfg.TLS.cert != nil {
		l = tls.NewListener(l, &tls.Config{Certificates: []tls.Certificate{*a.cfg.TLS.cert}, MinVersion: tls.VersionTLS12})
	}
	return l, nil
}

// listenSocket creates the unix socket, 0660, owned by socket_group when
// set. A stale socket left by a crashed agent is replaced; a live one
// (another agent answers on it) is an error.
func (a *Agent) listenSocket() (net.Listener, error) {
	path := a.cfg.Socket
	lerr := func(err error) error { return &ListenError{Addr: path, Err: err} }
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, lerr(errors.New("the path exists and is not a socket"))
		}
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, lerr(errors.New("another process is serving on this socket"))
		}
		_ = os.Remove(path)
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, lerr(errors.Unwrap(err))
	}
	fail := func(e error) (net.Listener, error) {
		l.Close()
		return nil, lerr(e)
	}
	if err := os.Chmod(path, socketMode); err != nil {
		return fail(errors.Unwrap(err))
	}
	if g := a.cfg.SocketGroup; g != "" {
		gr, err := user.LookupGroup(g)
		if err != nil {
			return fail(fmt.Errorf("socket_group: no such group"))
		}
		gid, _ := strconv.Atoi(gr.Gid)
		if err := os.Chown(path, -1, gid); err != nil {
			return fail(fmt.Errorf("socket_group: %w", errors.Unwrap(err)))
		}
	}
	return l, nil
}

func (a *Agent) server() *http.Server { return NewHTTPServer(a, a.log) }

// newProxyServer serves the proxy: a header deadline and an idle limit,
// but no read or write deadline, which would cut a streamed upload or
// download of any size.
func newProxyServer(h http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler: h, ReadHeaderTimeout: proxyReadHeaderTimeout, IdleTimeout: proxyIdleTimeout,
		MaxHeaderBytes: maxProxyHeaderBytes, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
}

// ProxyHandler is the LINE API endpoint's handler, nil without a proxy
// config: for tests and benchmarks that serve it themselves.
func (a *Agent) ProxyHandler() http.Handler {
	if a.proxy == nil {
		return nil
	}
	return a.proxy
}

// NewHTTPServer is the http.Server the agent serves h with: its timeouts
// and header cap, and net/http's own errors logged at Debug through log.
// The benchmark serves its floor with it too, so both run alike.
func NewHTTPServer(h http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler: h, ReadHeaderTimeout: readHeaderTimeout, ReadTimeout: readTimeout,
		WriteTimeout: writeTimeout, IdleTimeout: idleTimeout, MaxHeaderBytes: maxHeaderBytes,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
}

// pollSlots polls each v2.1 channel's key-ID list for
// linetoken_v21_slots_in_use: at start, after every refresh and every
// SlotsInterval.
func (a *Agent) pollSlots(ctx context.Context) {
	var v21 []*channel
	for _, c := range a.channels {
		if c.kind == oauth.KindV21 {
			v21 = append(v21, c)
		}
	}
	if len(v21) == 0 {
		return
	}
	t := time.NewTicker(a.opts.SlotsInterval)
	defer t.Stop()
	for {
		for _, c := range v21 {
			qctx, cancel := context.WithTimeout(ctx, verifyTimeout)
			kids, err := c.client.ValidKeyIDs(qctx)
			cancel()
			if err != nil {
				if ctx.Err() == nil {
					a.log.LogAttrs(ctx, slog.LevelWarn, "agent: listing the channel's v2.1 key IDs failed",
						slog.String("channel", c.id), slog.String("error", err.Error()))
				}
				continue
			}
			a.m.slots.WithLabelValues(c.id).Set(float64(len(kids)))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-a.slotsNow:
		}
	}
}

// RedisLog adapts a *slog.Logger to go-redis's process-wide logger
// (redis.SetLogger), which otherwise prints unformatted lines on stderr
// outside the agent's log format. The linetoken command installs it once
// per process; a library must not, as it is global state. Its lines carry
// addresses and failures, never the password (scrubbed all the same).
type RedisLog struct {
	Logger   *slog.Logger
	Password Secret
}

// Printf implements go-redis's internal.Logging.
func (r RedisLog) Printf(ctx context.Context, format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	if r.Password != "" {
		msg = strings.ReplaceAll(msg, string(r.Password), redacted)
	}
	r.Logger.LogAttrs(ctx, slog.LevelWarn, "agent: redis client", slog.String("detail", msg))
}
