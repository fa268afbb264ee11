package proxy_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/line/line-bot-sdk-go/v8/linebot/messaging_api"

	"github.com/linetoken/linetoken/internal/agent"
	"github.com/linetoken/linetoken/oauth"
	"github.com/linetoken/linetoken/oauth/oauthtest"
)

const (
	// waitLimit bounds the agent's start and stop: generous, for a loaded
	// 2-core machine.
	waitLimit = 30 * time.Second
	// contentSize is the content downloaded through the proxy: many times
	// any buffer on the way, so a lost or repeated chunk shows.
	contentSize = 16 << 20
	// pushTo is the push's recipient; the fake checks only that there is
	// one.
	pushTo = "U0123456789abcdef0123456789abcdef"
)

// startAgent runs `linetoken agent`'s core with the proxy on a free
// loopback port, serving one v2.1 channel of srv, and returns the proxy's
// URL and the channel. It stops when t ends.
func startAgent(t *testing.T, srv *oauthtest.Server) (string, oauthtest.Channel) {
	t.Helper()
	ch := srv.NewChannel(t)
	cfg := &agent.Config{
		Listen:  "127.0.0.1:0",
		BaseURL: srv.URL(),
		Channels: []agent.Channel{{
			ID: ch.ID, Kind: oauth.KindV21, Secret: agent.Secret(ch.Secret), Key: ch.Key,
		}},
		Proxy: &agent.ProxyConfig{Listen: "127.0.0.1:0", APIURL: srv.URL(), DataURL: srv.DataURL()},
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	proxy := make(chan string, 1)
	a, err := agent.New(cfg, agent.Options{
		Clock:         srv.Now,
		Logger:        slog.New(slog.DiscardHandler),
		OnProxyListen: func(addr string) { proxy <- "http://" + addr },
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("agent.Run: %v", err)
			}
		case <-time.After(waitLimit):
			t.Errorf("agent.Run did not return within %v of its context's end", waitLimit)
		}
	})
	select {
	case u := <-proxy:
		return u, ch
	case err := <-done:
		t.Fatalf("agent.Run ended before the proxy listened: %v", err)
	case <-time.After(waitLimit):
		t.Fatalf("the proxy did not listen within %v", waitLimit)
	}
	return "", oauthtest.Channel{}
}

// TestGoSDKThroughProxy: line-bot-sdk-go's messaging_api clients, their
// endpoint the agent's proxy (WithEndpoint, WithBlobEndpoint) and their
// channel access token "linetoken", against the oauthtest fake:
//   - PushMessage with the bot's own retry key answers 200 with the
//     sentMessages the fake recorded for the one send it accepted, on the
//     agent's channel, with the bot's key and body unchanged;
//   - PushMessage with no retry key (the SDK then sends an empty
//     X-Line-Retry-Key header) answers 200, and the fake's send carries a
//     UUID the proxy added;
//   - GetBotInfo answers the fake's bot of the channel;
//   - GetMessageContent (the blob client) of 16 MiB streams exactly the
//     fake's content pattern.
func TestGoSDKThroughProxy(t *testing.T) {
	srv := oauthtest.NewServer()
	t.Cleanup(srv.Close)
	proxyURL, ch := startAgent(t, srv)
	ctx, cancel := context.WithTimeout(t.Context(), waitLimit)
	defer cancel()

	bot, err := messaging_api.NewMessagingApiAPI("linetoken", messaging_api.WithEndpoint(proxyURL))
	if err != nil {
		t.Fatal(err)
	}
	blob, err := messaging_api.NewMessagingApiBlobAPI("linetoken", messaging_api.WithBlobEndpoint(proxyURL))
	if err != nil {
		t.Fatal(err)
	}
	// lastSend is the fake's latest accepted send, after checking that
	// want sends were accepted in all.
	lastSend := func(t *testing.T, want int) oauthtest.Send {
		t.Helper()
		sends := srv.Sends()
		if len(sends) != want {
			t.Fatalf("the fake accepted %d sends, want %d", len(sends), want)
		}
		s := sends[want-1]
		if s.ChannelID != ch.ID || s.Path != "/v2/bot/message/push" {
			t.Errorf("the fake's send: channel %s path %s, want channel %s and a push", s.ChannelID, s.Path, ch.ID)
		}
		return s
	}
	// checkPush compares the SDK's answer with the fake's send.
	checkPush := func(t *testing.T, res *http.Response, got *messaging_api.PushMessageResponse, s oauthtest.Send, text string) {
		t.Helper()
		if res.StatusCode != http.StatusOK || res.Header.Get("X-Line-Request-Id") != s.RequestID {
			t.Errorf("PushMessage: %d, X-Line-Request-Id %q; want 200 and the fake's %q",
				res.StatusCode, res.Header.Get("X-Line-Request-Id"), s.RequestID)
		}
		if len(got.SentMessages) != len(s.SentMessages) || len(s.SentMessages) != 1 {
			t.Fatalf("the SDK got %d sentMessages, the fake answered %d, want 1", len(got.SentMessages), len(s.SentMessages))
		}
		if g, w := got.SentMessages[0], s.SentMessages[0]; g.Id != w.ID || g.QuoteToken != w.QuoteToken {
			t.Errorf("the SDK got sentMessages %+v, the fake answered %+v", got.SentMessages, s.SentMessages)
		}
		var body struct {
			To       string           `json:"to"`
			Messages []map[string]any `json:"messages"`
		}
		if err := json.Unmarshal(s.Body, &body); err != nil {
			t.Fatalf("the body LINE got: %v: %s", err, s.Body)
		}
		if want := []map[string]any{{"type": "text", "text": text}}; body.To != pushTo || !reflect.DeepEqual(body.Messages, want) {
			t.Errorf("the body LINE got: %s; want the SDK's push of %q to %s", s.Body, text, pushTo)
		}
	}
	push := func(text, retryKey string) (*http.Response, *messaging_api.PushMessageResponse) {
		t.Helper()
		res, got, err := bot.WithContext(ctx).PushMessageWithHttpInfo(&messaging_api.PushMessageRequest{
			To:       pushTo,
			Messages: []messaging_api.MessageInterface{&messaging_api.TextMessage{Text: text}},
		}, retryKey)
		if err != nil {
			t.Fatalf("PushMessage: %v", err)
		}
		return res, got
	}

	t.Run("PushMessage with the bot's retry key", func(t *testing.T) {
		key := uuid.NewString()
		res, got := push("with a key", key)
		s := lastSend(t, 1)
		if s.RetryKey != key {
			t.Errorf("the fake's send has X-Line-Retry-Key %q, want the bot's %q", s.RetryKey, key)
		}
		checkPush(t, res, got, s, "with a key")
	})

	t.Run("PushMessage with no retry key", func(t *testing.T) {
		res, got := push("without a key", "")
		s := lastSend(t, 2)
		if k, err := uuid.Parse(s.RetryKey); err != nil || s.RetryKey != k.String() {
			t.Errorf("the fake's send has X-Line-Retry-Key %q: want a UUID the proxy added (%v)", s.RetryKey, err)
		}
		checkPush(t, res, got, s, "without a key")
	})

	t.Run("GetBotInfo", func(t *testing.T) {
		got, err := bot.WithContext(ctx).GetBotInfo()
		if err != nil {
			t.Fatalf("GetBotInfo: %v", err)
		}
		want := oauthtest.BotFor(ch.ID)
		if got.UserId != want.UserID || got.BasicId != want.BasicID || got.DisplayName != want.DisplayName ||
			got.PictureUrl != want.PictureURL || string(got.ChatMode) != want.ChatMode || string(got.MarkAsReadMode) != want.MarkAsReadMode {
			t.Errorf("GetBotInfo: %+v, want %+v", got, want)
		}
	})

	t.Run("GetMessageContent", func(t *testing.T) {
		res, err := blob.WithContext(ctx).GetMessageContent(oauthtest.ContentMessageID(contentSize))
		if err != nil {
			t.Fatalf("GetMessageContent: %v", err)
		}
		defer res.Body.Close()
		if res.StatusCode != http.StatusOK || !strings.HasPrefix(res.Header.Get("Content-Type"), "application/octet-stream") {
			t.Errorf("GetMessageContent: %d %q, want 200 application/octet-stream", res.StatusCode, res.Header.Get("Content-Type"))
		}
		if err := oauthtest.VerifyContent(res.Body, contentSize); err != nil {
			t.Errorf("the content the SDK streamed: %v", err)
		}
		_, _ = io.Copy(io.Discard, res.Body)
	})
}
