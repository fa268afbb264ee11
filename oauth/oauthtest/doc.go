// Package oauthtest is an in-process fake of LINE's Channel Access Token
// API (LINE reference, "Channel access token"), for linetoken's tests and
// for its users' tests. It serves all eight operations on a loopback port
// and enforces LINE's rules with LINE's documented statuses and bodies.
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
//   - Any other path: 404 {"message":"Not Found"}; a wrong method: 405
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
// [Server.Requests] logs every request (method, path, content type, query,
// form, headers, status); [Server.Stats] and [Server.IssueCount] count
// requests and tokens; [Server.ActiveTokens] counts v2.1 slots in use;
// [Server.InjectFault] and its shorthands ([Server.FailNext],
// [Server.HTMLNext], [Server.DelayNext], [Server.DropNext]) make the next
// requests fail. The server never logs: its net/http error log is
// discarded, and [Request] prints its secrets as REDACTED.
package oauthtest
