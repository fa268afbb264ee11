package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
)

func TestRedisLogFormatsAndScrubs(t *testing.T) {
	var buf bytes.Buffer
	l := RedisLog{Logger: slog.New(slog.NewJSONHandler(&buf, nil)), Password: "pw-0123456789abcdef"}
	l.Printf(context.Background(), "redis: dial %s failed (auth %s)", "127.0.0.1:1", "pw-0123456789abcdef")
	var line map[string]any
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatalf("not one JSON log line: %q: %v", buf.String(), err)
	}
	if line["level"] != "WARN" || line["detail"] != "redis: dial 127.0.0.1:1 failed (auth REDACTED)" {
		t.Fatalf("log line = %v", line)
	}
	if strings.Contains(buf.String(), "pw-0123456789abcdef") {
		t.Fatal("the Redis password reached the log")
	}
}
