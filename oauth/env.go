package oauth

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/linetoken/linetoken/internal/capfile"
)

// Environment variables read by [ConfigFromEnv] (and the linetoken CLI).
const (
	EnvChannelID      = "LINE_CHANNEL_ID"
	EnvChannelSecret  = "LINE_CHANNEL_SECRET"
	EnvPrivateKey     = "LINE_PRIVATE_KEY"      // PEM or JWK text
	EnvPrivateKeyFile = "LINE_PRIVATE_KEY_FILE" // path to a PEM or JWK file
	EnvKeyID          = "LINE_KEY_ID"
	EnvBaseURL        = "LINE_API_BASE_URL"
)

// ConfigFromEnv builds a Config from LINE_CHANNEL_ID, LINE_CHANNEL_SECRET,
// LINE_PRIVATE_KEY or LINE_PRIVATE_KEY_FILE, LINE_KEY_ID and
// LINE_API_BASE_URL. LINE_CHANNEL_ID is required, and so is a way to
// authenticate: LINE_CHANNEL_SECRET, or a private key with its key ID. Its
// error names every variable that is missing or wrong, never a value.
func ConfigFromEnv() (Config, error) { return ConfigFromLookup(os.Getenv) }

// ConfigFromLookup is [ConfigFromEnv] reading the variables through
// getenv, for programs and tests that keep their settings elsewhere.
// LINE_PRIVATE_KEY_FILE is still read from the file system.
func ConfigFromLookup(getenv func(string) string) (Config, error) {
	get := func(k string) string { return strings.TrimSpace(getenv(k)) }
	cfg := Config{
		ChannelID:     get(EnvChannelID),
		ChannelSecret: get(EnvChannelSecret),
		BaseURL:       get(EnvBaseURL),
	}
	var problems []string
	if cfg.ChannelID == "" {
		problems = append(problems, EnvChannelID+" is not set")
	}
	keyText, keyFile := getenv(EnvPrivateKey), get(EnvPrivateKeyFile)
	var keyData []byte
	switch {
	case strings.TrimSpace(keyText) != "" && keyFile != "":
		problems = append(problems, "set only one of "+EnvPrivateKey+" and "+EnvPrivateKeyFile)
	case strings.TrimSpace(keyText) != "":
		keyData = []byte(keyText)
	case keyFile != "":
		data, err := readKeyFile(keyFile)
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: cannot read the file: %v", EnvPrivateKeyFile, err))
		}
		keyData = data
	}
	if keyData != nil {
		key, err := ParseAssertionKey(keyData, get(EnvKeyID))
		switch {
		case errors.Is(err, ErrMissingKeyID):
			problems = append(problems, EnvKeyID+" is not set (the kid the LINE Developers Console returned for the public key)")
		case err != nil:
			problems = append(problems, keySource(keyFile)+": "+err.Error())
		default:
			cfg.Key = key
		}
	} else if get(EnvKeyID) != "" {
		problems = append(problems, EnvKeyID+" is set but neither "+EnvPrivateKey+" nor "+EnvPrivateKeyFile+" is")
	}
	if cfg.ChannelSecret == "" && keyData == nil {
		problems = append(problems, "neither "+EnvChannelSecret+" nor "+EnvPrivateKey+"/"+EnvPrivateKeyFile+" is set (one is needed to authenticate)")
	}
	if len(problems) > 0 {
		return Config{}, fmt.Errorf("oauth: configuration from the environment: %s", strings.Join(problems, "; "))
	}
	if _, err := cfg.validate(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

func keySource(file string) string {
	if file != "" {
		return EnvPrivateKeyFile
	}
	return EnvPrivateKey
}

// readKeyFile reads a key file of at most maxKeyInput bytes (a 2048-bit
// private key is under 4 KiB); its errors never quote the contents.
func readKeyFile(path string) ([]byte, error) {
	data, tooLarge, err := capfile.Read(path, maxKeyInput)
	if tooLarge {
		return nil, fmt.Errorf("larger than %d bytes: not a private key", maxKeyInput)
	}
	return data, err
}
