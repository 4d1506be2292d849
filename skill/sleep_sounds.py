"""Sleep sounds: gentle rain or the ocean through Alexa's AudioPlayer, with a sleep timer.

The audio is ours: ``bedtime sounds build`` synthesises each sound with sox into
``<data dir>/sounds/<name>.mp3`` (the Docker image does it at build time), and the web app serves
that folder at ``/sounds/`` (skill/webapp.py). Alexa streams from ``BEDTIME_PUBLIC_URL`` (HTTPS).

The timer lives in the stream token, ``sleep:<sound>:<end epoch seconds>:<n>``: each
``PlaybackNearlyFinished`` enqueues one more loop, the last one started at an offset so that it
ends when the timer does, and after that nothing: the speaker falls silent on time without a
database row or a server-side clock.
"""

from __future__ import annotations

import logging
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

#: Slot ids of SLEEP_SOUND (skill/interaction_model/base.json) -> sox synthesis arguments.
#: Pink noise shaped and slowly swelled sounds like steady rain; brown noise swelling every
#: eight seconds like waves on a beach.
SOUNDS: dict[str, tuple[str, ...]] = {
    "rain": ("synth", "{seconds}", "pinknoise", "lowpass", "3000", "highpass", "200",
             "tremolo", "0.2", "15", "gain", "-12", "fade", "q", "1", "{seconds}", "1"),
    "ocean": ("synth", "{seconds}", "brownnoise", "lowpass", "1200", "tremolo", "0.125", "70",
              "gain", "-9", "fade", "q", "1", "{seconds}", "1"),
}  # fmt: skip
DEFAULT_SOUND = "rain"
#: One loop of sound; the player enqueues it again until the timer ends.
LOOP_SECONDS = 120
DEFAULT_MINUTES = 20
MAX_MINUTES = 60
SAMPLE_RATE = 22050
TOKEN_PREFIX = "sleep"

_DURATION = re.compile(r"^PT(?:(?P<h>\d+)H)?(?:(?P<m>\d+)M)?(?:(?P<s>\d+)S)?$")


def now_seconds() -> float:
    """The clock the timer runs on (tests replace it)."""
    return time.time()


class SoundBuildError(RuntimeError):
    """sox is missing or failed; the message says how to fix it."""


def minutes_from_duration(value: str | None) -> int:
    """AMAZON.DURATION ("PT20M", "PT1H") to whole minutes in [1, MAX_MINUTES]; default 20."""
    match = _DURATION.match((value or "").strip().upper())
    if not match or not any(match.groupdict().values()):
        return DEFAULT_MINUTES
    seconds = int(match["h"] or 0) * 3600 + int(match["m"] or 0) * 60 + int(match["s"] or 0)
    return min(max(round(seconds / 60), 1), MAX_MINUTES)


@dataclass(frozen=True)
class SoundToken:
    """What a stream token carries: which sound, when the timer ends, and a loop counter."""

    sound: str
    ends_at: int
    loop: int = 0

    def encode(self) -> str:
        return f"{TOKEN_PREFIX}:{self.sound}:{self.ends_at}:{self.loop}"

    @classmethod
    def decode(cls, token: str | None) -> SoundToken | None:
        parts = (token or "").split(":")
        if len(parts) != 4 or parts[0] != TOKEN_PREFIX or parts[1] not in SOUNDS:
            return None
        try:
            return cls(parts[1], int(parts[2]), int(parts[3]))
        except ValueError:
            return None


@dataclass(frozen=True)
class Stream:
    """One AudioPlayer stream to play or enqueue."""

    url: str
    token: str
    offset_ms: int = 0
    previous_token: str | None = None


def stream_url(base_url: str, sound: str) -> str:
    return f"{base_url.rstrip('/')}/sounds/{sound}.mp3"


def first_stream(base_url: str, sound: str, minutes: int, now: float | None = None) -> Stream:
    """The stream that starts a sleep sound of ``minutes``."""
    ends_at = int((now if now is not None else now_seconds()) + minutes * 60)
    return Stream(stream_url(base_url, sound), SoundToken(sound, ends_at).encode())


def next_stream(
    base_url: str, token: str | None, offset_ms: int, now: float | None = None
) -> Stream | None:
    """What to enqueue when the current loop is nearly finished; None when the timer is done.

    The current loop ends ``LOOP_SECONDS - offset`` from now; the next one is played whole, or
    from an offset so it ends with the timer.
    """
    current = SoundToken.decode(token)
    if current is None:
        return None
    now = now if now is not None else now_seconds()
    current_ends = now + max(LOOP_SECONDS * 1000 - offset_ms, 0) / 1000
    remaining = current.ends_at - current_ends
    if remaining < 1:
        return None
    start_ms = int(max(LOOP_SECONDS - remaining, 0) * 1000)
    following = SoundToken(current.sound, current.ends_at, current.loop + 1)
    return Stream(
        stream_url(base_url, current.sound),
        following.encode(),
        offset_ms=start_ms,
        previous_token=token,
    )


def sound_path(sounds_dir: Path, sound: str) -> Path:
    return Path(sounds_dir) / f"{sound}.mp3"


def build_sounds(sounds_dir: Path, seconds: int = LOOP_SECONDS, force: bool = False) -> list[Path]:
    """Synthesise every sound with sox (mp3, mono); existing files are kept unless ``force``."""
    sox = shutil.which("sox")
    if sox is None:
        raise SoundBuildError(
            "sox is not installed; install it with: apt-get install -y sox libsox-fmt-mp3"
        )
    sounds_dir = Path(sounds_dir)
    sounds_dir.mkdir(parents=True, exist_ok=True)
    built: list[Path] = []
    for sound, effects in SOUNDS.items():
        target = sound_path(sounds_dir, sound)
        if target.exists() and not force:
            built.append(target)
            continue
        partial = target.with_suffix(".part.mp3")
        args = [arg.format(seconds=seconds) for arg in effects]
        command = [sox, "-n", "-r", str(SAMPLE_RATE), "-c", "1", "-C", "48", str(partial), *args]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0 or not partial.exists():
            partial.unlink(missing_ok=True)
            raise SoundBuildError(
                f"sox could not write {target.name}: {result.stderr.strip() or result.returncode}"
                " (mp3 needs libsox-fmt-mp3: apt-get install -y libsox-fmt-mp3)"
            )
        partial.replace(target)
        logger.info("Built sleep sound %s (%d s)", target, seconds)
        built.append(target)
    return built


def available(sounds_dir: Path) -> list[str]:
    """Sounds whose file exists, so the skill never offers what it cannot play."""
    return [sound for sound in SOUNDS if sound_path(sounds_dir, sound).is_file()]
