package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
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
// end takes the first fuzzed argument as the command name. keygen (RSA
// generation and a file written where --out says), demo (seconds long) and
// fake-server (listens until cancelled) are left out; "help X" still
// reaches their -h.
var fuzzCommands = []string{"issue", "verify", "revoke", "kids", "help"}

// fuzzUnsafeCommands never run: see fuzzCommands.
var fuzzUnsafeCommands = map[string]bool{"keygen": true, "demo": true, "fake-server": true}

// fuzzWorld is one fuzz process's fake LINE, channel, files and
// environments; the fuzzed arguments name its values by placeholder.
type fuzzWorld struct {
	envs    []map[string]string
	subst   *strings.Replacer
	stdin   string
	needles map[string]string // name -> secret that must never be printed
}

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
	return w
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
// It must never panic, exit with a code outside 0-3, say nothing on stderr
// when failing, or print the channel secret or any private key material.
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
		{5, "$SECRET", 0},
		{5, "--help", 0},
		{5, "", 0},
		{5, "-h", 0},
		{5, "bogus\x00--json", 0},
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
		if len(args) > 0 && fuzzUnsafeCommands[args[0]] {
			t.Skip("a command the fuzzer must not run")
		}
		if !fuzzNetworkFree(args) || !fuzzSafeFiles(args) {
			t.Skip("a --base-url off loopback or a device file")
		}
		env := w.envs[int(envIndex)%len(w.envs)]

		ctx, cancel := context.WithTimeout(context.Background(), fuzzTimeout)
		defer cancel()
		var stdout, stderr bytes.Buffer
		start := time.Now()
		code := runEnv(ctx, args, func(k string) string { return env[k] }, strings.NewReader(w.stdin), &stdout, &stderr)
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
		for what, needle := range w.needles {
			if strings.Contains(printed, needle) {
				t.Errorf("%s printed the %s (exit %d)", name, what, code)
			}
		}
	})
}
