package agent

import (
	"cmp"
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
	"github.com/goccy/go-yaml/token"
	"github.com/redis/go-redis/v9"

	"github.com/linetoken/linetoken/internal/capfile"
	"github.com/linetoken/linetoken/oauth"
)

// Config limits and defaults.
const (
	// DefaultListen is the TCP address served when the config says none.
	DefaultListen = "127.0.0.1:7878"
	// DefaultLifetime is a v2.1 token's lifetime unless the config says
	// otherwise: a day, not the library's 30 days, so that a crashed agent
	// with a memory store leaks its v2.1 slot for a day at most.
	DefaultLifetime = 24 * time.Hour
	// defaultSinkMode is a sink file's mode unless the config says otherwise.
	defaultSinkMode fs.FileMode = 0o600
	// maxConfigSize caps the config file: a few channels take a few KiB.
	maxConfigSize = 1 << 20
	// maxSecretFileSize caps a secret, key or password file.
	maxSecretFileSize = 64 << 10
	// minCallerKeyLen: a caller key shorter than this is guessable.
	minCallerKeyLen = 16
	// expiryMargin mirrors the TokenSource's: refresh_before must leave it.
	expiryMargin = 30 * time.Second
)

// LINE's token lifetimes, for checking refresh_before per kind.
const (
	shortLivedLifetime = 30 * 24 * time.Hour
	statelessLifetime  = 15 * time.Minute
)

// Secret is a setting that must never be shown: a channel secret, a caller
// key or a Redis password. It prints, logs and encodes as REDACTED.
type Secret string

// redacted replaces a secret wherever it would be shown.
const redacted = "REDACTED"

// String implements fmt.Stringer.
func (Secret) String() string { return redacted }

// Format prints REDACTED under every verb, %#v included.
func (Secret) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(redacted)) }

// LogValue implements slog.LogValuer.
func (Secret) LogValue() slog.Value { return slog.StringValue(redacted) }

// MarshalJSON encodes REDACTED.
func (Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + redacted + `"`), nil }

// Config is a validated agent configuration: what [New] runs. Build it
// with [ParseConfig] or [LoadConfig], or fill it in and call
// [Config.Validate] (the linetoken command does for one channel).
type Config struct {
	// Listen is the TCP address of the HTTP API; "" serves none.
	Listen string
	// Socket is a unix socket path for the HTTP API (mode 0660); "": none.
	Socket string
	// SocketGroup owns the socket when set.
	SocketGroup string
	// AllowedHosts are Host names accepted besides loopback's.
	AllowedHosts []string
	// TLS serves Listen over TLS when set.
	TLS *TLSConfig
	// InsecurePlaintext accepts a non-loopback Listen without TLS.
	InsecurePlaintext bool
	// BaseURL is LINE's API; "" means [oauth.DefaultBaseURL].
	BaseURL string
	// LogFormat is "text" or "json".
	LogFormat string
	// LogLevel is the least level logged; the access log is at Debug.
	LogLevel slog.Level
	// Store says where tokens are kept: Redis, a file, or memory.
	Store StoreConfig
	// Callers, when set, are the only keys that may read tokens.
	Callers []Caller
	// Channels are the channels and kinds served; at least one.
	Channels []Channel
	// Proxy, when set, serves the Messaging API with tokens injected.
	Proxy *ProxyConfig

	// locate finds a key's file and line, for problems found after
	// parsing (by New); nil when the config came from no file.
	locate func(key string) (file string, line int)
}

// problem is a FieldError for key, located in the config file when the
// config came from one.
func (c *Config) problem(key, msg string) *FieldError {
	p := &FieldError{Key: key, Msg: msg}
	if c.locate != nil {
		p.File, p.Line = c.locate(key)
	}
	return p
}

// TLSConfig is the listener's certificate.
type TLSConfig struct {
	CertFile, KeyFile string
	cert              *tls.Certificate
}

// StoreConfig picks the token store: at most one of Redis and File; none
// is memory.
type StoreConfig struct {
	// Redis is a go-redis URL without a password.
	Redis string
	// RedisPassword comes from password_file or password_env.
	RedisPassword Secret
	// File is a FileStore path.
	File string
}

// Caller is a key that may read some channels' tokens.
type Caller struct {
	// Name names the caller in the access log.
	Name string
	// Key is the caller key: a secret.
	Key Secret
	// Channels are the channel IDs the key may read; nil means all.
	Channels []string
	// keyFrom is the setting the key came from (key_file or key_env),
	// for messages.
	keyFrom string
}

// Channel is one channel and token kind the agent keeps fresh.
type Channel struct {
	ID     string
	Kind   oauth.TokenKind
	Secret Secret
	Key    *oauth.AssertionKey
	// Lifetime of v2.1 tokens; 0 means [DefaultLifetime].
	Lifetime time.Duration
	// RefreshBefore is the early-refresh window; 0: the library's default.
	RefreshBefore time.Duration
	Sinks         []Sink
}

// Sink is a file the channel's token is written to at every rotation.
type Sink struct {
	Path string
	// Format is "raw" (the token alone, no newline) or "json" (the HTTP
	// API's object).
	Format string
	Mode   fs.FileMode
}

// ParseKind reads a token kind as the config and the HTTP API spell it.
func ParseKind(s string) (oauth.TokenKind, bool) {
	for _, k := range []oauth.TokenKind{oauth.KindV21, oauth.KindShortLived, oauth.KindStateless} {
		if s == k.String() {
			return k, true
		}
	}
	return 0, false
}

// FieldError is one problem with one setting. Key is the setting's path
// as the config file spells it ("channels[0].lifetime"); File and Line
// locate it when it came from a file. It never quotes a value.
type FieldError struct {
	File string
	Line int
	Key  string
	Msg  string
}

func (e *FieldError) Error() string {
	if e.File != "" {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.keyMsg())
	}
	return e.keyMsg()
}

func (e *FieldError) keyMsg() string {
	if e.Key == "" {
		return e.Msg
	}
	return e.Key + ": " + e.Msg
}

// ConfigError lists every problem found in a configuration, one a line.
type ConfigError struct{ Problems []*FieldError }

func (e *ConfigError) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.Error()
	}
	return strings.Join(lines, "\n")
}

// problems collects FieldErrors.
type problems []*FieldError

func (p *problems) add(key, format string, args ...any) {
	*p = append(*p, &FieldError{Key: key, Msg: fmt.Sprintf(format, args...)})
}

func (p problems) err() error {
	if len(p) == 0 {
		return nil
	}
	return &ConfigError{Problems: p}
}

// The raw shapes of the YAML file, decoded strictly. Inline secrets are
// fields so that they are refused by name, not as unknown keys.
type rawConfig struct {
	Listen            *string     `yaml:"listen"`
	Socket            string      `yaml:"socket"`
	SocketGroup       string      `yaml:"socket_group"`
	AllowedHosts      []string    `yaml:"allowed_hosts"`
	TLS               *rawTLS     `yaml:"tls"`
	InsecurePlaintext bool        `yaml:"insecure_plaintext"`
	BaseURL           string      `yaml:"base_url"`
	LogFormat         string      `yaml:"log_format"`
	LogLevel          string      `yaml:"log_level"`
	Store             rawStore    `yaml:"store"`
	Callers           []rawCaller `yaml:"callers"`
	Channels          []rawChan   `yaml:"channels"`
	Proxy             *rawProxy   `yaml:"proxy"`
}

type rawTLS struct {
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
}

type rawStore struct {
	Redis        string `yaml:"redis"`
	Password     any    `yaml:"password"`
	PasswordFile string `yaml:"password_file"`
	PasswordEnv  string `yaml:"password_env"`
	File         string `yaml:"file"`
}

type rawCaller struct {
	Name     string   `yaml:"name"`
	Key      any      `yaml:"key"`
	KeyFile  string   `yaml:"key_file"`
	KeyEnv   string   `yaml:"key_env"`
	Channels []string `yaml:"channels"`
}

type rawChan struct {
	ID             string    `yaml:"id"`
	Kind           string    `yaml:"kind"`
	Secret         any       `yaml:"secret"`
	SecretFile     string    `yaml:"secret_file"`
	SecretEnv      string    `yaml:"secret_env"`
	PrivateKey     any       `yaml:"private_key"`
	PrivateKeyFile string    `yaml:"private_key_file"`
	PrivateKeyEnv  string    `yaml:"private_key_env"`
	KeyID          string    `yaml:"key_id"`
	Lifetime       string    `yaml:"lifetime"`
	RefreshBefore  string    `yaml:"refresh_before"`
	Sinks          []rawSink `yaml:"sinks"`
}

type rawSink struct {
	Path   string `yaml:"path"`
	Format string `yaml:"format"`
	Mode   string `yaml:"mode"`
}

// LoadConfig reads and parses the config file at path; see [ParseConfig].
func LoadConfig(path string, getenv func(string) string) (*Config, error) {
	data, tooLarge, err := capfile.Read(path, maxConfigSize)
	switch {
	case err != nil:
		return nil, &ConfigError{Problems: []*FieldError{{File: path, Line: 1, Msg: "cannot read the config file: " + err.Error()}}}
	case tooLarge:
		return nil, &ConfigError{Problems: []*FieldError{{File: path, Line: 1, Msg: fmt.Sprintf("the config file is larger than %d bytes", maxConfigSize)}}}
	}
	return ParseConfig(path, data, getenv)
}

// ParseConfig parses a YAML config strictly and validates it. Secrets are
// read from the files and variables (through getenv) it names. Every
// problem is reported as "FILE:LINE: key: what is wrong" in a
// *[ConfigError], never quoting a value.
func ParseConfig(file string, data []byte, getenv func(string) string) (*Config, error) {
	located := func(line int, msg string) error {
		return &ConfigError{Problems: []*FieldError{{File: file, Line: max(line, 1), Msg: msg}}}
	}
	if len(data) > maxConfigSize {
		return nil, located(1, fmt.Sprintf("the config file is larger than %d bytes", maxConfigSize))
	}
	f, err := parser.ParseBytes(data, 0)
	if err != nil {
		return nil, located(yamlErrLine(err), "not valid YAML: "+yamlErrMsg(err))
	}
	var body ast.Node
	for _, d := range f.Docs {
		if d == nil || d.Body == nil {
			continue
		}
		if body != nil {
			return nil, located(tokenLine(d.Body.GetToken()), "the config file must hold one YAML document")
		}
		body = d.Body
	}
	if body == nil {
		return nil, located(1, "the config file is empty: it needs at least a channels list")
	}
	if body.Type() != ast.MappingType {
		return nil, located(tokenLine(body.GetToken()), "the config file must be a mapping of settings (listen, channels, ...)")
	}
	var raw rawConfig
	if err := decodeRaw(body, &raw); err != nil {
		return nil, located(yamlErrLine(err), yamlErrMsg(err))
	}
	ps := problems{}
	cfg := raw.build(f, getenv, &ps)
	if len(ps) == 0 {
		if err := cfg.Validate(); err != nil {
			var ce *ConfigError
			if !errors.As(err, &ce) {
				return nil, err
			}
			ps = ce.Problems
		}
	}
	if len(ps) > 0 {
		for _, p := range ps {
			p.File, p.Line = file, lineOf(f, p.Key)
		}
		return nil, ps.err()
	}
	cfg.locate = func(key string) (string, int) { return file, lineOf(f, key) }
	return cfg, nil
}

// decodeRaw decodes the file's body strictly. goccy/go-yaml v1.19 panics
// on some malformed input (a tag on a sequence it cannot resolve, found
// by FuzzConfig): that is an invalid config, not a crash.
func decodeRaw(body ast.Node, raw *rawConfig) (err error) {
	defer func() {
		if recover() != nil {
			err = errors.New("not valid YAML: the YAML decoder could not read this document")
		}
	}()
	return yaml.NodeToValue(body, raw, yaml.Strict(), yaml.DisallowUnknownField())
}

// yamlErrLine is the line a goccy/go-yaml error points at, or 1.
func yamlErrLine(err error) int {
	var ye yaml.Error
	if errors.As(err, &ye) {
		return tokenLine(ye.GetToken())
	}
	return 1
}

// yamlErrMsg is a goccy/go-yaml error's message without its source
// excerpt (which could quote a secret pasted in the wrong place) and
// without Go type names.
func yamlErrMsg(err error) string {
	var ye yaml.Error
	msg := err.Error()
	if errors.As(err, &ye) {
		msg = ye.GetMessage()
	}
	var te *yaml.TypeError
	if errors.As(err, &te) {
		msg = "a value of the wrong type"
		if te.StructFieldName != nil {
			msg += " for " + strings.ToLower(*te.StructFieldName)
		}
	}
	if i := strings.IndexByte(msg, '\n'); i >= 0 {
		msg = msg[:i]
	}
	// A key is named only when it looks like a setting's name: a secret
	// pasted where a key goes is described, not shown.
	msg = quotedWords.ReplaceAllStringFunc(msg, func(q string) string {
		if w := q[1 : len(q)-1]; len(w) > maxEchoKey || !settingName.MatchString(w) {
			return fmt.Sprintf("<a key of %d characters, not shown>", len(w))
		}
		return q
	})
	return goTypeNames.ReplaceAllString(msg, "setting")
}

// maxEchoKey caps the length of a key quoted back in an error.
const maxEchoKey = 32

var (
	quotedWords = regexp.MustCompile(`"[^"]*"`)
	settingName = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)
)

// goTypeNames matches the decoder's names for this package's raw types.
var goTypeNames = regexp.MustCompile(`agent\.raw[A-Za-z]+|raw[A-Z][A-Za-z]*`)

func tokenLine(tk *token.Token) int {
	if tk == nil || tk.Position == nil || tk.Position.Line < 1 {
		return 1
	}
	return tk.Position.Line
}

// lineOf finds the line of key ("channels[0].sinks[1].mode") in f, or of
// its nearest parent present, or 1.
func lineOf(f *ast.File, key string) int {
	for key != "" {
		if p, err := yaml.PathString("$." + key); err == nil {
			if n, err := p.FilterFile(f); err == nil && n != nil {
				return tokenLine(n.GetToken())
			}
		}
		i := strings.LastIndexAny(key, ".[")
		if i < 0 {
			break
		}
		key = key[:i]
	}
	return 1
}

// nodeAt is the node at key in f, or nil.
func nodeAt(f *ast.File, key string) ast.Node {
	p, err := yaml.PathString("$." + key)
	if err != nil {
		return nil
	}
	n, err := p.FilterFile(f)
	if err != nil {
		return nil
	}
	return n
}

// build turns the raw file into a Config, reading the secrets it names.
func (r *rawConfig) build(f *ast.File, getenv func(string) string, ps *problems) *Config {
	cfg := &Config{
		Listen: DefaultListen, Socket: r.Socket, SocketGroup: r.SocketGroup, AllowedHosts: r.AllowedHosts,
		InsecurePlaintext: r.InsecurePlaintext, BaseURL: r.BaseURL, LogFormat: r.LogFormat,
	}
	if r.Listen != nil {
		cfg.Listen = *r.Listen
	}
	if r.LogLevel != "" {
		if err := cfg.LogLevel.UnmarshalText([]byte(r.LogLevel)); err != nil {
			ps.add("log_level", "must be debug, info, warn or error")
		}
	}
	if r.TLS != nil {
		cfg.TLS = &TLSConfig{CertFile: r.TLS.CertFile, KeyFile: r.TLS.KeyFile}
	}
	cfg.Store = StoreConfig{Redis: r.Store.Redis, File: r.Store.File}
	if r.Store.Password != nil {
		ps.add("store.password", "an inline password is refused: use store.password_file or store.password_env")
	}
	cfg.Store.RedisPassword = readSecret(getenv, ps, "store.password", r.Store.PasswordFile, r.Store.PasswordEnv)
	if cfg.Store.RedisPassword != "" && cfg.Store.Redis == "" {
		ps.add("store.password_file", "a password is set but store.redis is not")
	}
	for i, c := range r.Callers {
		key := fmt.Sprintf("callers[%d]", i)
		if c.Key != nil {
			ps.add(key+".key", "an inline caller key is refused: use key_file or key_env")
		}
		k := readSecret(getenv, ps, key+".key", c.KeyFile, c.KeyEnv)
		if k == "" && c.Key == nil && c.KeyFile == "" && c.KeyEnv == "" {
			ps.add(key, "a caller needs key_file or key_env")
		}
		from := "key_file"
		if c.KeyEnv != "" {
			from = "key_env"
		}
		cfg.Callers = append(cfg.Callers, Caller{Name: c.Name, Key: k, Channels: c.Channels, keyFrom: from})
	}
	for i, c := range r.Channels {
		key := fmt.Sprintf("channels[%d]", i)
		ch := Channel{ID: strings.TrimSpace(c.ID)}
		kind := c.Kind
		if kind == "" {
			kind = oauth.KindV21.String()
		}
		k, ok := ParseKind(kind)
		if !ok {
			ps.add(key+".kind", "must be v2.1, short-lived or stateless")
		}
		ch.Kind = k
		if c.Secret != nil {
			ps.add(key+".secret", "an inline channel secret is refused: use secret_file or secret_env")
		}
		ch.Secret = readSecret(getenv, ps, key+".secret", c.SecretFile, c.SecretEnv)
		if c.PrivateKey != nil {
			ps.add(key+".private_key", "an inline private key is refused: use private_key_file or private_key_env")
		}
		if pk := readSecret(getenv, ps, key+".private_key", c.PrivateKeyFile, c.PrivateKeyEnv); pk != "" {
			ak, err := oauth.ParseAssertionKey([]byte(pk), strings.TrimSpace(c.KeyID))
			switch {
			case errors.Is(err, oauth.ErrMissingKeyID):
				ps.add(key+".key_id", "the key has no kid: set key_id to the kid the LINE Developers Console returned")
			case err != nil:
				ps.add(key+".private_key_file", "not a usable private key (a private JWK or a PEM RSA key)")
			default:
				ch.Key = ak
			}
		}
		ch.Lifetime = parseDuration(ps, key+".lifetime", c.Lifetime)
		ch.RefreshBefore = parseDuration(ps, key+".refresh_before", c.RefreshBefore)
		for j, s := range c.Sinks {
			skey := fmt.Sprintf("%s.sinks[%d]", key, j)
			sink := Sink{Path: s.Path, Format: s.Format} // Validate sets the default mode
			if s.Mode != "" {
				if n, ok := nodeAt(f, skey+".mode").(*ast.StringNode); !ok || n.Token == nil ||
					(n.Token.Type != token.SingleQuoteType && n.Token.Type != token.DoubleQuoteType) {
					ps.add(skey+".mode", `must be a quoted octal string such as "0600" (unquoted, YAML reads a number)`)
				} else if m, err := strconv.ParseUint(s.Mode, 8, 32); err != nil || m > 0o777 {
					ps.add(skey+".mode", `must be an octal file mode from "0000" to "0777", such as "0600"`)
				} else {
					sink.Mode = fs.FileMode(m)
				}
			}
			ch.Sinks = append(ch.Sinks, sink)
		}
		cfg.Channels = append(cfg.Channels, ch)
	}
	if r.Proxy == nil && nodeAt(f, "proxy") != nil {
		r.Proxy = &rawProxy{} // proxy: with no keys (all commented out) decodes as null: on, every default
	}
	if r.Proxy != nil {
		cfg.Proxy = r.Proxy.build(ps)
	}
	if r.Channels == nil {
		ps.add("channels", "the channel list is empty: the agent needs at least one channel")
	}
	return cfg
}

// parseDuration reads a Go duration ("24h", "90m"); "" is 0.
func parseDuration(ps *problems, key, s string) time.Duration {
	if s == "" {
		return 0
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		ps.add(key, `must be a positive duration such as "24h" or "90m"`)
		return 0
	}
	return d
}

// readSecret reads a secret given by reference: a file (path) or an
// environment variable (name). key names the setting, with _file and _env
// appended. "" when neither is set.
func readSecret(getenv func(string) string, ps *problems, key, path, envName string) Secret {
	switch {
	case path != "" && envName != "":
		ps.add(key+"_file", "set only one of %s_file and %s_env", lastKey(key), lastKey(key))
	case path != "":
		data, tooLarge, err := capfile.Read(path, maxSecretFileSize)
		switch {
		case err != nil:
			ps.add(key+"_file", "cannot read the file: %v", err)
		case tooLarge:
			ps.add(key+"_file", "the file is larger than %d bytes", maxSecretFileSize)
		case strings.TrimSpace(string(data)) == "":
			ps.add(key+"_file", "the file is empty")
		default:
			return Secret(strings.TrimSpace(string(data)))
		}
	case envName != "":
		v := ""
		if getenv != nil {
			v = getenv(envName)
		}
		if strings.TrimSpace(v) == "" {
			ps.add(key+"_env", "the environment variable it names is unset or empty")
		}
		return Secret(strings.TrimSpace(v))
	}
	return ""
}

func lastKey(key string) string {
	if i := strings.LastIndexByte(key, '.'); i >= 0 {
		return key[i+1:]
	}
	return key
}

// Validate checks the rules that hold whatever the source of the config,
// and fills in defaults. Its *[ConfigError] names each setting by its
// config-file key.
func (c *Config) Validate() error {
	ps := problems{}
	if c.Listen == "" && c.Socket == "" {
		ps.add("listen", "nothing to serve on: set listen, socket or both")
	}
	switch c.LogFormat {
	case "":
		c.LogFormat = "text"
	case "text", "json":
	default:
		ps.add("log_format", "must be text or json")
	}
	if c.BaseURL == "" {
		c.BaseURL = oauth.DefaultBaseURL
	}
	if _, err := oauth.NewClient(oauth.Config{BaseURL: c.BaseURL}); err != nil {
		ps.add("base_url", "must be an https:// URL (http:// only to a loopback host), without query or user info")
	}
	if c.Listen != "" {
		host, _, err := net.SplitHostPort(c.Listen)
		switch {
		case err != nil:
			ps.add("listen", "must be HOST:PORT, such as 127.0.0.1:7878 (port 0 picks a free port)")
		case !isLoopbackHost(host):
			if len(c.Callers) == 0 {
				ps.add("listen", "a non-loopback address serves tokens to the network: it needs callers (keys), and tls or insecure_plaintext: true")
			} else if c.TLS == nil && !c.InsecurePlaintext {
				ps.add("listen", "a non-loopback address needs tls (cert_file, key_file), or insecure_plaintext: true to accept cleartext tokens and keys on the wire")
			}
		}
	}
	if c.TLS != nil {
		if c.TLS.CertFile == "" || c.TLS.KeyFile == "" {
			ps.add("tls", "needs both cert_file and key_file")
		} else if cert, err := tls.LoadX509KeyPair(c.TLS.CertFile, c.TLS.KeyFile); err != nil {
			ps.add("tls.cert_file", "cannot load the certificate and key: %v", err)
		} else {
			c.TLS.cert = &cert
		}
	}
	if c.SocketGroup != "" && c.Socket == "" {
		ps.add("socket_group", "is set but socket is not")
	}
	c.validateStore(&ps)
	c.validateCallers(&ps)
	c.validateChannels(&ps)
	c.validateProxy(&ps)
	return ps.err()
}

func (c *Config) validateStore(ps *problems) {
	s := c.Store
	if s.Redis != "" && s.File != "" {
		ps.add("store.file", "set at most one of store.redis and store.file")
	}
	if s.Redis == "" {
		return
	}
	u, err := url.Parse(s.Redis)
	if err != nil {
		ps.add("store.redis", "not a valid Redis URL (redis://HOST:PORT/DB or rediss://...)")
		return
	}
	if _, hasPw := u.User.Password(); hasPw {
		ps.add("store.redis", "a password inside the Redis URL is refused (it would show in ps and logs): use store.password_file or store.password_env")
		return
	}
	if _, err := redis.ParseURL(s.Redis); err != nil {
		ps.add("store.redis", "not a valid Redis URL (redis://HOST:PORT/DB or rediss://...)")
	}
}

func (c *Config) validateCallers(ps *problems) {
	names := map[string]bool{}
	keys := map[Secret]bool{}
	ids := map[string]bool{}
	for _, ch := range c.Channels {
		ids[ch.ID] = true
	}
	for i, cl := range c.Callers {
		key := fmt.Sprintf("callers[%d]", i)
		switch {
		case cl.Name == "":
			ps.add(key+".name", "a caller needs a name (the access log names callers, never their keys)")
		case names[cl.Name]:
			ps.add(key+".name", "another caller has this name")
		}
		names[cl.Name] = true
		if cl.Key != "" {
			from := key + "." + cmp.Or(cl.keyFrom, "key_file")
			if len(cl.Key) < minCallerKeyLen {
				ps.add(from, "the caller key is shorter than %d characters (make one with: openssl rand -base64 32)", minCallerKeyLen)
			}
			if keys[cl.Key] {
				ps.add(from, "another caller has the same key")
			}
			keys[cl.Key] = true
		}
		for j, id := range cl.Channels {
			if !ids[id] {
				ps.add(fmt.Sprintf("%s.channels[%d]", key, j), "names no channel in the channels list")
			}
		}
	}
}

var channelIDPattern = regexp.MustCompile(`^[0-9]{1,20}$`)

func (c *Config) validateChannels(ps *problems) {
	if len(c.Channels) == 0 {
		ps.add("channels", "the channel list is empty: the agent needs at least one channel")
	}
	seen := map[string]bool{}
	sinks := map[string]bool{}
	for i := range c.Channels {
		ch := &c.Channels[i]
		key := fmt.Sprintf("channels[%d]", i)
		if !channelIDPattern.MatchString(ch.ID) {
			ps.add(key+".id", "must be the channel's numeric ID, quoted (\"1234567890\")")
		}
		sk := ch.ID + "/" + ch.Kind.String()
		if seen[sk] {
			ps.add(key+".id", "this channel already appears with kind %s: an id may appear once per kind", ch.Kind)
		}
		seen[sk] = true
		switch ch.Kind {
		case oauth.KindV21:
			if ch.Key == nil {
				ps.add(key+".private_key_file", "a v2.1 channel needs its assertion key: private_key_file or private_key_env (with key_id unless the JWK has a kid)")
			}
			if ch.Secret == "" {
				ps.add(key+".secret_file", "a v2.1 channel needs its channel secret (secret_file or secret_env) to revoke replaced tokens")
			}
		case oauth.KindShortLived:
			if ch.Secret == "" {
				ps.add(key+".secret_file", "a short-lived channel needs its channel secret: secret_file or secret_env")
			}
		case oauth.KindStateless:
			if ch.Secret == "" && ch.Key == nil {
				ps.add(key+".secret_file", "a stateless channel needs its channel secret (secret_file or secret_env) or an assertion key (private_key_file or private_key_env)")
			}
		}
		lifetime := DefaultLifetime
		switch ch.Kind {
		case oauth.KindV21:
			if ch.Lifetime == 0 {
				ch.Lifetime = DefaultLifetime
			}
			if ch.Lifetime < time.Second || ch.Lifetime > oauth.MaxTokenLifetime || ch.Lifetime%time.Second != 0 {
				ps.add(key+".lifetime", "must be whole seconds from 1s to 720h (30 days, LINE's maximum)")
			}
			lifetime = ch.Lifetime
		case oauth.KindShortLived:
			lifetime = shortLivedLifetime
		case oauth.KindStateless:
			lifetime = statelessLifetime
		}
		if ch.Kind != oauth.KindV21 && ch.Lifetime != 0 {
			ps.add(key+".lifetime", "applies to v2.1 tokens only (LINE fixes the lifetime of %s tokens)", ch.Kind)
		}
		if ch.RefreshBefore != 0 && ch.RefreshBefore >= lifetime-expiryMargin {
			ps.add(key+".refresh_before", "must be shorter than the token lifetime (%v) less %v", lifetime, expiryMargin)
		}
		for j := range ch.Sinks {
			s := &ch.Sinks[j]
			skey := fmt.Sprintf("%s.sinks[%d]", key, j)
			switch s.Format {
			case "":
				s.Format = "raw"
			case "raw", "json":
			default:
				ps.add(skey+".format", "must be raw or json")
			}
			if s.Mode == 0 && s.Path != "" {
				s.Mode = defaultSinkMode
			}
			switch {
			case s.Path == "":
				ps.add(skey+".path", "a sink needs a path")
			case sinks[s.Path]:
				ps.add(skey+".path", "another sink writes the same file")
			}
			sinks[s.Path] = true
		}
	}
}

// isLoopbackHost reports whether a listen host stays on this machine.
func isLoopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}
