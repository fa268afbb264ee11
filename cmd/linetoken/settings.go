package main

import (
	"errors"
	"flag"
	"fmt"
	"strings"

	"github.com/linetoken/linetoken/internal/capfile"
	"github.com/linetoken/linetoken/oauth"
)

// settings are the connection settings of one command: flag values, with
// the environment as fallback. Each is read only when the command needs
// it, so a broken key does not stop a verify, which needs none.
type settings struct {
	e          *env
	channelID  string
	secretFile string
	keyFile    string
	keyID      string
	baseURL    string
	has        map[string]bool // which settings flags this command offers
}

// Settings flag names.
const (
	flagChannelID  = "channel-id"
	flagSecretFile = "channel-secret-file"
	flagKeyFile    = "private-key-file"
	flagKeyID      = "key-id"
	flagBaseURL    = "base-url"
)

// newSettings registers the named settings flags on fs.
func newSettings(e *env, fs *flag.FlagSet, names ...string) *settings {
	s := &settings{e: e, has: map[string]bool{}}
	for _, n := range names {
		s.has[n] = true
		switch n {
		case flagChannelID:
			fs.StringVar(&s.channelID, n, "", "channel ID (default $"+oauth.EnvChannelID+")")
		case flagSecretFile:
			fs.StringVar(&s.secretFile, n, "", "file holding the channel secret (default $"+oauth.EnvChannelSecret+"; the secret itself is never a flag)")
		case flagKeyFile:
			fs.StringVar(&s.keyFile, n, "", "private assertion key file, PEM or JWK (default $"+oauth.EnvPrivateKeyFile+" or the key text in $"+oauth.EnvPrivateKey+")")
		case flagKeyID:
			fs.StringVar(&s.keyID, n, "", "key ID (kid) the LINE Developers Console returned for the public key (default $"+oauth.EnvKeyID+")")
		case flagBaseURL:
			fs.StringVar(&s.baseURL, n, "", "API base URL (default $"+oauth.EnvBaseURL+", else "+oauth.DefaultBaseURL+")")
		}
	}
	return s
}

// need says which credentials a command needs.
type need int

const (
	needChannelID need = 1 << iota
	needSecret
	needKey
	needKeyOrSecret // stateless issue: the key when there is one, else the secret
)

func (s *settings) get(key string) string { return strings.TrimSpace(s.e.getenv(key)) }

// where names the flag and variable that set a setting, for messages.
func (s *settings) where(flagName, envName string) string {
	if s.has[flagName] {
		return "set " + envName + " or pass --" + flagName
	}
	return "set " + envName
}

// config builds a client configuration holding what n asks for, and
// reports every setting that is missing or unusable at once, naming the
// variable and flag to set: never a value.
func (s *settings) config(n need) (oauth.Config, error) {
	cfg := oauth.Config{BaseURL: s.baseURL}
	if cfg.BaseURL == "" {
		cfg.BaseURL = s.get(oauth.EnvBaseURL)
	}
	var problems []string
	if n&needChannelID != 0 {
		cfg.ChannelID = s.channelID
		if cfg.ChannelID == "" {
			cfg.ChannelID = s.get(oauth.EnvChannelID)
		}
		if cfg.ChannelID == "" {
			problems = append(problems, "the channel ID is missing: "+s.where(flagChannelID, oauth.EnvChannelID))
		}
	}
	wantKey := n&needKey != 0 || (n&needKeyOrSecret != 0 && s.keyConfigured())
	if wantKey {
		key, err := s.key()
		if err != nil {
			problems = append(problems, err.Error())
		}
		cfg.Key = key
	}
	if n&needSecret != 0 || (n&needKeyOrSecret != 0 && !wantKey) {
		secret, err := s.secret()
		switch {
		case err != nil:
			problems = append(problems, err.Error())
		case secret == "" && n&needKeyOrSecret != 0:
			problems = append(problems, "no credentials: set "+oauth.EnvChannelSecret+" (or pass --"+flagSecretFile+
				"), or a private key ("+oauth.EnvPrivateKeyFile+" or --"+flagKeyFile+") with its key ID ("+oauth.EnvKeyID+" or --"+flagKeyID+")")
		case secret == "":
			problems = append(problems, "the channel secret is missing: "+s.where(flagSecretFile, oauth.EnvChannelSecret)+
				" (it is never taken as a flag value: command lines leak into shell history and ps)")
		}
		cfg.ChannelSecret = secret
	}
	if len(problems) > 0 {
		return oauth.Config{}, &usageError{msg: strings.Join(problems, "; ")}
	}
	return cfg, nil
}

// client is config followed by oauth.NewClient.
func (s *settings) client(n need) (*oauth.Client, error) {
	cfg, err := s.config(n)
	if err != nil {
		return nil, err
	}
	c, err := oauth.NewClient(cfg)
	switch {
	case err != nil && strings.Contains(err.Error(), "BaseURL"):
		return nil, usagef("%v (%s)", err, s.where(flagBaseURL, oauth.EnvBaseURL))
	case err != nil && strings.Contains(err.Error(), "ChannelID"):
		return nil, usagef("%v (%s)", err, s.where(flagChannelID, oauth.EnvChannelID))
	case err != nil:
		return nil, &usageError{msg: err.Error()}
	}
	return c, nil
}

// keyConfigured reports whether any private key setting is present.
func (s *settings) keyConfigured() bool {
	return s.keyFile != "" || s.get(oauth.EnvPrivateKeyFile) != "" || s.get(oauth.EnvPrivateKey) != ""
}

// key loads the private assertion key with its key ID.
func (s *settings) key() (*oauth.AssertionKey, error) {
	var data []byte
	var source string
	file := s.keyFile
	if file != "" {
		source = "--" + flagKeyFile
	} else {
		text, envFile := s.e.getenv(oauth.EnvPrivateKey), s.get(oauth.EnvPrivateKeyFile)
		switch {
		case strings.TrimSpace(text) != "" && envFile != "":
			return nil, fmt.Errorf("set only one of %s and %s", oauth.EnvPrivateKey, oauth.EnvPrivateKeyFile)
		case strings.TrimSpace(text) != "":
			data, source = []byte(text), oauth.EnvPrivateKey
		case envFile != "":
			file, source = envFile, oauth.EnvPrivateKeyFile
		default:
			return nil, errors.New("the private assertion key is missing: " + s.where(flagKeyFile, oauth.EnvPrivateKeyFile) +
				" (or put the key text in " + oauth.EnvPrivateKey + "); linetoken keygen makes one")
		}
	}
	if file != "" {
		d, err := readSmallFile(file)
		if err != nil {
			return nil, fmt.Errorf("%s: cannot read the private key file: %v", source, err)
		}
		data = d
	}
	keyID := s.keyID
	if keyID == "" {
		keyID = s.get(oauth.EnvKeyID)
	}
	key, err := oauth.ParseAssertionKey(data, keyID)
	switch {
	case errors.Is(err, oauth.ErrMissingKeyID):
		return nil, errors.New("the key ID is missing: " + s.where(flagKeyID, oauth.EnvKeyID) + " (the kid the LINE Developers Console returned for the public key)")
	case err != nil:
		return nil, fmt.Errorf("%s: %v", source, err)
	}
	return key, nil
}

// secret reads the channel secret: --channel-secret-file, else
// LINE_CHANNEL_SECRET. "" means none is set.
func (s *settings) secret() (string, error) {
	if s.secretFile != "" {
		d, err := readSmallFile(s.secretFile)
		if err != nil {
			return "", fmt.Errorf("--%s: cannot read the file: %v", flagSecretFile, err)
		}
		secret := strings.TrimSpace(string(d))
		if secret == "" {
			return "", fmt.Errorf("--%s: the file is empty", flagSecretFile)
		}
		return secret, nil
	}
	return s.get(oauth.EnvChannelSecret), nil
}

// maxSettingsFile caps what is read of a key or secret file: a 2048-bit
// private key is under 4 KiB; /dev/zero must not exhaust memory.
const maxSettingsFile = 64 << 10

// readSmallFile reads a key or secret file of at most maxSettingsFile
// bytes. Its errors name the problem, never the contents.
func readSmallFile(path string) ([]byte, error) {
	data, tooLarge, err := capfile.Read(path, maxSettingsFile)
	if tooLarge {
		return nil, fmt.Errorf("the file is larger than %d bytes: not a key or secret", maxSettingsFile)
	}
	return data, err
}
