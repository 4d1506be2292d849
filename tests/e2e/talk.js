#!/usr/bin/env node
"use strict";
// Talk to a running skill through the virtual-alexa simulator, one utterance per line:
//   BEDTIME_SKILL_URL=http://127.0.0.1:8080/alexa node tests/e2e/talk.js
// Each line is spoken with OUR interaction model; "new session" starts a fresh session for the
// same listener (to hear the offer to resume); an empty line or Ctrl-D quits.

const readline = require("node:readline");
const { newDevice, plain } = require("./virtual-alexa/helpers");

async function main() {
  process.env.BEDTIME_SKILL_URL = process.env.BEDTIME_SKILL_URL || "http://127.0.0.1:8080/alexa";
  const device = newDevice({ locale: process.env.BEDTIME_LOCALE || "en-US" });
  const rl = readline.createInterface({ input: process.stdin, terminal: process.stdin.isTTY });
  console.log(`Simulated Echo talking to ${process.env.BEDTIME_SKILL_URL}. `
    + 'Try "open bedtime stories"; "new session" starts a new session; an empty line quits.');
  // Lines are handled one at a time, so replies come back in the order they were asked.
  for await (const line of rl) {
    const utterance = line.trim();
    if (!utterance) {
      break;
    }
    console.log(`you> ${utterance}`);
    try {
      if (utterance.toLowerCase() === "new session") {
        await device.alexa.endSession();
        console.log("(session ended; the next utterance starts a new one)");
        continue;
      }
      const reply = await device.alexa.utter(utterance);
      console.log(`alexa> ${plain(reply.prompt())}`);
      if (reply.response && reply.response.shouldEndSession) {
        console.log("(the skill ended the session)");
      }
    } catch (error) {
      console.error(`error: ${error.message}`);
    }
  }
  rl.close();
}

main();
