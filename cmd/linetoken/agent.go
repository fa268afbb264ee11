package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/linetoken/linetoken/internal/agent"
	"github.com/linetoken/linetoken/oauth"
	"github.com/linetoken/linetoken/oauth/oauthtest"
)

const agentUsage = `Usage: linetoken agent [--dev] [--config agent.yaml] [flags]

Runs the token agent: it keeps one channel access token fresh per channel and
kind and hands it to processes in any language over a local HTTP API and
through sink files replaced at every rotation. Agents sharing --redis rotate
once for the whole fleet. Runs until Ctrl-C or SIGTERM.

It can also be your LINE API endpoint (a proxy): point a LINE SDK's base URL
at --proxy-listen's address and set its access token to the placeholder
"linetoken" (or linetoken:CHANNEL_ID[:KIND][/CALLER_KEY]); the agent adds the
real token, heals a 401 and retries message sends with X-Line-Retry-Key.
In a config file, the proxy: section turns it on (listen, api_url, data_url,
max_replay_body, attempt_timeout, send_retry).

  linetoken agent --dev               try it: a fake LINE in-process, zero setup,
                                      the proxy on 127.0.0.1:7879 (on a free
                                      port too when --listen's port is 0)
  linetoken agent                     one channel from LINE_* variables and flags
  linetoken agent --config FILE       many channels from a YAML file

HTTP API (every /v1/ request needs the header X-Linetoken-Request: 1):
  GET  /v1/channels/{id}/token[?kind=v2.1|short-lived|stateless]
  POST /v1/channels/{id}/token/invalidate   {"access_token":"..."}
  GET  /healthz  /readyz  /metrics

LINE API endpoint (--proxy-listen ADDR, or proxy: in the config file):
  any Messaging API request with Authorization: Bearer linetoken[...]

The Redis password is never part of --redis: set LINE_REDIS_PASSWORD or
LINE_REDIS_PASSWORD_FILE.

Exit codes: 0 after SIGINT/SIGTERM; 1 LINE refused the channel's credentials
at the first issue; 2 bad flags or config; 3 a listener could not be bound.`

// Agent settings read from the environment only.
const (
	envRedisPassword     = "LINE_REDIS_PASSWORD"
	envRedisPasswordFile = "LINE_REDIS_PASSWORD_FILE"
)

// agentFlagOf names the flag or variable of env mode that sets the
// config-file key, for errors of env mode.
func agentFlagOf(key string) (string, bool) {
	switch key {
	case "listen":
		return "--listen", true
	case "socket":
		return "--socket", true
	case "log_format":
		return "--log-format", true
	case "log_level":
		return "--log-level", true
	case "base_url":
		return "--" + flagBaseURL, true
	case "store.redis":
		return "--redis", true
	case "store.file":
		return "--store-file", true
	case "store.password":
		return envRedisPassword + " or " + envRedisPasswordFile, true
	case "store.password_file":
		return envRedisPasswordFile, true
	case "channels[0].id":
		return oauth.EnvChannelID + " or --" + flagChannelID, true
	case "channels[0].kind":
		return "--type", true
	case "channels[0].lifetime":
		return "--lifetime", true
	case "channels[0].refresh_before":
		return "--refresh-before", true
	case "channels[0].sinks[0].path":
		return "--sink", true
	case "channels[0].sinks[0].format":
		return "--sink-format", true
	case "channels[0].private_key_file":
		return oauth.EnvPrivateKeyFile + " or --" + flagKeyFile, true
	case "channels[0].secret_file":
		return oauth.EnvChannelSecret + " or --" + flagSecretFile, true
	case "proxy.listen":
		return "--" + flagProxyListen, true
	case "proxy.api_url", "proxy.data_url":
		// Env mode's upstreams are the base URL's (LINE's hosts when it
		// is LINE's); the other proxy.* keys exist in config files only.
		return "--" + flagBaseURL + " (the proxy's upstream)", true
	}
	return "", false
}

// flagProxyListen turns the LINE API endpoint on in env mode and moves it
// in --dev.
const flagProxyListen = "proxy-listen"

func runAgent(e *env, args []string) error {
	fs := flag.NewFlagSet("agent", flag.ContinueOnError)
	dev := fs.Bool("dev", false, "zero-setup try-out: an in-process fake LINE with a ready channel")
	configFile := fs.String("config", "", "YAML config file (many channels; see README)")
	typ := fs.String("type", typeV21, "token kind: v2.1, short-lived or stateless")
	lifetime := fs.String("lifetime", "24h", "lifetime of v2.1 tokens, 1s to 720h; also accepts days, e.g. 7d")
	refreshBefore := fs.Duration("refresh-before", 0, "early-refresh window (default: the library's, a tenth of the lifetime)")
	listen := fs.String("listen", agent.DefaultListen, `TCP address of the HTTP API ("" for none; port 0 picks a free port)`)
	proxyListen := fs.String(flagProxyListen, "", "TCP address of the LINE API endpoint, a proxy adding the real token (off unless set; --dev: "+agent.DefaultProxyListen+")")
	socket := fs.String("socket", "", "unix socket for the HTTP API (created 0660, removed at exit)")
	sinkPath := fs.String("sink", "", "file the token is written to at every rotation (replaced atomically)")
	sinkFormat := fs.String("sink-format", "raw", "sink content: raw (the token alone) or json (the API's object)")
	storeFile := fs.String("store-file", "", "keep tokens in this file (processes on one host share it)")
	redisURL := fs.String("redis", "", "keep tokens in Redis (redis:// or rediss:// URL, no password): a fleet rotates once")
	logFormat := fs.String("log-format", "text", "log format on stderr: text or json")
	logLevel := fs.String("log-level", "info", "least level logged: debug (adds the access log), info, warn or error")
	s := newSettings(e, fs, flagChannelID, flagSecretFile, flagKeyFile, flagKeyID, flagBaseURL)
	pos, err := parseFlags(e, fs, agentUsage, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("agent takes no arguments (got %d)", len(pos))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })

	var cfg *agent.Config
	var opts agent.Options
	var devInfo, devProxyInfo func(addr string)
	var devLog atomic.Pointer[slog.Logger] // --dev's fake logs accepted sends through the agent's logger
	switch {
	case *configFile != "":
		for name := range set {
			if name != "config" {
				return usagef("--%s cannot be combined with --config: set it in the config file", name)
			}
		}
		cfg, err = agent.LoadConfig(*configFile, e.getenv)
		if err != nil {
			return err
		}
	case *dev:
		for name := range set {
			if name != "dev" && name != "listen" && name != flagProxyListen && name != "log-format" && name != "log-level" {
				return usagef("--dev takes only --listen, --%s, --log-format and --log-level (it makes its own channel)", flagProxyListen)
			}
		}
		var cleanup func()
		cfg, opts, devInfo, devProxyInfo, cleanup, err = devSetup(e, *listen, cmp.Or(*proxyListen, devProxyAddr(*listen)), &devLog)
		if err != nil {
			return err
		}
		defer cleanup()
	default:
		cfg, err = envAgentConfig(e, s, *typ, *lifetime, set["lifetime"], *refreshBefore, *sinkPath, *sinkFormat)
		if err != nil {
			return err
		}
		cfg.Listen, cfg.Socket, cfg.Store.File, cfg.Store.Redis = *listen, *socket, *storeFile, *redisURL
		if *proxyListen != "" {
			cfg.Proxy = &agent.ProxyConfig{Listen: *proxyListen}
		}
		if cfg.BaseURL == "" {
			cfg.BaseURL = s.baseURL
		}
		pw, err := redisPassword(e)
		if err != nil {
			return err
		}
		cfg.Store.RedisPassword = pw
	}
	if *configFile == "" {
		cfg.LogFormat = *logFormat
		if err := cfg.LogLevel.UnmarshalText([]byte(*logLevel)); err != nil {
			return usagef("--log-level must be debug, info, warn or error")
		}
		if err := cfg.Validate(); err != nil {
			return flagNamed(err)
		}
	}
	opts.Logger = agentLogger(e.stderr, cfg.LogFormat, cfg.LogLevel)
	devLog.Store(opts.Logger)
	if cfg.Store.Redis != "" {
		// go-redis logs through a process-wide logger; this process runs
		// one agent, so its logs go where the agent's go.
		redis.SetLogger(agent.RedisLog{Logger: opts.Logger, Password: cfg.Store.RedisPassword})
	}
	opts.OnListen = func(addr string) {
		fmt.Fprintf(e.stdout, "linetoken agent: listening on %s\n", addr)
		if devInfo != nil {
			devInfo(addr)
		}
	}
	opts.OnProxyListen = func(addr string) {
		fmt.Fprintf(e.stdout, "%s%s\n", proxyListeningPrefix, addr)
		if devProxyInfo != nil {
			devProxyInfo(addr)
		}
	}
	a, err := agent.New(cfg, opts)
	if err != nil {
		return flagNamed(err)
	}
	// A *agent.ListenError is a local failure (exit 3); a
	// *agent.CredentialsError wraps LINE's *oauth.APIError (exit 1).
	return a.Run(e.ctx)
}

// agentLogger logs to w in the configured format.
func agentLogger(w io.Writer, format string, level slog.Level) *slog.Logger {
	ho := &slog.HandlerOptions{Level: level}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, ho))
	}
	return slog.New(slog.NewTextHandler(w, ho))
}

// envAgentConfig is env mode's one channel, from the LINE_* variables and
// the settings flags.
func envAgentConfig(e *env, s *settings, typ, lifetime string, lifetimeSet bool, refreshBefore time.Duration, sinkPath, sinkFormat string) (*agent.Config, error) {
	kind, ok := agent.ParseKind(typ)
	if !ok {
		return nil, usagef("--type must be %s, %s or %s", typeV21, typeShortLived, typeStateless)
	}
	if lifetimeSet && kind != oauth.KindV21 {
		return nil, usagef("--lifetime applies to v2.1 tokens only (%s tokens have a fixed lifetime)", typ)
	}
	var n need
	switch kind {
	case oauth.KindV21:
		n = needChannelID | needKey | needSecret
	case oauth.KindShortLived:
		n = needChannelID | needSecret
	default:
		n = needChannelID | needKeyOrSecret
	}
	oc, err := s.config(n)
	if err != nil {
		return nil, err
	}
	ch := agent.Channel{ID: oc.ChannelID, Kind: kind, Secret: agent.Secret(oc.ChannelSecret), Key: oc.Key, RefreshBefore: refreshBefore}
	if kind == oauth.KindV21 {
		life, err := parseLifetime(lifetime)
		if err != nil {
			return nil, err
		}
		ch.Lifetime = life
	}
	if sinkPath != "" {
		ch.Sinks = []agent.Sink{{Path: sinkPath, Format: sinkFormat}}
	}
	return &agent.Config{BaseURL: oc.BaseURL, Channels: []agent.Channel{ch}}, nil
}

// redisPassword reads LINE_REDIS_PASSWORD or LINE_REDIS_PASSWORD_FILE.
func redisPassword(e *env) (agent.Secret, error) {
	pw, file := e.getenv(envRedisPassword), strings.TrimSpace(e.getenv(envRedisPasswordFile))
	switch {
	case pw != "" && file != "":
		return "", usagef("set only one of %s and %s", envRedisPassword, envRedisPasswordFile)
	case file != "":
		d, err := readSmallFile(file)
		if err != nil {
			return "", usagef("%s: cannot read the file: %v", envRedisPasswordFile, err)
		}
		return agent.Secret(strings.TrimSpace(string(d))), nil
	}
	return agent.Secret(pw), nil
}

// flagNamed rewrites a config error of env mode so that each problem
// names the flag or variable to fix instead of the config-file key.
func flagNamed(err error) error {
	var ce *agent.ConfigError
	if !errors.As(err, &ce) {
		return err
	}
	lines := make([]string, 0, len(ce.Problems))
	for _, p := range ce.Problems {
		if p.File != "" {
			lines = append(lines, p.Error())
			continue
		}
		where := p.Key
		if f, ok := agentFlagOf(p.Key); ok {
			where = f
		}
		// The messages name config keys as their remedy; in env mode the
		// Redis password comes from the environment.
		msg := strings.ReplaceAll(p.Msg, "store.password_file or store.password_env", envRedisPassword+" or "+envRedisPasswordFile)
		lines = append(lines, where+": "+msg)
	}
	return &usageError{msg: strings.Join(lines, "; ")}
}

// devProxyAddr is --dev's proxy address when --proxy-listen is not
// given: a free port when --listen asks for one (port 0), so that a
// try-out on free ports never collides, else agent.DefaultProxyListen.
func devProxyAddr(listen string) string {
	if host, port, err := net.SplitHostPort(listen); err == nil && port == "0" {
		return net.JoinHostPort(host, "0")
	}
	return agent.DefaultProxyListen
}

// proxyListeningPrefix starts the line printed when the LINE API
// endpoint listens.
const proxyListeningPrefix = "linetoken agent: LINE API endpoint on "

// devUserID is the push target of --dev's snippets: any "U" and 32 hex
// digits is a user ID to the fake.
const devUserID = "U0123456789abcdef0123456789abcdef"

// devSetup makes --dev's world: an in-process fake LINE with a ready
// channel (v2.1 key registered) on its clock, a sink in a temp directory,
// the proxy at proxyListen against the fake's two hosts (accepted sends
// logged through log's logger once it is set), and the instructions
// printed once the agent and its proxy listen.
func devSetup(e *env, listen, proxyListen string, log *atomic.Pointer[slog.Logger]) (cfg *agent.Config, opts agent.Options, info, proxyInfo func(string), cleanup func(), err error) {
	srv := oauthtest.NewServer(oauthtest.WithOnSend(func(s oauthtest.Send) {
		if l := log.Load(); l != nil {
			l.LogAttrs(context.Background(), slog.LevelInfo, "linetoken agent --dev: the fake LINE accepted a send",
				slog.String("channel", s.ChannelID), slog.String("path", s.Path),
				slog.String("retry_key", s.RetryKey), slog.String("request_id", s.RequestID))
		}
	}))
	ch, err := e.createChannel(srv)
	if err != nil {
		srv.Close()
		return nil, opts, nil, nil, nil, fmt.Errorf("making the fake channel: %w", err)
	}
	dir, err := os.MkdirTemp("", "linetoken-agent-dev-")
	if err != nil {
		srv.Close()
		return nil, opts, nil, nil, nil, fmt.Errorf("making the sink directory: %w", errors.Unwrap(err))
	}
	cleanup = func() {
		srv.Close()
		_ = os.RemoveAll(dir)
	}
	sinkPath := filepath.Join(dir, ch.ID+".token")
	cfg = &agent.Config{
		Listen: listen, BaseURL: srv.URL(),
		Channels: []agent.Channel{{
			ID: ch.ID, Kind: oauth.KindV21, Secret: agent.Secret(ch.Secret), Key: ch.Key,
			Sinks: []agent.Sink{{Path: sinkPath, Format: "raw"}},
		}},
		Proxy: &agent.ProxyConfig{Listen: proxyListen, APIURL: srv.URL(), DataURL: srv.DataURL()},
	}
	info = func(addr string) {
		if strings.HasPrefix(addr, "/") {
			return
		}
		base := "http://" + addr
		fmt.Fprintf(e.stdout, `
linetoken agent --dev: a fake LINE runs in this process (%s), with channel %s.
Fetch its token:
  curl -s -H 'X-Linetoken-Request: 1' %s/v1/channels/%s/token
The sink file (replaced at every rotation): %s
Metrics: %s/metrics   Readiness: %s/readyz
Ctrl-C stops the agent and revokes its tokens at the fake.
`, srv.URL(), ch.ID, base, ch.ID, sinkPath, base, base)
	}
	proxyInfo = func(addr string) {
		base := "http://" + addr
		fmt.Fprintf(e.stdout, `
Use the agent as your LINE API endpoint: set the SDK's base URL to %[1]s
and its access token to "linetoken"; the agent adds the real token.
A push through it, with curl:
  curl -s -X POST %[1]s/v2/bot/message/push -H 'Authorization: Bearer linetoken' -H 'Content-Type: application/json' -d '{"to":"%[2]s","messages":[{"type":"text","text":"Hello from linetoken"}]}'
Node (@line/bot-sdk):
  const { messagingApi } = require("@line/bot-sdk");
  const client = new messagingApi.MessagingApiClient({channelAccessToken: "linetoken", baseURL: "%[1]s"});
  client.pushMessage({to: "%[2]s", messages: [{type: "text", text: "Hello from linetoken"}]}).then(console.log);
Python (line-bot-sdk v3):
  from linebot.v3.messaging import ApiClient, Configuration, MessagingApi, PushMessageRequest, TextMessage
  conf = Configuration(host="%[1]s", access_token="linetoken")
  MessagingApi(ApiClient(conf)).push_message(PushMessageRequest(to="%[2]s", messages=[TextMessage(text="Hello from linetoken")]))
The fake accepts any "U" and 32 hex digits as a user; each send it accepts
is logged on stderr ("the fake LINE accepted a send").
`, base, devUserID)
	}
	return cfg, agent.Options{Clock: srv.Now}, info, proxyInfo, cleanup, nil
}
