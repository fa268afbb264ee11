// Package oauthtest is an in-process fake of LINE's Channel Access Token
// API (LINE reference, "Channel access token"), for linetoken's tests and
// for its users' tests. It serves all eight operations on a loopback port
// and enforces LINE's rules with LINE's documented statuses and bodies.
// It also serves the few Messaging API operations a proxy in front of
// LINE needs (see "Messaging API"): message sends with retry keys, bot
// info and content, behind Bearer tokens it issued.
//
//	srv := oauthtest.NewServer()
//	defer srv.Close()
//	ch := srv.NewChannel(t) // random channel, secret and registered key
//	client, _ := oauth.NewClient(srv.Config(ch.ID))
//	tok, _ := client.IssueToken(ctx, time.Hour)
//	srv.Advance(time.Hour) // the token is now expired for real
//
// # Clock
//
// The server's clock ([Server.Now]) is real time plus every [Server.Advance].
// Tokens expire and assertions are judged by it; give the client
// Config.Clock = srv.Now ([Server.Config] does) so assertions are signed
// in the server's time.
//
// # Tokens
//
// v2.1 and stateless tokens are JWS-shaped (three base64url parts, HS256
// under a per-server key), as LINE's are; short-lived and long-lived
// tokens are opaque standard-base64 strings of 172 characters with '+',
// '/' and '=', as LINE's are. Every channel has a long-lived token
// ([Server.LongLivedToken]) that never expires: verify reports about
// 3138007490 seconds left.
//
// # Messaging API
//
// The fake plays two hosts, as LINE does (../../../shared/LINE-MESSAGING-API.md,
// "Hosts"). [Server.URL] plays api.line.me and [Server.DataURL], a second
// loopback listener, plays api-data.line.me. The data host's paths are
// GET /v2/bot/message/{messageId}/content (also /content/preview and
// /content/transcoding), GET and POST /v2/bot/richmenu/{richMenuId}/content
// and POST and PUT /v2/bot/audienceGroup/upload/byFile; whatever the
// method, they answer 404 {"message":"Not found"} at URL, and every other
// path (the token API included) answers the same at DataURL. Such a
// request is logged and counted in Stats.Requests but takes no fault.
// [Server.ServeHTTP], which fake-server serves on its one --addr (a proxy
// uses it as both api_url and data_url), serves every path. Both
// listeners share one state, clock, fault queue and request log; a
// [Request]'s Host tells them apart.
//
// Operations served:
//
//	POST /v2/bot/message/push        200 {"sentMessages":[{"id","quoteToken"}...]}, one per message
//	POST /v2/bot/message/multicast   200 {}
//	POST /v2/bot/message/narrowcast  202 {}
//	POST /v2/bot/message/broadcast   200 {}
//	GET  /v2/bot/info                200 {"userId","basicId","displayName","pictureUrl","chatMode","markAsReadMode"} (BotFor)
//	GET  /v2/bot/message/{messageId}/content    (data host) 200 application/octet-stream, test-only sizes below
//	POST /v2/bot/richmenu/{richMenuId}/content  (data host) 200 {}, the body counted ([Server.Uploads])
//
// Every request to a path under /v2/bot/ is checked in this order, the
// first failure answering:
//
//  1. Authorization: one header "Bearer <token>" (the scheme in any
//     case), else 401 {"message":"Authorization header required. Must
//     follow the scheme, 'Authorization: Bearer <ACCESS TOKEN>'"}; the
//     token one this server issued and valid now by its clock ([Server.Lookup]:
//     v2.1, short-lived, stateless or long-lived; not expired, not
//     revoked), else 401 {"message":"Authentication failed. Confirm that
//     the access token in the authorization header is valid."}. The
//     token's channel is the request's: its bot, its sends, its retry keys.
//  2. X-Line-Retry-Key, when present: on anything but a POST to the four
//     send paths, 400 {"message":"X-Line-Retry-Key is only supported by
//     push, multicast, narrowcast and broadcast"}; more than one header,
//     or one that is not a UUID in its 36-character 8-4-4-4-12 hex form
//     (either case), 400 {"message":"X-Line-Retry-Key must be a UUID in
//     hexadecimal form (8-4-4-4-12)"}.
//  3. The operation: any other method and path, 404 {"message":"Not found"}.
//  4. The body: a send's is read up to 2 MiB, an upload's counted up to
//     64 MiB (never kept), any other discarded up to 64 KiB; longer, 413
//     {"message":"Request Entity Too Large"}; a body that breaks off, 400
//     {"message":"The request body could not be read"}.
//  5. A send: Content-Type application/json (a charset parameter is
//     fine), else 400 {"message":"Content-Type must be application/json"};
//     a JSON object, else 400 {"message":"The request body could not be
//     parsed as JSON"}; then "messages" an array of 1 to 5 JSON objects,
//     each with a non-empty string "type"; for push, "to" a non-empty
//     string; for multicast, "to" an array of 1 to 500 non-empty strings.
//     Other members are not checked. Every broken rule is one detail of
//     one 400 in LINE's shape: {"message":"The request body has N
//     error(s)","details":[{"message":"...","property":"..."}]}, with
//     property messages, messages[i], messages[i].type, to or to[i] and
//     message "Must be specified", "Must be an array", "Size must be
//     between 1 and 5", "Must be a JSON object", "Must be a non-empty
//     string", "Must be an array of strings" or "Size must be between 1
//     and 500".
//  6. The retry key: a key is valid for 24 hours (the server's clock)
//     from its first attempt on the channel, accepted or not; after that
//     it starts afresh. A send whose key this channel accepted within the
//     key's 24 hours answers 409 {"message":"The
//     retry key is already accepted"} with X-Line-Accepted-Request-Id,
//     the X-Line-Request-Id the accepting answer carried, and for push
//     the accepted push's sentMessages (none when the key was accepted by
//     another send path). Otherwise the send is accepted: recorded
//     ([Server.Sends], [WithOnSend]) and its key remembered.
//     Checking and accepting are one step under the server's lock: of
//     concurrent sends with one key, exactly one is accepted. Keys are
//     compared as UUIDs (so case does not matter), per channel, across
//     the four send paths.
//
// Test-only content sizes: the content of message "bytes-<N>" (N in
// decimal, 0 to 1 GiB; [ContentMessageID]) is N bytes, answered with
// Content-Length N and written from one fixed 32 KiB chunk, so no size
// is ever held whole. Byte i is [ContentByte](i); [VerifyContent] checks
// a body. Any other message ID answers 404 {"message":"Not found"}.
//
// Faults ([Server.InjectFault]) apply to these paths as to the token
// API, matched by [Fault].Path and, when set, [Fault].RetryKey. A fault
// with AfterAccept applies after the request is processed: a valid send
// is accepted and recorded, then the fault answers (Status and Body),
// drops the connection, or waits Delay before the normal answer: the
// cases retry keys exist for. [Server.FaultSends] schedules faults per
// retry key and attempt ("the first N attempts of every key"); it is
// consulted only when no queued fault matched. Stats.Faulted counts both.
// Requests are logged like the token API's, Authorization REDACTED.
//
// Choices where LINE documents nothing, for the Messaging API, each with
// its reason. The texts of the 400s for a retry key, a Content-Type, an
// unreadable body and the body details are this fake's: LINE documents
// the statuses and the body shape. Why: a failing test is readable; a
// client acts on the status. The 2 MiB, 64 MiB and 64 KiB caps are this
// fake's: LINE documents none. Why: bodies are read with a cap. A wrong
// method answers 404 {"message":"Not found"}, not 405. Why: the fake
// routes by method and path, as LINE's router appears to. A body is
// checked after the token and the retry key's form, and a repeated key
// after the body. Why: a 400 or 401 never depends on what was accepted,
// and a proxy resends the same body. Answers carry X-Line-Request-Id and
// Cache-Control: no-store, as the token API's do.
//
// # Rules enforced
//
// These rules are LINE's documented behaviour
// (../../../shared/LINE-TOKEN-API.md); where the fake goes beyond LINE's
// words, "Choices where LINE documents nothing" says how and why. The
// exact answers are listed under "Documented errors" and, where LINE
// gives none, under the choices.
//
//   - Assertions (v2.1 issue, key-ID list, stateless by JWT): header alg
//     RS256 and typ JWT; kid registered ([Server.RegisterKey]), else 404
//     {"message":"Cannot find channel key that satisfies the conditions"}
//     (a missing kid too); RS256 signature by that key; iss = sub = the
//     channel owning the key; aud exactly "https://api.line.me/"; exp a JSON
//     integer after now and at most 30 minutes ahead; token_exp a JSON
//     integer in 1..2592000. Numbers sent as strings, fractions and arrays
//     for aud are refused with 400.
//   - v2.1: at most 30 active tokens per channel, the 31st refused with 400
//     {"message":"The maximum number of access tokens has already been
//     issued"}; expired and revoked tokens free their slot; verify reports
//     the remaining lifetime (whole seconds, rounded up); the key-ID list
//     shows active tokens only, in issue order.
//   - short-lived: expires_in 2592000; at most 30 per channel, the 31st
//     revokes the oldest; optional 429 past a rate limit
//     ([WithShortLivedRateLimit]; LINE's is 370 requests a second).
//   - stateless: expires_in 899 or 900 (exp is whole seconds, 15 minutes
//     ahead), by either form, unlimited, not revocable.
//   - long-lived: never expires; verify reports a huge expires_in.
//   - Requests: POST bodies must be application/x-www-form-urlencoded
//     (a charset parameter is fine) and carry exactly the documented
//     fields, each once and non-empty, and no query string; GET queries
//     exactly the documented parameters; the stateless endpoint exactly
//     one form's fields. An X-Line-Retry-Key header is refused with 400
//     invalid_request, as LINE does. No endpoint takes an Authorization
//     header: one sent is ignored (and logged).
//   - Answers are JSON with Content-Type application/json; a revoke's 200
//     has an empty body.
//
// # Documented errors
//
// Each of these is LINE's documented status and body for the case:
//
//	v2.1 issue, key-ID list, stateless by JWT: kid not registered (or
//	  missing): 404 {"message":"Cannot find channel key that satisfies the conditions"}
//	v2.1 issue, a bad or expired assertion (iss or sub not the key's
//	  channel; exp missing, past or more than 30 minutes ahead):
//	  400 {"error":"invalid_client","error_description":"iss and clientId of key do not match"}
//	v2.1 issue at 30 active tokens: 400 {"message":"The maximum number of access tokens has already been issued"}
//	key-ID list, exp missing, past or more than 30 minutes ahead: 400 {"error":"invalid_client","error_description":"Invalid exp"}
//	v2.1 verify: expired 400 invalid_request "The access token expired"; not three base64url parts: "The access token not JWS"
//	v2.1 revoke: "The access token not JWS" / "The access token malformed" (three base64url parts whose header or payload is not a JSON object); well formed but unknown: 200
//	short-lived issue: 400 {"error":"invalid_client","error_description":"invalid client_id"} / "invalid client_secret"; 429 past the rate limit
//	v2 verify: 400 invalid_request "access_token invalid" (unknown, revoked, expired) / "access_token in invalid format"
//	v2 revoke: unknown 200; malformed 400 {"error":"invalid_request"}
//	stateless, either form: a bad channel ID or secret, or any bad
//	  assertion but an unregistered kid: 400 {"error":"invalid_request","error_description":"Invalid 'client_credentials'."}
//	  (LINE documents this one 400 for the endpoint and no invalid_client)
//
// # Choices where LINE documents nothing
//
// Each choice is followed by its reason.
//
//   - v2.1 issue, other assertion failures: 400 invalid_client with
//     "Invalid alg", "Invalid typ", "Invalid signature", "Invalid aud",
//     "Invalid token_exp" (also a v2.1 issue without token_exp, which LINE
//     requires) or "Invalid client_assertion" (not a JWT). The key-ID list
//     answers the same texts, and "Invalid exp" for exp. Why: LINE
//     documents 400 invalid_client and one text, "iss and clientId of key
//     do not match", for "a bad or expired assertion"; this fake keeps
//     that text for the two checks it names (iss and exp) and names the
//     broken rule otherwise, so a failing test is readable. The client
//     classifies by status and code, never by these texts.
//   - Key-ID list, iss or sub not the key's channel: 400
//     {"error":"invalid_client","error_description":"iss and clientId of
//     key do not match"}. Why: LINE documents this text for the same
//     check on v2.1 issue and only "Invalid exp" for the key-ID list.
//   - v2.1 verify of three base64url parts whose header or payload is not
//     a JSON object: 400 invalid_request "The access token malformed".
//     Why: LINE documents that text for v2.1 revoke only; both v2.1
//     endpoints parse a token the same way here, and either answer is
//     [oauth.ErrInvalidToken] to the client.
//   - Verify of a revoked or unknown v2.1 token (or of a stateless token,
//     which LINE offers no verify for): 400 {"error":"invalid_request",
//     "error_description":"access_token invalid"}. Why: the v2 verify
//     text, so the client reports ErrInvalidToken.
//   - v2.1 verify always sends scope. Why: LINE's example has it; LINE
//     says only that it may be absent.
//   - v2.1 revoke with an unknown channel ID or a wrong secret: 400
//     invalid_client "invalid client_id" / "invalid client_secret". Why:
//     the short-lived issue texts for the same credentials; credentials
//     are checked before the token. A token of another channel, an
//     expired one or a stateless one is left alone and answers 200, like
//     an unknown one (LINE documents 200 for unknown tokens).
//   - Revoking a stateless token (at either revoke endpoint) answers 200
//     and the token stays valid ([Server.Lookup] proves it). Why: LINE
//     says stateless tokens cannot be revoked, and answers 200 to a
//     well-formed token it does not know.
//   - v2 verify/revoke take a token to be malformed when it is empty,
//     longer than 2048 characters or holds anything but base64 (either
//     alphabet), '=' and '.'; a v2.1 or stateless token is well formed
//     and unknown there. Why: LINE names the answers, not the rule;
//     LINE's own tokens are 172 base64 characters.
//   - Missing, extra, repeated or empty fields, a query on a POST, a body
//     that does not parse: 400 {"error":"invalid_request",
//     "error_description":"some parameters missed or invalid"}. Why: the
//     upstream spec's example. A wrong Content-Type, grant_type or
//     client_assertion_type: 400 invalid_request naming the value
//     required; an X-Line-Retry-Key header: 400 invalid_request
//     "X-Line-Retry-Key is not supported by this endpoint". Why: LINE
//     documents the refusal, not its text.
//   - Any other path outside /v2/bot/: 404 {"message":"Not Found"}; a wrong method: 405
//     {"message":"Method Not Allowed"} with Allow; a body over 64 KiB:
//     413 {"message":"Request Entity Too Large"}. Why: LINE's {"message"}
//     shape, with the HTTP status text.
//   - The short-lived rate limit's 429 body is {"message":"Too many
//     requests"}; it sends no Retry-After. Why: LINE documents the status
//     only, and no Retry-After (inject one with [Fault].Header).
//   - The short-lived rate limit counts every POST to
//     /v2/oauth/accessToken, whatever its answer: refused ones (bad
//     credentials, fields, Content-Type, X-Line-Retry-Key, 429s) count as
//     much as issues. Not counted: a fault's answer, a body over 64 KiB
//     (413) and other methods (405). It counts over all channels in
//     windows of one second of the server's clock. Why: a rate limit
//     protects the service from requests, not from tokens.
//   - Every answer but a fault's carries X-Line-Request-Id (32 random hex
//     digits). Why: LINE is not sure token endpoints send it; sending it
//     lets clients' tests see that they surface it.
//   - Every answer but a fault's carries Cache-Control: no-store. Why:
//     LINE documents no cache headers; OAuth 2.0 (RFC 6749, section 5.1)
//     requires no-store on answers that carry tokens, and it is harmless
//     on the others. Injected faults answer exactly what they say, with
//     neither header.
//   - A v2.1 token's expires_in is its token_exp; the token_exp claim is
//     optional on the key-ID list and stateless issue, checked when
//     present. Why: token_exp is the lifetime of the v2.1 token to
//     issue; the key-ID list and stateless issue have no lifetime to
//     choose, and LINE does not say they require it.
//   - Stricter framing than LINE's words: exactly the documented fields,
//     each once and non-empty (extra ones refused, not ignored), no query
//     on a POST; a charset parameter on the Content-Type is accepted; a
//     missing kid is an unregistered one (404). Why: LINE documents the
//     fields to send, not what it tolerates; a fake that refuses anything
//     else catches a client that sends more than LINE asks for.
//   - verify's expires_in is rounded up to whole seconds; the key-ID list
//     is in issue order. Why: LINE sends whole seconds and no order; up
//     so a valid token never reports 0, issue order so tests can predict it.
//   - RegisterKey also refuses members other than kty, alg, use, key_ops,
//     n and e; the same public key may be registered more than once and
//     gets a new kid (a random UUID) each time. Why: LINE lists the
//     members the console takes; its kids are UUIDs.
//
// # Tests
//
// client_test.go is the client suite of the first issue run against this
// fake: it drives all eight operations through the real oauth.Client, and
// its TestClientWireFormat checks, from [Server.Requests], the wire format
// that oauth's own TestWireFormat checks against a hand-written server.
//
// [Server.Requests] logs every request (method, path, host, content type,
// query, form, headers, status, request ID); [Server.Sends],
// [Server.Uploads] and [Server.SendAttempts] hold what the Messaging API
// accepted and saw; [Server.Stats] and [Server.IssueCount] count
// requests and tokens; [Server.ActiveTokens] counts v2.1 slots in use;
// [Server.InjectFault] and its shorthands ([Server.FailNext],
// [Server.HTMLNext], [Server.DelayNext], [Server.DropNext]) make the next
// requests fail. The server never logs: its net/http error log is
// discarded, and [Request] prints its secrets as REDACTED.
package oauthtest
