package oauthtest

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"
)

// msgTimeout bounds one Messaging API call of these tests: generous, for
// a loaded 2-core machine.
const msgTimeout = 20 * time.Second

const (
	pushPath       = "/v2/bot/message/push"
	multicastPath  = "/v2/bot/message/multicast"
	narrowcastPath = "/v2/bot/message/narrowcast"
	broadcastPath  = "/v2/bot/message/broadcast"
	infoPath       = "/v2/bot/info"
	// A valid body for each send path.
	pushBody1      = `{"to":"U4af4980629","messages":[{"type":"text","text":"hello"},{"type":"sticker","packageId":"1","stickerId":"1"}]}`
	multicastBody1 = `{"to":["U1","U2"],"messages":[{"type":"text","text":"hi"}]}`
	castBody1      = `{"messages":[{"type":"text","text":"all"}]}`
)

var (
	sentMessageIDs = regexp.MustCompile(`^[1-9][0-9]{17}$`)
	botUserIDs     = regexp.MustCompile(`^U[0-9a-f]{32}$`)
)

// bearer is the header of a Messaging API call with token tok, and with
// extra headers as key, value pairs.
func bearer(tok string, kv ...string) http.Header {
	h := http.Header{"Authorization": {"Bearer " + tok}}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Add(kv[i], kv[i+1])
	}
	return h
}

// callAPI sends one request to base+path. A body gets Content-Type
// application/json unless header names Content-Type (nil: none sent). A non-fault answer must carry
// an X-Line-Request-Id.
func callAPI(t *testing.T, base, method, path string, header http.Header, body io.Reader) wire {
	t.Helper()
	w, err := tryAPI(base, method, path, header, body, msgTimeout)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	if !requestIDs.MatchString(w.header.Get(headerRequestID)) {
		t.Fatalf("%s %s answered %d with X-Line-Request-Id %q", method, path, w.status, w.header.Get(headerRequestID))
	}
	return w
}

// tryAPI is callAPI without checks, for faults; the client waits timeout.
func tryAPI(base, method, path string, header http.Header, body io.Reader, timeout time.Duration) (wire, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, base+path, body)
	if err != nil {
		return wire{}, err
	}
	req.Header = header.Clone()
	if req.Header == nil {
		req.Header = http.Header{}
	}
	if _, named := req.Header["Content-Type"]; body != nil && !named {
		req.Header.Set("Content-Type", contentTypeJSON)
	}
	// A fresh connection each time: a dropped one is never reused.
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Do(req)
	if err != nil {
		return wire{}, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return wire{}, err
	}
	return wire{status: resp.StatusCode, header: resp.Header, body: string(data)}, nil
}

// push sends body to the push path with tok and, if key is not "", the
// retry key.
func push(t *testing.T, srv *Server, tok, key, body string) wire {
	t.Helper()
	h := bearer(tok)
	if key != "" {
		h.Set(headerRetryKey, key)
	}
	return callAPI(t, srv.URL(), http.MethodPost, pushPath, h, strings.NewReader(body))
}

// msgChannel starts a fake with one channel, returning the channel's ID
// and long-lived token.
func msgChannel(t *testing.T, opts ...Option) (*Server, string, string) {
	t.Helper()
	srv := newServer(t, opts...)
	const id = "1650000001"
	srv.AddChannel(id, "0123456789abcdef0123456789abcdef")
	return srv, id, srv.LongLivedToken(id)
}

func sentMessagesOf(t *testing.T, w wire) []SentMessage {
	t.Helper()
	var b struct {
		SentMessages []SentMessage `json:"sentMessages"`
	}
	if err := json.Unmarshal([]byte(w.body), &b); err != nil {
		t.Fatalf("body %q: %v", w.body, err)
	}
	return b.SentMessages
}

// wantBody checks an answer's status and exact JSON body.
func wantBody(t *testing.T, w wire, status int, body string) {
	t.Helper()
	w.wantError(t, status, body)
}

// TestMessagingSends: each send path's success status and body; each
// accepted send is recorded with its channel, path, body and the
// X-Line-Request-Id its answer carried.
func TestMessagingSends(t *testing.T) {
	srv, chID, tok := msgChannel(t)
	w := push(t, srv, tok, "", pushBody1)
	if w.status != http.StatusOK {
		t.Fatalf("push: %d %s", w.status, w.body)
	}
	if m := w.json(t); len(m) != 1 {
		t.Fatalf("push body %s, want sentMessages only", w.body)
	}
	sent := sentMessagesOf(t, w)
	if len(sent) != 2 {
		t.Fatalf("push of 2 messages: sentMessages %+v", sent)
	}
	for _, m := range sent {
		if !sentMessageIDs.MatchString(m.ID) || len(m.QuoteToken) < 20 {
			t.Errorf("sentMessage %+v: want an 18-digit id and a quote token", m)
		}
	}
	if sent[0] == sent[1] {
		t.Errorf("two messages share %+v", sent[0])
	}
	want := []Send{{ChannelID: chID, Path: pushPath, RequestID: w.header.Get(headerRequestID), Body: []byte(pushBody1), SentMessages: sent}}
	for _, c := range []struct {
		path, body string
		status     int
	}{
		{multicastPath, multicastBody1, http.StatusOK},
		{narrowcastPath, castBody1, http.StatusAccepted},
		{broadcastPath, castBody1, http.StatusOK},
	} {
		w := callAPI(t, srv.URL(), http.MethodPost, c.path, bearer(tok), strings.NewReader(c.body))
		wantBody(t, w, c.status, `{}`)
		want = append(want, Send{ChannelID: chID, Path: c.path, RequestID: w.header.Get(headerRequestID), Body: []byte(c.body)})
	}
	got := srv.Sends()
	for i := range got {
		if got[i].Time.IsZero() {
			t.Errorf("send %d has no time", i)
		}
		got[i].Time = time.Time{}
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Sends() =\n%+v\nwant\n%+v", got, want)
	}
	// The copy is the caller's.
	got[0].Body[0] = 'X'
	if srv.Sends()[0].Body[0] != '{' {
		t.Error("Sends shares its bodies with the server")
	}
	// The request log has the same IDs, and never the token.
	reqs := srv.Requests()
	if len(reqs) != 4 || reqs[0].RequestID != want[0].RequestID || reqs[3].RequestID != want[3].RequestID {
		t.Errorf("log = %v, want the answers' request IDs", reqs)
	}
	if s := reqs[0].String(); strings.Contains(s, tok) || !strings.Contains(s, "Authorization=REDACTED") || reqs[0].Form != nil {
		t.Errorf("logged push: %s (form %v)", s, reqs[0].Form)
	}
}

// TestMessagingBotInfo: GET /v2/bot/info answers the token's channel's
// bot, stable per channel.
func TestMessagingBotInfo(t *testing.T) {
	srv, chID, tok := msgChannel(t)
	other := srv.NewChannel(t)
	w := callAPI(t, srv.URL(), http.MethodGet, infoPath, bearer(tok), nil)
	if w.status != http.StatusOK || w.header.Get("Content-Type") != contentTypeJSON {
		t.Fatalf("%d %q %s", w.status, w.header.Get("Content-Type"), w.body)
	}
	var got Bot
	if err := json.Unmarshal([]byte(w.body), &got); err != nil {
		t.Fatal(err)
	}
	if m := w.json(t); len(m) != 6 {
		t.Errorf("body %s, want the 6 members", w.body)
	}
	if got != BotFor(chID) || !botUserIDs.MatchString(got.UserID) || got.DisplayName != "oauthtest bot "+chID ||
		got.ChatMode != "bot" || got.MarkAsReadMode != "auto" || !strings.HasPrefix(got.PictureURL, "https://") ||
		!strings.HasPrefix(got.BasicID, "@") {
		t.Errorf("bot = %+v, want %+v", got, BotFor(chID))
	}
	// Another channel's token: another bot.
	w = callAPI(t, srv.URL(), http.MethodGet, infoPath, bearer(srv.LongLivedToken(other.ID)), nil)
	var bot2 Bot
	if err := json.Unmarshal([]byte(w.body), &bot2); err != nil || bot2 != BotFor(other.ID) || bot2.UserID == got.UserID {
		t.Errorf("other channel's bot = %+v (%v), first %+v", bot2, err, got)
	}
}

// TestMessagingAuth: every Messaging API path takes only a Bearer token
// the server issued that is valid now: the two 401s of LINE's.
func TestMessagingAuth(t *testing.T) {
	srv, ch, client := newChannel(t)
	ctx := context.Background()
	required := `{"message":"` + msgAuthRequired + `"}`
	failed := `{"message":"` + msgAuthFailed + `"}`
	short, err := client.IssueShortLivedToken(ctx)
	if err != nil {
		t.Fatal(err)
	}
	stateless, err := client.IssueStatelessToken(ctx)
	if err != nil {
		t.Fatal(err)
	}
	v21, err := client.IssueToken(ctx, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	for _, tok := range []string{short.AccessToken, stateless.AccessToken, v21.AccessToken, srv.LongLivedToken(ch.ID)} {
		if w := callAPI(t, srv.URL(), http.MethodGet, infoPath, bearer(tok), nil); w.status != http.StatusOK {
			t.Fatalf("a valid token: %d %s", w.status, w.body)
		}
	}
	for _, c := range []struct {
		name   string
		header http.Header
		body   string
	}{
		{"no Authorization", http.Header{}, required},
		{"Basic", http.Header{"Authorization": {"Basic dXNlcjpwYXNz"}}, required},
		{"Bearer and no token", http.Header{"Authorization": {"Bearer "}}, required},
		{"two headers", http.Header{"Authorization": {"Bearer " + short.AccessToken, "Bearer " + short.AccessToken}}, required},
		{"unknown token", bearer("c29tZXRoaW5nIGVsc2U="), failed},
		{"a channel secret", bearer(ch.Secret), failed},
	} {
		for _, path := range []string{infoPath, pushPath, "/v2/bot/nowhere"} {
			w := callAPI(t, srv.URL(), http.MethodPost, path, c.header, strings.NewReader(pushBody1))
			if w.wantError(t, http.StatusUnauthorized, c.body); len(srv.Sends()) != 0 {
				t.Fatalf("%s: a send was accepted", c.name)
			}
		}
	}
	// The scheme in any case (RFC 7235).
	if w := callAPI(t, srv.URL(), http.MethodGet, infoPath, http.Header{"Authorization": {"bearer " + short.AccessToken}}, nil); w.status != http.StatusOK {
		t.Errorf("bearer in lower case: %d %s", w.status, w.body)
	}

	// Revoked and expired tokens fail.
	if err := client.RevokeShortLivedToken(ctx, short.AccessToken); err != nil {
		t.Fatal(err)
	}
	if err := client.RevokeToken(ctx, v21.AccessToken); err != nil {
		t.Fatal(err)
	}
	for _, tok := range []string{short.AccessToken, v21.AccessToken} {
		callAPI(t, srv.URL(), http.MethodGet, infoPath, bearer(tok), nil).wantError(t, http.StatusUnauthorized, failed)
	}
	srv.Advance(statelessLifetime)
	callAPI(t, srv.URL(), http.MethodGet, infoPath, bearer(stateless.AccessToken), nil).wantError(t, http.StatusUnauthorized, failed)
	w := callAPI(t, srv.DataURL(), http.MethodGet, "/v2/bot/message/"+ContentMessageID(1)+"/content", bearer(stateless.AccessToken), nil)
	w.wantError(t, http.StatusUnauthorized, failed)
}

// TestMessagingBadSends: every broken rule of a send body is a 400 in
// LINE's shape, and nothing is accepted.
func TestMessagingBadSends(t *testing.T) {
	srv, _, tok := msgChannel(t)
	six := `{"to":"U1","messages":[` + strings.Repeat(`{"type":"text"},`, 5) + `{"type":"text"}]}`
	many := `{"to":[` + strings.Repeat(`"U1",`, maxMulticastTo) + `"U1"],"messages":[{"type":"text"}]}`
	one := func(prop, msg string) string {
		return `{"message":"The request body has 1 error(s)","details":[{"message":"` + msg + `","property":"` + prop + `"}]}`
	}
	for _, c := range []struct {
		name, path, contentType, body, want string
	}{
		{"not JSON", pushPath, "", `{"to":`, `{"message":"` + msgNotJSON + `"}`},
		{"empty", pushPath, "", ``, `{"message":"` + msgNotJSON + `"}`},
		{"an array", pushPath, "", `[]`, `{"message":"` + msgNotJSON + `"}`},
		{"null", broadcastPath, "", `null`, `{"message":"` + msgNotJSON + `"}`},
		{"form", pushPath, contentTypeForm, pushBody1, `{"message":"` + msgNotJSONType + `"}`},
		{"no Content-Type", pushPath, "-", pushBody1, `{"message":"` + msgNotJSONType + `"}`},
		{"no messages", broadcastPath, "", `{}`, one("messages", msgMustBeSpecified)},
		{"messages an object", broadcastPath, "", `{"messages":{"type":"text"}}`, one("messages", msgMustBeArray)},
		{"messages null", narrowcastPath, "", `{"messages":null}`, one("messages", msgMustBeArray)},
		{"no message", broadcastPath, "", `{"messages":[]}`, one("messages", msgMessagesSize)},
		{"six messages", pushPath, "", six, one("messages", msgMessagesSize)},
		{"a message not an object", broadcastPath, "", `{"messages":["text"]}`, one("messages[0]", msgMustBeObject)},
		{"no type", broadcastPath, "", `{"messages":[{"type":"text"},{"text":"x"}]}`, one("messages[1].type", msgMustBeString)},
		{"empty type", broadcastPath, "", `{"messages":[{"type":""}]}`, one("messages[0].type", msgMustBeString)},
		{"type a number", broadcastPath, "", `{"messages":[{"type":1}]}`, one("messages[0].type", msgMustBeString)},
		{"push without to", pushPath, "", castBody1, one("to", msgMustBeString)},
		{"push to a list", pushPath, "", multicastBody1, one("to", msgMustBeString)},
		{"multicast to a string", multicastPath, "", pushBody1, one("to", msgMustBeStrings)},
		{"multicast to nobody", multicastPath, "", `{"to":[],"messages":[{"type":"text"}]}`, one("to", msgToSize)},
		{"multicast to 501", multicastPath, "", many, one("to", msgToSize)},
		{"multicast to an empty ID", multicastPath, "", `{"to":["U1",""],"messages":[{"type":"text"}]}`, one("to[1]", msgMustBeString)},
		{"two errors", pushPath, "", `{"messages":[{}]}`, `{"message":"The request body has 2 error(s)","details":[` +
			`{"message":"` + msgMustBeString + `","property":"messages[0].type"},{"message":"` + msgMustBeString + `","property":"to"}]}`},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := bearer(tok)
			switch c.contentType {
			case "-":
				h["Content-Type"] = nil // named, so none is added, and not sent
			case "":
			default:
				h.Set("Content-Type", c.contentType)
			}
			callAPI(t, srv.URL(), http.MethodPost, c.path, h, strings.NewReader(c.body)).wantError(t, http.StatusBadRequest, c.want)
		})
	}
	if n := len(srv.Sends()); n != 0 {
		t.Fatalf("%d sends accepted", n)
	}
	// A charset parameter is fine.
	h := bearer(tok, "Content-Type", "application/json; charset=UTF-8")
	if w := callAPI(t, srv.URL(), http.MethodPost, pushPath, h, strings.NewReader(pushBody1)); w.status != http.StatusOK {
		t.Fatalf("with a charset: %d %s", w.status, w.body)
	}
}

// TestMessagingBodyCaps: a send over 2 MiB, an upload over 64 MiB and any
// other body over 64 KiB answer 413; the largest allowed pass.
func TestMessagingBodyCaps(t *testing.T) {
	srv, _, tok := msgChannel(t)
	tooLarge := `{"message":"` + msgTooLarge + `"}`
	padded := func(n int) string {
		prefix := `{"to":"U1","messages":[{"type":"text"}],"pad":"`
		return prefix + strings.Repeat("a", n-len(prefix)-2) + `"}`
	}
	if w := push(t, srv, tok, "", padded(maxSendBody)); w.status != http.StatusOK {
		t.Fatalf("a push of exactly 2 MiB: %d %s", w.status, w.body)
	}
	push(t, srv, tok, "", padded(maxSendBody+1)).wantError(t, http.StatusRequestEntityTooLarge, tooLarge)
	w := callAPI(t, srv.URL(), http.MethodGet, infoPath, bearer(tok), strings.NewReader(strings.Repeat("a", maxRequestBody+1)))
	w.wantError(t, http.StatusRequestEntityTooLarge, tooLarge)
	up := "/v2/bot/richmenu/richmenu-88c05ef6921ae53f8b58a25f3a65faf7/content"
	w = callAPI(t, srv.DataURL(), http.MethodPost, up, bearer(tok, "Content-Type", "image/png"), &patternReader{n: maxUploadBody + 1})
	w.wantError(t, http.StatusRequestEntityTooLarge, tooLarge)
	if n := len(srv.Sends()) + len(srv.Uploads()); n != 1 {
		t.Fatalf("%d sends and uploads recorded, want the one push", n)
	}
}

// patternReader reads n bytes of the content pattern without holding them.
type patternReader struct{ off, n int64 }

func (r *patternReader) Read(p []byte) (int, error) {
	if r.off >= r.n {
		return 0, io.EOF
	}
	k := int(min(int64(len(p)), r.n-r.off))
	for i := range k {
		p[i] = ContentByte(r.off + int64(i))
	}
	r.off += int64(k)
	return k, nil
}

// TestMessagingHosts: URL plays api.line.me and DataURL api-data.line.me,
// each answering 404 {"message":"Not found"} to the other's paths;
// ServeHTTP serves both; one log records each request's host.
func TestMessagingHosts(t *testing.T) {
	srv, _, tok := msgChannel(t)
	notFound := `{"message":"` + msgNotFound + `"}`
	content := "/v2/bot/message/" + ContentMessageID(3) + "/content"
	upload := "/v2/bot/richmenu/richmenu-1/content"
	dataOnly := []struct{ method, path string }{
		{http.MethodGet, content},
		{http.MethodGet, "/v2/bot/message/123/content/preview"},
		{http.MethodGet, "/v2/bot/message/123/content/transcoding"},
		{http.MethodGet, upload},
		{http.MethodPost, upload},
		{http.MethodPost, "/v2/bot/audienceGroup/upload/byFile"},
		{http.MethodPut, "/v2/bot/audienceGroup/upload/byFile"},
	}
	for _, c := range dataOnly {
		callAPI(t, srv.URL(), c.method, c.path, bearer(tok), strings.NewReader("{}")).wantError(t, http.StatusNotFound, notFound)
	}
	for _, c := range []struct{ method, path string }{
		{http.MethodGet, infoPath},
		{http.MethodPost, pushPath},
		{http.MethodGet, "/v2/bot/message/123/content/other"},
		{http.MethodGet, "/v2/bot/richmenu/richmenu-1"},
		{http.MethodPost, "/v2/oauth/accessToken"},
		{http.MethodGet, "/oauth2/v2.1/verify"},
	} {
		callAPI(t, srv.DataURL(), c.method, c.path, bearer(tok), strings.NewReader(pushBody1)).wantError(t, http.StatusNotFound, notFound)
	}
	if n := len(srv.Sends()); n != 0 {
		t.Fatalf("DataURL accepted %d sends", n)
	}
	// Each host serves its own.
	if w := callAPI(t, srv.DataURL(), http.MethodGet, content, bearer(tok), nil); w.status != http.StatusOK || w.body != "\x00\x01\x02" {
		t.Errorf("content at DataURL: %d %q", w.status, w.body)
	}
	wantBody(t, callAPI(t, srv.DataURL(), http.MethodPost, upload, bearer(tok, "Content-Type", "image/jpeg"), strings.NewReader("jpeg")), http.StatusOK, `{}`)
	if w := push(t, srv, tok, "", pushBody1); w.status != http.StatusOK {
		t.Errorf("push at URL: %d %s", w.status, w.body)
	}
	// ServeHTTP serves every path on one address.
	one := httptest.NewServer(srv)
	t.Cleanup(one.Close)
	for _, c := range []struct{ method, path string }{{http.MethodGet, content}, {http.MethodGet, infoPath}} {
		if w := callAPI(t, one.URL, c.method, c.path, bearer(tok), nil); w.status != http.StatusOK {
			t.Errorf("ServeHTTP: %s %s: %d %s", c.method, c.path, w.status, w.body)
		}
	}
	if w := callAPI(t, one.URL, http.MethodPost, pushPath, bearer(tok), strings.NewReader(pushBody1)); w.status != http.StatusOK {
		t.Errorf("ServeHTTP: push: %d %s", w.status, w.body)
	}
	// One log; the host tells the listeners apart.
	reqs := srv.Requests()
	if want := len(dataOnly) + 6 + 3 + 3; len(reqs) != want {
		t.Fatalf("log has %d requests, want %d", len(reqs), want)
	}
	if first, data := reqs[0], reqs[len(dataOnly)]; first.Host != strings.TrimPrefix(srv.URL(), "http://") ||
		data.Host != strings.TrimPrefix(srv.DataURL(), "http://") || data.Status != http.StatusNotFound {
		t.Errorf("hosts %q and %q, want %s and %s", first.Host, data.Host, srv.URL(), srv.DataURL())
	}
	if up := srv.Uploads(); len(up) != 1 || up[0].Bytes != 4 || up[0].Path != upload || up[0].ContentType != "image/jpeg" {
		t.Errorf("Uploads() = %+v", up)
	}
}

// TestMessagingContent: bytes-<N> answers N bytes of the pattern with
// Content-Length N, streamed: an 8 MiB download costs the process far
// less than 8 MiB. Any other message ID answers 404.
func TestMessagingContent(t *testing.T) {
	srv, _, tok := msgChannel(t)
	path := func(id string) string { return "/v2/bot/message/" + id + "/content" }
	const size = 8 << 20
	ctx, cancel := context.WithTimeout(context.Background(), msgTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.DataURL()+path(ContentMessageID(size)), nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header = bearer(tok)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.ContentLength != size || resp.Header.Get("Content-Type") != contentTypeOctets ||
		!requestIDs.MatchString(resp.Header.Get(headerRequestID)) {
		t.Fatalf("%s, Content-Length %d, header %v", resp.Status, resp.ContentLength, resp.Header)
	}
	if err := VerifyContent(resp.Body, size); err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	// Whole-body allocation would be 8 MiB or more; the stream's buffers
	// and the client's are tens of KiB.
	const allocBound = size / 4
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > allocBound {
		t.Errorf("an 8 MiB download allocated %d bytes in the process, want < %d", alloc, allocBound)
	}

	if w := callAPI(t, srv.DataURL(), http.MethodGet, path(ContentMessageID(0)), bearer(tok), nil); w.status != http.StatusOK ||
		w.body != "" || w.header.Get("Content-Length") != "0" {
		t.Errorf("bytes-0: %d %q %v", w.status, w.body, w.header)
	}
	// The cap, 1 GiB, is served: its headers read, the body left.
	req, err = http.NewRequestWithContext(ctx, http.MethodGet, srv.DataURL()+path(ContentMessageID(maxContentBytes)), nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header = bearer(tok)
	big, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	big.Body.Close()
	if big.StatusCode != http.StatusOK || big.ContentLength != maxContentBytes {
		t.Errorf("bytes-%d: %s, Content-Length %d", int64(maxContentBytes), big.Status, big.ContentLength)
	}
	for _, id := range []string{"123456789", "bytes-", "bytes--1", "bytes-+5", "bytes-0x10", "bytes-1073741825", "bytes-99999999999999999999", "Bytes-1"} {
		callAPI(t, srv.DataURL(), http.MethodGet, path(id), bearer(tok), nil).wantError(t, http.StatusNotFound, `{"message":"Not found"}`)
	}
}
