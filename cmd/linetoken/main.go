// Command linetoken issues, verifies and revokes LINE channel access tokens
// from the command line, makes assertion signing keys, runs the fake LINE
// token service for a bot's local tests and demonstrates the whole token
// lifecycle offline (linetoken demo). Run "linetoken help" for the details.
package main

import (
	"context"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// After the first signal, a second one kills the process at once (the
	// default), rather than waiting out a graceful shutdown.
	_ = context.AfterFunc(ctx, stop)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run is the whole command: it reads settings from the process environment
// and returns the exit code (see exitUsage and its siblings).
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	return runEnv(ctx, args, os.Getenv, stdin, stdout, stderr)
}
