"""``bedtime talk``: the conversation in a terminal, in-process, on the same store as the skill.

No HTTP, no signatures, no Node: each line typed is matched against OUR interaction model
(skill/interaction_model/, the samples Alexa is given), turned into the request envelope Alexa
would send, and handed to the same skill ``bedtime serve`` runs. ``--speak`` reads each answer
aloud with espeak-ng, SSML included, so the sleepy voice and the pauses can be heard.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from skill import intents
from skill.handlers.base import number_value
from skill.package import language_model, render_interaction_model

LAUNCH_WORDS = re.compile(r"^(open|launch|start)( bedtime stories)?$")
#: Built-in intents are understood by Alexa without samples; these are their plain words.
BUILT_IN_PHRASES = {
    "yes": intents.YES,
    "yes please": intents.YES,
    "no": intents.NO,
    "no thanks": intents.NO,
    "stop": intents.STOP,
    "cancel": intents.CANCEL,
    "help": intents.HELP,
    "next": intents.NEXT,
    "repeat": intents.REPEAT,
    "start over": intents.START_OVER,
    "pause": intents.PAUSE,
    "resume": intents.RESUME,
}
_SLOT_REF = re.compile(r"\{([^{}|]+)\}")
_FREE_TEXT_TYPES = {intents.KEYWORD_TYPE}  # Alexa passes words it has no value for, too


def duration_value(words: str) -> str | None:
    """ "twenty minutes", "an hour", "1 hour" → ISO-8601 (AMAZON.DURATION), else None."""
    match = re.fullmatch(r"(?P<n>.+?) (?P<unit>minutes?|hours?|seconds?)", words.strip().lower())
    if match is None:
        return None
    amount = 1 if match["n"] in ("a", "an") else number_value(match["n"])
    if amount is None:
        return None
    unit = {"m": "M", "h": "H", "s": "S"}[match["unit"][0]]
    return f"PT{amount}{unit}"


@dataclass
class Understood:
    """An intent and its slots as Alexa would resolve them: (words, resolved id or None)."""

    intent: str
    slots: dict[str, tuple[str, str | None]] = field(default_factory=dict)


class Understanding:
    """A small NLU over one locale's interaction model: samples → regular expressions."""

    def __init__(self, locale: str) -> None:
        model = language_model(render_interaction_model(locale))
        self.values: dict[str, dict[str, str]] = {}  # type -> phrase -> id
        for slot_type in model.get("types", []):
            phrases: dict[str, str] = {}
            for value in slot_type.get("values", []):
                vid = value.get("id") or value["name"]["value"]
                for phrase in [value["name"]["value"], *value["name"].get("synonyms", [])]:
                    phrases.setdefault(phrase.lower(), vid)
            self.values[slot_type["name"]] = phrases
        self.patterns: list[tuple[str, re.Pattern[str], dict[str, str]]] = []
        for intent in model["intents"]:
            slot_types = {slot["name"]: slot["type"] for slot in intent.get("slots", [])}
            for sample in intent.get("samples", []):
                pattern = self._compile(sample, slot_types)
                self.patterns.append((intent["name"], pattern, slot_types))

    def _compile(self, sample: str, slot_types: dict[str, str]) -> re.Pattern[str]:
        pattern, position = "", 0
        for match in _SLOT_REF.finditer(sample):
            pattern += re.escape(sample[position : match.start()])
            slot_type = slot_types.get(match.group(1), "")
            options = sorted(self.values.get(slot_type, {}), key=len, reverse=True)
            if slot_type in _FREE_TEXT_TYPES or not options:
                body = "[a-z0-9' -]+?"
            else:
                body = "|".join(re.escape(option) for option in options)
            pattern += f"(?P<{match.group(1)}>{body})"
            position = match.end()
        pattern += re.escape(sample[position:])
        return re.compile(pattern)

    def understand(self, text: str) -> Understood:
        """The best intent for ``text``: a listed value beats free text, fewer free words win."""
        utterance = " ".join(re.sub(r"[^a-z0-9' -]", " ", text.lower()).split())
        if utterance in BUILT_IN_PHRASES:
            return Understood(BUILT_IN_PHRASES[utterance])
        best: tuple[int, Understood] | None = None
        for name, pattern, slot_types in self.patterns:
            match = pattern.fullmatch(utterance)
            if match is None:
                continue
            slots, free = self._slots(match.groupdict(), slot_types)
            if slots is None:
                continue
            if best is None or free < best[0]:
                best = (free, Understood(name, slots))
        return best[1] if best is not None else Understood(intents.FALLBACK)

    def _slots(
        self, found: dict[str, str], slot_types: dict[str, str]
    ) -> tuple[dict[str, tuple[str, str | None]] | None, int]:
        """Slot values with their resolved ids; None when a built-in slot does not parse."""
        slots: dict[str, tuple[str, str | None]] = {}
        free = 0
        for name, words in found.items():
            slot_type = slot_types[name]
            if slot_type == "AMAZON.NUMBER":
                number = number_value(words)
                if number is None:
                    return None, 0
                slots[name] = (str(number), None)
            elif slot_type == "AMAZON.DURATION":
                duration = duration_value(words)
                if duration is None:
                    return None, 0
                slots[name] = (duration, None)
            else:
                resolved = self.values.get(slot_type, {}).get(words)
                free += 0 if resolved is not None else len(words)
                slots[name] = (words, resolved)
        return slots, free


@dataclass
class LocalDevice:
    """One simulated Echo: a listener, a device id and the session it is in."""

    handler: Callable[[dict[str, Any], Any], dict[str, Any]]
    skill_id: str
    locale: str = "en-US"
    user_id: str = "amzn1.ask.account.bedtime-talk"
    device_id: str = "amzn1.ask.device.bedtime-talk"
    session: dict[str, Any] | None = None
    session_attributes: dict[str, Any] = field(default_factory=dict)

    def launch(self) -> dict[str, Any]:
        self.end_session()
        return self.send({"type": "LaunchRequest"})

    def intent(self, understood: Understood) -> dict[str, Any]:
        slots = {
            name: _slot_json(name, words, resolved, understood.intent)
            for name, (words, resolved) in understood.slots.items()
        }
        return self.send(
            {
                "type": "IntentRequest",
                "intent": {"name": understood.intent, "confirmationStatus": "NONE", "slots": slots},
            }
        )

    def end_session(self) -> None:
        self.session = None
        self.session_attributes = {}

    def send(self, request: dict[str, Any]) -> dict[str, Any]:
        new = self.session is None
        if new:
            self.session = {"sessionId": f"amzn1.echo-api.session.{uuid.uuid4()}"}
        request = {
            "requestId": f"amzn1.echo-api.request.{uuid.uuid4()}",
            "timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "locale": self.locale,
            **request,
        }
        application = {"applicationId": self.skill_id}
        user = {"userId": self.user_id}
        envelope = {
            "version": "1.0",
            "session": {
                **(self.session or {}),
                "new": new,
                "application": application,
                "user": user,
                "attributes": self.session_attributes,
            },
            "context": {
                "System": {
                    "application": application,
                    "user": user,
                    "device": {"deviceId": self.device_id, "supportedInterfaces": {}},
                }
            },
            "request": request,
        }
        out = self.handler(envelope, None)
        self.session_attributes = out.get("sessionAttributes") or {}
        if out.get("response", {}).get("shouldEndSession") is not False:
            self.end_session()
        return out


def _slot_json(name: str, words: str, resolved: str | None, intent: str) -> dict[str, Any]:
    slot: dict[str, Any] = {"name": name, "value": words, "confirmationStatus": "NONE"}
    if resolved is not None:
        slot["resolutions"] = {
            "resolutionsPerAuthority": [
                {
                    "authority": f"amzn1.er-authority.echo-sdk.bedtime-talk.{intent}.{name}",
                    "status": {"code": "ER_SUCCESS_MATCH"},
                    "values": [{"value": {"name": words, "id": resolved}}],
                }
            ]
        }
    return slot


def speech_ssml(out: dict[str, Any]) -> str:
    speech = out.get("response", {}).get("outputSpeech") or {}
    return str(speech.get("ssml") or "")


def plain(ssml: str) -> str:
    """SSML as the words a listener hears."""
    if not ssml:
        return ""
    try:
        root = ET.fromstring(ssml)
    except ET.ParseError:
        return re.sub(r"<[^>]+>", " ", ssml)
    return " ".join(" ".join(root.itertext()).split())


def audio_note(out: dict[str, Any]) -> str | None:
    """A line describing an AudioPlayer.Play directive (a sleep sound), if the reply has one."""
    for directive in out.get("response", {}).get("directives") or []:
        if directive.get("type") == "AudioPlayer.Play":
            stream = directive["audioItem"]["stream"]
            return f"(playing {stream['url']}, token {stream['token']})"
    return None


class Speaker:
    """espeak-ng, reading SSML (-m) so breaks and prosody are heard; None when not installed."""

    def __init__(self, program: str) -> None:
        self.program = program

    @classmethod
    def find(cls) -> Speaker | None:
        program = shutil.which("espeak-ng")
        return cls(program) if program else None

    def speak(self, ssml: str) -> str | None:
        """Play it; returns espeak-ng's complaint (e.g. no sound card) or None when it spoke."""
        if not ssml:
            return None
        result = subprocess.run([self.program, "-m", ssml], check=False, capture_output=True)
        problem = result.stderr.decode("utf-8", "replace").strip()
        return problem.splitlines()[-1] if result.returncode or problem else None

    def wav(self, ssml: str) -> bytes:
        """The same speech as WAV bytes (no sound card needed)."""
        result = subprocess.run(
            [self.program, "-m", "--stdout", ssml], check=True, capture_output=True
        )
        return result.stdout
