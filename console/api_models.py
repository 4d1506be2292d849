"""``/api/v1/models``: the model registry over HTTP (list, upload, download, choose the live one).

The pair the reference systems had as "save to server" and "model loader": train on a GPU box,
``POST`` the directory as a tar.gz with its sha256, ``GET .../archive`` it by name elsewhere.
"""

from __future__ import annotations

from pathlib import Path

from flask import Response, request

from console import model_files
from console.api import api, json_response
from console.auth import api_requires
from console.context import context, store
from console.problems import ApiProblem
from console.schemas import LiveModelChoice
from console.views import model_json, parse_body
from db.generation_jobs import find_model, save_model_record
from db.models import ModelRecord
from db.store import overview


def _model_or_404(name: str) -> ModelRecord:
    record = find_model(store(), name)
    if record is None:
        raise ApiProblem(404, "no-such-model", "Not Found", f"no model named {name!r}")
    return record


@api.get("/models")
@api_requires("read")
def list_models() -> Response:
    """Registered models with their metrics, training record and story counts.
    ---
    get:
      tags: [models]
      responses:
        200: {description: "every model, newest first; live marks the live model"}
    """
    session = store()
    counts = overview.stories_by_model(session)
    items = [model_json(m, counts.get(m.id, 0)) for m in overview.list_models(session)]
    return json_response({"items": items, "total": len(items)})


@api.get("/models/<name>")
@api_requires("read")
def get_model(name: str) -> Response:
    """One model.
    ---
    get:
      tags: [models]
      parameters: [{name: name, in: path, required: true, schema: {type: string}}]
      responses:
        200: {description: "the model"}
        404: {$ref: "#/components/responses/Problem"}
    """
    record = _model_or_404(name)
    return json_response(model_json(record, overview.stories_by_model(store()).get(record.id, 0)))


@api.post("/models")
@api_requires("admin")
def upload_model() -> Response:
    """Upload a trained model directory (tar.gz) with its sha256; registers it by name.
    ---
    post:
      tags: [models]
      requestBody:
        required: true
        content:
          multipart/form-data:
            schema:
              type: object
              required: [name, sha256, archive]
              properties:
                name: {type: string}
                sha256: {type: string, description: "hex sha256 of the archive"}
                archive: {type: string, format: binary}
      responses:
        201: {description: "stored and registered"}
        413: {$ref: "#/components/responses/Problem"}
        422: {$ref: "#/components/responses/Problem"}
    """
    settings = context().settings
    limit = int(settings.model_upload_max_mb * 1024 * 1024)
    if request.content_length is not None and request.content_length > limit + 64 * 1024:
        raise ApiProblem(413, "too-large", "Content Too Large", f"the limit is {limit} bytes")
    name = request.form.get("name", "")
    sha256 = request.form.get("sha256", "")
    upload = request.files.get("archive")
    if not name or not sha256 or upload is None:
        raise ApiProblem(
            422, "invalid-upload", "Unprocessable Content", "send name, sha256 and archive"
        )
    models_dir = Path(settings.models_dir)
    try:
        model_files.check_model_name(name)
        archive = model_files.receive(upload.stream, limit, sha256, models_dir)
        try:
            model_dir = model_files.unpack(archive, models_dir, name)
        finally:
            archive.unlink(missing_ok=True)
    except model_files.ModelArchiveError as exc:
        status = 413 if "larger than" in str(exc) else 422
        slug = "too-large" if status == 413 else "invalid-archive"
        raise ApiProblem(status, slug, "Model upload refused", str(exc)) from None
    meta = model_files.read_meta(model_dir)
    session = store()
    record = save_model_record(
        session,
        name,
        model_class=str(meta.get("model_class") or meta.get("kind") or "uploaded")[:200],
        hyperparameters=meta.get("config") or meta.get("hyperparameters") or {},
        artifact_path=str(model_dir),
        metrics=meta.get("metrics"),
    )
    session.commit()
    return json_response(model_json(record), 201, {"Location": f"/api/v1/models/{name}"})


@api.get("/models/<name>/archive")
@api_requires("read")
def download_model(name: str) -> Response:
    """The model directory as a tar.gz; its sha256 is in the X-Checksum-Sha256 header.
    ---
    get:
      tags: [models]
      parameters: [{name: name, in: path, required: true, schema: {type: string}}]
      responses:
        200:
          description: "the archive"
          content: {application/gzip: {schema: {type: string, format: binary}}}
        404: {$ref: "#/components/responses/Problem"}
    """
    record = _model_or_404(name)
    model_dir = Path(record.artifact_path or "")
    if not record.artifact_path or not model_dir.is_dir():
        raise ApiProblem(
            404, "no-model-files", "Not Found", f"model {name!r} has no files on this server"
        )
    path, digest = model_files.pack(model_dir, Path(context().settings.models_dir) / ".outgoing")
    response = Response(model_files.stream_then_delete(path), mimetype="application/gzip")
    response.headers["Content-Disposition"] = f'attachment; filename="{name}.tar.gz"'
    response.headers["X-Checksum-Sha256"] = digest
    response.headers["Content-Length"] = str(path.stat().st_size)
    return response


@api.get("/live-model")
@api_requires("read")
def get_live_model() -> Response:
    """The model chosen for live stories.
    ---
    get:
      tags: [models]
      responses:
        200: {description: "the live model"}
        404: {$ref: "#/components/responses/Problem"}
    """
    record = overview.live_model(store())
    if record is None:
        raise ApiProblem(404, "no-live-model", "Not Found", "no model is chosen for live stories")
    return json_response(model_json(record))


@api.put("/live-model")
@api_requires("admin")
def choose_live_model() -> Response:
    """Choose the model that tells live stories.
    ---
    put:
      tags: [models]
      requestBody:
        required: true
        content: {application/json: {schema: LiveModelChoice}}
      responses:
        200: {description: "the live model"}
        404: {$ref: "#/components/responses/Problem"}
    """
    body = parse_body(LiveModelChoice)
    session = store()
    try:
        record = overview.choose_live_model(session, body.name)
    except LookupError as exc:
        raise ApiProblem(404, "no-such-model", "Not Found", str(exc)) from None
    session.commit()
    return json_response(model_json(record))
