package redisstore_test

import (
	"context"
	"os"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/linetoken/linetoken/internal/testredis"
)

// startRedis starts a real redis-server for t (internal/testredis).
var startRedis = testredis.Start

// quietRedis drops go-redis's own log lines: its pool logs each failed
// dial, and these tests kill Redis on purpose.
type quietRedis struct{}

func (quietRedis) Printf(context.Context, string, ...any) {}

func TestMain(m *testing.M) {
	redis.SetLogger(quietRedis{})
	os.Exit(m.Run())
}
