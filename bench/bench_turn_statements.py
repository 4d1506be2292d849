"""Count the SQL statements of one TellStoryIntent turn, end to end through the skill.

Why: a turn's latency on MySQL is mostly round trips, so the number of statements per turn is the
figure to watch when the store or the conversation changes. This builds the skill on a fresh
database (SQLite file by default, or ``--database-url``), loads the handwritten fixture stories
plus the synonym rabbit -> bunny, and sends TellStoryIntent turns through ``lambda_handler`` with
an engine-level ``before_cursor_execute`` listener counting what reaches the database (SQLite's
``BEGIN IMMEDIATE`` included) and a ``commit`` listener counting COMMITs (each one a log flush
on MariaDB). Each scenario is a new session of a listener who has heard nothing
yet; ``--show`` prints the statements.

    .venv/bin/python bench/bench_turn_statements.py
    .venv/bin/python bench/bench_turn_statements.py --database-url mysql+pymysql://root@127.0.0.1/x
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, event

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # runnable as a plain script from a checkout
    sys.path.insert(0, str(ROOT))

from db import store  # noqa: E402
from db.catalogue import load_starter_catalogue  # noqa: E402
from db.engine import make_engine, session_factory, upgrade_database  # noqa: E402
from settings import Settings  # noqa: E402
from skill.builder import build_skill  # noqa: E402
from skill.services import SkillServices  # noqa: E402

STORIES = ROOT / "tests" / "fixtures" / "handwritten_stories.jsonl"
SKILL_ID = "amzn1.ask.skill.00000000-0000-0000-0000-0000000be0c4"

#: (label, slot values) sent as TellStoryIntent's keyword / secondKeyword.
SCENARIOS: list[tuple[str, dict[str, str]]] = [
    ("no keyword (surprise)", {}),
    ("one keyword", {"keyword": "dragon"}),
    ("two keywords", {"keyword": "dragon", "secondKeyword": "boat"}),
    ("two keywords, one a synonym", {"keyword": "rabbit", "secondKeyword": "garden"}),
    ("unknown keyword", {"keyword": "submarine"}),
]


def envelope(user_id: str, slots: dict[str, str]) -> dict[str, Any]:
    system = {
        "application": {"applicationId": SKILL_ID},
        "user": {"userId": user_id},
        "device": {"deviceId": "bench", "supportedInterfaces": {}},
    }
    return {
        "version": "1.0",
        "session": {
            "new": True,
            "sessionId": f"amzn1.echo-api.session.{uuid.uuid4()}",
            "application": {"applicationId": SKILL_ID},
            "attributes": {},
            "user": {"userId": user_id},
        },
        "context": {"System": system},
        "request": {
            "type": "IntentRequest",
            "requestId": f"amzn1.echo-api.request.{uuid.uuid4()}",
            "timestamp": "2030-01-01T00:00:00Z",
            "locale": "en-US",
            "intent": {
                "name": "TellStoryIntent",
                "confirmationStatus": "NONE",
                "slots": {name: {"name": name, "value": value} for name, value in slots.items()},
            },
        },
    }


@contextmanager
def counting(engine: Engine) -> Iterator[list[str]]:
    """Statements reaching the driver; each COMMIT is appended as "COMMIT" too."""
    statements: list[str] = []

    def before(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(" ".join(statement.split()))

    def commit(_conn: Any) -> None:
        statements.append("COMMIT")

    event.listen(engine, "before_cursor_execute", before)
    event.listen(engine, "commit", commit)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", before)
        event.remove(engine, "commit", commit)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", help="an empty database (default: a temp SQLite file)")
    parser.add_argument("--show", action="store_true", help="print every statement")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        url = args.database_url or f"sqlite:///{Path(folder) / 'bench.sqlite3'}"
        engine = make_engine(url)
        upgrade_database(engine)
        sessions = session_factory(engine)
        random.seed(7)  # stories' random_key, so every run picks the same stories
        with sessions() as session:
            load_starter_catalogue(session, STORIES)
            store.add_synonym(session, "bunny", "rabbit")
            session.commit()
        settings = Settings(database_url=url, skill_id=SKILL_ID, verify_requests=False)
        services = SkillServices(
            settings=settings, engine=engine, session_factory=sessions, rng=random.Random(7)
        )
        handler = build_skill(services=services).lambda_handler()
        handler(envelope("warm-up", {"keyword": "bear"}), None)  # first-use costs aside
        print(f"{'TellStoryIntent turn':32} statements  commits")
        for label, slots in SCENARIOS:
            with counting(engine) as statements:
                handler(envelope(f"bench-{uuid.uuid4()}", slots), None)
            commits = statements.count("COMMIT")
            print(f"{label:32} {len(statements) - commits:>10} {commits:>8}")
            if args.show:
                for statement in statements:
                    print(f"    {statement[:160]}")
        engine.dispose()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
