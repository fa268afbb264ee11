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
//   - Assertions (v2.1 issue, key-ID list, stateless by JWT): header alg
//     RS256 and typ JWT; kid registered ([Server.RegisterKey]), else 404
//     {"message":"Cannot find channel key that satisfies the conditions"}
//     (a missing kid too); RS256 signature by that key; iss = sub = the
//     channel owning the key; aud exactly "https://api.line.me/"; exp a JSON
//     integer after now and at most 30 minutes ahead; token_exp a JSON
//     integer in 1..2592000. Numbers sent as strings, fractions and arrays
//     for aud are refused. Failures are 400 invalid_client.
//   - v2.1: at most 30 active tokens per channel, the 31st refused with 400
//     {"message":"The maximum number of access tokens has already been
//     issued"}; expired and revoked tokens free their slot; verify reports
//     the remaining lifetime (whole seconds, rounded up); the key-ID list
//     shows active tokens only, in issue order.
//   - short-lived: expires_in 2592000; at most 30 per channel, the 31st
//     revokes the oldest; optional 429 {"message":"Too many requests"}
//     ([WithShortLivedRateLimit]).
//   - stateless: expires_in 899 or 900 (exp is whole seconds, 15 minutes
//     ahead), by either form, unlimited, not revocable.
//   - Requests: POST bodies must be application/x-www-form-urlencoded
//     (a charset parameter is fine) and carry exactly the documented
//     fields, each once and non-empty, and no query string; GET queries
//     exactly the documented parameters; the stateless endpoint exactly
//     one form's fields. Bodies over 64 KiB get 413. Any other path is 404
//     {"message":"Not Found"}; a wrong method 405 {"message":"Method Not
//     Allowed"} with Allow. An X-Line-Retry-Key header is refused with 400
//     invalid_request, as LINE does. An Authorization header is ignored
//     (and logged).
//   - Answers are JSON with Content-Type application/json (revoke: an
//     empty body) and carry X-Line-Request-Id (32 random hex digits) and
//     Cache-Control: no-store. Injected faults answer exactly what they
//     say, without a request ID.
//
// # Documented errors
//
//	v2.1 issue, stateless by JWT: iss/sub not the key's channel, or exp
//	  expired or too far ahead: 400 {"error":"invalid_client","error_description":"iss and clientId of key do not match"}
//	key-ID list, exp expired or too far ahead: 400 {"error":"invalid_client","error_description":"Invalid exp"}
//	v2.1 verify: expired 400 invalid_request "The access token expired"; not three base64url parts: "The access token not JWS"
//	v2.1 revoke: "The access token not JWS" / "The access token malformed" (three parts whose header or payload is not JSON); unknown: 200
//	short-lived issue: 400 {"error":"invalid_client","error_description":"invalid client_id"} / "invalid client_secret"
//	v2 verify: 400 invalid_request "access_token invalid" (unknown, revoked, expired) / "access_token in invalid format"
//	v2 revoke: unknown 200; malformed 400 {"error":"invalid_request"}
//	stateless by secret, bad id or secret: 400 {"error":"invalid_request","error_description":"Invalid 'client_credentials'."}
//
// # Choices where LINE documents nothing
//
//   - Verify of a revoked or unknown v2.1 token (or of a stateless token,
//     which LINE offers no verify for): 400 {"error":"invalid_request",
//     "error_description":"access_token invalid"}, the v2 verify text, so
//     the client reports ErrInvalidToken.
//   - v2.1 revoke with an unknown channel ID or a wrong secret: 400
//     invalid_client "invalid client_id" / "invalid client_secret", the
//     short-lived issue texts; credentials are checked before the token. A
//     token of another channel, an expired one or a stateless one is left
//     alone and answers 200, like an unknown one.
//   - Revoking a stateless token (at either revoke endpoint) answers 200
//     and the token stays valid ([Server.Lookup] proves it).
//   - v2 verify/revoke take a token to be malformed when it is empty,
//     longer than 2048 characters or holds anything but base64 (either
//     alphabet), '=' and '.'; a v2.1 or stateless token is well formed
//     and unknown there.
//   - Other assertion failures: 400 invalid_client with "Invalid alg",
//     "Invalid typ", "Invalid signature", "Invalid aud", "Invalid
//     token_exp" (also a v2.1 issue without token_exp, which LINE
//     requires) or "Invalid client_assertion" (not a JWT).
//   - Missing, extra, repeated or empty fields, a query on a POST, a body
//     that does not parse: 400 {"error":"invalid_request",
//     "error_description":"some parameters missed or invalid"} (the spec's
//     example). A wrong Content-Type, grant_type or client_assertion_type:
//     400 invalid_request naming the value required.
//   - The short-lived rate limit counts requests (whatever their answer)
//     over all channels in windows of one second of the server's clock;
//     it sends no Retry-After, as LINE documents none (inject one with
//     [Fault].Header).
//   - A v2.1 token's expires_in is its token_exp; the token_exp claim is
//     optional on the key-ID list and stateless issue, checked when present.
//   - RegisterKey also refuses members other than kty, alg, use, key_ops,
//     n and e; the same public key may be registered more than once and
//     gets a new kid (a random UUID) each time.
//
// # Tests
//
// [Server.Requests] logs every request (method, path, content type, query,
// form, headers, status); [Server.Stats] and [Server.IssueCount] count
// requests and tokens; [Server.ActiveTokens] counts v2.1 slots in use;
// [Server.InjectFault] and its shorthands ([Server.FailNext],
// [Server.HTMLNext], [Server.DelayNext], [Server.DropNext]) make the next
// requests fail. The server never logs: its net/http error log is
// discarded, and [Request] prints its secrets as REDACTED.
package oauthtest
