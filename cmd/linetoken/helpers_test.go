package main

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/linetoken/linetoken/internal/testkit"
	"github.com/linetoken/linetoken/oauth"
	"github.com/linetoken/linetoken/oauth/oauthtest"
)

// testTimeout bounds one command in a test.
const testTimeout = 30 * time.Second

type result struct {
	code           int
	stdout, stderr string
}

func (r result) String() string {
	return fmt.Sprintf("exit %d", r.code) + "\n--- stdout:\n" + r.stdout + "--- stderr:\n" + r.stderr
}

// cli runs the command with env as its whole environment.
func cli(t *testing.T, env map[string]string, stdin string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	var out, errb bytes.Buffer
	code := runEnv(ctx, args, func(k string) string { return env[k] }, strings.NewReader(stdin), &out, &errb)
	return result{code, out.String(), errb.String()}
}

// mustCode fails t unless r exited with want.
func mustCode(t *testing.T, r result, want int) {
	t.Helper()
	if r.code != want {
		t.Fatalf("want exit %d, got %s", want, r)
	}
}

func decodeJSON[T any](t *testing.T, r result) T {
	t.Helper()
	var v T
	dec := json.NewDecoder(strings.NewReader(r.stdout))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("stdout is not the JSON expected: %v\n%s", err, r)
	}
	if dec.More() {
		t.Fatalf("stdout holds more than one JSON value:\n%s", r)
	}
	return v
}

// fixture is a fake LINE with one channel and its settings as environment.
type fixture struct {
	srv     *oauthtest.Server
	ch      oauthtest.Channel
	keyFile string
	env     map[string]string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	srv := oauthtest.NewServer()
	t.Cleanup(srv.Close)
	ch := srv.NewChannel(t)
	keyFile := filepath.Join(t.TempDir(), "key.jwk")
	if err := os.WriteFile(keyFile, ch.PrivateJWK, 0o600); err != nil {
		t.Fatal(err)
	}
	return &fixture{srv: srv, ch: ch, keyFile: keyFile, env: map[string]string{
		oauth.EnvBaseURL:        srv.URL(),
		oauth.EnvChannelID:      ch.ID,
		oauth.EnvChannelSecret:  ch.Secret,
		oauth.EnvPrivateKeyFile: keyFile,
		oauth.EnvKeyID:          ch.KeyID,
	}}
}

// without returns a copy of env without the named variables.
func without(env map[string]string, names ...string) map[string]string {
	c := with(env)
	for _, n := range names {
		delete(c, n)
	}
	return c
}

// with returns a copy of env with kv (name, value, ...) set.
func with(env map[string]string, kv ...string) map[string]string {
	c := make(map[string]string, len(env))
	for k, v := range env {
		c[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		c[kv[i]] = kv[i+1]
	}
	return c
}

// issueJSON issues a token through the CLI and returns its JSON output.
func (f *fixture) issueJSON(t *testing.T, typ string, extra ...string) issueResult {
	t.Helper()
	r := cli(t, f.env, "", append([]string{"issue", "--type", typ, "--json"}, extra...)...)
	mustCode(t, r, exitOK)
	return decodeJSON[issueResult](t, r)
}

// closedPortURL is a loopback URL nothing listens on.
func closedPortURL(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr
}

// pemOf encodes an assertion key's private half as PKCS#1 PEM.
func pemOf(k *oauth.AssertionKey) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k.PrivateKey)})
}

// syncBuffer is a bytes.Buffer safe for a writer and a reader goroutine.
type syncBuffer = testkit.SyncBuffer

// paths lists the paths of the fake's logged requests.
func paths(srv *oauthtest.Server) []string {
	var p []string
	for _, r := range srv.Requests() {
		p = append(p, r.Path)
	}
	return p
}

// privateMembers returns the private members of a private JWK (d, p, q, dp,
// dq, qi): what must never be printed. It fails t if any is missing.
func privateMembers(t testing.TB, jwk []byte) map[string]string {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(jwk, &m); err != nil {
		t.Fatalf("private JWK: %v", err)
	}
	out := map[string]string{}
	for _, name := range []string{"d", "p", "q", "dp", "dq", "qi"} {
		v, _ := m[name].(string)
		if len(v) < 40 {
			t.Fatalf("private JWK member %s missing or short", name)
		}
		out["JWK "+name] = v
	}
	return out
}

// fakeServerRun is one fake-server invocation run until it was ready.
type fakeServerRun struct {
	result
	ready bool   // it printed its channel before it was stopped
	key   []byte // the throwaway private key file's contents, read while it ran
}

// runFakeServerReady runs fake-server with args and env, waits for it to
// print its channel (the JSON object with --json, else the text up to
// "Ctrl-C"), reads the key file it names, then cancels its context and
// waits for it to stop. A run that fails before it is ready just returns.
func runFakeServerReady(t *testing.T, env map[string]string, args ...string) fakeServerRun {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	var out, errb syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- runEnv(ctx, args, func(k string) string { return env[k] }, strings.NewReader(""), &out, &errb)
	}()
	var run fakeServerRun
	for !run.ready {
		select {
		case code := <-done:
			run.result = result{code, out.String(), errb.String()}
			return run
		case <-time.After(5 * time.Millisecond):
		}
		printed := out.String()
		var info fakeServerInfo
		switch {
		case json.Unmarshal([]byte(printed), &info) == nil:
			run.ready = true
		case strings.Contains(printed, "Ctrl-C"):
			run.ready = true
			for _, line := range strings.Split(printed, "\n") {
				if v, ok := strings.CutPrefix(line, "export "+oauth.EnvPrivateKeyFile+"="); ok {
					info.PrivateKeyFile = strings.Trim(v, "'")
				}
			}
		}
		if run.ready {
			key, err := os.ReadFile(info.PrivateKeyFile)
			if err != nil {
				t.Errorf("fake-server's key file: %v", err)
			}
			run.key = key
		}
	}
	cancel()
	select {
	case code := <-done:
		run.result = result{code, out.String(), errb.String()}
	case <-time.After(testTimeout):
		t.Fatal("fake-server did not stop when cancelled")
	}
	return run
}
