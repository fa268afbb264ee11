package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/linetoken/linetoken/oauth"
	"github.com/linetoken/linetoken/oauth/oauthtest"
)

// fuzzTimeout bounds one fuzzed invocation: every command talks to the
// in-process fake or to a closed port, so this is only a backstop.
const fuzzTimeout = 2 * time.Second

// fuzzGrace is how long past its context an invocation may take to return.
const fuzzGrace = 3 * time.Second

// fuzzCommands are the subcommands FuzzArgs puts first; an index past the
// end takes the first fuzzed argument as the command name. Every command
// runs, the three that would leave the process's sandbox confined
// (fuzzWorld.confine):
//   - keygen writes under the fuzz process's temporary directory whatever
//     --out says, and is handed a ready key (fuzzKey) instead of generating
//     one: RSA-2048 generation takes tens of milliseconds an input;
//   - fake-server listens on 127.0.0.1:0 (an --addr it could listen on is
//     replaced; one it must refuse is kept), registers fuzzKey for its
//     channel, and its context ends as soon as it prints: it sets up,
//     prints its channel and stops;
//   - demo's context ends as soon as it prints too: its arguments and
//     set-up are fuzzed, and its first request fails at once. The whole
//     walk (about 80 requests) would dominate the execution budget and
//     takes no input the fuzzer could vary; TestDemo runs it.
var fuzzCommands = []string{"issue", "verify", "revoke", "kids", "help", "keygen", "fake-server", "demo"}

// fuzzWorld is one fuzz process's fake LINE, channel, files and
// environments; the fuzzed arguments name its values by placeholder.
type fuzzWorld struct {
	envs    []map[string]string
	subst   *strings.Replacer
	stdin   string
	needles map[string]string // name -> secret that must never be printed
	outDir  string            // where keygen writes, whatever --out says
	key     fuzzKey           // keygen's and fake-server's key
}

// fuzzKey is an RSA key generated once per fuzz process.
type fuzzKey struct {
	private, public []byte // JWKs
	parsed          *oauth.AssertionKey
}

// fuzzExistingKey is a file name under fuzzWorld.outDir that is always
// there when keygen runs, so that refusing to overwrite is fuzzed too.
const fuzzExistingKey = "existing.jwk"

// fuzzFakeSecret is the channel secret of fake-server's channel under
// FuzzArgs: throwaway, printed by design, not one of the needles.
const fuzzFakeSecret = "f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0"

// fuzzFakeChannelID is fake-server's channel under FuzzArgs.
const fuzzFakeChannelID = "1000000001"

func newFuzzWorld(f *testing.F) *fuzzWorld {
	srv := oauthtest.NewServer()
	f.Cleanup(srv.Close)
	ch := srv.NewChannel(f)
	// The fake again, behind a server that closes every connection: each
	// invocation makes a client of its own, whose idle connections would
	// otherwise pile up over thousands of executions.
	front := httptest.NewUnstartedServer(srv)
	front.Config.SetKeepAlivesEnabled(false)
	front.Start()
	f.Cleanup(front.Close)
	dir := f.TempDir()
	keyFile := filepath.Join(dir, "key.jwk")
	pemFile := filepath.Join(dir, "key.pem")
	secretFile := filepath.Join(dir, "secret")
	pemText := string(pemOf(ch.Key))
	for name, data := range map[string]string{keyFile: string(ch.PrivateJWK), pemFile: pemText, secretFile: ch.Secret + "\n"} {
		if err := os.WriteFile(name, []byte(data), 0o600); err != nil {
			f.Fatal(err)
		}
	}
	cfg := srv.Config(ch.ID)
	cfg.BaseURL = front.URL
	c, err := oauth.NewClient(cfg)
	if err != nil {
		f.Fatal(err)
	}
	ctx := context.Background()
	v21, err := c.IssueToken(ctx, oauth.MaxTokenLifetime)
	if err != nil {
		f.Fatal(err)
	}
	short, err := c.IssueShortLivedToken(ctx)
	if err != nil {
		f.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		f.Fatal(err)
	}
	closed := "http://" + ln.Addr().String()
	ln.Close()

	base := map[string]string{
		oauth.EnvBaseURL:        front.URL,
		oauth.EnvChannelID:      ch.ID,
		oauth.EnvChannelSecret:  ch.Secret,
		oauth.EnvPrivateKeyFile: keyFile,
		oauth.EnvKeyID:          ch.KeyID,
	}
	w := &fuzzWorld{
		envs: []map[string]string{
			base,
			with(without(base, oauth.EnvPrivateKeyFile), oauth.EnvPrivateKey, pemText),
			with(without(base, oauth.EnvPrivateKeyFile), oauth.EnvPrivateKey, string(ch.PrivateJWK)),
			with(base, oauth.EnvPrivateKeyFile, string(ch.PrivateJWK)), // the key where its path belongs
			with(base, oauth.EnvPrivateKeyFile, pemText),
			with(base, oauth.EnvPrivateKey, pemText),                    // both key settings
			with(base, oauth.EnvChannelSecret, strings.Repeat("0", 32)), // a wrong secret
			with(base, oauth.EnvKeyID, "unregistered"),
			with(base, oauth.EnvBaseURL, closed),
			without(base, oauth.EnvChannelSecret, oauth.EnvKeyID),
			// Every environment names a loopback base URL: without one the
			// CLI would call LINE itself.
			{oauth.EnvBaseURL: front.URL, oauth.EnvChannelSecret: ch.Secret, oauth.EnvPrivateKey: pemText},
			{oauth.EnvBaseURL: closed},
		},
		subst: strings.NewReplacer(
			"$SECRETFILE", secretFile,
			"$SECRET", ch.Secret,
			"$JWKFILE", keyFile,
			"$JWK", string(ch.PrivateJWK),
			"$PEMFILE", pemFile,
			"$PEM", pemText,
			"$KID", ch.KeyID,
			"$ID", ch.ID,
			"$TOKEN", v21.AccessToken,
			"$SHORT", short.AccessToken,
			"$URL", front.URL,
			"$CLOSED", closed,
		),
		stdin: v21.AccessToken + "\n",
		needles: map[string]string{
			"channel secret":       ch.Secret,
			"channel secret start": ch.Secret[:16],
			"channel secret end":   ch.Secret[16:],
			"private key D":        ch.Key.PrivateKey.D.String()[:40],
		},
	}
	var jwk map[string]any
	if err := json.Unmarshal(ch.PrivateJWK, &jwk); err != nil {
		f.Fatal(err)
	}
	for _, m := range []string{"d", "p", "q", "dp", "dq", "qi"} {
		v, _ := jwk[m].(string)
		if len(v) < 40 {
			f.Fatalf("private JWK member %s missing", m)
		}
		w.needles["JWK "+m] = v[:24]
		w.needles["JWK "+m+" end"] = v[len(v)-24:]
	}
	for i, line := range strings.Split(pemText, "\n") {
		if len(line) == 64 {
			w.needles[fmt.Sprint("PEM line ", i)] = line
		}
	}

	// keygen's and fake-server's key: its private members are needles too.
	priv, pub, err := oauth.GenerateAssertionKey()
	if err != nil {
		f.Fatal(err)
	}
	parsed, err := oauth.ParseAssertionKey(priv, "unused")
	if err != nil {
		f.Fatal(err)
	}
	w.key = fuzzKey{private: priv, public: pub, parsed: parsed}
	for name, v := range privateMembers(f, priv) {
		w.needles["generated "+name] = v[:24]
		w.needles["generated "+name+" end"] = v[len(v)-24:]
	}
	w.outDir = filepath.Join(dir, "keygen", "out")
	return w
}

// useFuzzKey makes e's keygen and fake-server use w.key instead of
// generating keys.
func (w *fuzzWorld) useFuzzKey(e *env) {
	e.generateKey = func() ([]byte, []byte, error) { return w.key.private, w.key.public, nil }
	e.createChannel = func(srv *oauthtest.Server) (oauthtest.Channel, error) {
		srv.AddChannel(fuzzFakeChannelID, fuzzFakeSecret)
		kid, err := srv.RegisterKey(fuzzFakeChannelID, w.key.public)
		if err != nil {
			return oauthtest.Channel{}, err
		}
		return oauthtest.Channel{ID: fuzzFakeChannelID, Secret: fuzzFakeSecret, PrivateJWK: w.key.private, KeyID: kid,
			Key: &oauth.AssertionKey{KeyID: kid, PrivateKey: w.key.parsed.PrivateKey}}, nil
	}
}

// confine rewrites the arguments of keygen and fake-server (args[0]) so
// that they stay in the sandbox, and returns them with the --out path
// keygen will write (else ""). An argument is rewritten only where the
// flag package takes it as the flag's value: "--out X", "--out=X", before
// any "--".
func (w *fuzzWorld) confine(args []string) ([]string, string) {
	var flagName, defaultValue string
	var rewrite func(string) string
	switch {
	case len(args) == 0:
		return args, ""
	case args[0] == "keygen":
		// Any path, "../.." and absolute ones included, lands under outDir.
		flagName, defaultValue = "out", defaultKeyFile
		rewrite = func(v string) string {
			if v == "" {
				return v // refused: --out is empty
			}
			return filepath.Join(w.outDir, filepath.Clean("/"+v))
		}
	case args[0] == "fake-server":
		flagName, defaultValue = "addr", defaultFakeAddr
		rewrite = fuzzAddr
	default:
		return args, ""
	}
	// The default --out (a file in the working directory) and --addr
	// (port 8080) are replaced by a first flag that later ones override.
	last := rewrite(defaultValue)
	out := append([]string{args[0], "--" + flagName + "=" + last}, args[1:]...)
	for i := 2; i < len(out); i++ {
		a := out[i]
		if a == "--" {
			break
		}
		name, value, hasValue := strings.Cut(strings.TrimPrefix(strings.TrimPrefix(a, "-"), "-"), "=")
		if !strings.HasPrefix(a, "-") || name != flagName {
			continue
		}
		if hasValue {
			value = rewrite(value)
			out[i] = "--" + flagName + "=" + value
		} else if i+1 < len(out) {
			value = rewrite(out[i+1])
			out[i+1] = value
			i++
		}
		last = value
	}
	if flagName != "out" {
		last = ""
	}
	return out, last
}

// fuzzAddr replaces an --addr that would make fake-server listen on a
// fixed port or off loopback, or look a host up, by 127.0.0.1:0. Kept are
// a loopback IP with port 0, and the ones refused without listening: not
// host:port, or a loopback IP with a port that does not resolve (an
// unknown port name, a number out of range).
func fuzzAddr(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		if _, err := net.LookupPort("tcp", port); err != nil || port == "0" {
			return addr
		}
	}
	return "127.0.0.1:0"
}

// resetOutDir empties keygen's directory but for fuzzExistingKey.
func (w *fuzzWorld) resetOutDir(t *testing.T) {
	if err := os.RemoveAll(w.outDir); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(w.outDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(w.outDir, fuzzExistingKey), []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}
}

// cancelOnWrite ends a command's context when it first prints on stdout:
// fake-server then stops once its channel is printed, and the demo's next
// request fails.
type cancelOnWrite struct {
	w      io.Writer
	cancel context.CancelFunc
}

func (c *cancelOnWrite) Write(p []byte) (int, error) {
	defer c.cancel()
	return c.w.Write(p)
}

// fuzzNetworkFree reports whether args point the command at nothing but
// loopback: a --base-url to another host would reach the network.
func fuzzNetworkFree(args []string) bool {
	for i, a := range args {
		if !strings.HasPrefix(a, "-") {
			continue
		}
		name, val, hasVal := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if name != flagBaseURL {
			continue
		}
		if !hasVal {
			if i+1 >= len(args) {
				continue
			}
			val = args[i+1]
		}
		u, err := url.Parse(strings.TrimSpace(val))
		if err != nil || u.Hostname() == "" {
			continue // refused before any request
		}
		if ip := net.ParseIP(u.Hostname()); ip == nil || !ip.IsLoopback() {
			return false
		}
	}
	return true
}

// fuzzSafeFiles reports whether args name no device or pseudo-file (an
// endless /dev/zero as a key file is the fuzzer's, not a user's, mistake).
func fuzzSafeFiles(args []string) bool {
	for _, a := range args {
		for _, p := range []string{"/dev", "/proc", "/sys", "/run"} {
			if strings.Contains(a, p) {
				return false
			}
		}
	}
	return true
}

// FuzzArgs runs the CLI on arbitrary argument vectors: a subcommand, then
// the fuzzed string split on NUL into arguments, with placeholders ($SECRET,
// $PEM, $JWK, $TOKEN, ...) replaced by the fuzz process's values, under one
// of a dozen environments, against an in-process fake or a closed port.
// keygen, fake-server and demo run confined (see fuzzCommands).
// It must never panic, exit with a code outside 0-3, say nothing on stderr
// when failing, or print the channel secret or any private key material,
// the key keygen writes included. The one value printed back by design is
// the path a succeeding keygen wrote to (a secret named in --out is left
// out of the check there, and only there).
func FuzzArgs(f *testing.F) {
	w := newFuzzWorld(f)
	seeds := []struct {
		cmd  uint8
		args string
		env  uint8
	}{
		{0, "--type\x00v2.1\x00--lifetime\x0024h", 0},
		{0, "--type\x00v2.1\x00--lifetime\x007d\x00--json", 1},
		{0, "--type\x00short-lived\x00--json", 2},
		{0, "--type\x00stateless", 0},
		{0, "--type\x00stateless\x00--json", 9},
		{0, "--json", 3},
		{0, "--lifetime\x0031d", 0},
		{0, "--lifetime\x00-1h", 0},
		{0, "--lifetime\x00$SECRET", 0},
		{0, "--type\x00short-lived\x00--lifetime\x001h", 0},
		{0, "--channel-secret=$SECRET", 0},
		{0, "--channel-secret\x00$SECRET", 0},
		{0, "--private-key\x00$PEM", 0},
		{0, "--type\x00short-lived\x00--channel-secret-file\x00$SECRETFILE", 9},
		{0, "--private-key-file\x00$PEMFILE\x00--key-id\x00$KID", 11},
		{0, "--private-key-file\x00$SECRETFILE", 0},
		{0, "--channel-secret-file\x00$PEMFILE\x00--type\x00short-lived", 0},
		{0, "--channel-id\x00$SECRET", 0},
		{0, "--key-id\x00$SECRET", 0},
		{0, "--type=$SECRET", 0},
		{0, "--$SECRET", 0},
		{0, "--json=$SECRET", 0},
		{0, "$SECRET", 0},
		{0, "--nope", 0},
		{0, "-json=maybe", 0},
		{0, "-h", 0},
		{0, "--base-url\x00$CLOSED", 0},
		{0, "--base-url=$URL\x00--type\x00short-lived", 8},
		{0, "", 4},
		{0, "", 5},
		{0, "", 6},
		{0, "", 7},
		{0, "", 10},
		{1, "$TOKEN", 0},
		{1, "--json\x00$SHORT", 0},
		{1, "-", 0},
		{1, "--type\x00v2.1\x00$TOKEN", 0},
		{1, "$TOKEN\x00--json", 0},
		{1, "--\x00-", 0},
		{1, "--type\x00long-lived\x00$SHORT", 8},
		{1, "$SECRET", 0},
		{1, "--type\x00$SECRET\x00$TOKEN", 0},
		{1, "$TOKEN\x00$SHORT", 0},
		{1, "", 0},
		{2, "$TOKEN", 0},
		{2, "--json\x00not-a-jws", 0},
		{2, "--type\x00v2.1\x00--channel-secret-file\x00$SECRETFILE\x00$TOKEN", 9},
		{2, "--type\x00long-lived\x00-", 6},
		{3, "", 0},
		{3, "--json", 1},
		{3, "$PEM", 0},
		{3, "--private-key\x00$JWK", 0},
		{3, "--private-key-file\x00$JWK", 0},
		{4, "", 0},
		{4, "issue", 0},
		{4, "fake-server", 0},
		{4, "demo", 0},
		{4, "keygen", 0},
		{4, "$SECRET", 0},
		{5, "", 0},
		{5, "--json", 0},
		{5, "--out\x00k.jwk", 0},
		{5, "--out\x00" + fuzzExistingKey, 0},
		{5, "--out=" + fuzzExistingKey + "\x00--force\x00--json", 0},
		{5, "--out\x00/nonexistent/$SECRET", 0},
		{5, "--force\x00--out=/nonexistent/$SECRET", 0},
		{5, "--out\x00$SECRET", 0},
		{5, "--out\x00$SECRET\x00--json", 0},
		{5, "--out\x00$PEM", 0},
		{5, "--out\x00../../$JWK", 0},
		{5, "--out\x00/\x00--force", 0},
		{5, "--out=", 0},
		{5, "--out", 0},
		{5, "$SECRET", 0},
		{5, "--$SECRET", 0},
		{5, "--force=$SECRET", 0},
		{5, "-h", 0},
		{6, "", 0},
		{6, "--json", 0},
		{6, "--addr\x00127.0.0.1:0\x00--json", 0},
		{6, "--addr\x00[::1]:0", 0},
		{6, "--addr\x00$SECRET", 0},
		{6, "--addr\x00$SECRET:1", 0},
		{6, "--addr=127.0.0.1:$SECRET", 0},
		{6, "--addr\x00127.0.0.1:99999", 0},
		{6, "--addr\x00$PEM", 0},
		{6, "$SECRET", 0},
		{6, "--json=$SECRET", 0},
		{6, "-h", 0},
		{7, "", 0},
		{7, "$SECRET", 0},
		{7, "--json", 0},
		{7, "-h", 0},
		{8, "$SECRET", 0},
		{8, "--help", 0},
		{8, "", 0},
		{8, "-h", 0},
		{8, "bogus\x00--json", 0},
		{8, "keygen\x00--out\x00$SECRET/k.jwk", 0},
		{8, "fake-server\x00--addr\x00:0\x00--json", 0},
		{8, "demo", 0},
	}
	for _, s := range seeds {
		f.Add(s.cmd, s.args, s.env)
	}
	f.Fuzz(func(t *testing.T, cmd uint8, fuzzed string, envIndex uint8) {
		var args []string
		if fuzzed != "" {
			args = strings.Split(fuzzed, "\x00")
		}
		for i, a := range args {
			args[i] = w.subst.Replace(a)
		}
		if int(cmd)%(len(fuzzCommands)+1) < len(fuzzCommands) {
			args = append([]string{fuzzCommands[int(cmd)%(len(fuzzCommands)+1)]}, args...)
		}
		if !fuzzNetworkFree(args) || !fuzzSafeFiles(args) {
			t.Skip("a --base-url off loopback or a device file")
		}
		args, keyFile := w.confine(args)
		if len(args) > 0 && args[0] == "keygen" {
			w.resetOutDir(t)
		}
		env := w.envs[int(envIndex)%len(w.envs)]

		ctx, cancel := context.WithTimeout(context.Background(), fuzzTimeout)
		defer cancel()
		var stdout, stderr bytes.Buffer
		var out io.Writer = &stdout
		if len(args) > 0 && (args[0] == "fake-server" || args[0] == "demo") {
			out = &cancelOnWrite{w: &stdout, cancel: cancel}
		}
		start := time.Now()
		e := newEnv(ctx, func(k string) string { return env[k] }, strings.NewReader(w.stdin), out, &stderr)
		w.useFuzzKey(e)
		code := e.run(args)
		took := time.Since(start)

		name := "(none)"
		if len(args) > 0 {
			name = clip(args[0])
		}
		switch code {
		case exitOK, exitAPI, exitUsage, exitFailure:
		default:
			t.Errorf("%s: exit code %d", name, code)
		}
		if took > fuzzTimeout+fuzzGrace {
			t.Errorf("%s: took %v, past its %v context", name, took.Round(time.Millisecond), fuzzTimeout)
		}
		if code != exitOK && stderr.Len() == 0 {
			t.Errorf("%s: exit %d with nothing on stderr", name, code)
		}
		printed := stdout.String() + stderr.String()
		if code == exitOK && keyFile != "" {
			// A key written: keygen prints where, as the user named it.
			printed = withoutPath(printed, keyFile)
		}
		for what, needle := range w.needles {
			if strings.Contains(printed, needle) {
				t.Errorf("%s printed the %s (exit %d)", name, what, code)
			}
		}
	})
}

// withoutPath removes from keygen's output the path it wrote to, in the
// forms it prints it: as is, shell-quoted and JSON-encoded.
func withoutPath(printed, path string) string {
	var j bytes.Buffer
	writeJSON(&j, path)
	quoted := strings.TrimSuffix(strings.TrimSpace(j.String()), `"`)[1:]
	return strings.NewReplacer(shellQuote(path), "<OUT>", path, "<OUT>", quoted, "<OUT>").Replace(printed)
}

// TestFuzzConfine: FuzzArgs's keygen writes under its directory whatever
// --out says, and its fake-server listens on a free loopback port only.
func TestFuzzConfine(t *testing.T) {
	w := &fuzzWorld{outDir: filepath.Join(t.TempDir(), "out")}
	under := func(p string) bool { return strings.HasPrefix(p, w.outDir+string(filepath.Separator)) }
	for _, args := range [][]string{
		{"keygen"}, {"keygen", "--json"}, {"keygen", "--out", "../../../etc/x"}, {"keygen", "-out=/etc/x"},
		{"keygen", "--out", "a", "--force", "-out", "/tmp/b"}, {"keygen", "x", "--out", "--out"},
	} {
		got, keyFile := w.confine(slices.Clone(args))
		if !under(keyFile) {
			t.Errorf("%q: writes to %q", args, keyFile)
		}
		var fs flag.FlagSet
		out := fs.String("out", "unset", "")
		fs.Bool("json", false, "")
		fs.Bool("force", false, "")
		rest := got[1:]
		for len(rest) > 0 { // as parseFlags: flags after positional arguments too
			if err := fs.Parse(rest); err != nil {
				t.Fatalf("%q -> %q: %v", args, got, err)
			}
			rest = fs.Args()
			if len(rest) > 0 {
				rest = rest[1:]
			}
		}
		if *out != keyFile {
			t.Errorf("%q -> %q: --out %q, reported %q", args, got, *out, keyFile)
		}
	}
	// After "--" nothing is a flag (and keygen refuses the arguments).
	got, _ := w.confine([]string{"keygen", "--", "--out", "/etc/x"})
	if got[len(got)-1] != "/etc/x" {
		t.Errorf("rewrote past --: %q", got)
	}
	for addr, want := range map[string]string{
		"0.0.0.0:80":      "127.0.0.1:0",
		":8080":           "127.0.0.1:0",
		"example.com:0":   "127.0.0.1:0",
		"127.0.0.1:http":  "127.0.0.1:0",
		"127.0.0.1:0":     "127.0.0.1:0",
		"[::1]:0":         "[::1]:0",
		"127.0.0.1:nope":  "127.0.0.1:nope",  // refused: unknown port
		"127.0.0.1:99999": "127.0.0.1:99999", // refused: invalid port
		"nonsense":        "nonsense",        // refused: not host:port
	} {
		got, _ := w.confine([]string{"fake-server", "--addr", addr})
		if got[1] != "--addr=127.0.0.1:0" || got[3] != want {
			t.Errorf("--addr %s: %q, want %s", addr, got, want)
		}
	}
}
