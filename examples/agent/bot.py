#!/usr/bin/env python3
"""A LINE bot's token handling with `linetoken agent`: Python standard library only.

The bot gets its channel access token from the agent's HTTP API and from the
agent's sink file, checks that both hold the same token, and has LINE verify
it. When LINE refuses the token (a 401 from the Messaging API; the verify
endpoint answers 400), the bot reports it to the agent and asks again: the
agent checks with LINE and issues one new token for the whole fleet.

It never prints the token. Exit code 0 and a line "bot.py: ok: ..." on
stdout when all went well; 1 and "bot.py: FAIL: ..." when not; 2 when a
setting is missing.

Environment:
  LINETOKEN_AGENT       the agent's URL (default http://127.0.0.1:7878)
  LINE_CHANNEL_ID       the channel whose token the bot uses (required)
  LINETOKEN_CALLER_KEY  the caller key, when the agent has callers (optional)
  LINETOKEN_SINK        the agent's sink file for the channel (optional)
  LINE_API_BASE_URL     LINE's API (default https://api.line.me; a fake's in tests)
"""

import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

NAME = "bot.py"
# How long the sink file may lag the HTTP API after a rotation: the agent
# writes it right after the new token arrives, in well under a second.
SINK_LAG = 10.0
SINK_POLL = 0.05
TIMEOUT = 10  # seconds for one HTTP request

AGENT = os.environ.get("LINETOKEN_AGENT", "http://127.0.0.1:7878").rstrip("/")
CHANNEL = os.environ.get("LINE_CHANNEL_ID", "")
CALLER_KEY = os.environ.get("LINETOKEN_CALLER_KEY", "")
SINK = os.environ.get("LINETOKEN_SINK", "")
LINE = os.environ.get("LINE_API_BASE_URL", "https://api.line.me").rstrip("/")

# The agent is local: never send its requests (and the caller key) through
# a proxy named by http_proxy.
agent_http = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class Failed(Exception):
    """What went wrong, worded for the report line (never holds the token)."""


def http(opener, req):
    """Sends req; returns (status, body bytes, headers) for any HTTP status."""
    try:
        with opener.open(req, timeout=TIMEOUT) as resp:
            return resp.status, resp.read(), resp.headers
    except urllib.error.HTTPError as e:
        return e.code, e.read(), e.headers
    except (urllib.error.URLError, OSError) as e:
        raise Failed(f"cannot reach {req.full_url.split('?')[0]}: {getattr(e, 'reason', e)}") from None


def agent(method, path, body=None):
    """One request to the agent's HTTP API, with the guard header (and the caller key)."""
    headers = {"X-Linetoken-Request": "1"}
    if CALLER_KEY:
        headers["X-Linetoken-Key"] = CALLER_KEY
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    req = urllib.request.Request(AGENT + path, data=data, method=method, headers=headers)
    return http(agent_http, req)


def agent_failure(status, body, headers):
    """The agent's JSON error {"error","message","cause"} as one line."""
    try:
        e = json.loads(body)
        msg = f"the agent answered {status} {e.get('error')}: {e.get('message')}"
        if e.get("cause"):
            msg += f" (cause {e['cause']}, Retry-After {headers.get('Retry-After')}s)"
        return msg
    except ValueError:
        return f"the agent answered {status}"


def get_token():
    """GET /v1/channels/{id}/token: the token object. Ask per request; never cache it yourself."""
    status, body, headers = agent("GET", f"/v1/channels/{urllib.parse.quote(CHANNEL)}/token")
    if status != 200:
        raise Failed(agent_failure(status, body, headers))
    return json.loads(body)


def invalidate(access_token):
    """POST /v1/channels/{id}/token/invalidate: tell the agent LINE refused the token."""
    status, body, headers = agent(
        "POST", f"/v1/channels/{urllib.parse.quote(CHANNEL)}/token/invalidate", {"access_token": access_token}
    )
    if status != 204:
        raise Failed(agent_failure(status, body, headers))


def read_sink():
    """The token in the sink file, read afresh: the agent replaces the file at every rotation."""
    with open(SINK, encoding="utf-8") as f:
        content = f.read()
    if content.startswith("{"):  # sink format json: the HTTP API's object
        return json.loads(content)["access_token"]
    return content  # sink format raw: the token alone, no newline


def token_from_api_and_sink():
    """The token from the API, once the sink file holds the same one (it may lag a rotation briefly)."""
    deadline = time.monotonic() + SINK_LAG
    while True:
        tok = get_token()
        if not SINK:
            return tok
        try:
            if read_sink() == tok["access_token"]:
                return tok
            why = "the sink file holds another token than the HTTP API"
        except FileNotFoundError:
            why = "the sink file does not exist"
        if time.monotonic() > deadline:
            raise Failed(f"{why} after {SINK_LAG:.0f}s")
        time.sleep(SINK_POLL)


def line_verify(tok):
    """Asks LINE whether the token is valid: (True, expires_in) or (False, LINE's error)."""
    access_token = tok["access_token"]
    if tok["kind"] == "v2.1":
        query = urllib.parse.urlencode({"access_token": access_token})
        req = urllib.request.Request(f"{LINE}/oauth2/v2.1/verify?{query}")
    elif tok["kind"] == "short-lived":
        form = urllib.parse.urlencode({"access_token": access_token}).encode()
        req = urllib.request.Request(f"{LINE}/v2/oauth/verify", data=form, method="POST")
    else:
        raise Failed(f"LINE cannot verify {tok['kind']} tokens")
    status, body, _ = http(urllib.request.build_opener(), req)
    if status == 200:
        return True, json.loads(body)["expires_in"]
    if status in (400, 401):
        try:
            return False, json.loads(body).get("error_description") or f"status {status}"
        except ValueError:
            return False, f"status {status}"
    raise Failed(f"LINE's verify answered {status}")


def main():
    if not CHANNEL:
        print(f"{NAME}: FAIL: set LINE_CHANNEL_ID (and LINETOKEN_AGENT, LINETOKEN_SINK)")
        return 2
    try:
        tok = token_from_api_and_sink()
        valid, info = line_verify(tok)
        replaced = ""
        if not valid:
            # LINE refused the token (revoked in the console, say): report it,
            # then ask again. The agent checks with LINE and gets one new token
            # for every bot that reports the same 401.
            refused = tok["access_token"]
            invalidate(refused)
            tok = token_from_api_and_sink()
            if tok["access_token"] == refused:
                raise Failed(f"LINE refused the token ({info}) and the agent still serves it")
            valid, info = line_verify(tok)
            if not valid:
                raise Failed(f"LINE refused the agent's new token too ({info})")
            replaced = "; LINE had refused the previous one, which the agent replaced"
        sink = "the HTTP API and the sink file hold the same token" if SINK else "the HTTP API served a token"
        print(f"{NAME}: ok: channel {CHANNEL} ({tok['kind']}, key_id {tok.get('key_id', '-')}): "
              f"{sink}; LINE says it is valid for {info}s{replaced}")
        return 0
    except Failed as e:
        print(f"{NAME}: FAIL: channel {CHANNEL}: {e}")
        return 1
    except (ValueError, KeyError) as e:  # an answer that is not the documented JSON
        print(f"{NAME}: FAIL: channel {CHANNEL}: an unexpected answer ({type(e).__name__})")
        return 1


if __name__ == "__main__":
    sys.exit(main())
