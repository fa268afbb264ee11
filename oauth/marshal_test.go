package oauth_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/linetoken/linetoken/oauth"
)

// TestMarshalJSONRedacts: the types holding a secret encode with
// encoding/json to the same redacted form their LogValue gives, alone and
// nested, so a JSON log handler or an API dumping a struct shows no secret.
func TestMarshalJSONRedacts(t *testing.T) {
	key := mustKey(t)
	cfg := oauth.Config{ChannelID: testChannelID, ChannelSecret: testSecret, Key: key,
		BaseURL: "https://api.line.me/?access_token=tok-in-url"}
	const (
		wantKey = `{"key_id":"kid-under-test","private_key":"REDACTED"}`
		wantCfg = `{"channel_id":"1234567890","channel_secret":"REDACTED","key_id":"kid-under-test","base_url":"https://api.line.me/?access_token=REDACTED"}`
	)
	cases := []struct {
		name string
		v    any
		want string
	}{
		{"AssertionKey", *key, wantKey},
		{"*AssertionKey", key, wantKey},
		{"[]*AssertionKey", []*oauth.AssertionKey{key, nil}, `[` + wantKey + `,null]`},
		{"map of AssertionKey", map[string]oauth.AssertionKey{"k": *key}, `{"k":` + wantKey + `}`},
		{"struct holding a key", struct {
			Key *oauth.AssertionKey `json:"key"`
		}{key}, `{"key":` + wantKey + `}`},
		{"empty AssertionKey", oauth.AssertionKey{}, `{"key_id":"","private_key":"REDACTED"}`},
		{"Config", cfg, wantCfg},
		{"*Config", &cfg, wantCfg},
		{"[]Config", []oauth.Config{cfg}, `[` + wantCfg + `]`},
		{"Config with funcs set", oauth.Config{ChannelID: testChannelID, ChannelSecret: testSecret, Key: key,
			BaseURL: cfg.BaseURL, HTTPClient: &http.Client{}, Clock: time.Now, Logger: slog.New(slog.DiscardHandler)}, wantCfg},
		// An unset secret shows as "" quoted, as in LogValue and Token's JSON.
		{"zero Config", oauth.Config{}, `{"channel_id":"","channel_secret":"\"\"","key_id":"","base_url":""}`},
	}
	for _, tc := range cases {
		data, err := json.Marshal(tc.v)
		if err != nil {
			t.Errorf("%s: json.Marshal: %v", tc.name, err)
			continue
		}
		if string(data) != tc.want {
			t.Errorf("%s: json.Marshal =\n%s\nwant\n%s", tc.name, data, tc.want)
		}
	}

	// slog's JSON handler encodes a struct field with encoding/json: no
	// LogValue is consulted there.
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("loaded", "settings", struct {
		Config oauth.Config
		Key    *oauth.AssertionKey
	}{cfg, key})
	out := buf.String()
	if !strings.Contains(out, `"Config":`+wantCfg) || !strings.Contains(out, `"Key":`+wantKey) {
		t.Errorf("slog JSON = %s, want the redacted forms", out)
	}
	if strings.Contains(out, testSecret) || strings.Contains(out, key.PrivateKey.D.String()[:40]) || strings.Contains(out, "tok-in-url") {
		t.Errorf("slog JSON leaks: %s", out)
	}
}
