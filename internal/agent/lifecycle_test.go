package agent_test

import (
	"context"
	"errors"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/linetoken/linetoken/internal/agent"
	"github.com/linetoken/linetoken/internal/testkit"
	"github.com/linetoken/linetoken/oauth"
	"github.com/linetoken/linetoken/oauth/oauthtest"
)

// runErr waits for Run to return by itself.
func (r *running) runErr() error {
	r.t.Helper()
	select {
	case err := <-r.done:
		r.done <- err
		return err
	case <-time.After(waitLimit):
		r.t.Fatalf("Run did not return within %v\nlog:\n%s", waitLimit, r.logs)
		return nil
	}
}

func TestRunCredentialsRefused(t *testing.T) {
	srv := newFake(t)
	ch := srv.NewChannel(t)
	srv.UnregisterKey(ch.KeyID)
	r, _ := launch(t, srv, newConfig(t, srv, []agent.Channel{chanCfg(ch, oauth.KindV21)}))
	err := r.runErr()
	var ce *agent.CredentialsError
	if !errors.As(err, &ce) || !errors.Is(err, oauth.ErrKeyNotRegistered) || ce.Channel != ch.ID || ce.Kind != "v2.1" {
		t.Fatalf("Run: %v, want a *CredentialsError matching ErrKeyNotRegistered", err)
	}

	// A wrong channel secret for short-lived tokens: ErrInvalidCredentials.
	bad := chanCfg(ch, oauth.KindShortLived)
	bad.Secret = "0123456789abcdef0123456789abcdef"
	r, _ = launch(t, srv, newConfig(t, srv, []agent.Channel{bad}))
	err = r.runErr()
	if !errors.As(err, &ce) || !errors.Is(err, oauth.ErrInvalidCredentials) {
		t.Fatalf("Run: %v, want a *CredentialsError matching ErrInvalidCredentials", err)
	}
	for _, s := range []string{ch.Secret, string(bad.Secret)} {
		if strings.Contains(err.Error(), s) || strings.Contains(r.logs.String(), s) {
			t.Fatal("a channel secret shows in the error or the log")
		}
	}
}

func TestRunTransientFailureKeepsServing(t *testing.T) {
	srv := newFake(t)
	ch := srv.NewChannel(t)
	srv.DropNext(1000) // LINE unreachable at start: serve 503, never exit
	r := startAgent(t, srv, newConfig(t, srv, []agent.Channel{chanCfg(ch, oauth.KindV21)}))
	wantUnavailable(t, r, ch.ID, "line_unreachable")
	select {
	case err := <-r.done:
		t.Fatalf("Run returned on a transient failure: %v", err)
	default:
	}
	srv.ClearFaults()
	srv.Advance(6 * time.Minute) // past the source's backoff
	testkit.Eventually(t, waitLimit, "a token once LINE is back", func() bool {
		rep := r.v1("GET", "/v1/channels/"+ch.ID+"/token", "")
		return rep.status == 200
	})
}

func TestRunListenErrors(t *testing.T) {
	srv := newFake(t)
	ch := srv.NewChannel(t)
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	cfg := newConfig(t, srv, []agent.Channel{chanCfg(ch, oauth.KindV21)}, func(c *agent.Config) {
		c.Listen = taken.Addr().String()
	})
	_, err = launch(t, srv, cfg)
	var le *agent.ListenError
	if !errors.As(err, &le) || le.Addr != taken.Addr().String() {
		t.Fatalf("Run on a taken port: %v, want a *ListenError", err)
	}
	// A socket in a missing directory, after a TCP listener that bound:
	// that one is closed again.
	cfg = newConfig(t, srv, []agent.Channel{chanCfg(ch, oauth.KindV21)}, func(c *agent.Config) {
		c.Socket = filepath.Join(t.TempDir(), "missing", "agent.sock")
	})
	_, err = launch(t, srv, cfg)
	if !errors.As(err, &le) {
		t.Fatalf("Run with a socket in a missing directory: %v, want a *ListenError", err)
	}
	if srv.IssueCount(oauthtest.KindV21) != 0 {
		t.Error("an agent that could not listen issued a token")
	}
}

func TestSocketServesAndIsRemoved(t *testing.T) {
	srv := newFake(t)
	ch := srv.NewChannel(t)
	sock := filepath.Join(t.TempDir(), "agent.sock")
	cfg := newConfig(t, srv, []agent.Channel{chanCfg(ch, oauth.KindV21)}, func(c *agent.Config) {
		c.Listen, c.Socket = "", sock
	})
	r := startAgent(t, srv, cfg)
	if r.base != "http://"+sock {
		t.Fatalf("OnListen told %q", r.base)
	}
	r.base = "http://localhost"
	r.http.Transport = unixTransport(sock)
	tok := r.token(ch.ID, "")
	if _, ok := srv.Lookup(tok.AccessToken); !ok {
		t.Fatal("the socket served no valid token")
	}
	assertMode(t, sock, 0o660)
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
	assertGone(t, sock)
}

// unixTransport dials the unix socket at path whatever the URL's host.
func unixTransport(path string) *http.Transport {
	return &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", path)
	}}
}

// assertMode fails t unless path has the permission bits mode.
func assertMode(t *testing.T, path string, mode fs.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != mode {
		t.Errorf("%s: mode %v, want %v (%v)", filepath.Base(path), fi.Mode().Perm(), mode, err)
	}
}

// assertGone fails t unless path does not exist.
func assertGone(t *testing.T, path string) {
	t.Helper()
	if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("%s is left: %v", filepath.Base(path), err)
	}
}

// TestSocketGroup: socket_group makes the socket the group's, mode 0660,
// and it serves; a group that does not exist is a *ListenError, and no
// socket is left.
func TestSocketGroup(t *testing.T) {
	srv := newFake(t)
	ch := srv.NewChannel(t)
	name, gid := socketGroup(t)
	sock := filepath.Join(t.TempDir(), "agent.sock")
	cfg := newConfig(t, srv, []agent.Channel{chanCfg(ch, oauth.KindV21)}, func(c *agent.Config) {
		c.Listen, c.Socket, c.SocketGroup = "", sock, name
	})
	r := startAgent(t, srv, cfg)
	fi, err := os.Stat(sock)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Sys().(*syscall.Stat_t).Gid; got != gid {
		t.Errorf("the socket's gid is %d, want %d (group %s)", got, gid, name)
	}
	assertMode(t, sock, 0o660)
	r.base = "http://localhost"
	r.http.Transport = unixTransport(sock)
	if tok := r.token(ch.ID, ""); tok.AccessToken == "" {
		t.Error("the socket served an empty token")
	}
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
	assertGone(t, sock)

	sock = filepath.Join(t.TempDir(), "agent.sock")
	cfg = newConfig(t, srv, []agent.Channel{chanCfg(ch, oauth.KindV21)}, func(c *agent.Config) {
		c.Listen, c.Socket, c.SocketGroup = "", sock, "linetoken-no-such-group"
	})
	_, err = launch(t, srv, cfg)
	var le *agent.ListenError
	if !errors.As(err, &le) || le.Addr != sock || !strings.Contains(err.Error(), "socket_group") {
		t.Fatalf("Run with an unknown socket_group: %v, want a *ListenError naming socket_group", err)
	}
	assertGone(t, sock)
}

// socketGroup is a group the test process may give its socket, and its
// gid: the process's primary group, or, where one is at hand, a group the
// socket would not have by default (so that a chown left undone shows).
func socketGroup(t *testing.T) (string, uint32) {
	t.Helper()
	primary := os.Getgid()
	var cands []*user.Group
	if os.Geteuid() == 0 { // root may give a file any group
		for _, n := range []string{"daemon", "nogroup", "bin"} {
			if g, err := user.LookupGroup(n); err == nil {
				cands = append(cands, g)
			}
		}
	}
	if gids, err := os.Getgroups(); err == nil {
		for _, id := range gids {
			if g, err := user.LookupGroupId(strconv.Itoa(id)); err == nil {
				cands = append(cands, g)
			}
		}
	}
	for _, g := range cands {
		if g.Gid != strconv.Itoa(primary) {
			gid, _ := strconv.Atoi(g.Gid)
			return g.Name, uint32(gid)
		}
	}
	g, err := user.LookupGroupId(strconv.Itoa(primary))
	if err != nil {
		t.Fatalf("the process's primary group %d has no name: %v", primary, err)
	}
	return g.Name, uint32(primary)
}
