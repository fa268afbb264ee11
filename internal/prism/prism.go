//go:build unix

// Package prism starts Stoplight Prism, the independent OpenAPI mock that
// validates every request against LINE's upstream spec, for this module's
// tests. Prism and LINE's Node SDK are pinned in contract/package.json and
// installed by `cd contract && SCARF_ANALYTICS=false npm ci`.
//
// Without Node, the npm packages or the spec a test skips, unless CI=true,
// when it fails: in CI a missing prerequisite must not turn a contract
// test into a silent pass. It is internal and imported by _test.go files
// only.
package prism

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/linetoken/linetoken/internal/testkit"
	"github.com/linetoken/linetoken/internal/upstream"
)

const (
	// InstallHint says how to install what the tests need.
	InstallHint = "install Node.js and run `cd contract && SCARF_ANALYTICS=false npm ci` from the repo root"
	// startTimeout bounds Prism's start: it parses a large spec, slowly
	// on a loaded machine.
	startTimeout = 60 * time.Second
	// stopGrace is how long Prism gets to exit after SIGTERM before SIGKILL.
	stopGrace = 5 * time.Second
	// probeInterval is the wait between two probes of a starting Prism.
	probeInterval = 200 * time.Millisecond
	// probeTimeout bounds one probe.
	probeTimeout = time.Second
	// prismBin is Prism's script, from the repository root.
	prismBin = "contract/node_modules/.bin/prism"
)

// Unavailable skips tb, or fails it when CI=true, saying what is missing.
func Unavailable(tb testing.TB, format string, args ...any) {
	tb.Helper()
	msg := fmt.Sprintf(format, args...)
	if upstream.RunningInCI() {
		tb.Fatalf("contract test cannot run (CI=true, so this is a failure): %s", msg)
	}
	tb.Skipf("contract test skipped: %s (set CI=true to make this a failure)", msg)
}

// Node is the path of node, or [Unavailable] when it is not on PATH.
func Node(tb testing.TB) string {
	tb.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		Unavailable(tb, "node is not on PATH; %s", InstallHint)
	}
	return node
}

// Package is the absolute directory of the npm package name installed in
// contract/node_modules (root: the repository root as seen from the
// test's package), or [Unavailable] when it is not installed.
func Package(tb testing.TB, root, name string) string {
	tb.Helper()
	dir, err := filepath.Abs(filepath.Join(root, "contract", "node_modules", filepath.FromSlash(name)))
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "package.json")); err != nil {
		Unavailable(tb, "%s is not installed at %s; %s", name, dir, InstallHint)
	}
	return dir
}

// Start starts Prism mocking LINE's upstream spec file (an [upstream.File]
// name) on a free loopback port, waits until it answers and returns its
// base URL. root is the repository root as seen from the test's package.
// Prism runs with --errors: a request that breaks the spec gets a 4xx
// (422, or 401 without credentials) and an sl-violations header. Prism is
// stopped, and its output shown if the test failed, in tb.Cleanup.
func Start(tb testing.TB, root, spec string) string {
	tb.Helper()
	node := Node(tb)
	bin, err := filepath.Abs(filepath.Join(root, filepath.FromSlash(prismBin)))
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := os.Stat(bin); err != nil {
		Unavailable(tb, "Prism is not installed at %s; %s", bin, InstallHint)
	}
	specPath, err := filepath.Abs(upstream.File(root, spec))
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := os.Stat(specPath); err != nil {
		Unavailable(tb, "LINE's upstream spec is not at %s: set $%s to a line/line-openapi checkout (default %s beside the repo)", specPath, upstream.DirEnv, upstream.DefaultDir)
	}

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	l.Close()

	out := new(testkit.SyncBuffer)
	// Run the script with the node found above rather than through its
	// "#!/usr/bin/env node" line.
	cmd := exec.Command(node, bin, "mock", "-h", "127.0.0.1", "-p", port, "--errors", specPath)
	cmd.Env = append(os.Environ(), "SCARF_ANALYTICS=false", "NO_COLOR=1", "FORCE_COLOR=0")
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		tb.Fatalf("starting Prism: %v", err)
	}
	exited := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(exited) }()

	// Cleanups run last-registered first: stop Prism, then show its output.
	tb.Cleanup(func() {
		if tb.Failed() {
			tb.Logf("Prism (%s) output:\n%s", strings.Join(cmd.Args, " "), out)
		}
	})
	tb.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(stopGrace):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
	})

	base := "http://127.0.0.1:" + port
	probe := &http.Client{Timeout: probeTimeout}
	deadline := time.Now().Add(startTimeout)
	for {
		// Any HTTP answer (a 404 for "/") means Prism is serving.
		resp, err := probe.Get(base + "/")
		if err == nil {
			resp.Body.Close()
			return base
		}
		select {
		case <-exited:
			tb.Fatalf("Prism exited before serving: %v", waitErr)
		case <-time.After(probeInterval):
		}
		if time.Now().After(deadline) {
			tb.Fatalf("Prism did not answer on %s within %v: %v", base, startTimeout, err)
		}
	}
}
