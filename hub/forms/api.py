"""``/api/forms/{form_id}/submissions…``: the JSON API for a ward's business systems.

Who may call it: whoever holds the form's API key (``Authorization: Bearer mfk_…``), issued
once by the form's staff on the submissions page; only its SHA-256 is stored. The routes are
declared ``public`` to the access middleware because the key, not a staff session, is the
capability (as ``ticket_token`` routes carry theirs in the URL); each handler checks it in
constant time before anything else, and an unknown form answers exactly like a wrong key
(401), so form ids cannot be probed. A dedicated access level (``form_api_key``) checked by the
middleware would be better and is proposed in the report.

Each call is audited ``form_api_read`` with the number of submissions returned, never content.
A submission whose fee is not paid yet (``awaiting_payment``) is not there: it has not
arrived (no receipt, no webhook either); it appears, as ``received``, once paid.
The list is ordered by last change (``updated_at``, then id), so a system that polls with
``after=<last id>`` sees new and changed submissions once each, in order.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime
from typing import Any

from aiohttp import web
from sqlalchemy import select

from hub.auth.guard import ip_of
from hub.auth.service import audit
from hub.forms import review
from hub.forms.context import FORMS, Forms
from hub.forms.pay_store import AWAITING
from hub.forms.records import open_field, open_json
from hub.forms.tables import form_files, form_submissions, forms
from hub.web.api import INT, OPT_STR, STR, ApiError, Param, Route, array, json_response, obj

LIMIT_MAX = 200
UNAUTHORIZED = ApiError(401, "api_key_invalid", "A valid API key for this form is required "
                        "(Authorization: Bearer …)",
                        "このフォームの有効な API キーが必要です（Authorization: Bearer …）")
NOT_FOUND = ApiError(404, "not_found", "No such submission", "申請が見つかりません")


def _ctx(request: web.Request) -> Forms:
    return request.app[FORMS]


async def _authorised_form(request: web.Request) -> Any:
    ctx = _ctx(request)
    header = request.headers.get("Authorization", "")
    scheme, _, key = header.partition(" ")
    digest = hashlib.sha256(key.strip().encode()).hexdigest()
    async with ctx.store.read() as tx:
        row = (await tx.conn.execute(select(forms.c.id, forms.c.api_key_hash).where(
            forms.c.id == request.match_info["form_id"]))).first()
    stored = str(row.api_key_hash) if row is not None and row.api_key_hash else "-" * 64
    ok = hmac.compare_digest(digest, stored)
    if scheme.lower() != "bearer" or not key.strip() or row is None or not ok:
        raise UNAUTHORIZED
    return row


async def _files(ctx: Forms, sids: list[str]) -> dict[str, list[dict[str, Any]]]:
    async with ctx.store.read() as tx:
        rows = (await tx.conn.execute(select(form_files).where(
            form_files.c.submission_id.in_(sids)).order_by(form_files.c.created_at))).all()
    out: dict[str, list[dict[str, Any]]] = {s: [] for s in sids}
    for r in rows:
        out[str(r.submission_id)].append({
            "id": str(r.id), "field": str(r.field), "content_type": str(r.content_type),
            "size": int(r.size), "sha256": str(r.sha256),
            "filename": open_field(ctx, str(r.id), "filename", r.filename)})
    return out


def _item(ctx: Forms, r: Any, files: list[dict[str, Any]]) -> dict[str, Any]:
    return {"id": str(r.id), "reference": str(r.reference), "status": str(r.status),
            "channel": str(r.channel), "version": int(r.version), "lang": str(r.lang),
            "submitted_at": r.submitted_at.isoformat(), "updated_at": r.updated_at.isoformat(),
            "answers": open_json(ctx, str(r.id), "answers", r.answers) or {}, "files": files}


async def _audit(request: web.Request, form_id: str, n: int, one: str | None = None) -> None:
    ctx = _ctx(request)
    detail: dict[str, Any] = {"count": n}
    if one is not None:
        detail["submission"] = review.audit_tag(ctx, one)
    await audit(ctx.store, ctx.hub, actor=f"api:{form_id}", action="form_api_read",
                target=form_id, ip=ip_of(request), detail=detail)


def _since(request: web.Request) -> datetime | None:
    raw = request.query.get("since")
    if not raw:
        return None
    try:
        got = datetime.fromisoformat(raw)
    except ValueError:
        raise ApiError(400, "bad_since", "since is an ISO 8601 time with its offset",
                       "since は時差つきの ISO 8601 日時です") from None
    if got.tzinfo is None:
        raise ApiError(400, "bad_since", "since needs an offset (Z or +09:00)",
                       "since には時差（Z または +09:00）が必要です")
    return got


async def list_submissions(request: web.Request) -> web.Response:
    row = await _authorised_form(request)
    ctx, form_id = _ctx(request), str(row.id)
    try:
        limit = max(1, min(LIMIT_MAX, int(request.query.get("limit", "100"))))
    except ValueError:
        limit = 100
    q = select(form_submissions).where(form_submissions.c.form_id == form_id,
                                       form_submissions.c.status != AWAITING)
    since = _since(request)
    if since is not None:
        q = q.where(form_submissions.c.updated_at >= since)
    after = request.query.get("after")
    if after:
        async with ctx.store.read() as tx:
            mark = (await tx.conn.execute(select(form_submissions.c.updated_at).where(
                form_submissions.c.id == after,
                form_submissions.c.form_id == form_id))).first()
        if mark is None:
            raise ApiError(400, "bad_after", "after names no submission of this form",
                           "after の申請はこのフォームにありません")
        q = q.where((form_submissions.c.updated_at > mark[0])
                    | ((form_submissions.c.updated_at == mark[0])
                       & (form_submissions.c.id > after)))
    q = q.order_by(form_submissions.c.updated_at, form_submissions.c.id).limit(limit)
    async with ctx.store.read() as tx:
        rows = (await tx.conn.execute(q)).all()
    files = await _files(ctx, [str(r.id) for r in rows])
    items = [_item(ctx, r, files[str(r.id)]) for r in rows]
    await _audit(request, form_id, len(items))
    return json_response({"submissions": items,
                          "next_after": items[-1]["id"] if items else after or None})


async def one_submission(request: web.Request) -> web.Response:
    row = await _authorised_form(request)
    ctx, form_id, sid = _ctx(request), str(row.id), request.match_info["sid"]
    async with ctx.store.read() as tx:
        sub = (await tx.conn.execute(select(form_submissions).where(
            form_submissions.c.id == sid, form_submissions.c.form_id == form_id,
            form_submissions.c.status != AWAITING))).first()
    if sub is None:
        raise NOT_FOUND
    files = await _files(ctx, [sid])
    await _audit(request, form_id, 1, sid)
    return json_response(_item(ctx, sub, files[sid]))


FILE = obj({"id": STR, "field": STR, "content_type": STR, "size": INT, "sha256": STR,
            "filename": STR})
SUBMISSION = obj({"id": STR, "reference": STR, "status": {"enum": [
    "received", "in_review", "returned", "completed"]}, "channel": {"enum": ["web", "staff"]},
    "version": INT, "lang": STR, "submitted_at": STR, "updated_at": STR,
    "answers": {"type": "object", "description": "field id -> normalised answer"},
    "files": array(FILE)})
_AUTH = "Authorization: Bearer <the form's API key> (401 without a valid one); audited"
PATH = "/api/forms/{form_id}/submissions"

ROUTES: tuple[Route, ...] = (
    Route("GET", PATH, "A form's submissions with their answers, oldest change first. "
          + _AUTH, list_submissions, access="public",
          response=obj({"submissions": array(SUBMISSION), "next_after": OPT_STR}),
          query=(Param("since", "only submissions changed at or after this ISO 8601 time"),
                 Param("after", "only those changed after this submission id (next_after of "
                       "the previous call)"),
                 Param("limit", f"at most this many (1–{LIMIT_MAX}, default 100)",
                       schema=INT))),
    Route("GET", f"{PATH}/{{sid}}", "One submission with its answers. " + _AUTH,
          one_submission, access="public", response=SUBMISSION),
)
