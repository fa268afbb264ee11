// Package linetoken is the root of the linetoken module: a Go library and
// command-line tool for LINE's Channel Access Token API. The stable API is
// package [github.com/linetoken/linetoken/oauth]; package gen holds the
// low-level client generated from api/channel-access-token.yml.
package linetoken

//go:generate go run github.com/oapi-codegen/oapi-codegen/v2/cmd/oapi-codegen -config gen/cfg.yaml api/channel-access-token.yml
