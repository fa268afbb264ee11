#!/usr/bin/env node
// A LINE bot on LINE's Node SDK (@line/bot-sdk) with `linetoken agent` as
// its LINE API endpoint: the SDK's base URL is the agent's proxy and its
// channel access token the placeholder "linetoken". The agent puts the real
// token on every request, heals a 401 and makes pushes safe to retry.
//
// Usage: node proxy-bot.mjs CALL...
//   push                pushMessage of one text message to $LINE_TO
//   info                getBotInfo
//   content             getMessageContent of $LINE_MESSAGE_ID, streamed
//                       into $LINE_CONTENT_FILE (or counted and dropped)
//   invalid-push        pushMessage with no messages, which LINE refuses
//                       (a check that a refusal is seen)
//
// Each call prints one JSON line on stdout: {"call","status","requestId",
// "violations","sent","body","length","error"}. violations is the
// sl-violations header a validating mock (Prism) adds to a request that
// breaks the spec. The token never appears: the bot holds only the
// placeholder. Exit code 0 when every call got an HTTP answer (any status),
// 1 when one could not be made, 2 for a bad usage or setting.
//
// Environment:
//   LINETOKEN_PROXY    the agent's proxy (default http://127.0.0.1:7879)
//   LINETOKEN_TOKEN    the placeholder (default "linetoken"; e.g.
//                      "linetoken:CHANNEL_ID" when the agent serves several)
//   LINE_TO            the push's recipient (for push and invalid-push)
//   LINE_MESSAGE_ID    the message whose content to download (for content)
//   LINE_CONTENT_FILE  where to write the content (optional)
//   LINE_BOT_SDK_FROM  a directory whose node_modules holds @line/bot-sdk,
//                      when it is not beside this script (tests: contract/)

import { createWriteStream } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { Writable } from "node:stream";
import { pipeline } from "node:stream/promises";

const NAME = "proxy-bot.mjs";
const env = process.env;
const PROXY = (env.LINETOKEN_PROXY || "http://127.0.0.1:7879").replace(/\/+$/, "");
const TOKEN = env.LINETOKEN_TOKEN || "linetoken";

// The SDK: from LINE_BOT_SDK_FROM's node_modules when set, else the usual
// resolution from this script.
const { messagingApi, HTTPFetchError } = env.LINE_BOT_SDK_FROM
  ? createRequire(join(env.LINE_BOT_SDK_FROM, "package.json"))("@line/bot-sdk")
  : await import("@line/bot-sdk");

const config = { baseURL: PROXY, channelAccessToken: TOKEN };
const client = new messagingApi.MessagingApiClient(config);
// The blob client serves api-data.line.me's paths; the proxy routes them.
const blob = new messagingApi.MessagingApiBlobClient(config);

// answer is the report of an HTTP answer.
function answer(call, res) {
  return {
    call,
    status: res.status,
    requestId: res.headers.get("x-line-request-id") || "",
    violations: res.headers.get("sl-violations") || "",
  };
}

// need returns a required setting or exits 2.
function need(name) {
  if (!env[name]) {
    console.log(`${NAME}: ${name} is required for this call`);
    process.exit(2);
  }
  return env[name];
}

const calls = {
  async push() {
    const sent = { to: need("LINE_TO"), messages: [{ type: "text", text: "Hello from linetoken's proxy" }] };
    // No retry key: the agent adds one, so that its own retries are safe.
    const { httpResponse, body } = await client.pushMessageWithHttpInfo(sent);
    return { ...answer("push", httpResponse), sent, body };
  },
  async info() {
    const { httpResponse, body } = await client.getBotInfoWithHttpInfo();
    return { ...answer("info", httpResponse), body };
  },
  async content() {
    const { httpResponse, body } = await blob.getMessageContentWithHttpInfo(need("LINE_MESSAGE_ID"));
    let length = 0;
    const count = async function* (source) {
      for await (const chunk of source) {
        length += chunk.length;
        yield chunk;
      }
    };
    // Streamed: a content of any size never sits whole in memory.
    const sink = env.LINE_CONTENT_FILE
      ? createWriteStream(env.LINE_CONTENT_FILE)
      : new Writable({ write: (_chunk, _enc, done) => done() });
    await pipeline(body, count, sink);
    return { ...answer("content", httpResponse), length };
  },
  async "invalid-push"() {
    const sent = { to: need("LINE_TO"), messages: [] };
    const { httpResponse, body } = await client.pushMessageWithHttpInfo(sent);
    return { ...answer("invalid-push", httpResponse), sent, body };
  },
};

const args = process.argv.slice(2);
if (args.length === 0 || args.some((a) => !(a in calls))) {
  console.log(`${NAME}: usage: node ${NAME} {${Object.keys(calls).join("|")}}...`);
  process.exit(2);
}
let code = 0;
for (const call of args) {
  try {
    console.log(JSON.stringify(await calls[call]()));
  } catch (e) {
    if (e instanceof HTTPFetchError) {
      // The SDK throws on a status other than 2xx: still an answer.
      const h = e.headers;
      console.log(JSON.stringify({
        call,
        status: e.status,
        requestId: h.get("x-line-request-id") || "",
        violations: h.get("sl-violations") || "",
        body: e.body,
      }));
    } else {
      console.log(JSON.stringify({ call, error: String(e && e.message ? e.message : e) }));
      code = 1;
    }
  }
}
process.exit(code);
