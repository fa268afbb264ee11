package oauthtest

import (
	"errors"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/linetoken/linetoken/internal/testkit"
)

// TestRetryKeyFraming: a retry key anywhere but the four send paths, and
// a key that is not one UUID in 8-4-4-4-12 form, answer 400; nothing is
// accepted.
func TestRetryKeyFraming(t *testing.T) {
	srv, _, tok := msgChannel(t)
	key := uuid.NewString()
	notSupported := `{"message":"` + msgKeyNotSupported + `"}`
	for _, c := range []struct{ method, base, path string }{
		{http.MethodGet, srv.URL(), infoPath},
		{http.MethodPost, srv.URL(), "/v2/bot/message/reply"},
		{http.MethodGet, srv.URL(), pushPath},
		{http.MethodPost, srv.URL(), "/v2/bot/nowhere"},
		{http.MethodGet, srv.DataURL(), "/v2/bot/message/" + ContentMessageID(1) + "/content"},
	} {
		callAPI(t, c.base, c.method, c.path, bearer(tok, headerRetryKey, key), strings.NewReader(castBody1)).
			wantError(t, http.StatusBadRequest, notSupported)
	}
	invalid := `{"message":"` + msgKeyInvalid + `"}`
	for _, bad := range []string{
		"", "not-a-uuid", "123e4567e89b12d3a456426614174000", "{123e4567-e89b-12d3-a456-426614174000}",
		"urn:uuid:123e4567-e89b-12d3-a456-426614174000", "123e4567-e89b-12d3-a456-42661417400g",
		"123e4567-e89b-12d3-a456_426614174000", " 123e4567-e89b-12d3-a456-42661417400",
	} {
		h := bearer(tok)
		h[headerRetryKey] = []string{bad}
		callAPI(t, srv.URL(), http.MethodPost, pushPath, h, strings.NewReader(pushBody1)).wantError(t, http.StatusBadRequest, invalid)
	}
	two := bearer(tok)
	two[headerRetryKey] = []string{key, key}
	callAPI(t, srv.URL(), http.MethodPost, broadcastPath, two, strings.NewReader(castBody1)).wantError(t, http.StatusBadRequest, invalid)
	for _, snd := range srv.Sends() {
		if snd.RetryKey != "" {
			t.Fatalf("a send with a bad key was accepted: %+v", snd)
		}
	}
	// Either case is a UUID.
	if w := push(t, srv, tok, strings.ToUpper(key), pushBody1); w.status != http.StatusOK {
		t.Fatalf("an upper-case key: %d %s", w.status, w.body)
	}
}

// TestRetryKeyConflict: a repeated key within 24 hours answers 409 with
// X-Line-Accepted-Request-Id (the accepting answer's X-Line-Request-Id)
// and, for push, the original sentMessages; after 24 hours it is new.
func TestRetryKeyConflict(t *testing.T) {
	srv, chID, tok := msgChannel(t)
	other := srv.NewChannel(t)
	key := uuid.NewString()
	first := push(t, srv, tok, key, pushBody1)
	if first.status != http.StatusOK {
		t.Fatalf("first push: %d %s", first.status, first.body)
	}
	accepted := first.header.Get(headerRequestID)
	sent := sentMessagesOf(t, first)

	again := push(t, srv, tok, key, pushBody1)
	if again.status != http.StatusConflict || again.header.Get(headerAcceptedRequestID) != accepted ||
		again.header.Get(headerRequestID) == accepted || again.json(t)["message"] != msgKeyAccepted {
		t.Fatalf("repeat: %d %s, header %v; accepted %s", again.status, again.body, again.header, accepted)
	}
	if got := sentMessagesOf(t, again); !reflect.DeepEqual(got, sent) {
		t.Fatalf("409 sentMessages %+v, want %+v", got, sent)
	}
	// Compared as UUIDs; across the send paths, without sentMessages
	// elsewhere; a broken body is still a 400.
	if w := push(t, srv, tok, strings.ToUpper(key), pushBody1); w.status != http.StatusConflict {
		t.Errorf("upper-case repeat: %d %s", w.status, w.body)
	}
	w := callAPI(t, srv.URL(), http.MethodPost, multicastPath, bearer(tok, headerRetryKey, key), strings.NewReader(multicastBody1))
	wantBody(t, w, http.StatusConflict, `{"message":"`+msgKeyAccepted+`"}`)
	if w.header.Get(headerAcceptedRequestID) != accepted {
		t.Errorf("multicast 409: accepted request %q, want %q", w.header.Get(headerAcceptedRequestID), accepted)
	}
	if w := push(t, srv, tok, key, `{"messages":[]}`); w.status != http.StatusBadRequest {
		t.Errorf("a bad body with an accepted key: %d, want 400", w.status)
	}
	// Another channel has keys of its own.
	if w := push(t, srv, srv.LongLivedToken(other.ID), key, pushBody1); w.status != http.StatusOK {
		t.Errorf("the key on another channel: %d %s", w.status, w.body)
	}
	// The window is 24 hours of the server's clock.
	srv.Advance(retryKeyTTL - time.Minute)
	if w := push(t, srv, tok, key, pushBody1); w.status != http.StatusConflict {
		t.Errorf("23:59 later: %d, want 409", w.status)
	}
	srv.Advance(time.Minute)
	later := push(t, srv, tok, key, pushBody1)
	if later.status != http.StatusOK {
		t.Fatalf("24 hours later: %d %s", later.status, later.body)
	}
	if w := push(t, srv, tok, key, pushBody1); w.header.Get(headerAcceptedRequestID) != later.header.Get(headerRequestID) {
		t.Errorf("after the renewal: accepted %q, want %q", w.header.Get(headerAcceptedRequestID), later.header.Get(headerRequestID))
	}
	var keyed []string
	for _, snd := range srv.Sends() {
		if snd.ChannelID == chID {
			keyed = append(keyed, snd.RequestID)
		}
	}
	if !reflect.DeepEqual(keyed, []string{accepted, later.header.Get(headerRequestID)}) {
		t.Errorf("channel's sends %v, want the first and the renewed", keyed)
	}
	if srv.Sends()[0].RetryKey != key {
		t.Errorf("RetryKey = %q, want %q", srv.Sends()[0].RetryKey, key)
	}
}

// TestRetryKeyConcurrent: 50 concurrent pushes with one key: exactly one
// is accepted, 49 answer 409 naming it.
func TestRetryKeyConcurrent(t *testing.T) {
	const n = 50
	var reported []Send
	var mu sync.Mutex
	srv, _, tok := msgChannel(t, WithOnSend(func(s Send) {
		mu.Lock()
		defer mu.Unlock()
		reported = append(reported, s)
	}))
	key := uuid.NewString()
	answers := make([]wire, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			w, err := tryAPI(srv.URL(), http.MethodPost, pushPath, bearer(tok, headerRetryKey, key), strings.NewReader(pushBody1), msgTimeout)
			if err != nil {
				t.Error(err)
			}
			answers[i] = w
		})
	}
	wg.Wait()
	var ok []wire
	conflicts := 0
	for _, w := range answers {
		switch w.status {
		case http.StatusOK:
			ok = append(ok, w)
		case http.StatusConflict:
			conflicts++
		default:
			t.Fatalf("answer %d %s", w.status, w.body)
		}
	}
	if len(ok) != 1 || conflicts != n-1 {
		t.Fatalf("%d accepted, %d conflicts; want 1 and %d", len(ok), conflicts, n-1)
	}
	id := ok[0].header.Get(headerRequestID)
	for _, w := range answers {
		if w.status == http.StatusConflict && (w.header.Get(headerAcceptedRequestID) != id || !reflect.DeepEqual(sentMessagesOf(t, w), sentMessagesOf(t, ok[0]))) {
			t.Fatalf("409 names %q, want %q", w.header.Get(headerAcceptedRequestID), id)
		}
	}
	sends := srv.Sends()
	if len(sends) != 1 || sends[0].RequestID != id {
		t.Fatalf("Sends() = %+v", sends)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(reported) != 1 || !reflect.DeepEqual(reported[0], sends[0]) {
		t.Fatalf("WithOnSend reported %+v, want %+v", reported, sends)
	}
	if n := srv.SendAttempts(sends[0].ChannelID, key); n != 50 {
		t.Errorf("SendAttempts = %d, want 50", n)
	}
}

// TestFaultAfterAccept: a fault with AfterAccept answers after the send
// was accepted: 500, a dropped connection, or a delay the client gives up
// on; the retry answers 409 naming the accepted request. Without it, the
// fault answers before anything is accepted.
func TestFaultAfterAccept(t *testing.T) {
	// patience is how long a client waits for the delayed answer.
	const patience = 300 * time.Millisecond
	for _, c := range []struct {
		name  string
		fault Fault
		// wantErr: the client gets no answer; else it gets status.
		wantErr bool
		status  int
	}{
		{"500", Fault{Status: 500, Body: `{"message":"Internal Server Error"}`}, false, 500},
		{"drop", Fault{Drop: true}, true, 0},
		{"delay", Fault{Delay: time.Hour}, true, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			srv, _, tok := msgChannel(t)
			for _, after := range []bool{false, true} {
				key := uuid.NewString()
				f := c.fault
				f.Path, f.AfterAccept = pushPath, after
				srv.InjectFault(1, f)
				wait := msgTimeout
				if f.Delay > 0 {
					wait = patience
				}
				w, err := tryAPI(srv.URL(), http.MethodPost, pushPath, bearer(tok, headerRetryKey, key), strings.NewReader(pushBody1), wait)
				switch {
				case c.wantErr && err == nil:
					t.Fatalf("AfterAccept %v: answered %d, want no answer", after, w.status)
				case !c.wantErr && (err != nil || w.status != c.status || w.header.Get(headerRequestID) != ""):
					t.Fatalf("AfterAccept %v: %v %d %v, want the fault's %d", after, err, w.status, w.header, c.status)
				}
				if after {
					// A client that gave up on a delay may leave before the
					// send is accepted.
					testkit.Eventually(t, msgTimeout, "the send accepted", func() bool { return len(keySends(srv, key)) == 1 })
				}
				retry := push(t, srv, tok, key, pushBody1)
				accepted := keySends(srv, key)
				if !after {
					// Nothing was accepted: the retry is.
					if retry.status != http.StatusOK || len(accepted) != 1 || accepted[0].RequestID != retry.header.Get(headerRequestID) {
						t.Fatalf("retry after a fault before accepting: %d, sends %+v", retry.status, accepted)
					}
					continue
				}
				if retry.status != http.StatusConflict || len(accepted) != 1 || retry.header.Get(headerAcceptedRequestID) != accepted[0].RequestID {
					t.Fatalf("retry after accept-then-%s: %d %v, sends %+v", c.name, retry.status, retry.header, accepted)
				}
			}
			if st := srv.Stats(); st.Faulted != 2 {
				t.Errorf("Faulted = %d, want 2", st.Faulted)
			}
			if srv.PendingFaults() != 0 {
				t.Error("faults left")
			}
		})
	}
}

// TestFaultAfterAcceptSlow: AfterAccept with only a Delay is "accepted but
// slow": a patient client gets the normal answer after the delay.
func TestFaultAfterAcceptSlow(t *testing.T) {
	srv, _, tok := msgChannel(t)
	srv.InjectFault(1, Fault{Path: pushPath, Delay: 50 * time.Millisecond, AfterAccept: true})
	w := push(t, srv, tok, uuid.NewString(), pushBody1)
	sends := srv.Sends()
	if w.status != http.StatusOK || len(sends) != 1 || sends[0].RequestID != w.header.Get(headerRequestID) {
		t.Fatalf("%d %s, sends %+v", w.status, w.body, sends)
	}
	if last, _ := srv.LastRequest(); !last.Fault || last.Status != http.StatusOK {
		t.Errorf("logged %v, want a faulted 200", last)
	}
}

// keySends are the accepted sends with retry key key.
func keySends(srv *Server, key string) []Send {
	var out []Send
	for _, s := range srv.Sends() {
		if s.RetryKey == key {
			out = append(out, s)
		}
	}
	return out
}

// TestFaultSends: a per-key schedule sees each key's attempts counted
// from 1, applies only to keyed sends, comes after queued faults, and is
// removed by nil; Fault.RetryKey limits a queued fault to one key.
func TestFaultSends(t *testing.T) {
	srv, chID, tok := msgChannel(t)
	type call struct {
		key     string
		attempt int
	}
	var mu sync.Mutex
	var calls []call
	const faultsPerKey = 2
	srv.FaultSends(func(key string, attempt int) (Fault, bool) {
		mu.Lock()
		calls = append(calls, call{key, attempt})
		mu.Unlock()
		// Keys starting with "a" are accepted, then fail; others fail first.
		return Fault{Status: 500, Body: `{"message":"Internal Server Error"}`, AfterAccept: key[0] == 'a', Path: "/ignored", RetryKey: "ignored"},
			attempt <= faultsPerKey
	})
	acceptFirst := "a" + uuid.NewString()[1:]
	failFirst := "b" + uuid.NewString()[1:]
	for _, c := range []struct {
		key  string
		want []int // statuses of four attempts
	}{
		{acceptFirst, []int{500, 500, 409, 409}},
		{failFirst, []int{500, 500, 200, 409}},
	} {
		for i, status := range c.want {
			w, err := tryAPI(srv.URL(), http.MethodPost, pushPath, bearer(tok, headerRetryKey, c.key), strings.NewReader(pushBody1), msgTimeout)
			if err != nil || w.status != status {
				t.Fatalf("key %s attempt %d: %d %v, want %d", c.key[:1], i+1, w.status, err, status)
			}
		}
		if got := keySends(srv, c.key); len(got) != 1 {
			t.Fatalf("key %s: %d sends accepted", c.key[:1], len(got))
		}
		if n := srv.SendAttempts(chID, c.key); n != 4 {
			t.Errorf("SendAttempts = %d, want 4", n)
		}
	}
	// Sends without a key, and other paths, never consult it.
	if w := push(t, srv, tok, "", pushBody1); w.status != http.StatusOK {
		t.Fatalf("a push without a key: %d", w.status)
	}
	callAPI(t, srv.URL(), http.MethodGet, infoPath, bearer(tok), nil)
	mu.Lock()
	want := []call{{acceptFirst, 1}, {acceptFirst, 2}, {acceptFirst, 3}, {acceptFirst, 4}, {failFirst, 1}, {failFirst, 2}, {failFirst, 3}, {failFirst, 4}}
	if !reflect.DeepEqual(calls, want) {
		t.Errorf("schedule calls %v, want %v", calls, want)
	}
	calls = nil
	mu.Unlock()
	if st := srv.Stats(); st.Faulted != 2*faultsPerKey {
		t.Errorf("Faulted = %d, want %d", st.Faulted, 2*faultsPerKey)
	}

	// A queued fault comes first, for its key only; the attempt still counts.
	// Keys starting with "c" and "d": the schedule fails them first.
	third, fourth := "c"+uuid.NewString()[1:], "d"+uuid.NewString()[1:]
	srv.InjectFault(1, Fault{RetryKey: third, Status: 503, Body: `{"message":"Service Unavailable"}`})
	if w, _ := tryAPI(srv.URL(), http.MethodPost, pushPath, bearer(tok, headerRetryKey, fourth), strings.NewReader(pushBody1), msgTimeout); w.status != 500 {
		t.Errorf("another key: %d, want the schedule's 500", w.status)
	}
	if w, _ := tryAPI(srv.URL(), http.MethodPost, pushPath, bearer(tok, headerRetryKey, third), strings.NewReader(pushBody1), msgTimeout); w.status != 503 {
		t.Errorf("the queued fault's key: %d, want 503", w.status)
	}
	if w, _ := tryAPI(srv.URL(), http.MethodPost, pushPath, bearer(tok, headerRetryKey, third), strings.NewReader(pushBody1), msgTimeout); w.status != 500 {
		t.Errorf("its second attempt: %d, want the schedule's 500", w.status)
	}
	mu.Lock()
	if want := []call{{fourth, 1}, {third, 2}}; !reflect.DeepEqual(calls, want) {
		t.Errorf("schedule calls %v, want %v", calls, want)
	}
	mu.Unlock()

	srv.FaultSends(nil)
	if w := push(t, srv, tok, third, pushBody1); w.status != http.StatusOK {
		t.Errorf("after FaultSends(nil): %d %s", w.status, w.body)
	}
	// A token that is not valid counts under channel "".
	h := bearer("unknown", headerRetryKey, fourth)
	callAPI(t, srv.URL(), http.MethodPost, pushPath, h, strings.NewReader(pushBody1)).wantError(t, http.StatusUnauthorized, `{"message":"`+msgAuthFailed+`"}`)
	if srv.SendAttempts("", fourth) != 1 || srv.SendAttempts(chID, fourth) != 1 {
		t.Errorf("SendAttempts: %d on \"\", %d on the channel", srv.SendAttempts("", fourth), srv.SendAttempts(chID, fourth))
	}
}

// TestWithOnSend: the callback gets each accepted send, before its answer
// is written, and nothing refused.
func TestWithOnSend(t *testing.T) {
	var mu sync.Mutex
	var got []Send
	srv, _, tok := msgChannel(t, WithOnSend(func(s Send) {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, s)
	}))
	key := uuid.NewString()
	push(t, srv, tok, key, pushBody1)
	mu.Lock()
	if len(got) != 1 {
		t.Fatalf("after the answer: %d sends reported, want 1", len(got))
	}
	mu.Unlock()
	push(t, srv, tok, key, pushBody1)        // 409
	push(t, srv, tok, "", `{"messages":[]}`) // 400
	push(t, srv, "unknown", "", pushBody1)   // 401
	callAPI(t, srv.URL(), http.MethodPost, broadcastPath, bearer(tok), strings.NewReader(castBody1))
	mu.Lock()
	defer mu.Unlock()
	if sends := srv.Sends(); !reflect.DeepEqual(got, sends) || len(got) != 2 {
		t.Fatalf("reported %+v, Sends %+v", got, sends)
	}
	got[0].Body[0] = 'X'
	if srv.Sends()[0].Body[0] == 'X' {
		t.Error("the callback shares the body with the server")
	}
}

// TestMessagingUnknownPaths: a valid token on any other /v2/bot/ path or
// method answers 404 {"message":"Not found"}; paths outside /v2/bot/ keep
// the token API's 404.
func TestMessagingUnknownPaths(t *testing.T) {
	srv, _, tok := msgChannel(t)
	for _, c := range []struct{ method, path string }{
		{http.MethodPost, "/v2/bot/message/reply"},
		{http.MethodGet, pushPath},
		{http.MethodPut, pushPath},
		{http.MethodPost, infoPath},
		{http.MethodGet, "/v2/bot/profile/U1"},
		{http.MethodGet, "/v2/bot/message//content"},
	} {
		callAPI(t, srv.URL(), c.method, c.path, bearer(tok), nil).wantError(t, http.StatusNotFound, `{"message":"Not found"}`)
	}
	callAPI(t, srv.URL(), http.MethodGet, "/v3/bot/info", bearer(tok), nil).wantError(t, http.StatusNotFound, `{"message":"Not Found"}`)
}

// TestVerifyContent: the content check fails on a short, long or altered
// body.
func TestVerifyContent(t *testing.T) {
	const n = 100_000
	if err := VerifyContent(&patternReader{n: n}, n); err != nil {
		t.Fatal(err)
	}
	body := make([]byte, n)
	for i := range body {
		body[i] = ContentByte(int64(i))
	}
	for _, c := range []struct {
		name string
		data []byte
		want string
	}{
		{"short", body[:n-1], "99999 bytes, want 100000"},
		{"long", append(append([]byte{}, body...), ContentByte(n)), "longer than 100000"},
		{"altered", func() []byte { b := append([]byte{}, body...); b[70_001]++; return b }(), "byte 70001"},
		{"shifted", body[1:], "byte 0 is 0x1"},
	} {
		if err := VerifyContent(strings.NewReader(string(c.data)), n); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
	if err := VerifyContent(errReader{}, 1); !errors.Is(err, errBroken) {
		t.Errorf("a broken reader: %v", err)
	}
}

var errBroken = errors.New("broken")

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errBroken }

// TestRetryKeyWindowFromFirstAttempt: a key is valid for 24 hours from its
// first attempt, even when that attempt was not accepted (a 500 before
// accepting): a repeat 23 hours later is accepted and, past the first
// attempt's 24 hours, the key starts afresh.
func TestRetryKeyWindowFromFirstAttempt(t *testing.T) {
	srv := NewServer()
	defer srv.Close()
	ch := srv.NewChannel(t)
	tok := srv.LongLivedToken(ch.ID)
	key := uuid.NewString()
	srv.InjectFault(1, Fault{RetryKey: key, Status: http.StatusInternalServerError, Body: `{"message":"Internal Server Error"}`})
	w, err := tryAPI(srv.URL(), http.MethodPost, "/v2/bot/message/push", bearer(tok, headerRetryKey, key), strings.NewReader(pushBody1), msgTimeout)
	if err != nil || w.status != http.StatusInternalServerError || len(srv.Sends()) != 0 {
		t.Fatalf("first attempt: %d, want the injected 500 and nothing accepted", w.status)
	}
	srv.Advance(23 * time.Hour)
	if w := push(t, srv, tok, key, pushBody1); w.status != http.StatusOK {
		t.Fatalf("23 hours after the first attempt: %d %s, want it accepted", w.status, w.body)
	}
	srv.Advance(30 * time.Minute)
	if w := push(t, srv, tok, key, pushBody1); w.status != http.StatusConflict {
		t.Errorf("23h30 after the first attempt: %d, want 409", w.status)
	}
	srv.Advance(30*time.Minute + time.Second)
	if w := push(t, srv, tok, key, pushBody1); w.status != http.StatusOK {
		t.Errorf("24 hours after the first attempt (1 hour after the acceptance): %d %s, want the key accepted afresh", w.status, w.body)
	}
}
