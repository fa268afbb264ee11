package oauthtest

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"
)

// The Messaging API's limits, LINE's and this fake's (package doc,
// "Messaging API"; ../../../shared/LINE-MESSAGING-API.md).
const (
	// maxSendBody caps a send's body: LINE documents none; five large
	// Flex messages stay far below 2 MiB.
	maxSendBody = 2 << 20
	// maxUploadBody caps a rich menu image upload, counted, never held:
	// big enough to test an upload streamed through a proxy.
	maxUploadBody = 64 << 20
	// maxContentBytes caps the test-only content size (bytes-<N>): 1 GiB
	// is far beyond any test and still cheap, since nothing is held.
	maxContentBytes = 1 << 30
	// maxContentDigits is the most digits N of bytes-<N> may have (1 GiB
	// has 10); longer is refused before parsing.
	maxContentDigits = 10
	// maxMessages is LINE's limit of messages in one send.
	maxMessages = 5
	// maxMulticastTo is LINE's limit of user IDs in one multicast.
	maxMulticastTo = 500
	// retryKeyTTL is how long LINE remembers an accepted retry key.
	retryKeyTTL = 24 * time.Hour
	// retryKeyLen is the length of a UUID in its 8-4-4-4-12 hex form.
	retryKeyLen = 36
	// sentMessageIDDigits is the length of a message ID (LINE's are 18 digits).
	sentMessageIDDigits = 18
	// quoteTokenBytes is the entropy of a quote token (64 base64url characters).
	quoteTokenBytes = 48
	// contentPeriod is the period of the content pattern: a prime, so a
	// chunk lost, repeated or misplaced by any power of two shows.
	contentPeriod = 251
	// contentChunkPeriods is how many periods one write of content holds
	// (about 32 KiB).
	contentChunkPeriods = 128
	// contentIDPrefix starts the test-only message ID bytes-<N>.
	contentIDPrefix = "bytes-"
	// headerAcceptedRequestID names the request that accepted a retry key.
	headerAcceptedRequestID = "X-Line-Accepted-Request-Id"
	// contentTypeOctets is the Content-Type of content downloads.
	contentTypeOctets = "application/octet-stream"
	// bodyErrorsFormat is LINE's message for an invalid send body.
	bodyErrorsFormat = "The request body has %d error(s)"
)

// The Messaging API's answers: LINE's (LINE-MESSAGING-API.md, "Errors",
// "Retry key") and this fake's choices (package doc, "Messaging API").
const (
	msgNotFound     = "Not found"
	msgAuthRequired = "Authorization header required. Must follow the scheme, 'Authorization: Bearer <ACCESS TOKEN>'"
	msgAuthFailed   = "Authentication failed. Confirm that the access token in the authorization header is valid."
	msgKeyAccepted  = "The retry key is already accepted"
	// Choices: LINE documents the 400, not its text.
	msgKeyNotSupported = "X-Line-Retry-Key is only supported by push, multicast, narrowcast and broadcast"
	msgKeyInvalid      = "X-Line-Retry-Key must be a UUID in hexadecimal form (8-4-4-4-12)"
	msgNotJSON         = "The request body could not be parsed as JSON"
	msgNotJSONType     = "Content-Type must be application/json"
	msgBodyUnread      = "The request body could not be read"
	msgTooLarge        = "Request Entity Too Large"
	// The details of an invalid send body.
	msgMustBeSpecified = "Must be specified"
	msgMustBeArray     = "Must be an array"
	msgMessagesSize    = "Size must be between 1 and 5"
	msgMustBeObject    = "Must be a JSON object"
	msgMustBeString    = "Must be a non-empty string"
	msgMustBeStrings   = "Must be an array of strings"
	msgToSize          = "Size must be between 1 and 500"
)

// hostRole is the host a listener plays.
type hostRole int

const (
	// hostAll serves every path (ServeHTTP, fake-server).
	hostAll hostRole = iota
	// hostAPI plays api.line.me: every path but the data host's.
	hostAPI
	// hostData plays api-data.line.me: the data host's paths only.
	hostData
)

func (h hostRole) serves(path string) bool {
	switch h {
	case hostAPI:
		return !isDataPath(path)
	case hostData:
		return isDataPath(path)
	}
	return true
}

// hostHandler serves one of the server's listeners.
type hostHandler struct {
	s    *Server
	role hostRole
}

func (h hostHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.s.serve(w, r, h.role) }

// isDataPath reports whether api-data.line.me serves path, whatever the
// method (LINE-MESSAGING-API.md, "Hosts", from the upstream OpenAPI files).
func isDataPath(path string) bool {
	for _, pattern := range [...]string{
		"/v2/bot/message/{}/content",
		"/v2/bot/message/{}/content/preview",
		"/v2/bot/message/{}/content/transcoding",
		"/v2/bot/richmenu/{}/content",
		"/v2/bot/audienceGroup/upload/byFile",
	} {
		if _, ok := matchPath(path, pattern); ok {
			return true
		}
	}
	return false
}

// matchPath matches path against pattern, whose "{}" segments match any
// non-empty segment; it returns those segments.
func matchPath(path, pattern string) ([]string, bool) {
	var params []string
	for pattern != "" {
		want, restPattern, _ := strings.Cut(pattern, "/")
		got, restPath, cut := strings.Cut(path, "/")
		switch {
		case want == "{}" && got != "":
			params = append(params, got)
		case want != got:
			return nil, false
		}
		pattern, path = restPattern, restPath
		if pattern == "" && cut {
			return nil, false // path has more segments
		}
		if pattern != "" && !cut {
			return nil, false // path has fewer
		}
	}
	return params, path == ""
}

// isMessagingPath reports whether path belongs to the Messaging API.
func isMessagingPath(path string) bool { return strings.HasPrefix(path, "/v2/bot/") }

// endpoint is a Messaging API operation the fake serves.
type endpoint int

const (
	epNone endpoint = iota
	epPush
	epMulticast
	epNarrowcast
	epBroadcast
	epInfo
	epContent
	epRichMenuUpload
)

func (e endpoint) send() bool { return e >= epPush && e <= epBroadcast }

// messagingRoute returns the operation served for method and path.
func messagingRoute(method, path string) endpoint {
	switch {
	case method == http.MethodPost && path == "/v2/bot/message/push":
		return epPush
	case method == http.MethodPost && path == "/v2/bot/message/multicast":
		return epMulticast
	case method == http.MethodPost && path == "/v2/bot/message/narrowcast":
		return epNarrowcast
	case method == http.MethodPost && path == "/v2/bot/message/broadcast":
		return epBroadcast
	case method == http.MethodGet && path == "/v2/bot/info":
		return epInfo
	}
	if _, ok := matchPath(path, "/v2/bot/message/{}/content"); ok && method == http.MethodGet {
		return epContent
	}
	if _, ok := matchPath(path, "/v2/bot/richmenu/{}/content"); ok && method == http.MethodPost {
		return epRichMenuUpload
	}
	return epNone
}

// Send is a message send the server accepted: a valid POST to
// /v2/bot/message/{push,multicast,narrowcast,broadcast} with a valid
// token, not refused by its retry key.
type Send struct {
	// Time is the server's clock when the send was accepted.
	Time time.Time
	// ChannelID is the channel of the token the send carried.
	ChannelID string
	// Path is the URL path, e.g. "/v2/bot/message/push".
	Path string
	// RetryKey is the X-Line-Retry-Key header as sent; "" when none.
	RetryKey string
	// RequestID is the X-Line-Request-Id of the accepting answer: the
	// X-Line-Accepted-Request-Id of any 409 for the same key.
	RequestID string
	// Body is the request body as sent.
	Body []byte
	// SentMessages is what a push answered (one per message); nil for
	// the other sends.
	SentMessages []SentMessage
}

func (s Send) clone() Send {
	s.Body = append([]byte(nil), s.Body...)
	s.SentMessages = append([]SentMessage(nil), s.SentMessages...)
	return s
}

// SentMessage is one entry of a push's sentMessages.
type SentMessage struct {
	// ID is the message ID: 18 random digits.
	ID string `json:"id"`
	// QuoteToken is a random base64url string.
	QuoteToken string `json:"quoteToken"`
}

// Upload is a rich menu image upload the server answered 200
// (POST /v2/bot/richmenu/{richMenuId}/content). The body was counted,
// not kept.
type Upload struct {
	// Time is the server's clock when the upload was answered.
	Time time.Time
	// ChannelID is the channel of the token the upload carried.
	ChannelID string
	// Path is the URL path.
	Path string
	// ContentType is the Content-Type header.
	ContentType string
	// Bytes is the length of the body read.
	Bytes int64
}

// Bot is the answer of GET /v2/bot/info: stable per channel ID, the same
// on every server.
type Bot struct {
	// UserID is "U" and 32 hex digits.
	UserID string `json:"userId"`
	// BasicID is "@" and 8 hex digits.
	BasicID string `json:"basicId"`
	// DisplayName is "oauthtest bot <channel ID>".
	DisplayName string `json:"displayName"`
	// PictureURL is an https URL, never fetched by the fake.
	PictureURL string `json:"pictureUrl"`
	// ChatMode is "bot".
	ChatMode string `json:"chatMode"`
	// MarkAsReadMode is "auto".
	MarkAsReadMode string `json:"markAsReadMode"`
}

// BotFor is the bot of channelID, as GET /v2/bot/info answers it.
func BotFor(channelID string) Bot {
	sum := sha256.Sum256([]byte("oauthtest bot " + channelID))
	h := hex.EncodeToString(sum[:])
	return Bot{
		UserID:         "U" + h[:32],
		BasicID:        "@" + h[32:40],
		DisplayName:    "oauthtest bot " + channelID,
		PictureURL:     "https://profile.line-scdn.net/oauthtest/" + channelID,
		ChatMode:       "bot",
		MarkAsReadMode: "auto",
	}
}

// WithOnSend makes the server call fn with each send it accepts, outside
// its lock, before the send's answer is written (so a client holding its
// answer finds its send reported). fn gets its own copy.
func WithOnSend(fn func(Send)) Option {
	return func(o *options) { o.onSend = fn }
}

// Sends returns a copy of the sends accepted, oldest first. A refused
// send (400, 401, 409, 413, a fault's answer before accepting) is not
// one.
func (s *Server) Sends() []Send {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Send, len(s.sends))
	for i, snd := range s.sends {
		out[i] = snd.clone()
	}
	return out
}

// Uploads returns a copy of the rich menu image uploads answered 200,
// oldest first.
func (s *Server) Uploads() []Upload {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Upload(nil), s.uploads...)
}

// SendAttempts is the number of send requests seen with retryKey (the
// header as sent) whose token was valid for channelID, whatever their
// answer: the attempt count [Server.FaultSends] passes. Requests whose
// token was not valid count under channelID "".
func (s *Server) SendAttempts(channelID, retryKey string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.attempts[attemptKey{channelID: channelID, retryKey: retryKey}]
}

// FaultSends installs schedule, consulted for every POST to the four send
// paths that carries an X-Line-Retry-Key header, after the queued faults
// ([Server.InjectFault]): a request that takes a queued fault does not
// consult it. attempt is the 1-based count of send requests seen with
// that key (as sent) on the token's channel, counted atomically, whether
// or not a fault applied; returning true applies the fault returned (its
// Path and RetryKey are ignored). schedule is called outside the server's
// lock and may run concurrently. nil removes it.
//
// "At most N faults for every send" is
//
//	srv.FaultSends(func(_ string, n int) (oauthtest.Fault, bool) {
//		return oauthtest.Fault{Status: 500, AfterAccept: true}, n <= N
//	})
func (s *Server) FaultSends(schedule func(retryKey string, attempt int) (Fault, bool)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faultSends = schedule
}

// attemptKey names the attempts of one retry key (as sent) on one channel.
type attemptKey struct{ channelID, retryKey string }

// retryKeyID names an accepted retry key: keys are compared as UUIDs.
type retryKeyID struct {
	channelID string
	key       uuid.UUID
}

// acceptedKey is what the answer to a repeated key needs.
type acceptedKey struct {
	at           time.Time
	requestID    string
	sentMessages []SentMessage // push only
}

// detail is one entry of LINE's error details.
type detail struct {
	Message  string `json:"message"`
	Property string `json:"property"`
}

// messageBody is LINE's Messaging API error body, or a push's 409.
type messageBody struct {
	Message      string        `json:"message"`
	Details      []detail      `json:"details,omitempty"`
	SentMessages []SentMessage `json:"sentMessages,omitempty"`
}

// pushBody is push's 200 body.
type pushBody struct {
	SentMessages []SentMessage `json:"sentMessages"`
}

// readMessaging reads a Messaging API request: a send's body (at most
// maxSendBody), an upload's length (at most maxUploadBody, not kept), and
// discards any other body (at most maxRequestBody).
func (s *Server) readMessaging(w http.ResponseWriter, hr *http.Request) exchange {
	ep := messagingRoute(hr.Method, hr.URL.Path)
	var body []byte
	var size int64
	var readErr error
	switch {
	case ep.send():
		body, readErr = io.ReadAll(http.MaxBytesReader(w, hr.Body, maxSendBody))
	case ep == epRichMenuUpload:
		size, readErr = io.Copy(io.Discard, http.MaxBytesReader(w, hr.Body, maxUploadBody))
	default:
		_, readErr = io.Copy(io.Discard, http.MaxBytesReader(w, hr.Body, maxRequestBody))
	}
	ex := exchange{send: ep.send()}
	if ex.send {
		if v, ok := bearerToken(hr.Header); ok {
			if tok, valid := s.Lookup(v); valid {
				ex.channelID = tok.ChannelID
			}
		}
	}
	ex.process = func(requestID string) (response, *Send) {
		return s.messaging(hr, ep, body, size, readErr, requestID)
	}
	return ex
}

// bearerToken returns the token of the one Authorization header, if it
// follows the Bearer scheme (the scheme name in any case, RFC 7235).
func bearerToken(h http.Header) (string, bool) {
	v := h.Values("Authorization")
	if len(v) != 1 {
		return "", false
	}
	scheme, tok, found := strings.Cut(v[0], " ")
	if !found || !strings.EqualFold(scheme, tokenTypeBearer) || tok == "" {
		return "", false
	}
	return tok, true
}

// messaging answers a Messaging API request: its token, then its retry
// key, its route, its body and its operation.
func (s *Server) messaging(hr *http.Request, ep endpoint, body []byte, size int64, readErr error, requestID string) (response, *Send) {
	v, hasBearer := bearerToken(hr.Header)
	if !hasBearer {
		return messageError(http.StatusUnauthorized, msgAuthRequired), nil
	}
	tok, valid := s.Lookup(v)
	if !valid {
		return messageError(http.StatusUnauthorized, msgAuthFailed), nil
	}
	keys := hr.Header.Values(headerRetryKey)
	var key uuid.UUID
	if len(keys) > 0 {
		if !ep.send() {
			return messageError(http.StatusBadRequest, msgKeyNotSupported), nil
		}
		var ok bool
		if key, ok = parseRetryKey(keys); !ok {
			return messageError(http.StatusBadRequest, msgKeyInvalid), nil
		}
	}
	if ep == epNone {
		return messageError(http.StatusNotFound, msgNotFound), nil
	}
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(readErr, &tooLarge):
		return messageError(http.StatusRequestEntityTooLarge, msgTooLarge), nil
	case readErr != nil:
		return messageError(http.StatusBadRequest, msgBodyUnread), nil
	}
	now := s.Now()
	switch ep {
	case epInfo:
		return ok(BotFor(tok.ChannelID)), nil
	case epContent:
		return s.content(hr.URL.Path), nil
	case epRichMenuUpload:
		s.mu.Lock()
		defer s.mu.Unlock()
		s.uploads = append(s.uploads, Upload{Time: now, ChannelID: tok.ChannelID, Path: hr.URL.Path,
			ContentType: hr.Header.Get("Content-Type"), Bytes: size})
		return ok(struct{}{}), nil
	}
	rawKey := ""
	if len(keys) > 0 {
		rawKey = keys[0]
	}
	return s.send(hr, ep, body, tok.ChannelID, rawKey, key, requestID, now)
}

// parseRetryKey parses the one X-Line-Retry-Key header: a UUID in its
// 8-4-4-4-12 hex form only (uuid.Parse also takes braces, a urn: prefix
// and 32 bare digits).
func parseRetryKey(values []string) (uuid.UUID, bool) {
	if len(values) != 1 || len(values[0]) != retryKeyLen {
		return uuid.Nil, false
	}
	u, err := uuid.Parse(values[0])
	return u, err == nil
}

// send checks a send and accepts it, unless its retry key was accepted
// within retryKeyTTL of the key's first attempt: checking and accepting
// are one step under the lock.
func (s *Server) send(hr *http.Request, ep endpoint, body []byte, channelID, rawKey string, key uuid.UUID, requestID string, now time.Time) (response, *Send) {
	if mt, _, err := mime.ParseMediaType(hr.Header.Get("Content-Type")); err != nil || mt != contentTypeJSON {
		return messageError(http.StatusBadRequest, msgNotJSONType), nil
	}
	n, bad := checkSend(ep, body)
	if bad != nil {
		return *bad, nil
	}
	var sent []SentMessage
	if ep == epPush {
		sent = newSentMessages(n)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if rawKey != "" {
		id := retryKeyID{channelID: channelID, key: key}
		first, tried := s.firstTry[id]
		if !tried {
			first = now
		}
		if a, dup := s.retryKeys[id]; dup && !a.at.Before(first) && now.Before(first.Add(retryKeyTTL)) {
			b := messageBody{Message: msgKeyAccepted}
			if ep == epPush {
				b.SentMessages = a.sentMessages
			}
			return response{status: http.StatusConflict, body: b,
				header: http.Header{headerAcceptedRequestID: {a.requestID}}}, nil
		}
		s.retryKeys[id] = acceptedKey{at: now, requestID: requestID, sentMessages: sent}
	}
	snd := Send{Time: now, ChannelID: channelID, Path: hr.URL.Path, RetryKey: rawKey, RequestID: requestID,
		Body: body, SentMessages: sent}
	s.sends = append(s.sends, snd)
	switch ep {
	case epPush:
		return ok(pushBody{SentMessages: sent}), &snd
	case epNarrowcast:
		return response{status: http.StatusAccepted, body: struct{}{}}, &snd
	}
	return ok(struct{}{}), &snd
}

// checkSend checks a send's JSON body and returns its number of messages,
// or the 400 to answer.
func checkSend(ep endpoint, body []byte) (int, *response) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil || m == nil {
		r := messageError(http.StatusBadRequest, msgNotJSON)
		return 0, &r
	}
	var details []detail
	add := func(property, msg string) { details = append(details, detail{Message: msg, Property: property}) }
	raw, found := m["messages"]
	var messages []json.RawMessage
	switch {
	case !found:
		add("messages", msgMustBeSpecified)
	case json.Unmarshal(raw, &messages) != nil || messages == nil:
		add("messages", msgMustBeArray)
	case len(messages) < 1 || len(messages) > maxMessages:
		add("messages", msgMessagesSize)
	default:
		for i, raw := range messages {
			var msg map[string]json.RawMessage
			property := fmt.Sprintf("messages[%d]", i)
			if json.Unmarshal(raw, &msg) != nil || msg == nil {
				add(property, msgMustBeObject)
				continue
			}
			var typ string
			if json.Unmarshal(msg["type"], &typ) != nil || typ == "" {
				add(property+".type", msgMustBeString)
			}
		}
	}
	switch ep {
	case epPush:
		var to string
		if json.Unmarshal(m["to"], &to) != nil || to == "" {
			add("to", msgMustBeString)
		}
	case epMulticast:
		var to []string
		switch {
		case json.Unmarshal(m["to"], &to) != nil || to == nil:
			add("to", msgMustBeStrings)
		case len(to) < 1 || len(to) > maxMulticastTo:
			add("to", msgToSize)
		default:
			for i, id := range to {
				if id == "" {
					add(fmt.Sprintf("to[%d]", i), msgMustBeString)
				}
			}
		}
	}
	if len(details) > 0 {
		r := response{status: http.StatusBadRequest,
			body: messageBody{Message: fmt.Sprintf(bodyErrorsFormat, len(details)), Details: details}}
		return 0, &r
	}
	return len(messages), nil
}

// newSentMessages makes n sentMessages entries.
func newSentMessages(n int) []SentMessage {
	out := make([]SentMessage, n)
	for i := range out {
		b := randomBytes(sentMessageIDDigits)
		id := make([]byte, sentMessageIDDigits)
		for j, x := range b {
			id[j] = '0' + x%10
		}
		id[0] = '1' + b[0]%9 // no leading zero
		out[i] = SentMessage{ID: string(id), QuoteToken: base64.RawURLEncoding.EncodeToString(randomBytes(quoteTokenBytes))}
	}
	return out
}
