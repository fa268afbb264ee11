// Command pushmessage sends one text message to a LINE user through
// line-bot-sdk-go's Messaging API client, with the channel access token
// supplied by linetoken instead of a token pasted into the code.
//
// The SDK insists on a token at construction and sets its own
// "Authorization: Bearer" header on every request; oauth.Transport replaces
// that header with a token from an oauth.TokenSource (v2.1 when an
// assertion key is configured, else short-lived), refreshes it before it
// expires, and on a 401 fetches a new one and sends the request again.
//
// Usage:
//
//	LINE_CHANNEL_ID=... LINE_CHANNEL_SECRET=... \
//	LINE_PRIVATE_KEY_FILE=key.jwk LINE_KEY_ID=... \
//	go run ./pushmessage -to Uxxxxxxxx -text 'Hello'
//
// The channel's credentials are read by oauth.ConfigFromEnv (LINE_CHANNEL_ID,
// LINE_CHANNEL_SECRET, LINE_PRIVATE_KEY or LINE_PRIVATE_KEY_FILE,
// LINE_KEY_ID, LINE_API_BASE_URL). The recipient and the Messaging API
// endpoint come from -to/LINE_TO and -endpoint/LINE_MESSAGING_BASE_URL.
package main

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"time"

	"github.com/line/line-bot-sdk-go/v8/linebot/messaging_api"
	"github.com/linetoken/linetoken/oauth"
)

// Environment variables of this program (the channel's own are oauth's).
const (
	envTo           = "LINE_TO"
	envMessagingAPI = "LINE_MESSAGING_BASE_URL"
)

// placeholderToken satisfies NewMessagingApiAPI, which refuses an empty
// token. It is never sent: oauth.Transport overwrites the header.
const placeholderToken = "placeholder-token-replaced-by-linetoken"

// defaultMessagingAPI is LINE's Messaging API host.
const defaultMessagingAPI = "https://api.line.me"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	code := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run is the whole program. getenv serves this program's own variables
// (LINE_TO, LINE_MESSAGING_BASE_URL); the channel's credentials are read
// by oauth.ConfigFromEnv from the process environment.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("pushmessage", flag.ContinueOnError)
	fs.SetOutput(stderr)
	to := fs.String("to", getenv(envTo), "user, group or room ID to push to; env "+envTo)
	text := fs.String("text", "Hello from linetoken!", "text of the message")
	endpoint := fs.String("endpoint", orDefault(getenv(envMessagingAPI), defaultMessagingAPI),
		"Messaging API base URL; env "+envMessagingAPI)
	timeout := fs.Duration("timeout", 30*time.Second, "time allowed for the whole push, token included")
	verbose := fs.Bool("v", false, "log token refreshes")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "pushmessage: unexpected arguments %q\n", fs.Args())
		return 2
	}
	if *to == "" {
		fmt.Fprintf(stderr, "pushmessage: no recipient: pass -to or set %s\n", envTo)
		return 2
	}

	cfg, err := oauth.ConfigFromEnv()
	if err != nil {
		fmt.Fprintln(stderr, "pushmessage:", err)
		return 2
	}
	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelInfo
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	cfg.Logger = logger

	client, err := oauth.NewClient(cfg)
	if err != nil {
		fmt.Fprintln(stderr, "pushmessage:", err)
		return 2
	}
	// v2.1 when a key is configured (the recommended kind), else
	// short-lived from the channel ID and secret.
	opts := oauth.TokenSourceOptions{Kind: oauth.KindShortLived, Logger: logger}
	if cfg.Key != nil {
		opts.Kind = oauth.KindV21
	}
	ts, err := oauth.NewTokenSource(client, opts)
	if err != nil {
		fmt.Fprintln(stderr, "pushmessage:", err)
		return 2
	}
	// The source keeps its tokens in memory, so nobody else can use them:
	// Close revokes them, freeing the channel's token slot.
	defer func() {
		if err := ts.Close(); err != nil {
			fmt.Fprintln(stderr, "pushmessage: revoking the token:", err)
		}
	}()

	bot, err := messaging_api.NewMessagingApiAPI(placeholderToken,
		messaging_api.WithHTTPClient(&http.Client{
			Transport: &oauth.Transport{Source: ts},
			Timeout:   *timeout,
		}),
		messaging_api.WithEndpoint(*endpoint),
	)
	if err != nil {
		fmt.Fprintln(stderr, "pushmessage:", err)
		return 2
	}

	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	// The retry key makes the push idempotent: LINE answers 409 to a second
	// request with the same key instead of sending the message twice.
	resp, err := bot.WithContext(ctx).PushMessage(&messaging_api.PushMessageRequest{
		To: *to,
		// TextMessage marshals its "type" only through a pointer.
		Messages: []messaging_api.MessageInterface{&messaging_api.TextMessage{Text: *text}},
	}, retryKey())
	if err != nil {
		fmt.Fprintln(stderr, "pushmessage: push failed:", err)
		return 1
	}
	for _, m := range resp.SentMessages {
		fmt.Fprintf(stdout, "sent message %s to %s\n", m.Id, *to)
	}
	return 0
}

// retryKey returns a random (version 4) UUID for X-Line-Retry-Key.
func retryKey() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
