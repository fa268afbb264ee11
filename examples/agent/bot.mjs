#!/usr/bin/env node
// A LINE bot's token handling with `linetoken agent`: Node 20's fetch, no npm
// packages.
//
// The bot gets its channel access token from the agent's HTTP API and from
// the agent's sink file, checks that both hold the same token, and has LINE
// verify it. When LINE refuses the token (a 401 from the Messaging API; the
// verify endpoint answers 400), the bot reports it to the agent and asks
// again: the agent checks with LINE and issues one new token for the whole
// fleet.
//
// It never prints the token. Exit code 0 and a line "bot.mjs: ok: ..." on
// stdout when all went well; 1 and "bot.mjs: FAIL: ..." when not; 2 when a
// setting is missing.
//
// Environment:
//   LINETOKEN_AGENT       the agent's URL (default http://127.0.0.1:7878)
//   LINE_CHANNEL_ID       the channel whose token the bot uses (required)
//   LINETOKEN_CALLER_KEY  the caller key, when the agent has callers (optional)
//   LINETOKEN_SINK        the agent's sink file for the channel (optional)
//   LINE_API_BASE_URL     LINE's API (default https://api.line.me; a fake's in tests)

import { readFile } from "node:fs/promises";
import { setTimeout as sleep } from "node:timers/promises";

const NAME = "bot.mjs";
// How long the sink file may lag the HTTP API after a rotation: the agent
// writes it right after the new token arrives, in well under a second.
const SINK_LAG_MS = 10_000;
const SINK_POLL_MS = 50;
const TIMEOUT_MS = 10_000; // for one HTTP request

const env = process.env;
const AGENT = (env.LINETOKEN_AGENT || "http://127.0.0.1:7878").replace(/\/+$/, "");
const CHANNEL = env.LINE_CHANNEL_ID || "";
const CALLER_KEY = env.LINETOKEN_CALLER_KEY || "";
const SINK = env.LINETOKEN_SINK || "";
const LINE = (env.LINE_API_BASE_URL || "https://api.line.me").replace(/\/+$/, "");

// Failed: what went wrong, worded for the report line (never holds the token).
class Failed extends Error {}

// request sends one request; any HTTP status is an answer, a network error is Failed.
async function request(url, init = {}) {
  try {
    const res = await fetch(url, { ...init, signal: AbortSignal.timeout(TIMEOUT_MS) });
    return { status: res.status, body: await res.text(), headers: res.headers };
  } catch (e) {
    const where = url.split("?")[0];
    throw new Failed(`cannot reach ${where}: ${e.cause?.code || e.cause?.message || e.name}`);
  }
}

// agent: one request to the agent's HTTP API, with the guard header (and the caller key).
function agent(method, path, body) {
  const headers = { "X-Linetoken-Request": "1" };
  if (CALLER_KEY) headers["X-Linetoken-Key"] = CALLER_KEY;
  const init = { method, headers };
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    headers["Content-Type"] = "application/json";
  }
  return request(AGENT + path, init);
}

// agentFailure: the agent's JSON error {"error","message","cause"} as one line.
function agentFailure({ status, body, headers }) {
  try {
    const e = JSON.parse(body);
    let msg = `the agent answered ${status} ${e.error}: ${e.message}`;
    if (e.cause) msg += ` (cause ${e.cause}, Retry-After ${headers.get("retry-after")}s)`;
    return msg;
  } catch {
    return `the agent answered ${status}`;
  }
}

const tokenPath = () => `/v1/channels/${encodeURIComponent(CHANNEL)}/token`;

// getToken: GET /v1/channels/{id}/token. Ask per request; never cache it yourself.
async function getToken() {
  const res = await agent("GET", tokenPath());
  if (res.status !== 200) throw new Failed(agentFailure(res));
  return JSON.parse(res.body);
}

// invalidate: POST /v1/channels/{id}/token/invalidate: LINE refused the token.
async function invalidate(accessToken) {
  const res = await agent("POST", tokenPath() + "/invalidate", { access_token: accessToken });
  if (res.status !== 204) throw new Failed(agentFailure(res));
}

// readSink: the token in the sink file, read afresh: the agent replaces the
// file at every rotation.
async function readSink() {
  const content = await readFile(SINK, "utf8");
  if (content.startsWith("{")) return JSON.parse(content).access_token; // format json
  return content; // format raw: the token alone, no newline
}

// tokenFromAPIAndSink: the token from the API, once the sink file holds the
// same one (it may lag a rotation briefly).
async function tokenFromAPIAndSink() {
  const deadline = Date.now() + SINK_LAG_MS;
  for (;;) {
    const tok = await getToken();
    if (!SINK) return tok;
    let why;
    try {
      if ((await readSink()) === tok.access_token) return tok;
      why = "the sink file holds another token than the HTTP API";
    } catch (e) {
      if (e.code !== "ENOENT") throw new Failed(`cannot read the sink file: ${e.code || e.name}`);
      why = "the sink file does not exist";
    }
    if (Date.now() > deadline) throw new Failed(`${why} after ${SINK_LAG_MS / 1000}s`);
    await sleep(SINK_POLL_MS);
  }
}

// lineVerify asks LINE whether the token is valid: {valid, info}, info being
// expires_in or LINE's error.
async function lineVerify(tok) {
  const form = new URLSearchParams({ access_token: tok.access_token });
  let res;
  if (tok.kind === "v2.1") {
    res = await request(`${LINE}/oauth2/v2.1/verify?${form}`);
  } else if (tok.kind === "short-lived") {
    res = await request(`${LINE}/v2/oauth/verify`, { method: "POST", body: form });
  } else {
    throw new Failed(`LINE cannot verify ${tok.kind} tokens`);
  }
  if (res.status === 200) return { valid: true, info: JSON.parse(res.body).expires_in };
  if (res.status === 400 || res.status === 401) {
    let info = `status ${res.status}`;
    try {
      info = JSON.parse(res.body).error_description || info;
    } catch {}
    return { valid: false, info };
  }
  throw new Failed(`LINE's verify answered ${res.status}`);
}

async function main() {
  if (!CHANNEL) {
    console.log(`${NAME}: FAIL: set LINE_CHANNEL_ID (and LINETOKEN_AGENT, LINETOKEN_SINK)`);
    return 2;
  }
  if (typeof fetch !== "function") {
    console.log(`${NAME}: FAIL: this Node has no fetch: use Node 20 or later`);
    return 1;
  }
  try {
    let tok = await tokenFromAPIAndSink();
    let { valid, info } = await lineVerify(tok);
    let replaced = "";
    if (!valid) {
      // LINE refused the token (revoked in the console, say): report it, then
      // ask again. The agent checks with LINE and gets one new token for
      // every bot that reports the same 401.
      const refused = tok.access_token;
      await invalidate(refused);
      tok = await tokenFromAPIAndSink();
      if (tok.access_token === refused) {
        throw new Failed(`LINE refused the token (${info}) and the agent still serves it`);
      }
      ({ valid, info } = await lineVerify(tok));
      if (!valid) throw new Failed(`LINE refused the agent's new token too (${info})`);
      replaced = "; LINE had refused the previous one, which the agent replaced";
    }
    const sink = SINK ? "the HTTP API and the sink file hold the same token" : "the HTTP API served a token";
    console.log(
      `${NAME}: ok: channel ${CHANNEL} (${tok.kind}, key_id ${tok.key_id ?? "-"}): ` +
        `${sink}; LINE says it is valid for ${info}s${replaced}`,
    );
    return 0;
  } catch (e) {
    // Failed, or an answer that is not the documented JSON (SyntaxError).
    const why = e instanceof Failed ? e.message : `an unexpected answer (${e.name})`;
    console.log(`${NAME}: FAIL: channel ${CHANNEL}: ${why}`);
    return 1;
  }
}

process.exitCode = await main();
