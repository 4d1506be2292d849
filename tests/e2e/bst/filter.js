"use strict";
// bst (skill-testing-ml) filter for the Bedtime Stories YAML suite.
//
// 1. virtual-alexa 0.7.x, which bst drives, sends a LaunchRequest for ANY utterance containing
//    ask/open/launch/tell ("tell me a story" included). Only a real invocation phrase should
//    launch, so the parser is replaced before the first utterance is resolved.
// 2. Each YAML test is its own listener (a user id derived from the run id and the test name), so
//    a bookmark left by one test never leaks into the next.

const crypto = require("crypto");
const { VirtualAlexa } = require("virtual-alexa");

const INVOCATION = /^(?:ask|open|launch|start|talk to|tell) bedtime stories(?: (?:to|for|about) (.+))?$/i;

VirtualAlexa.prototype.parseLaunchRequest = function parseInvocation(utterance) {
  const match = INVOCATION.exec(utterance.trim());
  if (!match) {
    return undefined;
  }
  return match[1] ? match[1] : true;
};

const RUN = process.env.BEDTIME_E2E_RUN || String(process.pid);

function listenerId(test) {
  const digest = crypto.createHash("sha256").update(`${RUN}:${test.description}`).digest("hex");
  return `amzn1.ask.account.BST${digest.slice(0, 32)}`;
}

module.exports = {
  onRequest(test, request) {
    const userId = listenerId(test);
    if (request.session && request.session.user) {
      request.session.user.userId = userId;
    }
    if (request.context && request.context.System && request.context.System.user) {
      request.context.System.user.userId = userId;
    }
  },
};
