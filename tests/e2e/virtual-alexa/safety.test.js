"use strict";
// The request policy through the simulator: redirected words get a kind, short answer with
// suggestions. Nothing is promised here; test_simulator.py then checks nothing was queued.
// Words the interaction model does not list are sent with intend() (see README).

const assert = require("node:assert/strict");
const { describe, it } = require("node:test");
const { assertKeepsListening, assertSays, newDevice, speech } = require("./helpers");

const OPTIONS = { timeout: 60_000 };
const REDIRECT = /^Hmm, that one isn't for bedtime stories\. How about a story about .+\?$/;
const PROMISE = /storyteller|write|ready soon|brand new|another night|asked|let me think/i;
// Also listed in test_simulator.py REDIRECTED_WORDS: none of them may reach the queue.
const ASKED = [
  ["TellStoryIntent", { keyword: "gun" }],
  ["TellStoryIntent", { keyword: "poopy" }],
  ["TellStoryIntent", { keyword: "vape" }],
  ["TellStoryIntent", { keyword: "dragon", secondKeyword: "handgun" }],
  ["NewStoryIntent", { keyword: "farting" }],
  ["NewStoryIntent", { keyword: "idiot" }],
  ["NewStoryIntent", { keyword: "kissing" }],
];

describe("words the request policy redirects", () => {
  for (const [intent, slots] of ASKED) {
    const words = Object.values(slots).join(" and ");
    it(`${intent} about ${words}: a kind redirect, no promise`, OPTIONS, async () => {
      const { alexa } = newDevice();
      await alexa.launch();
      const reply = await alexa.intend(intent, slots);
      const text = assertSays(reply, REDIRECT);
      assert.doesNotMatch(text, PROMISE);
      for (const word of Object.values(slots).filter((w) => w !== "dragon")) {
        assert.ok(!text.toLowerCase().includes(word), `says the word back: ${text}`);
      }
      assertKeepsListening(reply);
    });
  }

  it("a suggested topic after a redirect starts a story", OPTIONS, async () => {
    const { alexa } = newDevice();
    await alexa.launch();
    let reply = await alexa.intend("TellStoryIntent", { keyword: "gun" });
    assertSays(reply, REDIRECT);
    reply = await alexa.utter("a story about a rocket");
    assertSays(reply, /story called Comet the Little Rocket\./);
  });

  it("dragon, ghost and monster are allowed", OPTIONS, async () => {
    const { alexa } = newDevice();
    await alexa.launch();
    for (const keyword of ["dragon", "ghost", "monster"]) {
      const reply = await alexa.intend("TellStoryIntent", { keyword });
      assert.doesNotMatch(speech(reply), /isn't for bedtime stories/, keyword);
    }
  });
});
