package agent_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/linetoken/linetoken/internal/agent"
	"github.com/linetoken/linetoken/internal/upstream"
	"github.com/linetoken/linetoken/oauth"
	"github.com/linetoken/linetoken/oauth/oauthtest"
)

// exampleBotTimeout bounds one run of an example bot: an interpreter's
// start on a loaded machine, a few local requests and, at worst, the
// bot's own 10 s wait for the sink file.
const exampleBotTimeout = time.Minute

// exampleCallerKey is the caller key the example bots are given.
const exampleCallerKey = "example-bot-caller-key-0123456789"

// TestExampleBots runs README's bots in other languages,
// examples/agent/bot.py (python3, standard library) and bot.mjs (node,
// fetch), against an agent on a loopback port with a caller key and a
// sink file, and an oauthtest fake as LINE:
//   - a bot gets the token from the HTTP API and the sink, the two agree,
//     and the fake's verify (asked by the bot) accepts it;
//   - after the token is revoked at the fake, the bot's verify is refused,
//     it reports the token to the agent (POST .../token/invalidate), and
//     its next GET and sink read give a new token the fake accepts: the
//     fake issued exactly one more token;
//   - without its caller key a bot fails with exit 1 naming
//     invalid_caller_key;
//   - no bot prints a token.
//
// Under CI=true a missing python3 or node fails the test.
func TestExampleBots(t *testing.T) {
	for _, b := range []struct{ name, interpreter, script string }{
		{"python", "python3", "bot.py"},
		{"node", "node", "bot.mjs"},
	} {
		t.Run(b.name, func(t *testing.T) {
			bin, err := exec.LookPath(b.interpreter)
			if err != nil {
				msg := b.script + " needs " + b.interpreter + " on PATH (.ci/run installs it): " + err.Error()
				if upstream.RunningInCI() {
					t.Fatal(msg)
				}
				t.Skip(msg)
			}
			script, err := filepath.Abs(filepath.Join("..", "..", "examples", "agent", b.script))
			if err != nil {
				t.Fatal(err)
			}
			e := startExampleAgent(t)
			run := func(t *testing.T, callerKey string) (int, string) {
				t.Helper()
				return e.runBot(t, bin, script, callerKey)
			}

			t.Run("agent and sink agree and LINE accepts", func(t *testing.T) {
				code, out := run(t, exampleCallerKey)
				if code != 0 || !strings.HasPrefix(out, b.script+": ok: channel "+e.ch.ID+" (v2.1, key_id ") ||
					!strings.Contains(out, "the HTTP API and the sink file hold the same token") {
					t.Fatalf("exit %d, stdout %q: want exit 0 and the ok line", code, out)
				}
				tok := e.sinkToken(t)
				if n := e.srv.IssueCount(oauthtest.KindV21); n != 1 {
					t.Errorf("the fake issued %d v2.1 tokens, want 1", n)
				}
				if e.botVerifies(tok, 200) != 1 {
					t.Errorf("the fake saw no accepted verify of the sink's token from %s", b.script)
				}
				e.noToken(t, out, tok)
			})

			t.Run("refused token reported and replaced", func(t *testing.T) {
				old := e.sinkToken(t)
				if err := e.srv.Client(t, e.ch.ID).RevokeToken(context.Background(), old); err != nil {
					t.Fatal(err)
				}
				code, out := run(t, exampleCallerKey)
				if code != 0 || !strings.Contains(out, "LINE had refused the previous one, which the agent replaced") {
					t.Fatalf("exit %d, stdout %q: want exit 0 and the replaced token reported", code, out)
				}
				tok := e.sinkToken(t)
				if tok == old {
					t.Fatal("the sink still holds the revoked token")
				}
				if _, ok := e.srv.Lookup(tok); !ok {
					t.Error("the fake does not know the sink's new token as valid")
				}
				if n := e.srv.IssueCount(oauthtest.KindV21); n != 2 {
					t.Errorf("the fake issued %d v2.1 tokens, want 2 (one replacement)", n)
				}
				if e.botVerifies(old, 400) != 1 || e.botVerifies(tok, 200) != 1 {
					t.Errorf("want one refused verify of the revoked token and one accepted of the new one from %s", b.script)
				}
				e.noToken(t, out, old, tok)
			})

			t.Run("no caller key", func(t *testing.T) {
				code, out := run(t, "")
				if code != 1 || !strings.HasPrefix(out, b.script+": FAIL: ") || !strings.Contains(out, "401 invalid_caller_key") {
					t.Fatalf("exit %d, stdout %q: want exit 1 naming invalid_caller_key", code, out)
				}
				e.noToken(t, out, e.sinkToken(t))
			})
		})
	}
}

// exampleAgent is an agent serving one v2.1 channel of a fake, with a
// caller key and a raw sink.
type exampleAgent struct {
	srv  *oauthtest.Server
	ch   oauthtest.Channel
	url  string
	sink string
}

func startExampleAgent(t *testing.T) *exampleAgent {
	t.Helper()
	srv := newFake(t)
	e := &exampleAgent{srv: srv, ch: srv.NewChannel(t)}
	e.sink = filepath.Join(t.TempDir(), e.ch.ID+".token")
	cfg := newConfig(t, srv, []agent.Channel{chanCfg(e.ch, oauth.KindV21, agent.Sink{Path: e.sink})}, func(c *agent.Config) {
		c.Callers = []agent.Caller{{Name: "example-bot", Key: exampleCallerKey}}
	})
	r := startAgent(t, srv, cfg)
	t.Cleanup(func() {
		if err := r.stop(); err != nil {
			t.Errorf("agent.Run: %v", err)
		}
	})
	e.url = r.base
	return e
}

// runBot runs script with the bot's environment (no proxy variables, no
// inherited LINE_ or LINETOKEN_ settings) and returns its exit code and
// stdout; anything on stderr fails t.
func (e *exampleAgent) runBot(t *testing.T, bin, script, callerKey string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), exampleBotTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, script)
	cmd.Env = append(botEnv(), "LINETOKEN_AGENT="+e.url, "LINE_CHANNEL_ID="+e.ch.ID,
		"LINETOKEN_SINK="+e.sink, "LINE_API_BASE_URL="+e.srv.URL())
	if callerKey != "" {
		cmd.Env = append(cmd.Env, "LINETOKEN_CALLER_KEY="+callerKey)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("running %s: %v", script, err)
	}
	if ctx.Err() != nil {
		t.Fatalf("%s did not finish within %v; stdout %q", script, exampleBotTimeout, stdout.String())
	}
	if stderr.Len() > 0 {
		t.Errorf("%s wrote to stderr: %q", script, stderr.String())
	}
	out := stdout.String()
	if strings.Count(out, "\n") != 1 || !strings.HasSuffix(out, "\n") {
		t.Errorf("%s printed %q: want exactly one line", script, out)
	}
	return cmd.ProcessState.ExitCode(), strings.TrimSuffix(out, "\n")
}

// sinkToken reads the agent's sink file (raw: the token alone).
func (e *exampleAgent) sinkToken(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(e.sink)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) == 0 {
		t.Fatal("the sink file is empty")
	}
	return string(b)
}

// botVerifies counts the v2.1 verify requests for tok the fake answered
// with status that came from a bot, not from the agent (whose verify
// carries its User-Agent).
func (e *exampleAgent) botVerifies(tok string, status int) int {
	n := 0
	for _, r := range e.srv.Requests() {
		if r.Method == http.MethodGet && r.Path == "/oauth2/v2.1/verify" && r.Query.Get("access_token") == tok &&
			r.Status == status && !strings.Contains(r.Header.Get("User-Agent"), "linetoken") {
			n++
		}
	}
	return n
}

// noToken fails t if out holds any of toks.
func (e *exampleAgent) noToken(t *testing.T, out string, toks ...string) {
	t.Helper()
	for _, tok := range toks {
		if strings.Contains(out, tok) {
			t.Errorf("the bot printed an access token (%d characters of output)", len(out))
		}
	}
}

// botEnv is this process's environment for an example bot, without the
// settings a bot reads (LINE_*, LINETOKEN_*) or proxy variables, which
// would send its loopback requests elsewhere.
func botEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		up := strings.ToUpper(name)
		if strings.HasSuffix(up, "_PROXY") || strings.HasPrefix(up, "LINE_") || strings.HasPrefix(up, "LINETOKEN_") {
			continue
		}
		env = append(env, kv)
	}
	return env
}
