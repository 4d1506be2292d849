"use strict";
// A stand-in skill for model.test.js: answers every request with the intent and slots it got.

exports.handler = async (event) => {
  const { request } = event;
  const heard = { type: request.type };
  if (request.intent) {
    heard.intent = request.intent.name;
    heard.slots = {};
    for (const [name, slot] of Object.entries(request.intent.slots || {})) {
      if (slot.value !== undefined) {
        heard.slots[name] = slot.value;
      }
    }
  }
  return {
    version: "1.0",
    response: { outputSpeech: { type: "PlainText", text: JSON.stringify(heard) }, shouldEndSession: false },
  };
};
