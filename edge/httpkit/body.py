"""Reading a JSON request body into a pydantic model, with the same refusals everywhere:
400 ``bad_json`` for what is not a JSON object, 422 ``invalid_input`` for what the model
refuses (each failing field named, so a client can show which one)."""

from __future__ import annotations

import json
from typing import TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from edge.httpkit.errors import ApiError

M = TypeVar("M", bound=BaseModel)


async def read_json(request: web.Request, model: type[M]) -> M:
    """The body validated by ``model``; an empty body counts as ``{}`` (a model whose fields
    all have defaults accepts it). Reading enforces the app's ``client_max_size`` (413)."""
    raw = await request.read()
    try:
        data = json.loads(raw) if raw.strip() else {}
    except (ValueError, RecursionError) as exc:  # RecursionError: absurdly deep nesting
        raise ApiError(400, "bad_json", f"Body is not valid JSON: {exc}",
                       "本文が正しいJSONではありません") from exc
    if not isinstance(data, dict):
        raise ApiError(400, "bad_json", "Body must be a JSON object", "本文はJSONオブジェクトです")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        parts = [f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}" for e in exc.errors()]
        raise ApiError(422, "invalid_input", "; ".join(parts),
                       "入力が不正です: " + "; ".join(parts)) from exc
