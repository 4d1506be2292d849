""" "Listen": a story's SSML spoken by espeak-ng on the server, so a reviewer hears the pacing.

The SSML is the skill's own (:class:`skill.ssml.Speech`: calm rate, paragraph and sentence
breaks), so the reviewer hears the pauses Alexa will make, in a plainer voice.
"""

from __future__ import annotations

import logging
import shutil
import subprocess

from skill.ssml import Speech, split_story

logger = logging.getLogger(__name__)

ESPEAK = "espeak-ng"
TIMEOUT_S = 120
WORDS_PER_MINUTE = 160


class SpeechUnavailable(RuntimeError):
    """espeak-ng is not installed or failed; the message says what to do."""


def story_ssml(text: str) -> str:
    """The whole story as one <speak> document, paced as the skill paces it."""
    speech = Speech()
    for part in split_story(text):
        speech.story(part)
    return f"<speak>{speech.ssml()}</speak>"


def voice_for(locale: str) -> str:
    """en-US -> en-us, en-GB -> en-gb; other English locales fall back to plain English."""
    wanted = locale.lower()
    return wanted if wanted in {"en-us", "en-gb"} else "en"


def render_wav(text: str, locale: str = "en-US") -> bytes:
    """WAV bytes of the story read aloud."""
    binary = shutil.which(ESPEAK)
    if binary is None:
        raise SpeechUnavailable("espeak-ng is not installed (apt-get install -y espeak-ng)")
    command = [binary, "-m", "-v", voice_for(locale), "-s", str(WORDS_PER_MINUTE), "--stdout"]
    try:
        done = subprocess.run(
            command,
            input=story_ssml(text).encode("utf-8"),
            capture_output=True,
            timeout=TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise SpeechUnavailable(f"espeak-ng took longer than {TIMEOUT_S} s") from None
    if done.returncode != 0 or not done.stdout.startswith(b"RIFF"):
        logger.error("espeak-ng failed (%s): %s", done.returncode, done.stderr[-500:])
        raise SpeechUnavailable("espeak-ng could not read this story; see the server log")
    return done.stdout
