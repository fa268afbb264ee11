package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/linetoken/linetoken/oauth"
	"github.com/linetoken/linetoken/oauth/oauthtest"
)

const demoUsage = `Usage: linetoken demo

Walks the whole token lifecycle against an in-process fake of LINE's token
service (oauthtest): makes a channel with a registered key, issues,
verifies, lists, revokes, hits the 30-token limit and caches tokens with a
TokenSource. It needs no credentials and no network; tokens are shown
abbreviated (their first and last few characters).`

const (
	// demoLifetime of the demo's v2.1 tokens.
	demoLifetime = 24 * time.Hour
	// demoV21Limit is LINE's cap on active v2.1 tokens per channel.
	demoV21Limit = 30
	// demoTokenCalls is how many times the demo asks its TokenSource.
	demoTokenCalls = 3
	// shownTokenHead and shownTokenTail are how many of a token's first and
	// last characters the demo shows: the head tells a JWS ("eyJh") from
	// an opaque token; the tail tells tokens apart, since every JWS of the
	// fake starts with the same header.
	shownTokenHead = 4
	shownTokenTail = 6
	// minAbbrevFraction: a token is shown only when the shown characters
	// are at most this fraction of it (1/3).
	minAbbrevFraction = 3
)

// abbrev shows a token's first and last few characters only: good
// practice even for fakes, and enough to see whether two are the same.
func abbrev(token string) string {
	if len(token) < minAbbrevFraction*(shownTokenHead+shownTokenTail) {
		return "…"
	}
	return token[:shownTokenHead] + "…" + token[len(token)-shownTokenTail:]
}

// demo prints the transcript.
type demo struct {
	w    io.Writer
	step int
}

func (d *demo) section(title string) {
	d.step++
	fmt.Fprintf(d.w, "\n%d. %s\n", d.step, title)
}

// call prints one library call and what it returned, aligned.
func (d *demo) call(call, format string, args ...any) {
	fmt.Fprintf(d.w, "   %-40s -> %s\n", call, fmt.Sprintf(format, args...))
}

func (d *demo) say(format string, args ...any) {
	fmt.Fprintf(d.w, "   "+format+"\n", args...)
}

func runDemo(e *env, args []string) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	pos, err := parseFlags(e, fs, demoUsage, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("demo takes no arguments")
	}
	start := time.Now()
	d := &demo{w: e.stdout}
	ctx := e.ctx

	fmt.Fprintln(d.w, "linetoken demo: LINE channel access tokens, start to finish, against an")
	fmt.Fprintln(d.w, "in-process fake of LINE's token service. No credentials, no network.")
	fmt.Fprintln(d.w, "Tokens are fake but shown abbreviated, as real ones should be.")

	d.section("Set up: a fake LINE, a channel and an assertion key")
	srv := oauthtest.NewServer()
	defer srv.Close()
	d.call("srv := oauthtest.NewServer()", "listening on %s", srv.URL())
	ch, err := e.createChannel(srv)
	if err != nil {
		return err
	}
	d.call("ch, err := srv.CreateChannel()", "channel %s, kid %s", ch.ID, ch.KeyID)
	d.say("CreateChannel does what you do in the LINE Developers Console: it adds a channel")
	d.say("with a random secret (never printed), makes an RSA-2048 key pair with")
	d.say("oauth.GenerateAssertionKey, registers the public JWK and keeps the kid it is given.")
	client, err := oauth.NewClient(oauth.Config{
		BaseURL: srv.URL(), Clock: srv.Now,
		ChannelID: ch.ID, ChannelSecret: ch.Secret, Key: ch.Key,
	})
	if err != nil {
		return err
	}
	d.call("oauth.NewClient(cfg)", "a client; printing it hides its secrets:")
	d.say("   %v", client)

	d.section("Issue a channel access token v2.1 (JWT assertion)")
	tok, err := client.IssueToken(ctx, demoLifetime)
	if err != nil {
		return err
	}
	d.call("client.IssueToken(ctx, 24*time.Hour)", "%s  key_id %s, expires in %v", abbrev(tok.AccessToken), tok.KeyID, tok.ExpiresIn)

	d.section("Verify it")
	info, err := client.VerifyToken(ctx, tok.AccessToken)
	if err != nil {
		return err
	}
	d.call("client.VerifyToken(ctx, tok)", "client_id %s, scope %q, expires in %v", info.ClientID, info.Scope, info.ExpiresIn)

	d.section("List the valid key IDs (the v2.1 slots in use)")
	kids, err := client.ValidKeyIDs(ctx)
	if err != nil {
		return err
	}
	d.call("client.ValidKeyIDs(ctx)", "%v (%d of %d slots)", kids, len(kids), demoV21Limit)

	d.section("Short-lived and stateless tokens")
	short, err := client.IssueShortLivedToken(ctx)
	if err != nil {
		return err
	}
	d.call("client.IssueShortLivedToken(ctx)", "%s  expires in %s (the 31st would revoke the oldest)", abbrev(short.AccessToken), humanDuration(short.ExpiresIn))
	st, err := client.IssueStatelessToken(ctx)
	if err != nil {
		return err
	}
	d.call("client.IssueStatelessToken(ctx)", "%s  expires in %v (by JWT assertion: Config.Key is set)", abbrev(st.AccessToken), st.ExpiresIn)
	secretOnly, err := oauth.NewClient(oauth.Config{BaseURL: srv.URL(), Clock: srv.Now, ChannelID: ch.ID, ChannelSecret: ch.Secret})
	if err != nil {
		return err
	}
	st2, err := secretOnly.IssueStatelessToken(ctx)
	if err != nil {
		return err
	}
	d.call("(no Key) .IssueStatelessToken(ctx)", "%s  expires in %v (by channel ID + secret)", abbrev(st2.AccessToken), st2.ExpiresIn)
	d.say("stateless tokens are unlimited and cannot be revoked")

	d.section("Verify the channel's long-lived token (issued in the console)")
	long := srv.LongLivedToken(ch.ID)
	linfo, err := client.VerifyShortLivedToken(ctx, long)
	if err != nil {
		return err
	}
	d.call("client.VerifyShortLivedToken(ctx, long)", "%s valid: client_id %s, expires in %s", abbrev(long), linfo.ClientID, humanDuration(linfo.ExpiresIn))

	d.section("Revoke")
	if err := client.RevokeToken(ctx, tok.AccessToken); err != nil {
		return err
	}
	d.call("client.RevokeToken(ctx, tok)", "ok (needs the channel ID and secret, no JWT)")
	_, err = client.VerifyToken(ctx, tok.AccessToken)
	d.call("client.VerifyToken(ctx, tok)", "errors.Is(err, oauth.ErrInvalidToken) = %t", errors.Is(err, oauth.ErrInvalidToken))
	if err := client.RevokeShortLivedToken(ctx, short.AccessToken); err != nil {
		return err
	}
	d.call("client.RevokeShortLivedToken(ctx, short)", "ok (needs no credentials)")
	_, err = client.VerifyShortLivedToken(ctx, short.AccessToken)
	d.call("client.VerifyShortLivedToken(ctx, short)", "errors.Is(err, oauth.ErrInvalidToken) = %t", errors.Is(err, oauth.ErrInvalidToken))

	d.section("The 31st v2.1 token is refused")
	var held []*oauth.Token
	for len(held) < demoV21Limit {
		t, err := client.IssueToken(ctx, demoLifetime)
		if err != nil {
			return err
		}
		held = append(held, t)
	}
	d.call(fmt.Sprintf("%d x client.IssueToken", len(held)), "%d of %d slots in use", srv.ActiveTokens(ch.ID), demoV21Limit)
	_, err = client.IssueToken(ctx, demoLifetime)
	if err == nil {
		return errors.New("demo: the fake issued a 31st v2.1 token")
	}
	d.call("client.IssueToken (the 31st)", "err: %v", err)
	d.say("errors.Is(err, oauth.ErrTokenLimitReached) = %t", errors.Is(err, oauth.ErrTokenLimitReached))
	var ae *oauth.APIError
	if errors.As(err, &ae) {
		d.say("errors.As(err, &apiErr): Operation %q, StatusCode %d, Message %q,", ae.Operation, ae.StatusCode, ae.Message)
		d.say("    RequestID %q, Temporary() %t (do not retry: revoke a token or wait)", ae.RequestID, ae.Temporary())
	}
	for _, t := range held {
		if err := client.RevokeToken(ctx, t.AccessToken); err != nil {
			return err
		}
	}
	d.call(fmt.Sprintf("%d x client.RevokeToken", len(held)), "%d slots in use (revoking takes each access token, not its key ID)", srv.ActiveTokens(ch.ID))

	d.section("A TokenSource serves one cached token")
	before := srv.IssueCount(oauthtest.KindV21)
	ts, err := oauth.NewTokenSource(client, oauth.TokenSourceOptions{Lifetime: demoLifetime})
	if err != nil {
		return err
	}
	d.call("oauth.NewTokenSource(client, opts)", "caches a v2.1 token, refreshes it before expiry")
	var first *oauth.Token
	same := true
	for i := 0; i < demoTokenCalls; i++ {
		t, err := ts.Token(ctx)
		if err != nil {
			ts.Close()
			return err
		}
		if first == nil {
			first = t
		}
		same = same && t.AccessToken == first.AccessToken
		d.call(fmt.Sprintf("ts.Token(ctx) #%d", i+1), "%s", abbrev(t.AccessToken))
	}
	d.say("%d Token calls, the same token each time: %t; v2.1 tokens issued: %d", demoTokenCalls, same, srv.IssueCount(oauthtest.KindV21)-before)
	if err := ts.Close(); err != nil {
		return err
	}
	d.call("ts.Close() revokes what it issued", "%d slots in use", srv.ActiveTokens(ch.ID))

	d.section("Time passes (the fake's clock)")
	hour, err := client.IssueToken(ctx, time.Hour)
	if err != nil {
		return err
	}
	d.call("client.IssueToken(ctx, 1h)", "%s", abbrev(hour.AccessToken))
	srv.Advance(time.Hour + time.Minute)
	_, err = client.VerifyToken(ctx, hour.AccessToken)
	d.call("srv.Advance(61m); client.VerifyToken", "errors.Is(err, oauth.ErrInvalidToken) = %t: %s", errors.Is(err, oauth.ErrInvalidToken), lineText(err))
	d.call("expired tokens free their slot", "%d slots in use", srv.ActiveTokens(ch.ID))

	st3 := srv.Stats()
	fmt.Fprintf(d.w, "\nDone in %v: %d requests to the fake, %d tokens issued. Next: linetoken help,\n", time.Since(start).Round(time.Millisecond), st3.Requests, total(st3.Issued))
	fmt.Fprintln(d.w, "and oauthtest for your bot's own tests (README: \"Testing your bot with oauthtest\").")
	return nil
}

// lineText is LINE's own text in err, when it is an APIError.
func lineText(err error) string {
	var ae *oauth.APIError
	if !errors.As(err, &ae) {
		return fmt.Sprint(err)
	}
	return strings.TrimSpace(ae.Description + " " + ae.Message)
}

func total(m map[oauthtest.Kind]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}
