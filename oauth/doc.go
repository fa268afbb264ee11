// Package oauth is linetoken's client for LINE's Channel Access Token API:
// the eight operations of the API behind friendly names, JWT client
// assertions, assertion-key handling and typed errors.
//
// It is the stable API of linetoken. Package
// github.com/linetoken/linetoken/gen holds the low-level client generated
// from api/channel-access-token.yml, which this package uses for every
// request; its types never appear in this package's API.
//
// Token families (LINE reference, "Channel access token"):
//
//   - v2.1 tokens, issued with a JWT assertion signed by a key registered in
//     the LINE Developers Console: [Client.IssueToken], [Client.VerifyToken],
//     [Client.RevokeToken], [Client.ValidKeyIDs]. At most 30 are active per
//     channel; the 31st is refused ([ErrTokenLimitReached]).
//   - short-lived tokens, issued with the channel ID and secret, valid for 30
//     days: [Client.IssueShortLivedToken], [Client.VerifyShortLivedToken],
//     [Client.RevokeShortLivedToken] (the last two also take long-lived
//     tokens). At most 30 per channel; the 31st silently revokes the oldest.
//   - stateless tokens, valid for 15 minutes, unlimited and not revocable:
//     [Client.IssueStatelessToken].
//
// [TokenSource] keeps one token of a family fresh for many callers, shared
// between processes through a [Store] ([MemoryStore], [FileStore] or
// package redisstore). A failed refresh is retried with jittered backoff
// from Config.Retry and never sooner than LINE's Retry-After (up to 5
// minutes); a store that
// cannot be used is reported as [ErrStoreUnavailable].
//
// No value of this package's types prints a secret (channel secret, access
// token, JWT assertion, private key) under any fmt verb or through
// log/slog, and no error string carries one.
package oauth
