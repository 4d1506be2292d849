"""The OpenAPI 3.1 document, generated from the API views' docstrings and the pydantic bodies."""

from __future__ import annotations

from typing import Any

from apispec import APISpec
from apispec.yaml_utils import load_operations_from_docstring
from flask import Flask

from console.schemas import BODIES

TITLE = "Bedtime Stories API"
VERSION = "1.0.0"


def build_spec(app: Flask) -> dict[str, Any]:
    """Every ``api.*`` view with an OpenAPI docstring, and every request body schema."""
    spec = APISpec(
        title=TITLE,
        version=VERSION,
        openapi_version="3.1.0",
        info={"description": "The story store of the Bedtime Stories skill. Errors: RFC 9457."},
    )
    for model in BODIES:
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        schema.pop("$defs", None)
        spec.components.schema(model.__name__, schema)
    spec.components.security_scheme("bearer", {"type": "http", "scheme": "bearer"})
    spec.components.security_scheme(
        "session", {"type": "apiKey", "in": "cookie", "name": "session"}
    )
    spec.components.response(
        "Problem",
        {
            "description": "RFC 9457 problem details",
            "content": {"application/problem+json": {"schema": {"type": "object"}}},
        },
    )
    spec.components.parameter(
        "page", "query", {"schema": {"type": "integer", "minimum": 1, "default": 1}}
    )
    spec.components.parameter(
        "per_page",
        "query",
        {"schema": {"type": "integer", "minimum": 1, "maximum": 200, "default": 50}},
    )
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if not rule.endpoint.startswith("api.") or rule.endpoint == "api.openapi":
            continue
        view = app.view_functions[rule.endpoint]
        operations = load_operations_from_docstring(view.__doc__ or "")
        if not operations:
            continue
        for operation in operations.values():
            operation.setdefault("security", [{"bearer": []}, {"session": []}])
            _resolve_body_refs(operation)
        path = rule.rule.replace("<int:", "{").replace("<", "{").replace(">", "}")
        spec.path(path=path, operations=operations)
    return spec.to_dict()


def _resolve_body_refs(operation: dict[str, Any]) -> None:
    """``schema: StoryCreate`` in a docstring means the component of that name."""
    content = operation.get("requestBody", {}).get("content", {})
    for media in content.values():
        if isinstance(media.get("schema"), str):
            media["schema"] = {"$ref": f"#/components/schemas/{media['schema']}"}
