"use strict";
// Voice dialogs against the real skill server, spoken as utterances through our interaction model.
// Needs the starter catalogue plus tests/e2e/fixtures/e2e_stories.jsonl (a three-part story about
// a rocket) loaded into the server's database; tests/e2e/test_simulator.py sets all of that up.

const assert = require("node:assert/strict");
const { describe, it } = require("node:test");
const {
  assertKeepsListening, assertSays, endsSession, newDevice, resolvedId, speech,
} = require("./helpers");

const ROCKET = "Comet the Little Rocket";
const ROCKET_PART_1 = "High on a hill at the edge of a sleepy town";
const ROCKET_PART_2 = "As she flew, Comet remembered";
const ROCKET_PART_3 = "Comet flew slowly home";
const OPTIONS = { timeout: 60_000 };

describe("bedtime story, from launch to resuming it the next night", () => {
  it("launch, synonym, yes, repeat, stop, new session resumes, next finishes", OPTIONS, async () => {
    const device = newDevice();
    const { alexa } = device;

    let reply = await alexa.launch();
    assertSays(reply, /^Welcome to Bedtime Stories\. What would you like a story about\?/);
    assertKeepsListening(reply);

    // "spaceship" is a synonym of the STORY_KEYWORD value "rocket"
    reply = await alexa.utter("a story about a spaceship");
    const request = device.lastRequest().request;
    assert.equal(request.intent.name, "TellStoryIntent");
    assert.equal(request.intent.slots.keyword.value, "spaceship");
    assert.equal(resolvedId(device.lastRequest(), "keyword"), "rocket");
    let text = assertSays(reply, new RegExp(`story called ${ROCKET}\\.`));
    assert.ok(text.includes(ROCKET_PART_1), text);
    assert.match(text, /Shall I go on\?$/);
    assertKeepsListening(reply);

    reply = await alexa.utter("yes");
    text = speech(reply);
    assert.ok(text.includes(ROCKET_PART_2) && !text.includes(ROCKET_PART_1), text);
    assert.match(text, /Shall I go on\?$/);
    assertKeepsListening(reply);

    reply = await alexa.utter("repeat");
    text = speech(reply);
    assert.ok(text.includes(ROCKET_PART_2), `repeat should say part two again: ${text}`);
    assertKeepsListening(reply);

    reply = await alexa.utter("stop");
    assertSays(reply, new RegExp(`remember where we were in ${ROCKET}\\. Goodnight`));
    assert.ok(endsSession(reply));

    // the next night: a new session for the same listener
    reply = await alexa.launch();
    assert.equal(device.lastRequest().session.new, true);
    assertSays(
      reply,
      new RegExp(`Last time we were in the middle of ${ROCKET}\\. Shall I carry on, or start from the beginning\\?`),
    );
    assertKeepsListening(reply);

    // carrying on = the first part not heard yet (part two was heard, even twice)
    reply = await alexa.utter("yes");
    text = assertSays(reply, new RegExp(`^Let's carry on with ${ROCKET}\\.`));
    assert.ok(text.includes(ROCKET_PART_3) && !text.includes(ROCKET_PART_2), text);
    assert.match(text, /The end\..*Would you like another story\?/);
    assertKeepsListening(reply);

    // finished: goodnight, no sleep sound, and the next launch no longer offers to resume
    reply = await alexa.utter("no");
    assertSays(reply, /Goodnight, sleep tight\. Would you like some gentle rain to fall asleep to\?$/);
    reply = await alexa.utter("no");
    assert.ok(endsSession(reply));
    reply = await alexa.launch();
    assertSays(reply, /^Welcome to Bedtime Stories/);
  });

  it("a plural synonym of another word resolves too (rabbits -> bunny)", OPTIONS, async () => {
    const device = newDevice();
    const reply = await device.alexa.utter("tell me a story about rabbits");
    assert.equal(resolvedId(device.lastRequest(), "keyword"), "bunny");
    assertSays(reply, /story called The Bunny Who Planted a Garden\./);
  });

  it("start over goes back to the first part", OPTIONS, async () => {
    const { alexa } = newDevice();
    await alexa.utter("read me a bedtime story about a rocket");
    let reply = await alexa.utter("go on");
    assert.ok(speech(reply).includes(ROCKET_PART_2));
    reply = await alexa.utter("start over");
    const text = assertSays(reply, new RegExp(`start ${ROCKET} again from the beginning`));
    assert.ok(text.includes(ROCKET_PART_1), text);
  });
});

describe("asking for things the skill does not have", () => {
  it("a known word with no story yet gets suggestions, and a suggestion works", OPTIONS, async () => {
    const device = newDevice();
    const { alexa } = device;
    await alexa.launch();
    let reply = await alexa.utter("a story about a robot");
    assert.equal(resolvedId(device.lastRequest(), "keyword"), "robot");
    const text = assertSays(reply, /I don't have a story about (a )?robots? yet.*I do have stories about/);
    assert.match(text, /stories about .*\b(dragon|moon|bunn|whale|bear|train|rocket|owl|mice|mouse|kite|star|princess|garden|boat|ocean)/);
    assertKeepsListening(reply);
    reply = await alexa.utter("a story about the moon");
    assertSays(reply, /story called The (Kite That Wanted to Touch the Moon|Mouse & the Moonlit Cheese)\./);
  });

  it("a word the model does not know at all gets suggestions", OPTIONS, async () => {
    // virtual-alexa only matches slot values listed in the model, so an out-of-vocabulary word
    // (which a real device would pass through with ER_SUCCESS_NO_MATCH) is sent as an intent.
    const device = newDevice();
    await device.alexa.launch();
    const reply = await device.alexa.intend("TellStoryIntent", { keyword: "xylophone" });
    assert.equal(resolvedId(device.lastRequest(), "keyword"), undefined);
    assertSays(reply, /I don't have a story about (a )?xylophones? yet/);
    assertKeepsListening(reply);
  });

  it("make up a new story queues one for later", OPTIONS, async () => {
    const { alexa } = newDevice();
    await alexa.launch();
    const reply = await alexa.utter("make up a new story about a robot");
    assertSays(reply, /brand new story about (a )?robots?/);
  });
});

describe("finding and choosing stories", () => {
  it("lists topics, then surprise me", OPTIONS, async () => {
    const { alexa } = newDevice();
    await alexa.launch();
    let reply = await alexa.utter("what stories do you have");
    // several topics, e.g. "I have stories about stars, gardens, mice and bunnies."
    assertSays(reply, /^I have stories about [a-z ]+(, [a-z ]+)* and [a-z ]+\. Which would you like\?/);
    assertKeepsListening(reply);
    reply = await alexa.utter("surprise me");
    assertSays(reply, /^Here is a surprise story\. It's called .+\./);
  });

  it("two keywords pick the story that has both", OPTIONS, async () => {
    const device = newDevice();
    const reply = await device.alexa.utter("tell me a story about a dragon and a boat");
    const slots = device.lastRequest().request.intent.slots;
    assert.equal(slots.keyword.value, "dragon");
    assert.equal(slots.secondKeyword.value, "boat");
    assertSays(reply, /story called The Dragon Who Rowed a Boat\./);
  });

  it("two keywords with no story together fall back to one of them", OPTIONS, async () => {
    const { alexa } = newDevice();
    const reply = await alexa.utter("a story about a kite and a whale");
    assertSays(reply, /I don't have a story about .*kites?.*whales?.* together yet, but here is one about/);
  });

  it("surprise me works as a first request", OPTIONS, async () => {
    const { alexa } = newDevice();
    const reply = await alexa.utter("surprise me");
    assertSays(reply, /^Here is a surprise story\./);
    assertKeepsListening(reply);
  });

  it("one-shot invocation: ask bedtime stories to ...", OPTIONS, async () => {
    const device = newDevice();
    let reply = await device.alexa.utter("ask bedtime stories to tell me a story about dragons");
    assert.equal(device.lastRequest().request.type, "IntentRequest");
    assertSays(reply, /story called The Dragon Who Rowed a Boat\./);
    const other = newDevice();
    reply = await other.alexa.utter("open bedtime stories");
    assert.equal(other.lastRequest().request.type, "LaunchRequest");
    assertSays(reply, /^Welcome to Bedtime Stories/);
  });

  it("a story that has ended offers another; no says goodnight", OPTIONS, async () => {
    const { alexa } = newDevice();
    let reply = await alexa.utter("tell me a bedtime story about the train");
    assertSays(reply, /The Little Train That Went to Sleep.*The end\..*Would you like another story\?/);
    reply = await alexa.utter("no thank you");
    assertSays(reply, /Close your eyes.*Goodnight, sleep tight\. Would you like some gentle rain/);
    reply = await alexa.utter("no thank you");
    assertSays(reply, /^Goodnight, sleep tight\.$/);
    assert.ok(endsSession(reply));
  });
});

describe("help, pause and the built-in intents", () => {
  it("help explains what to say and keeps listening", OPTIONS, async () => {
    const { alexa } = newDevice();
    await alexa.launch();
    let reply = await alexa.utter("help");
    assertSays(reply, /^I tell bedtime stories\./);
    assertKeepsListening(reply);
    reply = await alexa.utter("what can i say");
    assertSays(reply, /^I tell bedtime stories\./);
  });

  it("pause keeps the place; resume in a new session carries on", OPTIONS, async () => {
    const device = newDevice();
    const { alexa } = device;
    await alexa.utter("a story about a rocket");
    let reply = await alexa.utter("pause");
    assertSays(reply, new RegExp(`paused ${ROCKET}`));
    assert.ok(endsSession(reply));
    reply = await alexa.utter("resume");
    assert.equal(device.lastRequest().session.new, true);
    assert.equal(device.lastRequest().request.intent.name, "AMAZON.ResumeIntent");
    const text = assertSays(reply, new RegExp(`^Let's carry on with ${ROCKET}\\.`));
    assert.ok(text.includes(ROCKET_PART_2) && !text.includes(ROCKET_PART_1), text);
  });

  it("resume, repeat and start over with no story say so", OPTIONS, async () => {
    const { alexa } = newDevice();
    await alexa.launch();
    assertSays(await alexa.utter("resume"), /no story to carry on with/);
    assertSays(await alexa.utter("repeat"), /nothing to repeat/);
    assertSays(await alexa.utter("start over"), /haven't started a story/);
  });

  it("fallback, cancel and navigate home", OPTIONS, async () => {
    const { alexa } = newDevice();
    await alexa.launch();
    let reply = await alexa.intend("AMAZON.FallbackIntent");
    assertSays(reply, /didn't quite catch that/);
    assertKeepsListening(reply);
    reply = await alexa.intend("AMAZON.NavigateHomeIntent");
    assert.ok(endsSession(reply) || speech(reply).length > 0);
    const other = newDevice();
    await other.alexa.launch();
    reply = await other.alexa.utter("cancel");
    assertSays(reply, /Goodnight/);
    assert.ok(endsSession(reply));
  });

  it("a screen device gets the story as an APL document", OPTIONS, async () => {
    const withScreen = newDevice({ screen: true });
    let reply = await withScreen.alexa.utter("a story about an owl");
    assert.ok(reply.directive("Alexa.Presentation.APL.RenderDocument"), "expected an APL document");
    const voiceOnly = newDevice();
    reply = await voiceOnly.alexa.utter("a story about an owl");
    assert.equal(reply.directive("Alexa.Presentation.APL.RenderDocument"), undefined);
  });
});

describe("natural phrasings reach the right intent", () => {
  const cases = [
    ["tell me a story", "TellStoryIntent", {}],
    ["read me a bedtime story about a whale", "TellStoryIntent", { keyword: "whale" }],
    ["i want a story about the ocean", "TellStoryIntent", { keyword: "ocean" }],
    ["a story about the sea", "TellStoryIntent", { keyword: "sea" }],
    ["tell me a story about mice and owls", "TellStoryIntent", { keyword: "mice", secondKeyword: "owls" }],
    ["what stories do you know", "ListTopicsIntent", {}],
    ["make up a story about a unicorn", "NewStoryIntent", { keyword: "unicorn" }],
    ["good night", "AMAZON.StopIntent", {}],
  ];
  for (const [utterance, intent, slots] of cases) {
    it(utterance, OPTIONS, async () => {
      const device = newDevice();
      await device.alexa.launch();
      const reply = await device.alexa.utter(utterance);
      const sent = device.lastRequest().request.intent;
      assert.equal(sent.name, intent);
      for (const [name, value] of Object.entries(slots)) {
        assert.equal(sent.slots[name].value, value);
      }
      assert.ok(speech(reply).length > 0);
    });
  }
});
