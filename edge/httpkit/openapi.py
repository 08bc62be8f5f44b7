"""One OpenAPI 3.1 generator for the edge and the hub, from their route declarations.

Every operation lists its path and query parameters, its request body (a pydantic model becomes
a component schema), its success answer, the error answers (``Error`` JSON; a page may answer
them as a page and may redirect) and its access level as ``x-access``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import BaseModel

from edge.httpkit.routes import STR, RouteSpec

_REF = "#/components/schemas/{model}"

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object", "required": ["error"],
    "properties": {"error": {"type": "object", "required": ["code", "message", "message_ja"],
                             "properties": {"code": STR, "message": STR, "message_ja": STR}}},
}


def operation_id(method: str, path: str) -> str:
    """``post_api_counters_counter_call_next`` for ``/api/counters/{counter}/call-next``: a
    name code generators can use as is."""
    return method.lower() + re.sub(r"\W+", "_", path.replace("{", "").replace("}", ""))


def path_params(path: str) -> list[str]:
    return re.findall(r"{(\w+)}", path)


def openapi(routes: Iterable[RouteSpec], *, title: str, version: str,
            extra_paths: Mapping[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """The document. ``extra_paths``: path items that are not routes of the table (a websocket).
    Raises ``ValueError`` when two operations would share an id (the document would be invalid).
    """
    schemas: dict[str, Any] = {"Error": ERROR_SCHEMA}

    def schema(spec: Mapping[str, Any] | type[BaseModel] | None) -> dict[str, Any]:
        if spec is None:
            return {}
        if isinstance(spec, type):
            found = spec.model_json_schema(ref_template=_REF)
            schemas.update(found.pop("$defs", {}))
            schemas[spec.__name__] = found
            return {"$ref": _REF.format(model=spec.__name__)}
        return dict(spec)

    json_error = {"application/json": {"schema": {"$ref": _REF.format(model="Error")}}}
    paths: dict[str, dict[str, Any]] = {}
    seen: set[str] = set()
    for route in routes:
        page = route.content_type == "text/html"
        # pages and what browsers fetch (CSV, PDF, event streams) answer errors as pages
        browser = route.content_type != "application/json"
        error = {"description": "refused, invalid or unavailable",
                 "content": {**json_error, **({"text/html": {"schema": STR}} if browser else {})}}
        responses: dict[str, Any] = {str(route.status): {
            "description": "ok",
            "content": {route.content_type: {"schema": schema(route.response)}}}}
        responses.update({str(code): {"description": text} for code, text in route.also.items()})
        if page:
            responses["3XX"] = {"description": "redirect: to the sign-in page without a "
                                               "session, or where a form leads"}
        responses.update({"4XX": error, "5XX": error})
        op: dict[str, Any] = {"summary": route.summary,
                              "operationId": operation_id(route.method, route.path),
                              "responses": responses}
        if op["operationId"] in seen:
            raise ValueError(f"two operations named {op['operationId']!r}")
        seen.add(op["operationId"])
        params = [{"name": p, "in": "path", "required": True, "schema": {"type": "string"}}
                  for p in path_params(route.path)]
        params += [{"name": q.name, "in": "query", "required": False,
                    "description": q.description, "schema": q.json_schema()}
                   for q in route.query]
        if params:
            op["parameters"] = params
        if isinstance(route.body, type):
            op["requestBody"] = {"required": True, "content": {
                "application/json": {"schema": schema(route.body)}}}
        elif route.body:
            op["requestBody"] = {"required": True, "content": {
                media: {"schema": dict(body)} for media, body in route.body.items()}}
        op["x-access"] = route.access
        paths.setdefault(route.path, {})[route.method.lower()] = op
    paths.update(extra_paths or {})
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version},
        "paths": paths,
        "components": {"schemas": schemas},
    }
