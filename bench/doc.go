// Package bench compares the per-call cost of linetoken's oauth.Client with
// line-bot-sdk-go v8's channel_access_token client and with hand-written
// net/http code, all against one loopback fake of LINE's token endpoints.
//
// It is a module of its own so the peer SDK never enters linetoken's
// go.mod. Everything lives in _test.go files; see README.md for how to run.
package bench
