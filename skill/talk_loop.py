"""The read-answer loop of ``bedtime talk`` (skill/talk.py has the pieces it uses)."""

from __future__ import annotations

import logging

import click

from settings import Settings
from skill.builder import build_skill
from skill.services import SkillServices
from skill.talk import LAUNCH_WORDS, LocalDevice, Speaker, Understanding, audio_note, plain
from skill.talk import speech_ssml as ssml_of

LOCAL_SKILL_ID = "amzn1.ask.skill.bedtime-talk"


def talk(settings: Settings, locale: str, speak: bool) -> None:
    """Read lines until an empty one; print (and maybe speak) every answer."""
    speaker = Speaker.find() if speak else None
    if speak and speaker is None:
        click.echo("espeak-ng is not installed (apt-get install espeak-ng); answers are printed.")
    logging.getLogger().setLevel(logging.WARNING)  # the log lines would drown the dialogue
    services = SkillServices.from_settings(settings)
    device = LocalDevice(
        build_skill(services=services).lambda_handler(),
        skill_id=settings.skill_id or LOCAL_SKILL_ID,
        locale=locale,
    )
    understanding = Understanding(locale)
    click.echo('Say "open bedtime stories" to begin; "new session" starts over; Enter quits.')
    while True:
        try:
            line = input("you> ").strip()
        except EOFError:
            break
        if not line:
            break
        if line.lower() == "new session":
            device.end_session()
            click.echo("(a new session starts with what you say next)")
            continue
        if LAUNCH_WORDS.match(line.lower()):
            out = device.launch()
        else:
            out = device.intent(understanding.understand(line))
        ssml = ssml_of(out)
        click.echo(f"alexa> {plain(ssml)}")
        note = audio_note(out)
        if note:
            click.echo(note)
        if device.session is None:
            click.echo("(the skill ended the session)")
        if speaker is not None:
            problem = speaker.speak(ssml)
            if problem:
                click.echo(f"(espeak-ng could not play audio: {problem}; answers are printed)")
                speaker = None
    services.engine.dispose()
