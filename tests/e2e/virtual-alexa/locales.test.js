"use strict";
// Every locale's interaction model drives the real server: launch, a synonym, the topic list.

const assert = require("node:assert/strict");
const { describe, it } = require("node:test");
const { LOCALES, assertKeepsListening, assertSays, newDevice, resolvedId } = require("./helpers");

describe("every locale", () => {
  for (const locale of LOCALES) {
    it(`${locale}: launch, a story about rabbits, what stories do you have`, { timeout: 60_000 }, async () => {
      const device = newDevice({ locale });
      const { alexa } = device;
      let reply = await alexa.launch();
      assert.equal(device.lastRequest().request.locale, locale);
      assertSays(reply, /^Welcome to Bedtime Stories\./);
      assertKeepsListening(reply);

      reply = await alexa.utter("a story about rabbits");
      assert.equal(resolvedId(device.lastRequest(), "keyword"), "bunny");
      assertSays(reply, /story called The Bunny Who Planted a Garden\./);

      reply = await alexa.utter("what stories do you have");
      assertSays(reply, /^I have stories about /);
      assertKeepsListening(reply);
    });
  }
});
