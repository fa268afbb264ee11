//go:build unix

package agent_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/linetoken/linetoken/internal/agent"
	"github.com/linetoken/linetoken/internal/prism"
	"github.com/linetoken/linetoken/oauth"
	"github.com/linetoken/linetoken/oauth/oauthtest"
)

const (
	// repoRoot is the repository root from this package's directory.
	repoRoot = "../.."
	// messagingSpec is LINE's upstream Messaging API description, in
	// $UPSTREAM_DIR.
	messagingSpec = "messaging-api.yml"
	// nodeSDK is LINE's Node SDK, pinned in contract/package.json.
	nodeSDK = "@line/bot-sdk"
	// proxyBotTimeout bounds one run of proxy-bot.mjs: node's start and
	// the SDK's load on a loaded machine, a few requests and a 32 MiB
	// download over loopback.
	proxyBotTimeout = 2 * time.Minute
	// sdkContentSize is the content the SDKs download through the proxy:
	// many times any buffer on the way, so a truncated, repeated or
	// reordered chunk shows.
	sdkContentSize = 32 << 20
	// sdkPushTo is the push's recipient: the fake checks only that there
	// is one, Prism only that it is a string.
	sdkPushTo = "U0123456789abcdef0123456789abcdef"
)

// botReport is one line of proxy-bot.mjs: one SDK call and its answer.
type botReport struct {
	Call       string          `json:"call"`
	Status     int             `json:"status"`
	RequestID  string          `json:"requestId"`
	Violations string          `json:"violations"`
	Sent       json.RawMessage `json:"sent"`
	Body       json.RawMessage `json:"body"`
	Length     int64           `json:"length"`
	Error      string          `json:"error"`
}

// nodeBot is examples/agent/proxy-bot.mjs and what runs it: node and
// LINE's Node SDK from contract/node_modules.
type nodeBot struct {
	node    string // node's path
	sdkFrom string // the directory whose node_modules holds the SDK
	script  string // proxy-bot.mjs
}

// needNodeBot finds node and the SDK, or skips t (fails it under CI=true).
func needNodeBot(t *testing.T) nodeBot {
	t.Helper()
	node := prism.Node(t)
	sdk := prism.Package(t, repoRoot, nodeSDK) // contract/node_modules/@line/bot-sdk
	script, err := filepath.Abs(filepath.Join(repoRoot, "examples", "agent", "proxy-bot.mjs"))
	if err != nil {
		t.Fatal(err)
	}
	return nodeBot{node: node, sdkFrom: filepath.Dir(filepath.Dir(filepath.Dir(sdk))), script: script}
}

// run runs the bot, its SDK's base URL proxyURL, for calls; env adds
// settings. It returns the report of each call, by call.
func (b nodeBot) run(t *testing.T, proxyURL string, env []string, calls ...string) map[string]botReport {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), proxyBotTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, b.node, append([]string{b.script}, calls...)...)
	cmd.Env = append(append(botEnv(), "LINETOKEN_PROXY="+proxyURL, "LINE_BOT_SDK_FROM="+b.sdkFrom), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("proxy-bot.mjs did not finish within %v; stdout %q, stderr %q", proxyBotTimeout, stdout.String(), stderr.String())
	}
	if err != nil || stderr.Len() > 0 {
		t.Fatalf("proxy-bot.mjs: %v; stdout %q, stderr %q", err, stdout.String(), stderr.String())
	}
	reports := map[string]botReport{}
	dec := json.NewDecoder(&stdout)
	dec.DisallowUnknownFields()
	for dec.More() {
		var r botReport
		if err := dec.Decode(&r); err != nil {
			t.Fatalf("proxy-bot.mjs printed a line that is not its report: %v", err)
		}
		reports[r.Call] = r
	}
	for _, c := range calls {
		if _, ok := reports[c]; !ok {
			t.Fatalf("proxy-bot.mjs reported no %q call: %v", c, reports)
		}
	}
	return reports
}

// startProxyAgent runs an agent serving one v2.1 channel of srv with the
// proxy on a free loopback port in front of apiURL and dataURL.
func startProxyAgent(t *testing.T, srv *oauthtest.Server, apiURL, dataURL string) (*running, oauthtest.Channel) {
	t.Helper()
	ch := srv.NewChannel(t)
	cfg := newConfig(t, srv, []agent.Channel{chanCfg(ch, oauth.KindV21)}, func(c *agent.Config) {
		c.Proxy = &agent.ProxyConfig{Listen: "127.0.0.1:0", APIURL: apiURL, DataURL: dataURL}
	})
	return startAgent(t, srv, cfg), ch
}

// TestNodeSDKThroughProxy: LINE's Node SDK (@line/bot-sdk, pinned in
// contract/package.json), its baseURL the agent's proxy and its
// channelAccessToken "linetoken", against the fake LINE:
//   - pushMessage (no retry key) answers 200 with the sentMessages the fake
//     recorded for the one send it accepted, whose body is the SDK's as
//     sent, whose channel is the agent's and whose X-Line-Retry-Key is a
//     UUID the proxy added;
//   - getBotInfo answers the fake's bot of the channel;
//   - getMessageContent (the blob client, same baseURL) of 32 MiB, asked of
//     the data host, streams exactly the fake's content pattern;
//   - the bot's output holds no real token.
//
// Under CI=true a missing node or SDK fails the test.
func TestNodeSDKThroughProxy(t *testing.T) {
	bot := needNodeBot(t)
	srv := newFake(t)
	r, ch := startProxyAgent(t, srv, srv.URL(), srv.DataURL())
	content := filepath.Join(t.TempDir(), "content")
	reports := bot.run(t, r.proxy, []string{"LINE_TO=" + sdkPushTo,
		"LINE_MESSAGE_ID=" + oauthtest.ContentMessageID(sdkContentSize), "LINE_CONTENT_FILE=" + content},
		"push", "info", "content")

	t.Run("pushMessage", func(t *testing.T) {
		rep := reports["push"]
		if rep.Status != 200 {
			t.Fatalf("pushMessage: %+v, want 200", rep)
		}
		sends := srv.Sends()
		if len(sends) != 1 {
			t.Fatalf("the fake accepted %d sends, want 1", len(sends))
		}
		s := sends[0]
		if s.ChannelID != ch.ID || s.Path != "/v2/bot/message/push" || s.RequestID != rep.RequestID {
			t.Errorf("the fake's send: channel %s path %s request %s; want channel %s, push, request %s",
				s.ChannelID, s.Path, s.RequestID, ch.ID, rep.RequestID)
		}
		// The bot sends no key (proxy-bot.mjs passes none): the proxy's.
		if k, err := uuid.Parse(s.RetryKey); err != nil || len(s.RetryKey) != len(k.String()) {
			t.Errorf("the send's X-Line-Retry-Key %q is not a UUID in 8-4-4-4-12 form: %v", s.RetryKey, err)
		}
		jsonEqual(t, "the body LINE got vs the body the SDK sent", s.Body, rep.Sent)
		var got struct {
			SentMessages []oauthtest.SentMessage `json:"sentMessages"`
		}
		strictJSON(t, rep.Body, &got)
		if len(got.SentMessages) != 1 || !reflect.DeepEqual(got.SentMessages, s.SentMessages) {
			t.Errorf("the SDK got sentMessages %+v, the fake answered %+v", got.SentMessages, s.SentMessages)
		}
	})

	t.Run("getBotInfo", func(t *testing.T) {
		rep := reports["info"]
		if rep.Status != 200 {
			t.Fatalf("getBotInfo: %+v, want 200", rep)
		}
		var got oauthtest.Bot
		strictJSON(t, rep.Body, &got)
		if want := oauthtest.BotFor(ch.ID); got != want {
			t.Errorf("getBotInfo: %+v, want %+v", got, want)
		}
	})

	t.Run("getMessageContent", func(t *testing.T) {
		rep := reports["content"]
		if rep.Status != 200 || rep.Length != sdkContentSize {
			t.Fatalf("getMessageContent: %+v, want 200 and %d bytes", rep, sdkContentSize)
		}
		f, err := os.Open(content)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if err := oauthtest.VerifyContent(f, sdkContentSize); err != nil {
			t.Errorf("the content the SDK streamed: %v", err)
		}
		data, err := url.Parse(srv.DataURL())
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, req := range srv.Requests() {
			if req.Path == "/v2/bot/message/"+oauthtest.ContentMessageID(sdkContentSize)+"/content" {
				n++
				if req.Host != data.Host || req.Status != 200 {
					t.Errorf("the content request went to %s and got %d; want the data host %s and 200", req.Host, req.Status, data.Host)
				}
			}
		}
		if n != 1 {
			t.Errorf("the fake saw %d content requests, want 1", n)
		}
	})

	t.Run("no token in the bot's output", func(t *testing.T) {
		tok := r.token(ch.ID, "").AccessToken
		for call, rep := range reports {
			if b, _ := json.Marshal(rep); bytes.Contains(b, []byte(tok)) {
				t.Errorf("the %s report holds the real access token", call)
			}
		}
	})
}

// TestNodeSDKThroughProxyToPrism: the same Node SDK calls as
// TestNodeSDKThroughProxy, through the proxy to Stoplight Prism serving
// LINE's upstream Messaging API description ($UPSTREAM_DIR/messaging-api.yml)
// as both api_url and data_url; the agent's tokens come from the fake.
// Prism validates every request (the Bearer security scheme, the path,
// headers such as the proxy's X-Line-Retry-Key, the body): pushMessage,
// getBotInfo and getMessageContent answer 2xx with no sl-violations, so
// the proxy forwards valid requests as the spec wants them. Prism's
// content is its own small mock, so only the status is checked. A push
// with no messages, through the same proxy, is flagged (a 4xx with
// sl-violations naming messages): Prism does check.
//
// Under CI=true a missing node, SDK, Prism or spec fails the test.
func TestNodeSDKThroughProxyToPrism(t *testing.T) {
	bot := needNodeBot(t) // before Prism's slow start
	mock := prism.Start(t, repoRoot, messagingSpec)
	srv := newFake(t)
	r, _ := startProxyAgent(t, srv, mock, mock)
	reports := bot.run(t, r.proxy, []string{"LINE_TO=" + sdkPushTo, "LINE_MESSAGE_ID=325708"},
		"push", "info", "content", "invalid-push")
	for _, call := range []string{"push", "info", "content"} {
		rep := reports[call]
		if rep.Status < 200 || rep.Status > 299 || rep.Violations != "" {
			t.Errorf("%s through the proxy: Prism answered %d, sl-violations %q, body %s; want 2xx and none",
				call, rep.Status, rep.Violations, rep.Body)
		}
	}
	// Prism's own verdict (sl-violations naming messages), not a refusal
	// by the proxy.
	if rep := reports["invalid-push"]; rep.Status < 400 || rep.Status > 499 || !strings.Contains(rep.Violations, `"messages"`) {
		t.Errorf("a push with no messages: Prism answered %d, sl-violations %q: want a 4xx and a violation of messages", rep.Status, rep.Violations)
	}
	if n := len(srv.Sends()); n != 0 {
		t.Errorf("the fake accepted %d sends: the proxy sent to it, not to Prism", n)
	}
}

// strictJSON decodes data into v, failing t on any member v lacks.
func strictJSON(t *testing.T, data []byte, v any) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("%T from %s: %v", v, data, err)
	}
}

// jsonEqual fails t unless a and b are the same JSON value.
func jsonEqual(t *testing.T, what string, a, b []byte) {
	t.Helper()
	var x, y any
	if err := json.Unmarshal(a, &x); err != nil {
		t.Fatalf("%s: %v in %s", what, err, a)
	}
	if err := json.Unmarshal(b, &y); err != nil {
		t.Fatalf("%s: %v in %s", what, err, b)
	}
	if !reflect.DeepEqual(x, y) {
		t.Errorf("%s differ: %s vs %s", what, a, b)
	}
}
