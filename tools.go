//go:build tools

// Package tools pins the tools the Makefile runs, so that `go generate` and
// `make lint-workflows` run the versions recorded in go.mod rather than
// whatever is installed: the code generator and actionlint.
package tools

import (
	_ "github.com/oapi-codegen/oapi-codegen/v2/cmd/oapi-codegen"
	_ "github.com/rhysd/actionlint/cmd/actionlint"
)
