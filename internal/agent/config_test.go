package agent_test

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/linetoken/linetoken/internal/agent"
	"github.com/linetoken/linetoken/oauth"
)

// Secret values of the config tests: distinctive, so that any echo of
// them in an error is found.
const (
	fileSecret     = "FILESECRET0c1f7a9e3b5d2c4e6f8a0b1c"
	envSecret      = "ENVSECRET7d3e9a1b5c7f2e4a6c8e0a2b"
	fileCallerKey  = "FILECALLERKEY4b8d2f6a0c4e8b2d6f0a"
	envCallerKey   = "ENVCALLERKEY9e1c3a5b7d9f1b3d5f7a9c"
	filePassword   = "FILEPASSWORD2a4c6e8b0d2f4a6c8e0b2d"
	inlineSecret   = "INLINESECRET5f7b9d1e3a5c7e9b1d3f5a"
	inlineKey      = "INLINEKEY8c0e2a4b6d8f0a2c4e6b8d0f2a"
	inlinePassword = "INLINEPASSWORD1b3d5f7a9c1e3b5d7f9a"
	urlPassword    = "URLPASSWORD6e8a0c2d4f6b8e0a2c4d6f8b"
	kidOfConfig    = "3c1f4a2e-6b8d-4e0a-9c7b-5d3f1a2e4c6b"
	// shortCallerKey is one character short of the 16 a caller key needs.
	shortCallerKey = "SHORTKEY7c2e9a1"
)

// secretFiles is a directory of secret files and an environment for the
// config parser: @D@ in a config stands for the directory.
type secretFiles struct {
	dir    string
	env    map[string]string
	key    *oauth.AssertionKey // the key in key.jwk and key.pem
	values []string            // every secret value, for absence checks
}

func newSecretFiles(tb testing.TB) *secretFiles {
	tb.Helper()
	priv, _, err := oauth.GenerateAssertionKey()
	if err != nil {
		tb.Fatal(err)
	}
	key, err := oauth.ParseAssertionKey(priv, kidOfConfig)
	if err != nil {
		tb.Fatal(err)
	}
	pemKey := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key.PrivateKey)})
	s := &secretFiles{dir: tb.TempDir(), key: key, env: map[string]string{
		"LINE_SECRET": envSecret, "LINE_KEY": string(priv), "CALLER_KEY": envCallerKey, "EMPTY": " ", "SHORT_KEY": shortCallerKey,
	}}
	for name, data := range map[string][]byte{
		"secret": []byte(fileSecret + "\n"), "key.jwk": priv, "key.pem": pemKey, "caller.key": []byte(fileCallerKey),
		"short.key": []byte(shortCallerKey + "\n"),
		"redis.pw":  []byte(filePassword), "empty": nil,
	} {
		if err := os.WriteFile(filepath.Join(s.dir, name), data, 0o600); err != nil {
			tb.Fatal(err)
		}
	}
	s.values = []string{fileSecret, envSecret, fileCallerKey, envCallerKey, filePassword, inlineSecret, inlineKey,
		inlinePassword, urlPassword, shortCallerKey, string(priv), string(pemKey)}
	return s
}

func (s *secretFiles) getenv(name string) string { return s.env[name] }

// parse parses yaml with @D@ replaced by the directory.
func (s *secretFiles) parse(yaml string) (*agent.Config, error) {
	return agent.ParseConfig("agent.yaml", []byte(strings.ReplaceAll(yaml, "@D@", s.dir)), s.getenv)
}

// leaks reports the first secret value text shows, or "".
func (s *secretFiles) leaks(text string) string {
	for _, v := range s.values {
		if strings.Contains(text, strings.TrimSpace(v)) {
			return v[:min(len(v), 12)] + "..."
		}
	}
	return ""
}

// fullConfig is the example config, with the secrets in @D@.
const fullConfig = `listen: 127.0.0.1:0
socket: @D@/agent.sock
socket_group: linetoken
allowed_hosts: [agent.internal]
base_url: http://127.0.0.1:8080
log_format: json
log_level: debug
store:
  redis: rediss://redis.internal:6379/0
  password_file: @D@/redis.pw
callers:
  - name: billing-bot
    key_file: @D@/caller.key
    channels: ["1234567890"]
  - name: ops
    key_env: CALLER_KEY
channels:
  - id: "1234567890"
    kind: v2.1
    secret_file: @D@/secret
    private_key_file: @D@/key.jwk
    key_id: ` + kidOfConfig + `
    lifetime: 12h
    refresh_before: 2h
    sinks:
      - path: @D@/1234567890.token
        format: raw
        mode: "0640"
      - path: @D@/1234567890.json
        format: json
  - id: "1234567890"
    kind: short-lived
    secret_env: LINE_SECRET
  - id: "2222222222"
    kind: stateless
    private_key_env: LINE_KEY
    key_id: ` + kidOfConfig + `
  - id: "3333333333"
    private_key_file: @D@/key.pem
    key_id: ` + kidOfConfig + `
    secret_file: @D@/secret
`

func TestParseConfigFull(t *testing.T) {
	s := newSecretFiles(t)
	cfg, err := s.parse(fullConfig)
	if err != nil {
		t.Fatal(err)
	}
	d := s.dir
	want := agent.Config{
		Listen: "127.0.0.1:0", Socket: d + "/agent.sock", SocketGroup: "linetoken", AllowedHosts: []string{"agent.internal"},
		BaseURL: "http://127.0.0.1:8080", LogFormat: "json", LogLevel: -4,
		Store: agent.StoreConfig{Redis: "rediss://redis.internal:6379/0", RedisPassword: filePassword},
		Callers: []agent.Caller{
			{Name: "billing-bot", Key: fileCallerKey, Channels: []string{"1234567890"}},
			{Name: "ops", Key: envCallerKey},
		},
	}
	if cfg.Listen != want.Listen || cfg.Socket != want.Socket || cfg.SocketGroup != want.SocketGroup ||
		!slices.Equal(cfg.AllowedHosts, want.AllowedHosts) || cfg.BaseURL != want.BaseURL || cfg.LogFormat != want.LogFormat ||
		cfg.LogLevel != want.LogLevel || cfg.Store != want.Store || cfg.TLS != nil || cfg.InsecurePlaintext {
		t.Errorf("settings:\n got %+v\nwant %+v", cfg, want)
	}
	if len(cfg.Callers) != 2 {
		t.Fatalf("callers: %+v", cfg.Callers)
	}
	for i, c := range want.Callers {
		g := cfg.Callers[i]
		if g.Name != c.Name || g.Key != c.Key || !slices.Equal(g.Channels, c.Channels) || (g.Channels == nil) != (c.Channels == nil) {
			t.Errorf("caller %d: %+v, want %+v", i, g, c)
		}
	}
	wantCh := []struct {
		id           string
		kind         oauth.TokenKind
		secret       agent.Secret
		key          bool
		lifetime, rb time.Duration
		sinks        []agent.Sink
	}{
		{"1234567890", oauth.KindV21, fileSecret, true, 12 * time.Hour, 2 * time.Hour, []agent.Sink{
			{Path: d + "/1234567890.token", Format: "raw", Mode: 0o640}, {Path: d + "/1234567890.json", Format: "json", Mode: 0o600}}},
		{"1234567890", oauth.KindShortLived, envSecret, false, 0, 0, nil},
		{"2222222222", oauth.KindStateless, "", true, 0, 0, nil},
		{"3333333333", oauth.KindV21, fileSecret, true, agent.DefaultLifetime, 0, nil},
	}
	if len(cfg.Channels) != len(wantCh) {
		t.Fatalf("%d channels, want %d", len(cfg.Channels), len(wantCh))
	}
	for i, w := range wantCh {
		g := cfg.Channels[i]
		if g.ID != w.id || g.Kind != w.kind || g.Secret != w.secret || g.Lifetime != w.lifetime || g.RefreshBefore != w.rb ||
			!slices.Equal(g.Sinks, w.sinks) || (g.Key != nil) != w.key {
			t.Errorf("channel %d:\n got %+v\nwant %+v", i, g, w)
		}
		if g.Key != nil && (g.Key.KeyID != kidOfConfig || !g.Key.PrivateKey.Equal(s.key.PrivateKey)) {
			t.Errorf("channel %d: not the key of the file (kid %q)", i, g.Key.KeyID)
		}
	}
	// The config prints no secret under any verb.
	for _, text := range []string{fmt.Sprintf("%v", cfg), fmt.Sprintf("%+v", cfg), fmt.Sprintf("%#v", cfg)} {
		if l := s.leaks(text); l != "" {
			t.Errorf("the config prints the secret %s", l)
		}
	}

	// LoadConfig reads the same file from disk.
	path := filepath.Join(s.dir, "agent.yaml")
	if err := os.WriteFile(path, []byte(strings.ReplaceAll(fullConfig, "@D@", s.dir)), 0o600); err != nil {
		t.Fatal(err)
	}
	loaded, err := agent.LoadConfig(path, s.getenv)
	if err != nil || loaded.Channels[0].Secret != fileSecret || len(loaded.Channels) != 4 {
		t.Fatalf("LoadConfig: %v", err)
	}
	_, err = agent.LoadConfig(filepath.Join(s.dir, "missing.yaml"), s.getenv)
	wantConfigError(t, s, err, filepath.Join(s.dir, "missing.yaml"), 1, "cannot read")
}

// wantConfigError checks that err is a *ConfigError whose every line is
// FILE:LINE: ..., one of them at line and containing what, and that it
// shows no secret.
func wantConfigError(t *testing.T, s *secretFiles, err error, file string, line int, what string) {
	t.Helper()
	var ce *agent.ConfigError
	if !errors.As(err, &ce) {
		t.Fatalf("want a *ConfigError (exit 2) at line %d about %q, got %T %v", line, what, err, err)
	}
	lineRE := regexp.MustCompile(`^` + regexp.QuoteMeta(file) + `:(\d+): `)
	found := false
	for _, l := range strings.Split(err.Error(), "\n") {
		m := lineRE.FindStringSubmatch(l)
		if m == nil {
			t.Errorf("the line %q is not %s:LINE: ...", l, file)
			continue
		}
		if m[1] == strconv.Itoa(line) && strings.Contains(l, what) {
			found = true
		}
	}
	if !found {
		t.Errorf("no problem at line %d about %q in:\n%v", line, what, err)
	}
	if l := s.leaks(err.Error()); l != "" {
		t.Errorf("the error shows the secret %s:\n%v", l, err)
	}
}

// The channel every error case starts from (lines 1-5).
const okChannel = `base_url: http://127.0.0.1:8080
channels:
  - id: "1234567890"
    secret_file: @D@/secret
    private_key_file: @D@/key.jwk
    key_id: ` + kidOfConfig + "\n"

// configErrorCases are configs with one problem each: at line, saying
// what. FuzzConfig seeds its corpus with them.
var configErrorCases = []struct {
	name, yaml string
	line       int
	what       string
}{
	{"unknown top key", "listn: 127.0.0.1:1\n" + okChannel, 1, "listn"},
	{"unknown channel key", okChannel + "    secrt_file: x\n", 7, "secrt_file"},
	{"unknown sink key", okChannel + "    sinks:\n      - path: /tmp/x\n        formt: raw\n", 9, "formt"},
	{"a secret pasted as a key", okChannel + "    Zq8xW3pastedSecretValue9Kp: 1\n", 7, "a key of 26 characters, not shown"},
	{"bad lifetime", okChannel + "    lifetime: 24 hours\n", 7, "duration"},
	{"bad refresh_before", okChannel + "    refresh_before: -2h\n", 7, "duration"},
	{"lifetime over 30 days", okChannel + "    lifetime: 800h\n", 7, "lifetime"},
	{"unquoted mode", okChannel + "    sinks:\n      - path: /tmp/x\n        mode: 0600\n", 9, "quoted octal"},
	{"non-octal mode", okChannel + "    sinks:\n      - path: /tmp/x\n        mode: \"0689\"\n", 9, "octal"},
	{"mode too large", okChannel + "    sinks:\n      - path: /tmp/x\n        mode: \"01777\"\n", 9, "octal"},
	{"empty channel list", "listen: 127.0.0.1:0\nchannels: []\n", 2, "empty"},
	{"no channels", "listen: 127.0.0.1:0\n", 1, "channel"},
	{"empty file", "", 1, "empty"},
	{"unreadable secret_file", strings.Replace(okChannel, "@D@/secret", "@D@/nope", 1), 4, "secret_file: cannot read"},
	{"empty secret_file", strings.Replace(okChannel, "@D@/secret", "@D@/empty", 1), 4, "secret_file"},
	{"unreadable private_key_file", strings.Replace(okChannel, "@D@/key.jwk", "@D@/nope", 1), 5, "private_key_file: cannot read"},
	{"not a key", strings.Replace(okChannel, "@D@/key.jwk", "@D@/secret", 1), 5, "private_key_file"},
	{"unset secret_env", "channels:\n  - id: \"1\"\n    kind: short-lived\n    secret_env: NOPE\n", 4, "secret_env"},
	{"blank secret_env", "channels:\n  - id: \"1\"\n    kind: short-lived\n    secret_env: EMPTY\n", 4, "secret_env"},
	{"v2.1 without a key", "channels:\n  - id: \"1\"\n    secret_file: @D@/secret\n", 2, "assertion key"},
	{"v2.1 without a secret", "channels:\n  - id: \"1\"\n    private_key_file: @D@/key.jwk\n    key_id: k\n", 2, "channel secret"},
	{"short-lived without a secret", "channels:\n  - id: \"1\"\n    kind: short-lived\n", 2, "channel secret"},
	{"stateless without either", "channels:\n  - id: \"1\"\n    kind: stateless\n", 2, "stateless"},
	{"PEM without key_id", "channels:\n  - id: \"1\"\n    secret_file: @D@/secret\n    private_key_file: @D@/key.pem\n", 2, "key_id"},
	{"both _file and _env", strings.Replace(okChannel, "    secret_file: @D@/secret\n", "    secret_file: @D@/secret\n    secret_env: LINE_SECRET\n", 1), 4, "only one"},
	{"password in the Redis URL", "store:\n  redis: redis://:" + urlPassword + "@127.0.0.1:6379/0\n" + okChannel, 2, "password inside the Redis URL"},
	{"user and password in the Redis URL", "store:\n  redis: redis://u:" + urlPassword + "@127.0.0.1:6379/0\n" + okChannel, 2, "password"},
	{"inline channel secret", okChannel + "    secret: " + inlineSecret + "\n", 7, "secret_file or secret_env"},
	{"inline private key", okChannel + "    private_key: " + inlineKey + "\n", 7, "private_key_file or private_key_env"},
	{"inline Redis password", "store:\n  redis: redis://127.0.0.1:6379\n  password: " + inlinePassword + "\n" + okChannel, 3, "password_file or store.password_env"},
	{"inline caller key", "callers:\n  - name: x\n    key: " + inlineKey + "\n" + okChannel, 3, "key_file or key_env"},
	{"same id twice for one kind", okChannel + "  - id: \"1234567890\"\n    secret_file: @D@/secret\n    private_key_file: @D@/key.pem\n    key_id: k2\n", 7, "once per kind"},
	{"blank caller key_env", "callers:\n  - name: x\n    key_env: EMPTY\n" + okChannel, 3, "callers[0].key_env: the environment variable it names is unset or empty"},
	{"caller key of 15 characters", "callers:\n  - name: x\n    key_file: @D@/short.key\n" + okChannel, 3, "callers[0].key_file: the caller key is shorter than 16"},
	{"caller key of 15 characters by key_env", "callers:\n  - name: x\n    key_env: SHORT_KEY\n" + okChannel, 3, "callers[0].key_env: the caller key is shorter than 16"},
	{"duplicate caller names", "callers:\n  - name: x\n    key_file: @D@/caller.key\n  - name: x\n    key_env: CALLER_KEY\n" + okChannel, 4, "callers[1].name: another caller has this name"},
	{"duplicate caller keys", "callers:\n  - name: a\n    key_file: @D@/caller.key\n  - name: b\n    key_file: @D@/caller.key\n" + okChannel, 5, "callers[1].key_file: another caller has the same key"},
	{"caller of an unknown channel", "callers:\n  - name: x\n    key_file: @D@/caller.key\n    channels: [\"999\"]\n" + okChannel, 4, "names no channel"},
	{"non-loopback listen without callers", "listen: 0.0.0.0:7878\ninsecure_plaintext: true\n" + okChannel, 1, "needs callers"},
	{"non-loopback listen without tls", "listen: 10.1.2.3:7878\ncallers:\n  - name: x\n    key_file: @D@/caller.key\n" + okChannel, 1, "tls"},
	{"bad listen", "listen: nowhere\n" + okChannel, 1, "HOST:PORT"},
	{"bad kind", strings.Replace(okChannel, "    key_id:", "    kind: v3\n    key_id:", 1), 6, "kind"},
	{"not numeric id", strings.Replace(okChannel, `"1234567890"`, `"12ab"`, 1), 3, "numeric"},
	{"bad format", okChannel + "    sinks:\n      - path: /tmp/x\n        format: yaml\n", 9, "raw or json"},
	{"bad log_format", "log_format: xml\n" + okChannel, 1, "text or json"},
	{"https only base_url", strings.Replace(okChannel, "http://127.0.0.1:8080", "http://line.example", 1), 1, "https"},
	{"not YAML", "channels: [\n", 1, "YAML"},
	{"wrong type", "channels: 3\n", 1, "sequence"},
	{"two documents", okChannel + "---\n" + okChannel, 8, "one YAML document"},
	{"a list at the top", "- a\n", 1, "mapping"},
}

func TestParseConfigErrors(t *testing.T) {
	s := newSecretFiles(t)
	for _, c := range configErrorCases {
		t.Run(c.name, func(t *testing.T) {
			_, err := s.parse(c.yaml)
			wantConfigError(t, s, err, "agent.yaml", c.line, c.what)
		})
	}
}

func TestParseConfigAllowed(t *testing.T) {
	s := newSecretFiles(t)
	for _, c := range []struct{ name, yaml string }{
		{"one id with two kinds", okChannel + "  - id: \"1234567890\"\n    kind: short-lived\n    secret_file: @D@/secret\n"},
		{"non-loopback with callers and insecure_plaintext", "listen: 0.0.0.0:7878\ninsecure_plaintext: true\ncallers:\n  - name: x\n    key_file: @D@/caller.key\n" + okChannel},
		{"socket only", "listen: \"\"\nsocket: @D@/s.sock\n" + okChannel},
		{"[::1] listen", "listen: \"[::1]:0\"\n" + okChannel},
	} {
		t.Run(c.name, func(t *testing.T) {
			if _, err := s.parse(c.yaml); err != nil {
				t.Fatal(err)
			}
		})
	}
}
