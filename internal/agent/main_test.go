package agent_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package when a goroutine outlives the tests: every
// agent a test starts must stop its keepers, servers, TokenSources and
// store clients.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
