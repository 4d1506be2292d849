"use strict";
// The bedtime experience against the real skill server: story length, resuming a three-part story
// with the next unheard part (or from the beginning), "two stories" then goodnight, and a sleep
// sound with a timer through the AudioPlayer (its events answered by the server). The server runs
// with BEDTIME_PUBLIC_URL and sounds built by sox (test_simulator.py); without sox,
// BEDTIME_E2E_SOUNDS=0 and the sleep-sound dialogs are skipped.

const assert = require("node:assert/strict");
const { describe, it } = require("node:test");
const {
  assertKeepsListening, assertSays, endsSession, newDevice, resolvedId, speech,
} = require("./helpers");

const ROCKET = "Comet the Little Rocket";
const ROCKET_PART_1 = "High on a hill at the edge of a sleepy town";
const ROCKET_PART_2 = "As she flew, Comet remembered";
const ROCKET_PART_3 = "Comet flew slowly home";
const MOON_STORIES = /The Kite That Wanted to Touch the Moon|The Mouse & the Moonlit Cheese/g;
const OPTIONS = { timeout: 60_000 };
const SOUNDS = process.env.BEDTIME_E2E_SOUNDS !== "0";
const PUBLIC_URL = process.env.BEDTIME_E2E_PUBLIC_URL || "https://bedtime-e2e.example.com";

function directives(reply) {
  return reply.response.directives || [];
}

function sleepyProsody(reply) {
  return [...reply.response.outputSpeech.ssml.matchAll(/<prosody rate="(\d+)%" volume="([-+]\d+\.\d)dB">/g)]
    .map((m) => [Number(m[1]), Number(m[2])]);
}

describe("story length", () => {
  it("a long story, a little (short) story, and an honest other length", OPTIONS, async () => {
    const device = newDevice();
    const { alexa } = device;
    let reply = await alexa.utter("a long story about a rocket");
    assert.equal(resolvedId(device.lastRequest(), "length"), "long");
    assertSays(reply, new RegExp(`^Here is a story called ${ROCKET}\\.`));

    const other = newDevice();
    reply = await other.alexa.utter("a little story about the moon");
    assert.equal(other.lastRequest().request.intent.slots.length.value, "little");
    assert.equal(resolvedId(other.lastRequest(), "length"), "short");
    assertSays(reply, MOON_STORIES);

    const third = newDevice();
    reply = await third.alexa.utter("a short story about a rocket");
    assertSays(reply, new RegExp(
      `^I don't have a new short story for that just now, so this one is a different length\\. Here is a story called ${ROCKET}\\.`,
    ));
  });
});

describe("a three-part story over three nights", () => {
  it("resume tells the next unheard part; from the beginning starts over", OPTIONS, async () => {
    const { alexa } = newDevice();
    let reply = await alexa.utter("a story about a rocket");
    let text = speech(reply);
    assert.ok(text.includes(ROCKET_PART_1) && text.endsWith("Shall I go on?"), text);
    reply = await alexa.utter("goodnight");
    assertSays(reply, new RegExp(`remember where we were in ${ROCKET}`));
    assert.ok(endsSession(reply));

    // night two: from the beginning
    reply = await alexa.launch();
    assertSays(reply, /Shall I carry on, or start from the beginning\?$/);
    reply = await alexa.utter("from the beginning");
    text = assertSays(reply, new RegExp(`^Let's start ${ROCKET} again from the beginning\\.`));
    assert.ok(text.includes(ROCKET_PART_1), text);
    reply = await alexa.utter("yes");
    assert.ok(speech(reply).includes(ROCKET_PART_2));
    await alexa.utter("stop");

    // night three: carry on = part three, never part two again
    reply = await alexa.launch();
    assertKeepsListening(reply);
    reply = await alexa.utter("yes");
    text = assertSays(reply, new RegExp(`^Let's carry on with ${ROCKET}\\.`));
    assert.ok(text.includes(ROCKET_PART_3) && !text.includes(ROCKET_PART_2), text);
    assert.match(text, /The end\..*Would you like another story\?$/);
    const voices = sleepyProsody(reply);
    assert.ok(voices.length > 1, "the last part falls paragraph by paragraph");
    assert.deepEqual(voices.at(-1), [72, -4]);
    for (let i = 1; i < voices.length; i++) {
      assert.ok(voices[i][0] <= voices[i - 1][0] && voices[i][1] <= voices[i - 1][1], voices);
    }
  });
});

describe("two stories, then goodnight", () => {
  it("queues a second story, then the goodnight ritual", OPTIONS, async () => {
    const device = newDevice();
    const { alexa } = device;
    let reply = await alexa.utter("tell me two stories about the moon");
    // Alexa sends AMAZON.NUMBER as "2"; virtual-alexa passes the word
    assert.match(device.lastRequest().request.intent.slots.count.value, /^(2|two)$/);
    const first = assertSays(reply, /Ready for your next story\?$/);
    assertKeepsListening(reply);
    reply = await alexa.utter("yes");
    const second = speech(reply);
    const titles = [first.match(MOON_STORIES)[0], second.match(MOON_STORIES)[0]];
    assert.notEqual(titles[0], titles[1], "the second story is a different one");
    assert.ok(!second.includes("Would you like another story"), second);
    assert.match(second, /Close your eyes, and take a slow, deep breath in, and out\. Goodnight, sleep tight\./);
    if (SOUNDS) {
      assert.match(second, /Would you like some gentle rain to fall asleep to\?$/);
      reply = await alexa.utter("no");
    }
    assert.ok(endsSession(reply));
  });
});

describe("sleep sounds", { skip: !SOUNDS && "no sox: sleep sounds not built" }, () => {
  it("play the ocean for twenty minutes: AudioPlayer, events, timer, stop", OPTIONS, async () => {
    const device = newDevice();
    const { alexa } = device;
    const player = alexa.audioPlayer();
    // virtual-alexa has no AMAZON.DURATION values, so the slots are given as Alexa resolves them
    let reply = await alexa.intend("SleepSoundIntent", { sound: "ocean", duration: "PT20M" });
    assertSays(reply, /^Here is the sound of ocean waves for 20 minutes\. Goodnight\.$/);
    assert.ok(endsSession(reply));
    const [play] = directives(reply);
    assert.equal(play.type, "AudioPlayer.Play");
    assert.equal(play.playBehavior, "REPLACE_ALL");
    assert.equal(play.audioItem.stream.url, `${PUBLIC_URL}/sounds/ocean.mp3`);
    const [, sound, endsAt] = play.audioItem.stream.token.split(":");
    assert.equal(sound, "ocean");
    const minutes = (Number(endsAt) - Date.now() / 1000) / 60;
    assert.ok(minutes > 19.5 && minutes <= 20, `timer ${minutes} minutes`);

    // the device started it and told the server (AudioPlayer.PlaybackStarted)
    assert.ok(player.isPlaying());
    assert.ok(device.sent.some((r) => r.request.type === "AudioPlayer.PlaybackStarted"));

    // the sound file itself comes from our own server
    const local = process.env.BEDTIME_SKILL_URL.replace(/\/alexa$/, "/sounds/ocean.mp3");
    const file = await fetch(local);
    assert.equal(file.status, 200);
    assert.equal(file.headers.get("content-type"), "audio/mpeg");
    assert.ok((await file.arrayBuffer()).byteLength > 100_000);

    // nearly finished with a loop while the timer runs: the next loop is enqueued
    player.playbackOffset(100_000);
    const nearly = await player.playbackNearlyFinished();
    const [enqueue] = directives(nearly);
    assert.equal(enqueue.playBehavior, "ENQUEUE");
    assert.equal(enqueue.audioItem.stream.expectedPreviousToken, play.audioItem.stream.token);
    await player.playbackFinished();
    assert.ok(player.isPlaying(), "the enqueued loop plays next");

    // a loop whose timer has run out: nothing more is enqueued
    player.playing().stream.token = `sleep:ocean:${Math.floor(Date.now() / 1000) - 5}:9`;
    const done = await player.playbackNearlyFinished();
    assert.deepEqual(directives(done), []);
    assert.equal(done.response.outputSpeech, undefined);
  });

  it("stop while rain plays stops the stream", OPTIONS, async () => {
    const { alexa } = newDevice();
    let reply = await alexa.utter("ask bedtime stories to play rain");
    assertSays(reply, /^Here is some gentle rain for 20 minutes\./);
    assert.ok(alexa.audioPlayer().isPlaying());
    reply = await alexa.utter("stop");
    assertSays(reply, /^Okay, I've stopped the sound\. Goodnight\.$/);
    assert.deepEqual(directives(reply).map((d) => d.type), ["AudioPlayer.Stop"]);
    assert.ok(!alexa.audioPlayer().isPlaying());
  });
});
