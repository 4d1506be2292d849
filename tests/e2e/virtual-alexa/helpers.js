"use strict";
// Shared set-up for the virtual-alexa suites: a simulated Echo that turns spoken utterances into
// requests with OUR interaction model and POSTs them to the real skill server (BEDTIME_SKILL_URL).

const assert = require("node:assert/strict");
const crypto = require("node:crypto");
const fs = require("node:fs");
const path = require("node:path");
const { VirtualAlexa } = require("virtual-alexa");

const SKILL_URL = process.env.BEDTIME_SKILL_URL;
const SKILL_ID = process.env.BEDTIME_SKILL_ID || "amzn1.ask.skill.00000000-0000-4000-8000-0000bed71me5";
const MODELS_DIR = process.env.BEDTIME_MODELS_DIR
  || path.resolve(__dirname, "..", "..", "..", "interaction_models");
// One interaction model per published locale (skill/i18n.py LOCALES; `bedtime skill-package build`).
const LOCALES = fs.readdirSync(MODELS_DIR)
  .filter((name) => name.endsWith(".json"))
  .map((name) => name.slice(0, -".json".length))
  .sort();
const INVOCATION = /^(?:ask|open|launch|start|talk to|tell) bedtime stories(?: (?:to|for|about) (.+))?$/i;

// virtual-alexa 0.7.x sends a LaunchRequest for ANY utterance containing ask/open/launch/tell
// ("tell me a story" included). Only a real invocation phrase should launch; "ask bedtime stories
// to X" becomes the one-shot utterance X, as on a real device.
function parseInvocation(utterance) {
  const match = INVOCATION.exec(utterance.trim());
  if (!match) {
    return undefined;
  }
  return match[1] ? match[1] : true;
}

/** A simulated device for one (new) listener, using interaction_models/<locale>.json. */
function newDevice({ locale = "en-US", userId, screen = false } = {}) {
  if (!SKILL_URL) {
    throw new Error("BEDTIME_SKILL_URL must point at the skill's POST /alexa endpoint");
  }
  const alexa = VirtualAlexa.Builder()
    .applicationID(SKILL_ID)
    .interactionModelFile(path.join(MODELS_DIR, `${locale}.json`))
    .skillURL(SKILL_URL)
    .locale(locale)
    .create();
  alexa.parseLaunchRequest = parseInvocation;
  alexa.context().user().setID(userId || `amzn1.ask.account.E2E${crypto.randomUUID()}`);
  const sent = [];
  alexa.filter((request) => {
    if (screen) {
      const device = request.context.System.device;
      device.supportedInterfaces["Alexa.Presentation.APL"] = { runtime: { maxVersion: "2023.3" } };
      request.context.Viewport = {
        experiences: [{ canRotate: false, canResize: false }],
        mode: "HUB", shape: "RECTANGLE", pixelWidth: 1280, pixelHeight: 800, dpi: 160,
        currentPixelWidth: 1280, currentPixelHeight: 800, touch: ["SINGLE"],
      };
    }
    sent.push(JSON.parse(JSON.stringify(request)));
  });
  return { alexa, sent, lastRequest: () => sent[sent.length - 1] };
}

/** Plain text of an SSML or text outputSpeech. */
function plain(ssml) {
  return (ssml || "")
    .replace(/<[^>]+>/g, " ")
    .replace(/&amp;/g, "&").replace(/&lt;/g, "<").replace(/&gt;/g, ">")
    .replace(/&quot;/g, "\"").replace(/&apos;/g, "'")
    .replace(/\s+/g, " ")
    .trim();
}

function speech(reply) {
  return plain(reply.prompt());
}

function reprompt(reply) {
  return plain(reply.reprompt());
}

function endsSession(reply) {
  return reply.response.shouldEndSession === true;
}

function assertSays(reply, pattern, message) {
  const text = speech(reply);
  assert.match(text, pattern, message || `unexpected speech: ${text}`);
  return text;
}

function assertKeepsListening(reply) {
  assert.equal(endsSession(reply), false, `session should stay open: ${speech(reply)}`);
  assert.ok(reprompt(reply), `a question needs a reprompt: ${speech(reply)}`);
}

/** The entity-resolution id Alexa would send for slot ``name`` of the last request. */
function resolvedId(request, name) {
  const slot = request.request.intent.slots[name];
  const authorities = (slot && slot.resolutions && slot.resolutions.resolutionsPerAuthority) || [];
  for (const authority of authorities) {
    if (authority.status.code === "ER_SUCCESS_MATCH") {
      return authority.values[0].value.id;
    }
  }
  return undefined;
}

module.exports = {
  LOCALES,
  MODELS_DIR,
  SKILL_ID,
  assertKeepsListening,
  assertSays,
  endsSession,
  newDevice,
  parseInvocation,
  plain,
  reprompt,
  resolvedId,
  speech,
};
