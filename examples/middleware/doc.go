// Package middleware shows oauth.Middleware: an HTTP handler that needs a
// channel access token (a webhook that replies through the Messaging API,
// say) gets one from the request's context, and callers get 503 Service
// Unavailable while none can be had. See example_test.go.
package middleware
