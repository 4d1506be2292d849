"""The floor every benchmark here compares against: the ASK SDK's hello-world skill.

The same two handlers as alexa-samples' helloworld-classes (a LaunchRequest and one intent; the
intent is named TellStoryIntent so the very same request envelopes can be sent to both skills),
as a Lambda handler and as a Flask app, with no database, no
interceptors and no verification: what the SDK itself costs per request.
"""

from __future__ import annotations

from typing import Any

SKILL_ID = "amzn1.ask.skill.00000000-0000-0000-0000-0000000be0c4"


def skill_builder() -> Any:
    from ask_sdk_core.dispatch_components import AbstractRequestHandler
    from ask_sdk_core.skill_builder import SkillBuilder
    from ask_sdk_core.utils import is_intent_name, is_request_type

    class LaunchHandler(AbstractRequestHandler):
        def can_handle(self, handler_input: Any) -> bool:
            return is_request_type("LaunchRequest")(handler_input)

        def handle(self, handler_input: Any) -> Any:
            speech = "Welcome, you can say Hello or Help. Which would you like to try?"
            return handler_input.response_builder.speak(speech).ask(speech).response

    class HelloWorldHandler(AbstractRequestHandler):
        def can_handle(self, handler_input: Any) -> bool:
            return is_intent_name("TellStoryIntent")(handler_input)

        def handle(self, handler_input: Any) -> Any:
            return handler_input.response_builder.speak("Hello World!").response

    builder = SkillBuilder()
    builder.add_request_handler(LaunchHandler())
    builder.add_request_handler(HelloWorldHandler())
    builder.skill_id = SKILL_ID
    return builder


def lambda_handler() -> Any:
    return skill_builder().lambda_handler()


def create_app() -> Any:
    """gunicorn 'hello_world:create_app()' (from bench/): POST /alexa, nothing verified.

    What flask-ask-sdk's SkillAdapter does for a request once its verifiers are off (importing
    the adapter itself needs the oscrypto workaround in skill/verification.py): deserialise,
    invoke, serialise.
    """
    import json

    from ask_sdk_model import RequestEnvelope
    from flask import Flask, request

    skill = skill_builder().create()
    serializer = skill.serializer
    app = Flask(__name__)

    @app.post("/alexa")
    def alexa() -> Any:
        envelope = serializer.deserialize(request.get_data(as_text=True), RequestEnvelope)
        response = skill.invoke(request_envelope=envelope, context=None)
        return json.dumps(serializer.serialize(response)), 200, {"Content-Type": "application/json"}

    return app
