package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"

	"github.com/linetoken/linetoken/internal/agent"
	"github.com/linetoken/linetoken/oauth"
	"github.com/linetoken/linetoken/oauth/oauthtest"
)

// Exit codes, documented in the usage text and README.md.
const (
	exitOK      = 0 // success
	exitAPI     = 1 // LINE refused (an *oauth.APIError) or answered nonsense (ErrMalformedResponse)
	exitUsage   = 2 // bad flags or arguments, missing or unusable settings
	exitFailure = 3 // network or local failure (connection refused, timeout, a file not written)
)

// env is one invocation: its streams and how it reads the environment.
type env struct {
	ctx    context.Context
	getenv func(string) string
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	// generateKey makes keygen's key and createChannel the demo's and
	// fake-server's channel: oauth.GenerateAssertionKey and oauthtest's
	// Server.CreateChannel, which FuzzArgs replaces with a ready key (an
	// RSA-2048 key takes tens of milliseconds, too long for every input).
	generateKey   func() (privateJWK, publicJWK []byte, err error)
	createChannel func(*oauthtest.Server) (oauthtest.Channel, error)
}

// newEnv is the environment of a run: the process's, or a test's.
func newEnv(ctx context.Context, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) *env {
	return &env{ctx: ctx, getenv: getenv, stdin: stdin, stdout: stdout, stderr: stderr,
		generateKey: oauth.GenerateAssertionKey, createChannel: (*oauthtest.Server).CreateChannel}
}

// command is a subcommand.
type command struct {
	name    string
	summary string
	run     func(e *env, args []string) error
}

func commands() []command {
	return []command{
		{"keygen", "make an assertion signing key pair (private JWK to a 0600 file, public JWK printed)", runKeygen},
		{"issue", "issue a channel access token (--type v2.1, short-lived or stateless)", runIssue},
		{"verify", "check a channel access token with LINE", runVerify},
		{"revoke", "revoke a channel access token", runRevoke},
		{"kids", "list the key IDs of the channel's active v2.1 tokens", runKids},
		{"demo", "walk the whole token lifecycle against an in-process fake (offline)", runDemo},
		{"fake-server", "run the fake LINE token service for a bot's local tests", runFakeServer},
		{"agent", "keep tokens fresh for bots in any language (HTTP API, sink files; try --dev)", runAgent},
	}
}

const usageHead = `linetoken: LINE channel access tokens from the command line.

Usage:
  linetoken <command> [flags] [arguments]
  linetoken help [command]

Commands:
`

const usageTail = `
Settings (a flag wins over the environment):
  LINE_CHANNEL_ID        --channel-id            the channel's numeric ID
  LINE_CHANNEL_SECRET    --channel-secret-file   the channel secret (never a flag value:
                                                 command lines leak into shell history and ps)
  LINE_PRIVATE_KEY       (environment only)      private assertion key, PEM or JWK text
  LINE_PRIVATE_KEY_FILE  --private-key-file      file holding the private key (PEM or JWK)
  LINE_KEY_ID            --key-id                the kid the LINE Developers Console returned
  LINE_API_BASE_URL      --base-url              API host (default https://api.line.me)

Output is for people; --json prints one JSON object on stdout for scripts.
Errors always go to stderr as text.

Exit codes:
  0  success
  1  LINE refused the request (API error) or answered something unreadable
  2  usage: bad flags or arguments, a setting missing or unusable
  3  network or local failure (connection refused, timeout, a file not written)

Run "linetoken <command> -h" for a command's flags.
`

func printUsage(w io.Writer) {
	io.WriteString(w, usageHead)
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-12s %s\n", c.name, c.summary)
	}
	io.WriteString(w, usageTail)
}

// runEnv is run with the environment read through getenv, so tests need
// not touch the process environment.
func runEnv(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) int {
	return newEnv(ctx, getenv, stdin, stdout, stderr).run(args)
}

// run runs the command args name with the rest of args, and returns the
// exit code.
func (e *env) run(args []string) int {
	stdout, stderr := e.stdout, e.stderr
	if len(args) == 0 {
		printUsage(stderr)
		return exitUsage
	}
	name, rest := args[0], args[1:]
	switch name {
	case "help", "-h", "-help", "--help":
		if name == "help" && len(rest) > 0 {
			// "linetoken help issue" is "linetoken issue -h".
			name, rest = rest[0], []string{"-h"}
			break
		}
		printUsage(stdout)
		return exitOK
	}
	for _, c := range commands() {
		if c.name == name {
			err := c.run(e, rest)
			return report(e, c.name, err)
		}
	}
	fmt.Fprintf(stderr, "linetoken: unknown command %s\n\n", strconv.Quote(clip(name)))
	printUsage(stderr)
	return exitUsage
}

// report prints err (if any) on stderr and returns the exit code for it.
func report(e *env, cmd string, err error) int {
	if err == nil || errors.Is(err, errHelpShown) {
		return exitOK
	}
	fmt.Fprintf(e.stderr, "linetoken %s: %v\n", cmd, err)
	if h := hint(err); h != "" {
		fmt.Fprintf(e.stderr, "hint: %s\n", h)
	}
	return exitCode(err)
}

// exitCode classifies err.
func exitCode(err error) int {
	var ae *oauth.APIError
	var ue *usageError
	var ce *agent.ConfigError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ae), errors.Is(err, oauth.ErrMalformedResponse):
		return exitAPI
	case errors.As(err, &ue), errors.Is(err, oauth.ErrInvalidInput), errors.As(err, &ce):
		return exitUsage
	}
	return exitFailure
}

// hint suggests what to do about the failures LINE documents, and about
// not reaching LINE at all.
func hint(err error) string {
	var he *hintedError
	var ue *url.Error
	switch {
	case errors.As(err, &he):
		return he.hint
	case errors.Is(err, oauth.ErrTokenLimitReached):
		return "the channel has 30 active v2.1 tokens: revoke one (linetoken revoke) or wait for one to expire; linetoken kids lists their key IDs"
	case errors.Is(err, oauth.ErrKeyNotRegistered):
		return "LINE knows no key with this key ID for the channel: check LINE_KEY_ID (--key-id) against the LINE Developers Console"
	case errors.Is(err, oauth.ErrInvalidCredentials):
		return "check LINE_CHANNEL_ID and LINE_CHANNEL_SECRET, or the private key and LINE_KEY_ID"
	case errors.Is(err, oauth.ErrRateLimited):
		return "LINE is rate limiting the channel: wait, and reuse tokens instead of issuing many"
	case errors.Is(err, oauth.ErrInvalidToken):
		return "the token is expired, revoked, unknown or malformed"
	case errors.As(err, &ue) && !errors.Is(err, context.Canceled):
		return networkHint
	}
	return ""
}

// networkHint is the hint for a request that never got an answer
// (connection refused, no such host, a timeout, a proxy failure): the
// settings that decide where requests go. It quotes none of their values.
const networkHint = "LINE's API was not reached: check " + oauth.EnvBaseURL + " or --" + flagBaseURL +
	" (unset means " + oauth.DefaultBaseURL + "), and if this machine needs a proxy, HTTPS_PROXY" +
	" (HTTP_PROXY for an http:// base URL) and NO_PROXY"

// hintedError is an error with a hint that only the command knows (which
// endpoint it asked, what the token looked like); it wins over hint's own.
type hintedError struct {
	err  error
	hint string
}

func (e *hintedError) Error() string { return e.err.Error() }
func (e *hintedError) Unwrap() error { return e.err }

// withHint attaches h to err for report.
func withHint(err error, h string) error { return &hintedError{err: err, hint: h} }

// usageError is a mistake in the invocation or the settings: exit code 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// errHelpShown: -h printed the command's usage; exit 0.
var errHelpShown = errors.New("help shown")

// maxEchoLen caps what of an unrecognised argument is quoted back: a token
// or secret pasted in the wrong place must not be printed.
const maxEchoLen = 24

// clip returns s for an error message when it is short and looks like a
// word; anything else (a pasted secret, say) is described, not shown.
func clip(s string) string {
	word := len(s) <= maxEchoLen && strings.IndexFunc(s, func(r rune) bool {
		return !(r == '-' || r == '_' || r == '.' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z')
	}) < 0
	if word {
		return s
	}
	return fmt.Sprintf("<%d characters, not shown>", len(s))
}

// flagError rewrites a flag package error so that it quotes none of the
// arguments that clip would not show (the package echoes values and
// misspelt flags, raw or %q-quoted).
func flagError(err error, args []string) string {
	msg := err.Error()
	for _, a := range args {
		parts := []string{a, strings.TrimLeft(a, "-")}
		if name, value, ok := strings.Cut(a, "="); ok {
			parts = append(parts, name, strings.TrimLeft(name, "-"), value)
		}
		for _, p := range parts {
			if p == "" || clip(p) == p {
				continue
			}
			msg = strings.ReplaceAll(msg, strconv.Quote(p), strconv.Quote(clip(p)))
			msg = strings.ReplaceAll(msg, p, clip(p))
		}
	}
	return msg
}

// refusedFlag names the secrets the command line must not carry, with where to
// put them instead. They are refused before flag parsing so that no error
// message quotes their value.
func refusedFlag(name string) (where string, refused bool) {
	switch name {
	case "channel-secret":
		return "set LINE_CHANNEL_SECRET or pass --channel-secret-file", true
	case "private-key":
		return "set LINE_PRIVATE_KEY or LINE_PRIVATE_KEY_FILE, or pass --private-key-file", true
	case "access-token":
		return `pass the token as the argument, or "-" to read it from stdin`, true
	}
	return "", false
}

// parseFlags parses args with fs, allowing flags after positional
// arguments ("verify TOKEN --json"), and returns the positional arguments.
// -h prints the usage on stdout and returns errHelpShown.
func parseFlags(e *env, fs *flag.FlagSet, usage string, args []string) ([]string, error) {
	for _, a := range args {
		if a == "--" {
			break
		}
		name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if strings.HasPrefix(a, "-") {
			if where, ok := refusedFlag(name); ok {
				return nil, usagef("--%s is not accepted: a secret on the command line leaks into shell history and ps; %s", name, where)
			}
		}
	}
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				fmt.Fprintf(e.stdout, "%s\n\nFlags:\n", usage)
				fs.SetOutput(e.stdout)
				fs.PrintDefaults()
				return nil, errHelpShown
			}
			return nil, usagef("%s (see linetoken %s -h)", flagError(err, args), fs.Name())
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		// fs.Parse stops at the first non-flag; a "--" before it is gone
		// from rest, so everything left is positional only if it was there.
		if consumedDoubleDash(args, rest) {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// consumedDoubleDash reports whether fs.Parse stopped at a "--" in args.
func consumedDoubleDash(args, rest []string) bool {
	i := len(args) - len(rest) - 1
	return i >= 0 && args[i] == "--"
}

// writeJSON prints v as one JSON object on stdout.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}
