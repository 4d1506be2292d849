"use strict";
// Live generation through the simulator: the server runs with BEDTIME_LIVE_MODEL set, so
// "make up a new story about a kite" is written by the shipped model while the listener waits.

const assert = require("node:assert/strict");
const { describe, it } = require("node:test");
const { assertKeepsListening, assertSays, newDevice, speech } = require("./helpers");

// Alexa gives a skill 8 seconds; the skill's own deadline is 6 (BEDTIME_LIVE_DEADLINE_SECONDS).
const ALEXA_BUDGET_MS = 8000;

describe("live story generation", () => {
  it("makes up a new story about a kite within Alexa's time budget", { timeout: 60_000 }, async () => {
    const { alexa } = newDevice();
    await alexa.launch();
    // The first request loads nothing: the server warms the model up at start.
    const started = Date.now();
    const reply = await alexa.utter("make up a new story about a kite");
    const elapsed = Date.now() - started;
    assertSays(reply, /^Here is a brand new story\./);
    assert.match(speech(reply).toLowerCase(), /\bkites?\b/, "the new story mentions the kite");
    assert.ok(elapsed < ALEXA_BUDGET_MS, `took ${elapsed} ms`);
    assertKeepsListening(reply);
  });
});
