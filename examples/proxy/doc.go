// Package proxy shows line-bot-sdk-go's Messaging API clients with
// `linetoken agent` as their LINE API endpoint: the SDK's endpoint is the
// agent's proxy and its channel access token the placeholder "linetoken".
// The agent puts the real token on every request, heals a 401 and adds an
// X-Line-Retry-Key to a push that has none, so the bot holds no token at
// all:
//
//	bot, _ := messaging_api.NewMessagingApiAPI("linetoken",
//		messaging_api.WithEndpoint("http://127.0.0.1:7879"))
//	blob, _ := messaging_api.NewMessagingApiBlobAPI("linetoken",
//		messaging_api.WithBlobEndpoint("http://127.0.0.1:7879"))
//
// The blob client (content downloads, rich menu images) takes its own
// endpoint option; the agent routes its paths to api-data.line.me. See
// proxy_test.go, which runs both against an agent in front of the
// oauthtest fake.
package proxy
