"""Route declarations: what a route takes and answers, and who may use it.

``RouteSpec`` holds what the OpenAPI document says of a route; each side subclasses it with how
the route is served (the hub: a handler; the edge: a handler or a queue command builder) and
narrows ``access`` to its own levels. Declaring both in one place is what keeps the document
from drifting from the server.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

Schema = Mapping[str, Any]
# a request body: a pydantic model (sent as JSON, validated by ``read_json``), or media type ->
# JSON schema (forms, or JSON read by hand); None: the route reads no body
BodySpec = type[BaseModel] | Mapping[str, Schema] | None


@dataclass(frozen=True)
class Param:
    """A query parameter: an integer in [minimum, maximum], or ``schema`` for any other."""

    name: str
    description: str
    minimum: int = 0
    maximum: int = 0
    default: int = 0
    schema: Schema | None = None

    def json_schema(self) -> dict[str, Any]:
        if self.schema is not None:
            return dict(self.schema)
        return {"type": "integer", "minimum": self.minimum, "maximum": self.maximum,
                "default": self.default}


@dataclass(frozen=True)
class RouteSpec:
    """One route as documented.

    ``access``: who may use it (no default: deny by default means every route says so).
    ``body``: see ``BodySpec``. ``response``: the success body's schema or model (``status``, in
    ``content_type``). ``query``: its query parameters. ``also``: other answers given on purpose,
    status -> description (a 303 after a form, a 304 for a matching ETag); errors (4XX/5XX) and,
    for pages, redirects (3XX) are listed for every route by ``openapi``.
    """

    method: str
    path: str
    summary: str
    access: str = field(kw_only=True)
    body: BodySpec = field(default=None, kw_only=True)
    response: Schema | type[BaseModel] | None = field(default=None, kw_only=True)
    status: int = field(default=200, kw_only=True)
    content_type: str = field(default="application/json", kw_only=True)
    query: tuple[Param, ...] = field(default=(), kw_only=True)
    also: Mapping[int, str] = field(default_factory=dict, kw_only=True)


# JSON schema pieces for response schemas
STR: dict[str, Any] = {"type": "string"}
INT: dict[str, Any] = {"type": "integer"}
BOOL: dict[str, Any] = {"type": "boolean"}
OPT_STR: dict[str, Any] = {"type": ["string", "null"]}
OPT_INT: dict[str, Any] = {"type": ["integer", "null"]}


def obj(required: Schema, optional: Schema | None = None) -> dict[str, Any]:
    """An object schema with these required (and optional) properties; others are allowed
    (a client must ignore fields it does not know)."""
    return {"type": "object", "required": list(required),
            "properties": {**required, **(optional or {})}}


def array(items: Schema) -> dict[str, Any]:
    return {"type": "array", "items": dict(items)}
