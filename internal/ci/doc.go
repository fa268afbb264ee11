// Package ci holds the tests of the repository's CI files: the GitHub
// Actions workflows in .github/workflows (actionlint, the make targets their
// steps run, the spec-drift step's issue filing), .ci/run and
// api/line-openapi-commit. It has no code of its own.
package ci
