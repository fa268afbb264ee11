// Package testredis runs a real redis-server for tests (the Redis store's
// and the leak audit's). It is internal and imported by _test.go files
// only.
package testredis

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

const (
	// startTimeout bounds the wait for a new redis-server to answer PING
	// (it starts in milliseconds).
	startTimeout = 10 * time.Second
	// startAttempts: a free port found by listening on :0 can be taken by
	// someone else before redis-server binds it; try a new one.
	startAttempts = 5
)

// Server is a real redis-server on a loopback port, started by the test
// and killed in its Cleanup. It keeps nothing on disk.
type Server struct {
	t    testing.TB
	bin  string
	dir  string
	port int
	addr string

	mu   sync.Mutex // guards the fields below
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd exits
	out  *bytes.Buffer // cmd's output, read after done
}

// Start starts a redis-server for t. Outside CI a missing binary skips the
// test; under CI=true it fails it.
func Start(t testing.TB) *Server {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		msg := t.Name() + " needs redis-server on PATH; enable it with `apt-get install redis-server` (Debian/Ubuntu) or `brew install redis`: " + err.Error()
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	r := &Server{t: t, bin: bin, dir: t.TempDir()}
	t.Cleanup(r.Kill)
	var last error
	for range startAttempts {
		if r.port, last = FreePort(); last != nil {
			continue
		}
		r.addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(r.port))
		if last = r.start(); last == nil {
			return r
		}
	}
	t.Fatalf("starting redis-server: %v", last)
	return nil
}

// Addr is the server's host:port.
func (r *Server) Addr() string { return r.addr }

func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// start runs redis-server on r.port and waits until it answers PING.
func (r *Server) start() error {
	cmd := exec.Command(r.bin, "--port", strconv.Itoa(r.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", r.dir, "--daemonize", "no", "--logfile", "")
	out := new(bytes.Buffer)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	r.mu.Lock()
	r.cmd, r.done, r.out = cmd, done, out
	r.mu.Unlock()

	deadline := time.Now().Add(startTimeout)
	for time.Now().Before(deadline) {
		select {
		case <-done:
			return fmt.Errorf("redis-server on port %d exited: %s", r.port, out.String())
		default:
		}
		if ping(r.addr) == nil {
			return nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	r.Kill()
	return fmt.Errorf("redis-server on port %d did not answer PING within %v: %s", r.port, startTimeout, out.String())
}

// Restart starts redis-server again on the same port, empty.
func (r *Server) Restart() {
	r.t.Helper()
	if err := r.start(); err != nil {
		r.t.Fatalf("restarting redis-server: %v", err)
	}
}

// Kill kills redis-server (SIGKILL: no shutdown, as a crash) and waits for
// it to exit. It is safe to call when it is not running.
func (r *Server) Kill() {
	r.mu.Lock()
	cmd, done := r.cmd, r.done
	r.cmd = nil
	r.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	<-done
}

// ping sends PING over a fresh connection and expects +PONG.
func ping(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if line != "+PONG\r\n" {
		return fmt.Errorf("PING answered %q", line)
	}
	return nil
}

// Client returns a new go-redis client of r, closed in t's Cleanup.
func (r *Server) Client(t testing.TB) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: r.addr})
	t.Cleanup(func() { _ = c.Close() })
	return c
}
