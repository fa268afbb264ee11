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
	runs = append(runs,
		run{args: []string{"keygen", "--out", filepath.Join(dir, "new.jwk")}, env: f.env},
		run{args: []string{"keygen", "--out", pemFile}, env: f.env}, // refused: exists
		run{args: []string{"demo"}, env: f.env},
	)
	// Failures name the command and the run's index, never its arguments.
	for i, r := range runs {
		res := cli(t, r.env, r.stdin, r.args...)
		printed := res.stdout + res.stderr
		for name, needle := range needles {
			if strings.Contains(printed, needle) {
				t.Errorf("%s printed by %s (run %d, exit %d)", name, r.args[0], i, res.code)
			}
		}
		// The secret spelled with its first half is as bad.
		if strings.Contains(printed, secret[:16]) {
			t.Errorf("part of the channel secret printed by %s (run %d)", r.args[0], i)
		}
		// Tokens other than the one issued (none here is issued twice) stay unprinted.
		for _, tok := range []string{v21, short, revoked} {
			if strings.Contains(printed, tok) {
				t.Errorf("a token was printed by %s (run %d)", r.args[0], i)
			}
		}
	}
	// The demo abbreviates its tokens: nothing JWS-long is printed whole.
	res := cli(t, f.env, "", "demo")
	if bytes.Contains([]byte(res.stdout), []byte("eyJhbGciOi")) {
		t.Errorf("the demo printed a whole token:\n%s", res.stdout)
	}
}
