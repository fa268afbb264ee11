package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/linetoken/linetoken/oauth"
)

// Token families as the --type flag names them.
const (
	typeV21        = "v2.1"
	typeShortLived = "short-lived"
	typeLongLived  = "long-lived"
	typeStateless  = "stateless"
	typeAuto       = "auto"
)

const (
	// defaultLifetimeFlag is the default lifetime of an issued v2.1 token:
	// a day, not LINE's 30-day maximum, so a token issued by hand and
	// forgotten frees its slot soon.
	defaultLifetimeFlag = "24h"
	// defaultKeyFile is where keygen writes the private key.
	defaultKeyFile = "linetoken-private.jwk"
	// privateFileMode keeps private keys readable by their owner only.
	privateFileMode = 0o600
	// maxTokenLine bounds a token read from stdin (LINE's are under 2 KiB).
	maxTokenLine = 64 << 10
)

// ---- keygen ----

const keygenUsage = `Usage: linetoken keygen [--out FILE] [--force] [--json]

Makes an RSA-2048 assertion signing key. The private key goes to FILE as a
JWK (mode 0600; an existing file is kept unless --force); the public key is
printed as the JWK the LINE Developers Console accepts. Register it there
(channel > Basic settings > Assertion Signing Key), then load the key with
the kid the console returns:

  export LINE_PRIVATE_KEY_FILE=FILE LINE_KEY_ID=<kid>`

func runKeygen(e *env, args []string) error {
	fs := flag.NewFlagSet("keygen", flag.ContinueOnError)
	out := fs.String("out", defaultKeyFile, "file to write the private key to (mode 0600)")
	force := fs.Bool("force", false, "overwrite an existing file")
	asJSON := fs.Bool("json", false, "print one JSON object: private_key_file, public_jwk")
	pos, err := parseFlags(e, fs, keygenUsage, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("keygen takes no arguments (got %d); the key file is --out", len(pos))
	}
	if *out == "" {
		return usagef("--out is empty")
	}
	priv, pub, err := e.generateKey()
	if err != nil {
		return fmt.Errorf("generating the key: %w", err)
	}
	if err := writePrivateFile(*out, priv, *force); err != nil {
		if errors.Is(err, errFileExists) {
			return usagef("%s: the file already exists: pass --force to overwrite it, or --out to choose another file", outLabel(*out))
		}
		return fmt.Errorf("%s: cannot write the private key file: %w", outLabel(*out), err)
	}
	abs, err := filepath.Abs(*out)
	if err != nil {
		abs = *out
	}
	if *asJSON {
		return writeJSON(e.stdout, struct {
			PrivateKeyFile string          `json:"private_key_file"`
			PublicJWK      json.RawMessage `json:"public_jwk"`
		}{abs, pub})
	}
	fmt.Fprintf(e.stdout, `Wrote the private key to %s (mode 0600). Keep it secret: never commit or share it.

Public key (register it in the LINE Developers Console: your channel >
Basic settings > Assertion Signing Key > Register a public key):

%s

The console answers with a key ID (kid). Then load the key with it:

  export %s=%s
  export %s=<the kid the console returned>
  linetoken issue --type v2.1
`, abs, pub, oauth.EnvPrivateKeyFile, shellQuote(abs), oauth.EnvKeyID)
	return nil
}

// outLabel names keygen's --out in an error: with its value when clip
// would show it (a plain file name such as the default), else the flag
// alone, as --private-key-file is named when it cannot be read. A path is
// whatever was typed, a pasted secret included.
func outLabel(path string) string {
	if clip(path) == path {
		return "--out " + path
	}
	return "--out"
}

// errFileExists: writePrivateFile found a file at the path and force was off.
var errFileExists = errors.New("the file already exists")

// writePrivateFile writes data to path with mode 0600. Without force an
// existing file is errFileExists; with it the file is replaced through a
// temporary file in the same directory, so the key is never readable by
// others, not even for a moment, whatever the old file's mode. Its errors
// never quote path (see pathless): the caller names the setting.
func writePrivateFile(path string, data []byte, force bool) error {
	if !force {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, privateFileMode)
		if errors.Is(err, os.ErrExist) {
			return errFileExists
		}
		if err != nil {
			return pathless(err)
		}
		_, werr := f.Write(data)
		if cerr := f.Close(); werr == nil {
			werr = cerr
		}
		if werr != nil {
			os.Remove(path)
			return pathless(werr)
		}
		return nil
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".linetoken-key-*")
	if err != nil {
		return pathless(err)
	}
	name := tmp.Name()
	err = tmp.Chmod(privateFileMode)
	if err == nil {
		_, err = tmp.Write(data)
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(name, path)
	}
	if err != nil {
		os.Remove(name)
		return pathless(err)
	}
	return nil
}

// pathless is a file system error without the paths it quotes: only its
// cause ("no such file or directory", "permission denied"), as
// readSmallFile reports.
func pathless(err error) error {
	var pe *fs.PathError
	var le *os.LinkError
	switch {
	case errors.As(err, &pe):
		return pe.Err
	case errors.As(err, &le):
		return le.Err
	}
	return err
}

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r == '/' || r == '.' || r == '_' || r == '-' || r == ':' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z')
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// ---- issue ----

const issueUsage = `Usage: linetoken issue [--type v2.1|short-lived|stateless] [--lifetime 24h] [--json] [settings flags]

Issues a channel access token and prints it (the one secret linetoken prints).

  v2.1         JWT-assertion issued (needs the channel ID, the private key and
               its key ID); lives --lifetime (at most 30 days). At most 30 are
               active per channel: keep the token and revoke it when done.
  short-lived  needs the channel ID and secret; 30 days. The channel keeps at
               most 30: issuing a 31st silently revokes the oldest.
  stateless    15 minutes, unlimited, cannot be revoked. Signed with the
               private key when one is set, else the channel ID and secret.

--json prints {"type","access_token","token_type","expires_in","expiry","key_id"}.`

// issueResult is issue's --json output.
type issueResult struct {
	Type        string `json:"type"`
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int64  `json:"expires_in"` // seconds
	Expiry      string `json:"expiry"`     // RFC 3339
	KeyID       string `json:"key_id,omitempty"`
}

func runIssue(e *env, args []string) error {
	fs := flag.NewFlagSet("issue", flag.ContinueOnError)
	typ := fs.String("type", typeV21, "token family: v2.1, short-lived or stateless")
	lifetime := fs.String("lifetime", defaultLifetimeFlag, "lifetime of a v2.1 token, 1s to 720h (30 days); also accepts days, e.g. 7d")
	asJSON := fs.Bool("json", false, "print one JSON object")
	s := newSettings(e, fs, flagChannelID, flagSecretFile, flagKeyFile, flagKeyID, flagBaseURL)
	pos, err := parseFlags(e, fs, issueUsage, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("issue takes no arguments (got %d)", len(pos))
	}
	lifetimeSet := false
	fs.Visit(func(f *flag.Flag) { lifetimeSet = lifetimeSet || f.Name == "lifetime" })
	var n need
	switch *typ {
	case typeV21:
		n = needChannelID | needKey
	case typeShortLived:
		n = needChannelID | needSecret
	case typeStateless:
		n = needChannelID | needKeyOrSecret
	default:
		return usagef("--type must be %s, %s or %s", typeV21, typeShortLived, typeStateless)
	}
	life, err := parseLifetime(*lifetime)
	if err != nil {
		return err
	}
	if lifetimeSet && *typ != typeV21 {
		return usagef("--lifetime applies to v2.1 tokens only (%s tokens have a fixed lifetime)", *typ)
	}
	c, err := s.client(n)
	if err != nil {
		return err
	}
	var tok *oauth.Token
	switch *typ {
	case typeV21:
		tok, err = c.IssueToken(e.ctx, life)
	case typeShortLived:
		tok, err = c.IssueShortLivedToken(e.ctx)
	case typeStateless:
		tok, err = c.IssueStatelessToken(e.ctx)
	}
	if err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(e.stdout, issueResult{
			Type: *typ, AccessToken: tok.AccessToken, TokenType: tok.TokenType,
			ExpiresIn: seconds(tok.ExpiresIn), Expiry: rfc3339(tok.Expiry), KeyID: tok.KeyID,
		})
	}
	fmt.Fprintf(e.stdout, "Issued a %s channel access token.\n", *typ)
	fmt.Fprintf(e.stdout, "  access token: %s\n", tok.AccessToken)
	fmt.Fprintf(e.stdout, "  token type:   %s\n", tok.TokenType)
	if tok.KeyID != "" {
		fmt.Fprintf(e.stdout, "  key ID:       %s\n", tok.KeyID)
	}
	fmt.Fprintf(e.stdout, "  expires in:   %s (at %s)\n", humanDuration(tok.ExpiresIn), rfc3339(tok.Expiry))
	switch *typ {
	case typeV21:
		fmt.Fprintln(e.stdout, "It holds one of the channel's 30 v2.1 slots until it expires: keep it with its key ID and revoke it when done (linetoken revoke).")
	case typeShortLived:
		fmt.Fprintln(e.stdout, "The channel keeps at most 30 short-lived tokens: issuing a 31st silently revokes the oldest.")
	case typeStateless:
		fmt.Fprintln(e.stdout, "Stateless tokens cannot be revoked, and LINE has no endpoint that verifies them: this one is valid until it expires.")
	}
	return nil
}

// parseLifetime reads a Go duration, or a whole number of days ("7d").
func parseLifetime(v string) (time.Duration, error) {
	var d time.Duration
	if days, ok := strings.CutSuffix(v, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil {
			return 0, usagef("--lifetime: not a duration (use e.g. 1h, 24h or 7d)")
		}
		d = time.Duration(n) * 24 * time.Hour
	} else {
		var err error
		if d, err = time.ParseDuration(v); err != nil {
			return 0, usagef("--lifetime: not a duration (use e.g. 1h, 24h or 7d)")
		}
	}
	if d < time.Second || d > oauth.MaxTokenLifetime {
		return 0, usagef("--lifetime must be between 1s and 720h (30 days, LINE's maximum)")
	}
	return d, nil
}

// ---- verify ----

const verifyUsage = `Usage: linetoken verify [--type auto|v2.1|short-lived|long-lived] [--json] TOKEN

Asks LINE whether TOKEN is valid. TOKEN "-" reads it from stdin (safer: a
command line shows in shell history and ps). With --type auto (the default) a
JWS-shaped token (three base64url parts) is checked at the v2.1 endpoint
(/oauth2/v2.1/verify), any other at the short-/long-lived one
(/v2/oauth/verify). Needs no credentials. A token LINE refuses is exit code 1.

LINE has no endpoint that verifies a stateless token. It is JWS-shaped like a
v2.1 token (nothing documented tells the two apart), so it goes to the v2.1
endpoint, which does not vouch for it: a stateless token is valid for 15
minutes after it was issued.

--json prints {"type","client_id","scope","expires_in","expiry"}.`

// verifyResult is verify's --json output.
type verifyResult struct {
	Type      string `json:"type"`
	ClientID  string `json:"client_id"`
	Scope     string `json:"scope"`
	ExpiresIn int64  `json:"expires_in"` // seconds
	Expiry    string `json:"expiry"`     // RFC 3339
}

func runVerify(e *env, args []string) error {
	fs := flag.NewFlagSet("verify", flag.ContinueOnError)
	typ := fs.String("type", typeAuto, "endpoint: auto, v2.1, or short-lived/long-lived (one endpoint)")
	asJSON := fs.Bool("json", false, "print one JSON object")
	s := newSettings(e, fs, flagBaseURL)
	pos, err := parseFlags(e, fs, verifyUsage, args)
	if err != nil {
		return err
	}
	token, err := tokenArg(e, "verify", pos)
	if err != nil {
		return err
	}
	family, err := route(*typ, token)
	if err != nil {
		return err
	}
	c, err := s.client(0)
	if err != nil {
		return err
	}
	var info *oauth.TokenInfo
	if family == typeV21 {
		info, err = c.VerifyToken(e.ctx, token)
	} else {
		info, err = c.VerifyShortLivedToken(e.ctx, token)
	}
	if errors.Is(err, oauth.ErrInvalidToken) {
		return withHint(err, verifyHint(family, token))
	}
	if err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(e.stdout, verifyResult{
			Type: family, ClientID: info.ClientID, Scope: info.Scope,
			ExpiresIn: seconds(info.ExpiresIn), Expiry: rfc3339(info.Expiry),
		})
	}
	fmt.Fprintf(e.stdout, "Valid (%s endpoint).\n", family)
	fmt.Fprintf(e.stdout, "  channel ID: %s\n", info.ClientID)
	scope := info.Scope
	if scope == "" {
		scope = "(none reported)"
	}
	fmt.Fprintf(e.stdout, "  scope:      %s\n", scope)
	fmt.Fprintf(e.stdout, "  expires in: %s (at %s)\n", humanDuration(info.ExpiresIn), rfc3339(info.Expiry))
	return nil
}

// verifyHint says what LINE refusing token at family's endpoint can mean.
func verifyHint(family, token string) string {
	if family == typeV21 {
		h := "LINE's v2.1 endpoint refused the token: it is expired, revoked, unknown or malformed. " +
			"If it is a stateless token: LINE has no endpoint that verifies those (no --type helps); " +
			"it is valid for 15 minutes after it was issued"
		if !isJWS(token) {
			h += ". This token is not JWS-shaped, so it is no v2.1 or stateless token: try --type auto"
		}
		return h
	}
	h := "LINE's short-/long-lived endpoint refused the token: it is expired, revoked, unknown or malformed"
	if isJWS(token) {
		h += ". This token is JWS-shaped (v2.1 or stateless): try --type auto"
	}
	return h
}

// ---- revoke ----

const revokeUsage = `Usage: linetoken revoke [--type auto|v2.1|short-lived|long-lived] [--json] TOKEN

Revokes TOKEN ("-" reads it from stdin). Routing is verify's: a JWS-shaped
token goes to /oauth2/v2.1/revoke, which needs the channel ID and secret;
any other to /v2/oauth/revoke, which needs nothing. LINE answers success for
a token it does not know.

Stateless tokens cannot be revoked: each stays valid until it expires, 15
minutes after it was issued. One is JWS-shaped like a v2.1 token and nothing
documented tells the two apart, so it goes to /oauth2/v2.1/revoke, which
answers success and leaves it valid.

--json prints {"type","revoked":true}: "revoked" means LINE accepted the
request, which it also does for an unknown or a stateless token.`

func runRevoke(e *env, args []string) error {
	fs := flag.NewFlagSet("revoke", flag.ContinueOnError)
	typ := fs.String("type", typeAuto, "endpoint: auto, v2.1, or short-lived/long-lived (one endpoint)")
	asJSON := fs.Bool("json", false, "print one JSON object")
	s := newSettings(e, fs, flagChannelID, flagSecretFile, flagBaseURL)
	pos, err := parseFlags(e, fs, revokeUsage, args)
	if err != nil {
		return err
	}
	token, err := tokenArg(e, "revoke", pos)
	if err != nil {
		return err
	}
	family, err := route(*typ, token)
	if err != nil {
		return err
	}
	n := need(0)
	if family == typeV21 {
		n = needChannelID | needSecret
	}
	c, err := s.client(n)
	if err != nil {
		return err
	}
	if family == typeV21 {
		err = c.RevokeToken(e.ctx, token)
	} else {
		err = c.RevokeShortLivedToken(e.ctx, token)
	}
	if err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(e.stdout, struct {
			Type    string `json:"type"`
			Revoked bool   `json:"revoked"`
		}{family, true})
	}
	fmt.Fprintf(e.stdout, "Revoked (%s endpoint). LINE answers the same for a token it does not know.\n", family)
	if family == typeV21 {
		// LINE's tokens do not say whether they are v2.1 or stateless.
		fmt.Fprintln(e.stdout, "If this is a stateless token, it is NOT revoked: stateless tokens cannot be revoked and stay valid\n"+
			"until they expire, 15 minutes after issue (a stateless token is JWS-shaped like a v2.1 one).")
	}
	return nil
}

// ---- kids ----

const kidsUsage = `Usage: linetoken kids [--json] [settings flags]

Lists the key IDs of the channel's active v2.1 tokens: how many of its 30
slots are taken. Needs the channel ID, the private key and its key ID.

--json prints {"kids":[...]}.`

func runKids(e *env, args []string) error {
	fs := flag.NewFlagSet("kids", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "print one JSON object")
	s := newSettings(e, fs, flagChannelID, flagKeyFile, flagKeyID, flagBaseURL)
	pos, err := parseFlags(e, fs, kidsUsage, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("kids takes no arguments (got %d)", len(pos))
	}
	c, err := s.client(needChannelID | needKey)
	if err != nil {
		return err
	}
	kids, err := c.ValidKeyIDs(e.ctx)
	if err != nil {
		return err
	}
	if kids == nil {
		kids = []string{}
	}
	if *asJSON {
		return writeJSON(e.stdout, struct {
			Kids []string `json:"kids"`
		}{kids})
	}
	fmt.Fprintf(e.stdout, "%d of 30 v2.1 slots in use.\n", len(kids))
	for _, k := range kids {
		fmt.Fprintf(e.stdout, "  %s\n", k)
	}
	return nil
}

// ---- helpers ----

// tokenArg returns the one TOKEN argument, reading it from stdin for "-".
func tokenArg(e *env, cmd string, pos []string) (string, error) {
	if len(pos) != 1 {
		return "", usagef("%s takes one TOKEN argument (got %d); pass - to read the token from stdin", cmd, len(pos))
	}
	if pos[0] != "-" {
		return pos[0], nil
	}
	sc := bufio.NewScanner(io.LimitReader(e.stdin, maxTokenLine+1))
	sc.Buffer(make([]byte, 0, 4096), maxTokenLine)
	if !sc.Scan() {
		if err := sc.Err(); err != nil {
			return "", fmt.Errorf("reading the token from stdin: %w", err)
		}
		return "", usagef("no token on stdin")
	}
	t := strings.TrimSpace(sc.Text())
	if t == "" {
		return "", usagef("no token on stdin")
	}
	return t, nil
}

// route picks the endpoint family for a token: --type, or by its shape.
func route(typ, token string) (string, error) {
	switch typ {
	case typeAuto:
		if isJWS(token) {
			return typeV21, nil
		}
		return typeShortLived, nil
	case typeV21:
		return typeV21, nil
	case typeShortLived, typeLongLived:
		return typeShortLived, nil
	}
	return "", usagef("--type must be %s, %s, %s or %s", typeAuto, typeV21, typeShortLived, typeLongLived)
}

// isJWS reports whether token has a JWS's shape: three non-empty base64url
// parts joined by dots, as v2.1 (and stateless) tokens are.
func isJWS(token string) bool {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return false
	}
	for _, p := range parts {
		if p == "" || strings.IndexFunc(p, func(r rune) bool {
			return !(r == '-' || r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z')
		}) >= 0 {
			return false
		}
	}
	return true
}

func seconds(d time.Duration) int64 { return int64(d / time.Second) }

func rfc3339(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// humanDuration prints d in days past two days ("30 days", "400 days 5h0m0s (about 1 years)").
func humanDuration(d time.Duration) string {
	d = d.Round(time.Second)
	const day = 24 * time.Hour
	if d < 2*day {
		return d.String()
	}
	const year = 365 * day
	days, rest := d/day, d%day
	s := fmt.Sprintf("%d days", days)
	if rest != 0 {
		s += " " + rest.String()
	}
	if d >= year {
		s += fmt.Sprintf(" (about %d years)", d/year)
	}
	return s
}
