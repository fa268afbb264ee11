package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/linetoken/linetoken/oauth"
)

// TestNoSecretPrinted plants the channel secret and the private key (as JWK
// and as PEM, in variables, files and misplaced arguments), runs every
// command, succeeding and failing, and looks for them in everything printed.
// Only issue's own token and fake-server's throwaway credentials may appear.
// keygen's and fake-server's own private keys (written to 0600 files only)
// are looked for too. TESTING.md's leak audit command runs it (see
// TestLeakAuditCommandRunsTheAudit).
func TestNoSecretPrinted(t *testing.T) {
	f := newFixture(t)
	secret := f.ch.Secret
	jwk := string(f.ch.PrivateJWK)
	pemText := string(pemOf(f.ch.Key))
	var jwkFields struct{ D, P, Q, DP, DQ, QI string }
	if err := json.Unmarshal(f.ch.PrivateJWK, &jwkFields); err != nil || jwkFields.D == "" {
		t.Fatalf("private JWK: %v", err)
	}
	needles := map[string]string{"channel secret": secret, "private JWK": jwk, "JWK d": jwkFields.D, "JWK p": jwkFields.P, "JWK q": jwkFields.Q}
	for i, line := range strings.Split(pemText, "\n") {
		if len(line) == 64 { // a full line of the PEM's base64 body
			needles[fmt.Sprint("PEM line ", i)] = line
		}
	}
	dir := t.TempDir()
	pemFile := filepath.Join(dir, "key.pem")
	os.WriteFile(pemFile, []byte(pemText), 0o600)
	secretFile := filepath.Join(dir, "secret")
	os.WriteFile(secretFile, []byte(secret+"\n"), 0o600)

	v21 := f.issueJSON(t, "v2.1").AccessToken
	short := f.issueJSON(t, "short-lived").AccessToken
	revoked := f.issueJSON(t, "v2.1").AccessToken
	mustCode(t, cli(t, f.env, "", "revoke", revoked), exitOK)

	pemEnv := with(without(f.env, oauth.EnvPrivateKeyFile), oauth.EnvPrivateKey, pemText)
	jwkEnv := with(without(f.env, oauth.EnvPrivateKeyFile), oauth.EnvPrivateKey, jwk)
	fileEnv := with(without(f.env, oauth.EnvChannelSecret), oauth.EnvPrivateKeyFile, pemFile)
	down := with(f.env, oauth.EnvBaseURL, closedPortURL(t))
	wrongSecret := with(f.env, oauth.EnvChannelSecret, strings.Repeat("0", 32))
	keyInFileVar := with(f.env, oauth.EnvPrivateKeyFile, jwk) // a common slip: the key where its path belongs
	keyInFileVarPEM := with(f.env, oauth.EnvPrivateKeyFile, pemText)
	badKeyID := with(jwkEnv, oauth.EnvKeyID, "unregistered")
	brokenKey := with(without(f.env, oauth.EnvPrivateKeyFile), oauth.EnvPrivateKey, strings.Replace(pemText, "MII", "XXX", 1))

	type run struct {
		env   map[string]string
		stdin string
		args  []string
	}
	var runs []run
	for _, env := range []map[string]string{f.env, pemEnv, jwkEnv, fileEnv, down, wrongSecret, keyInFileVar, keyInFileVarPEM, badKeyID, brokenKey} {
		for _, args := range [][]string{
			{"issue"}, {"issue", "--json"}, {"issue", "--type", "short-lived"}, {"issue", "--type", "stateless", "--json"},
			{"issue", "--type", "short-lived", "--channel-secret-file", secretFile},
			{"verify", v21}, {"verify", "--json", short}, {"verify", revoked}, {"verify", "-"},
			{"revoke", revoked}, {"revoke", "--json", "not-a-jws"}, {"revoke", "--type", "v2.1", "--channel-secret-file", secretFile, revoked},
			{"kids"}, {"kids", "--json"},
			{"issue", "--channel-secret", secret}, {"issue", "--channel-secret=" + secret}, {"kids", "--private-key", jwk},
			{"issue", "--json=" + secret}, {"issue", "--" + secret}, {"issue", "--type", secret}, {"issue", "--lifetime", secret},
			{"issue", "--key-id", secret}, {"issue", "--channel-id", secret}, {"verify", "--type", secret, v21},
			{secret}, {"help", secret}, {"issue", secret}, {"kids", pemText},
			{"help"}, {"issue", "-h"},
		} {
			runs = append(runs, run{env: env, stdin: v21 + "\n", args: args})
		}
	}
	runs = append(runs, run{args: []string{"demo"}, env: f.env})

	// keygen, writing under dir: the secret planted in --out where the key
	// cannot be written or a file is in the way (errors name --out, not the
	// path). A succeeding keygen prints its --out path by design, so none
	// here holds a secret. want is the exit code, so that each path is
	// known to be taken; keyFile is where a succeeding run wrote its key.
	inTheWay := filepath.Join(dir, secret+".jwk")
	os.WriteFile(inTheWay, []byte("{}"), 0o600)
	keygenRuns := []struct {
		args    []string
		want    int
		keyFile string
	}{
		{[]string{"keygen", "--out", filepath.Join(dir, "new.jwk")}, exitOK, filepath.Join(dir, "new.jwk")},
		{[]string{"keygen", "--out", filepath.Join(dir, "new2.jwk"), "--json"}, exitOK, filepath.Join(dir, "new2.jwk")},
		{[]string{"keygen", "--force", "--out", filepath.Join(dir, "new.jwk")}, exitOK, filepath.Join(dir, "new.jwk")},
		{[]string{"keygen", "--out", pemFile}, exitUsage, ""},  // exists
		{[]string{"keygen", "--out", inTheWay}, exitUsage, ""}, // exists, named by the secret
		{[]string{"keygen", "--out", "/nonexistent/" + secret}, exitFailure, ""},
		{[]string{"keygen", "--force", "--out=/nonexistent/" + secret}, exitFailure, ""},
		{[]string{"keygen", "--out", filepath.Join(dir, secret, "k.jwk")}, exitFailure, ""},
		{[]string{"keygen", "--out", "/nonexistent/" + pemText}, exitFailure, ""},
		{[]string{"keygen", "--force", "--out", dir}, exitFailure, ""}, // a directory
		{[]string{"keygen", "--out", filepath.Join(dir, "new3.jwk"), secret}, exitUsage, ""},
		{[]string{"keygen", "--" + secret}, exitUsage, ""},
		{[]string{"keygen", "--json=" + secret}, exitUsage, ""},
	}
	// fake-server on a free loopback port, stopped once it is ready, and
	// with the secret planted in --addr and misplaced arguments.
	fakeRuns := []struct {
		args []string
		want int
	}{
		{[]string{"fake-server", "--addr", "127.0.0.1:0"}, exitOK},
		{[]string{"fake-server", "--addr", "127.0.0.1:0", "--json"}, exitOK},
		{[]string{"fake-server", "--addr", secret + ":1"}, exitFailure},         // no such host
		{[]string{"fake-server", "--addr", "127.0.0.1:" + secret}, exitFailure}, // unknown port
		{[]string{"fake-server", "--addr", secret}, exitUsage},
		{[]string{"fake-server", "--addr=" + pemText}, exitUsage},
		{[]string{"fake-server", "--addr", "127.0.0.1:0", secret}, exitUsage},
		{[]string{"fake-server", "--json=" + secret}, exitUsage},
		{[]string{"fake-server", "--" + secret}, exitUsage},
	}

	// check looks for every secret in one run's output. Failures name the
	// command and the run's index, never its arguments.
	var printedAll []string
	check := func(cmd string, i int, res result, own map[string]string) {
		t.Helper()
		printed := res.stdout + res.stderr
		printedAll = append(printedAll, printed)
		for name, needle := range needles {
			if strings.Contains(printed, needle) {
				t.Errorf("%s printed by %s (run %d, exit %d)", name, cmd, i, res.code)
			}
		}
		for name, needle := range own {
			if strings.Contains(printed, needle) {
				t.Errorf("%s of the key it generated printed by %s (run %d, exit %d)", name, cmd, i, res.code)
			}
		}
		// The secret spelled with its first half is as bad.
		if strings.Contains(printed, secret[:16]) {
			t.Errorf("part of the channel secret printed by %s (run %d)", cmd, i)
		}
		// Tokens other than the one issued (none here is issued twice) stay unprinted.
		for _, tok := range []string{v21, short, revoked} {
			if strings.Contains(printed, tok) {
				t.Errorf("a token was printed by %s (run %d)", cmd, i)
			}
		}
	}
	for i, r := range runs {
		check(r.args[0], i, cli(t, r.env, r.stdin, r.args...), nil)
	}
	generated := map[string]string{} // private members of every key keygen made
	for i, r := range keygenRuns {
		res := cli(t, f.env, "", r.args...)
		if res.code != r.want {
			t.Errorf("keygen run %d: exit %d, want %d", i, res.code, r.want)
		}
		var own map[string]string
		if r.keyFile != "" {
			jwk, err := os.ReadFile(r.keyFile)
			if err != nil {
				t.Fatalf("keygen run %d: %v", i, err)
			}
			own = privateMembers(t, jwk)
			for name, v := range own {
				generated[fmt.Sprint(name, " of key ", i)] = v
			}
		}
		check("keygen", len(runs)+i, res, own)
	}
	for i, r := range fakeRuns {
		res := runFakeServerReady(t, f.env, r.args...)
		if res.code != r.want || res.ready != (r.want == exitOK) {
			t.Errorf("fake-server run %d: exit %d (ready %t), want %d", i, res.code, res.ready, r.want)
		}
		var own map[string]string
		if res.ready {
			own = privateMembers(t, res.key)
		}
		check("fake-server", len(runs)+len(keygenRuns)+i, res.result, own)
	}
	// No run printed any key keygen made.
	for i, printed := range printedAll {
		for name, v := range generated {
			if strings.Contains(printed, v) {
				t.Errorf("%s printed by run %d", name, i)
			}
		}
	}
	t.Logf("%d runs checked for %d planted secrets, %d generated key members and 3 tokens",
		len(printedAll), len(needles)+1, len(generated))
	// The demo abbreviates its tokens: nothing JWS-long is printed whole.
	res := cli(t, f.env, "", "demo")
	if bytes.Contains([]byte(res.stdout), []byte("eyJhbGciOi")) {
		t.Errorf("the demo printed a whole token:\n%s", res.stdout)
	}
}
