"""Models over the API: upload with a checksum and a size limit, safe unpacking, download by
name with its checksum, choosing the live model."""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
from pathlib import Path

from flask import Flask
from sqlalchemy.orm import Session

from tests.console.test_api import assert_problem, bearer


def model_archive(files: dict[str, bytes], top: str = "tiny-model") -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(f"{top}/{name}" if top else name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


META = {"model_class": "GPT2LMHeadModel", "config": {"n_layer": 2}, "metrics": {"perplexity": 9.5}}


def upload(client, token: str, name: str, archive: bytes, sha256: str | None = None):
    """A multipart POST as curl -F sends it (built by hand: the test client would spool big
    bodies to a temporary file it never closes)."""
    boundary = "----bedtime-test-boundary"
    digest = sha256 or hashlib.sha256(archive).hexdigest()
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="name"\r\n\r\n{name}\r\n',
        f'--{boundary}\r\nContent-Disposition: form-data; name="sha256"\r\n\r\n{digest}\r\n',
        f'--{boundary}\r\nContent-Disposition: form-data; name="archive"; '
        'filename="model.tar.gz"\r\nContent-Type: application/gzip\r\n\r\n',
    ]
    body = "".join(parts).encode() + archive + f"\r\n--{boundary}--\r\n".encode()
    return client.post(
        "/api/v1/models",
        data=body,
        headers=bearer(token),
        content_type=f"multipart/form-data; boundary={boundary}",
    )


def test_upload_then_download_by_name(console_app: Flask, make_token, tmp_path: Path) -> None:
    token = make_token("admin")
    client = console_app.test_client()
    weights = os.urandom(50_000)
    files = {"bedtime_model.json": json.dumps(META).encode(), "model.safetensors": weights}
    stored = upload(client, token, "tiny-v1", model_archive(files))
    assert stored.status_code == 201, stored.get_data(as_text=True)
    body = stored.get_json()
    assert body["model_class"] == "GPT2LMHeadModel" and body["metrics"] == {"perplexity": 9.5}
    assert Path(body["artifact_path"], "model.safetensors").read_bytes() == weights
    listed = client.get("/api/v1/models", headers=bearer(token)).get_json()
    assert [m["name"] for m in listed["items"]] == ["tiny-v1"]

    fetched = client.get(
        "/api/v1/models/tiny-v1/archive", headers=bearer(make_token("read", name="r"))
    )
    assert fetched.status_code == 200
    archive = fetched.get_data()
    assert hashlib.sha256(archive).hexdigest() == fetched.headers["X-Checksum-Sha256"]
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
        tar.extractall(tmp_path, filter="data")
    assert (tmp_path / "tiny-v1" / "model.safetensors").read_bytes() == weights


def test_a_wrong_checksum_or_a_big_archive_is_refused(console_app: Flask, make_token) -> None:
    token = make_token("admin")
    client = console_app.test_client()
    archive = model_archive({"weights.bin": b"abc"})
    refused = upload(client, token, "tiny", archive, sha256="0" * 64)
    assert "sha256 mismatch" in assert_problem(refused, 422, "invalid-archive")["detail"]
    big = model_archive({"weights.bin": os.urandom(1_300_000)})  # the test limit is 1 MiB
    assert_problem(upload(client, token, "big", big), 413, "too-large")
    assert client.get("/api/v1/models/big", headers=bearer(token)).status_code == 404


def test_archives_cannot_write_outside_the_models_folder(
    console_app: Flask, make_token, tmp_path: Path
) -> None:
    token = make_token("admin")
    client = console_app.test_client()
    escaping = model_archive({"../../escaped.txt": b"x"}, top="")
    assert_problem(upload(client, token, "evil", escaping), 422, "invalid-archive")
    assert not list(tmp_path.rglob("escaped.txt"))
    assert_problem(
        upload(client, token, "../up", model_archive({"a": b"1"})), 422, "invalid-archive"
    )


def test_choose_the_live_model(console_app: Flask, db_session: Session, make_token) -> None:
    from db.generation_jobs import save_model_record

    save_model_record(db_session, "old", model_class="gpt2", artifact_path="/nowhere")
    save_model_record(db_session, "new", model_class="gpt2", artifact_path="/nowhere")
    db_session.commit()
    client = console_app.test_client()
    admin = make_token("admin")
    assert_problem(client.get("/api/v1/live-model", headers=bearer(admin)), 404, "no-live-model")
    for name in ("old", "new"):
        chosen = client.put("/api/v1/live-model", json={"name": name}, headers=bearer(admin))
        assert chosen.status_code == 200 and chosen.get_json()["live"] is True
    live = client.get("/api/v1/live-model", headers=bearer(admin)).get_json()
    assert live["name"] == "new"
    models = client.get("/api/v1/models", headers=bearer(admin)).get_json()["items"]
    assert {m["name"]: m["live"] for m in models} == {"old": False, "new": True}
    missing = client.put("/api/v1/live-model", json={"name": "nope"}, headers=bearer(admin))
    assert_problem(missing, 404, "no-such-model")
    no_files = client.get("/api/v1/models/old/archive", headers=bearer(admin))
    assert_problem(no_files, 404, "no-model-files")


def test_the_skill_uses_the_chosen_live_model_unless_the_env_names_one(
    db_engine, db_session: Session
) -> None:
    from db.generation_jobs import save_model_record
    from db.store.overview import choose_live_model, chosen_live_model_path

    save_model_record(db_session, "chosen", model_class="gpt2", artifact_path="/models/chosen")
    choose_live_model(db_session, "chosen")
    db_session.commit()
    # db_session's outer transaction is not committed: another connection cannot see the choice,
    # so read it on the test's own connection.
    assert chosen_live_model_path(db_session.get_bind()) == "/models/chosen"
    from sqlalchemy import create_engine

    empty = create_engine("sqlite://")
    assert chosen_live_model_path(empty) is None  # no tables yet: no choice, no crash
    empty.dispose()


def test_skill_services_pick_up_the_choice(tmp_path: Path) -> None:
    import dataclasses

    from db.engine import make_engine, session_factory, upgrade_database
    from db.generation_jobs import save_model_record
    from db.store.overview import choose_live_model
    from settings import Settings
    from skill.services import SkillServices

    url = f"sqlite:///{tmp_path / 'store.sqlite3'}"
    engine = make_engine(url)
    upgrade_database(engine)
    with session_factory(engine)() as session:
        save_model_record(session, "chosen", model_class="gpt2", artifact_path="/models/chosen")
        choose_live_model(session, "chosen")
        session.commit()
    engine.dispose()
    settings = Settings(database_url=url)
    services = SkillServices.from_settings(settings)
    assert services.settings.live_model_path == "/models/chosen"
    services.engine.dispose()
    pinned = SkillServices.from_settings(
        dataclasses.replace(settings, live_model_path="/env/model")
    )
    assert pinned.settings.live_model_path == "/env/model"
    pinned.engine.dispose()
