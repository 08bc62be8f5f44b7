"""A resident's draft (save and resume) and its attachments, in SQL (no aiohttp here).

Why a bearer token with only its hash stored: the draft belongs to whoever holds the cookie or
the resume link; a database dump gives no way in. The draft keeps the version it started on,
so a form published again meanwhile never changes under the resident. Answers, the identity
(e-mail, OIDC profile) and filenames are sealed, bound to their row.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, fields
from datetime import timedelta
from typing import Any

from sqlalchemy import bindparam, delete, insert, select, update
from sqlalchemy.engine import Row

from hub.forms.attachments import Attachment
from hub.forms.context import Forms
from hub.forms.records import new_id, open_field, open_json, seal_field, seal_json, token_hash
from hub.forms.single import one_statement
from hub.forms.submit import FileRef, count_view
from hub.forms.tables import form_drafts, form_files, forms


@dataclass
class Draft:
    id: str
    form_id: str
    version: int
    identity: dict[str, Any]
    answers: dict[str, Any]
    page: int
    submission_id: str | None

    @property
    def email(self) -> str:
        return str(self.identity.get("email") or "")


async def start_draft(ctx: Forms, form_id: str, version: int, identity: dict[str, Any], *,
                      answers: dict[str, Any] | None = None,
                      submission_id: str | None = None) -> tuple[str, str]:
    """A new draft; returns (draft id, bearer token). Counts a start for the dashboard."""
    now = ctx.clock()
    did, token = new_id(), secrets.token_urlsafe(32)
    async with ctx.store.begin() as tx:
        await tx.conn.execute(insert(form_drafts).values(
            id=did, form_id=form_id, version=version, token_hash=token_hash(token),
            identity=seal_json(ctx, did, "identity", identity),
            answers=seal_json(ctx, did, "answers", answers or {}), page=1,
            submission_id=submission_id, created_at=now, updated_at=now,
            expires_at=now + timedelta(days=ctx.settings.draft_days)))
        if submission_id is None:
            await count_view(tx, form_id, now.date().isoformat(), starts=1)
    return did, token


async def load_draft(ctx: Forms, form_id: str, token: str) -> Draft | None:
    """The draft the token opens, if it is this form's and has not expired."""
    if not token or len(token) > 100:
        return None
    async with one_statement(ctx.store) as conn:
        row = (await conn.execute(select(form_drafts).where(
            form_drafts.c.token_hash == token_hash(token)))).first()
    return _opened(ctx, form_id, row)


def _opened(ctx: Forms, form_id: str, row: Row[Any] | None) -> Draft | None:
    """A ``form_drafts`` row as the draft, unless it is another form's or has expired."""
    if row is None or row.form_id != form_id or row.expires_at <= ctx.clock():
        return None
    did = str(row.id)
    return Draft(did, form_id, int(row.version), open_json(ctx, did, "identity", row.identity),
                 open_json(ctx, did, "answers", row.answers), int(row.page),
                 row.submission_id)


@dataclass(frozen=True)
class FormHead:
    """The form's row as the resident's pages use it (``resident_pages.open_draft``): all but
    the staff's working copy (``draft``, the whole form as JSON, which no resident page reads)
    and the webhook secrets."""

    id: str
    department: str
    title: str
    status: str
    published_version: int | None
    webhook_url: str
    notify_staff: str


_HEAD = tuple(forms.c[f.name] for f in fields(FormHead))
# built once: the page a resident opens runs it on every request, so neither the statement nor
# its SQL is made again (SQLAlchemy finds the compiled form by the statement's cache key)
_DRAFT_AND_FORM = (
    select(form_drafts, *(c.label(f"head_{c.name}") for c in _HEAD))
    .select_from(form_drafts.outerjoin(forms, forms.c.id == form_drafts.c.form_id))
    .where(form_drafts.c.token_hash == bindparam("token_hash")))


async def load_draft_and_form(ctx: Forms, form_id: str,
                              token: str) -> tuple[Draft, FormHead | None] | None:
    """``load_draft`` and the form's row (None: no such form) in ONE statement.

    Why joined: every page of the answering opens both; two statements were two round trips
    and the form row brought its working copy (the whole form's JSON) along each time. With
    200 residents opening their page at once (issue 17's forms bench) the second statement
    was about a fifth of the hub's CPU per page."""
    if not token or len(token) > 100:
        return None
    async with one_statement(ctx.store) as conn:
        row = (await conn.execute(_DRAFT_AND_FORM, {"token_hash": token_hash(token)})).first()
    draft = _opened(ctx, form_id, row)
    if draft is None or row is None:
        return None
    m = row._mapping
    head = None if m["head_id"] is None else FormHead(
        **{c.name: m[f"head_{c.name}"] for c in _HEAD})
    return draft, head


async def save_answers(ctx: Forms, draft: Draft, answers: dict[str, Any], page: int) -> None:
    """Store the answers so far (and push the expiry on: the resident is still at it)."""
    now = ctx.clock()
    async with one_statement(ctx.store, write=True) as conn:  # one UPDATE: atomic alone
        await conn.execute(update(form_drafts).where(form_drafts.c.id == draft.id).values(
            answers=seal_json(ctx, draft.id, "answers", answers), page=page, updated_at=now,
            expires_at=now + timedelta(days=ctx.settings.draft_days)))
    draft.answers, draft.page = answers, page


async def add_file(ctx: Forms, draft: Draft, field: str, a: Attachment) -> FileRef:
    """Record an accepted attachment as the draft's (the blob is already sealed in store)."""
    async with one_statement(ctx.store, write=True) as conn:  # one INSERT: atomic alone
        await conn.execute(insert(form_files).values(
            id=a.id, form_id=draft.form_id, draft_id=draft.id, submission_id=None, field=field,
            filename=seal_field(ctx, a.id, "filename", a.filename), content_type=a.mime,
            size=a.size, sha256=a.sha256, created_at=ctx.clock()))
    return FileRef.of(field, a)


async def remove_file(ctx: Forms, draft: Draft, file_id: str) -> None:
    """Forget a draft's attachment (row and blob). A file of the submission being corrected
    stays until the resubmission (then ``submit.resubmit`` drops what is no longer used)."""
    async with ctx.store.begin() as tx:
        gone = await tx.conn.execute(delete(form_files).where(
            form_files.c.id == file_id, form_files.c.draft_id == draft.id))
    if gone.rowcount:
        await ctx.intake.delete(file_id)


async def draft_files(ctx: Forms, draft: Draft) -> list[FileRef]:
    """Every attachment the draft may submit: its own and (when correcting) the
    submission's."""
    cond = form_files.c.draft_id == draft.id
    if draft.submission_id is not None:
        cond = cond | (form_files.c.submission_id == draft.submission_id)
    async with one_statement(ctx.store) as conn:
        rows = (await conn.execute(select(form_files).where(
            cond, form_files.c.form_id == draft.form_id))).all()
    return [FileRef(str(r.id), str(r.field), open_field(ctx, str(r.id), "filename", r.filename),
                    str(r.content_type), int(r.size), str(r.sha256)) for r in rows]
