"use strict";
// Every sample utterance of every locale, spoken to virtual-alexa, reaches its own intent with its
// slots filled: catches samples that another intent's sample shadows. Needs no server (a local
// echo skill answers).

const assert = require("node:assert/strict");
const fs = require("node:fs");
const path = require("node:path");
const { describe, it } = require("node:test");
const { VirtualAlexa } = require("virtual-alexa");
const { LOCALES, MODELS_DIR, SKILL_ID, parseInvocation } = require("./helpers");

const SLOT_FILLERS = {
  keyword: "dragon",
  secondKeyword: "boat",
  length: "short",
  count: "2",
  sound: "rain",
  duration: "twenty minutes",
  feature: "sleepy voice",
};

for (const locale of LOCALES) {
  const file = path.join(MODELS_DIR, `${locale}.json`);
  const model = JSON.parse(fs.readFileSync(file, "utf8")).interactionModel.languageModel;
  describe(`${locale} sample utterances`, () => {
    const alexa = VirtualAlexa.Builder()
      .applicationID(SKILL_ID)
      .interactionModelFile(file)
      .handler(path.join(__dirname, "echo-skill.js"))
      .locale(locale)
      .create();
    alexa.parseLaunchRequest = parseInvocation;
    for (const intent of model.intents) {
      const samples = intent.samples || [];
      if (samples.length === 0) {
        continue;
      }
      it(`${intent.name} (${samples.length} samples)`, async () => {
        for (const sample of samples) {
          const spoken = sample.replace(/\{(\w+)\}/g, (_, name) => SLOT_FILLERS[name]);
          const reply = await alexa.utter(spoken);
          const heard = JSON.parse(reply.prompt());
          assert.equal(heard.intent, intent.name, `"${spoken}" went to ${heard.intent}`);
          for (const match of sample.matchAll(/\{(\w+)\}/g)) {
            assert.equal(heard.slots[match[1]], SLOT_FILLERS[match[1]], `"${spoken}": ${match[1]}`);
          }
        }
      });
    }
    it("the invocation phrase launches", async () => {
      const reply = await alexa.utter("open bedtime stories");
      assert.equal(JSON.parse(reply.prompt()).type, "LaunchRequest");
    });
  });
}
