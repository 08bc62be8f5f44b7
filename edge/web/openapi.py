"""OpenAPI 3.1 document generated from ``ROUTES`` and the pydantic body models."""

from __future__ import annotations

import re
from typing import Any

from edge import __version__
from edge.web.api import ROUTES
from edge.web.schemas import ErrorResponse

_REF = "#/components/schemas/{model}"


def openapi() -> dict[str, Any]:
    schemas: dict[str, Any] = {}

    def ref(model: Any) -> dict[str, str]:
        schema = model.model_json_schema(ref_template=_REF)
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__] = schema
        return {"$ref": _REF.format(model=model.__name__)}

    error = {"description": "refused or invalid; nothing changed",
             "content": {"application/json": {"schema": ref(ErrorResponse)}}}
    paths: dict[str, dict[str, Any]] = {}
    for route in ROUTES:
        op: dict[str, Any] = {
            "summary": route.summary,
            "operationId": route.method.lower() + re.sub(r"\W+", "_", route.path),
            "responses": {
                "201" if route.created else "200": {
                    "description": "ok", "content": {"application/json": {"schema": {}}}
                },
                "4XX": error,
            },
        }
        params = re.findall(r"{(\w+)}", route.path)
        if params:
            op["parameters"] = [{"name": p, "in": "path", "required": True,
                                 "schema": {"type": "string"}} for p in params]
        if route.body is not None:
            op["requestBody"] = {"required": True,
                                 "content": {"application/json": {"schema": ref(route.body)}}}
        paths.setdefault(route.path, {})[route.method.lower()] = op
    paths["/api/ws"] = {"get": {
        "summary": "WebSocket: the state on connect, then every committed change",
        "operationId": "ws", "responses": {"101": {"description": "switching protocols"}},
    }}
    return {
        "openapi": "3.1.0",
        "info": {"title": "madoguchi edge API", "version": __version__},
        "paths": paths,
        "components": {"schemas": schemas},
    }
