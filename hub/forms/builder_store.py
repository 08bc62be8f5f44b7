"""The builder's reads and writes of ``forms_forms`` / ``forms_versions`` (no aiohttp).

Every change reads the draft, applies a pure change (``builder_edit``) and writes it back with
its audit row in one transaction, so a refused change saves nothing and a saved one is always
audited. Audit details name the kind of change, never a form's texts or anyone's answers.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, func, select, update

from hub.auth.service import audit_in
from hub.forms import versions
from hub.forms.builder_edit import EditRefused, Issue, refuse
from hub.forms.context import Forms
from hub.forms.model import Form, FormInvalid, Page, Text
from hub.forms.records import new_form_id, open_list, seal_json
from hub.forms.service import SUBMISSION_STATUSES, draft_of
from hub.forms.tables import (
    form_codes,
    form_counters,
    form_drafts,
    form_files,
    form_submissions,
    form_versions,
    form_views,
    forms,
)
from hub.forms.webhook import new_secret

DEFAULT_RETENTION_DAYS = 365
KEEP_SECRETS = 3  # the newest signs; older ones stay listed for receivers mid-rotation


def _json(form: Form) -> str:
    return json.dumps(form.model_dump(mode="json", exclude_none=True), ensure_ascii=False)


async def listing(ctx: Forms, departments: set[str] | None) -> list[dict[str, Any]]:
    """The dashboard: each form with its submissions by status and the last 30 days' views."""
    since = (ctx.clock() - timedelta(days=29)).date().isoformat()
    q = select(forms.c.id, forms.c.department, forms.c.title, forms.c.status,
               forms.c.published_version, forms.c.updated_at).order_by(forms.c.updated_at.desc())
    if departments is not None:
        q = q.where(forms.c.department.in_(sorted(departments)))
    async with ctx.store.read() as tx:
        rows = (await tx.conn.execute(q)).all()
        ids = [str(r.id) for r in rows]
        counts = (await tx.conn.execute(
            select(form_submissions.c.form_id, form_submissions.c.status, func.count())
            .where(form_submissions.c.form_id.in_(ids))
            .group_by(form_submissions.c.form_id, form_submissions.c.status))).all()
        views = (await tx.conn.execute(
            select(form_views.c.form_id, func.sum(form_views.c.views),
                   func.sum(form_views.c.starts), func.sum(form_views.c.submissions))
            .where(form_views.c.form_id.in_(ids), form_views.c.day >= since)
            .group_by(form_views.c.form_id))).all()
    by_status: dict[str, dict[str, int]] = {i: dict.fromkeys(SUBMISSION_STATUSES, 0)
                                            for i in ids}
    for fid, status, n in counts:
        if status in by_status[str(fid)]:
            by_status[str(fid)][str(status)] = int(n)
    seen = {str(v[0]): (int(v[1] or 0), int(v[2] or 0), int(v[3] or 0)) for v in views}
    return [{"id": str(r.id), "department": str(r.department), "title": str(r.title),
             "status": str(r.status), "published_version": r.published_version,
             "updated_at": r.updated_at, "submissions": by_status[str(r.id)],
             "views": seen.get(str(r.id), (0, 0, 0))} for r in rows]


def minimal_draft(form_id: str, title_ja: str, title_en: str) -> Form:
    """A new form: one empty page, anonymous, kept a year."""
    return Form(id=form_id, title=Text(ja=title_ja, en=title_en),
                pages=(Page(id="p1", title=Text(ja="1ページ目", en="Page 1")),),
                retention_days=DEFAULT_RETENTION_DAYS)


async def _insert(ctx: Forms, tx: Any, form: Form, department: str, actor: str) -> None:
    now = ctx.clock()
    await tx.conn.execute(forms.insert().values(
        id=form.id, department=department, title=form.title.ja, draft=_json(form),
        status="draft", published_version=None, webhook_url="",
        webhook_secrets="", notify_staff="",  # "": none (as hub.forms.deliveries reads it)
        created_at=now, created_by=actor, updated_at=now))


async def create(ctx: Forms, department: str, title_ja: str, title_en: str, actor: str,
                 ip: str | None) -> str:
    if not title_ja:
        raise refuse("missing_ja", "title_ja", "タイトル（日本語）を入力してください",
                     "Enter the title in Japanese")
    if not department:
        raise refuse("no_department", "department", "所属課を選んでください",
                     "Choose a department")
    form = minimal_draft(new_form_id(), title_ja[:200], title_en[:200])
    async with ctx.store.begin() as tx:
        await _insert(ctx, tx, form, department, actor)
        await audit_in(tx, ctx.hub, actor=actor, action="form_created", target=form.id, ip=ip,
                       detail={"department": department})
    return form.id


async def change(ctx: Forms, form_id: str, kind: str, work: Callable[[Form], Form], actor: str,
                 ip: str | None, **detail: str) -> Form:
    """Apply ``work`` to the stored draft; ``EditRefused`` saves nothing."""
    async with ctx.store.begin() as tx:
        row = (await tx.conn.execute(select(forms).where(forms.c.id == form_id))).first()
        if row is None:
            raise refuse("not_found", "form", "フォームが見つかりません", "No such form")
        new = work(draft_of(row))
        await tx.conn.execute(update(forms).where(forms.c.id == form_id).values(
            draft=_json(new), title=new.title.ja, updated_at=ctx.clock()))
        await audit_in(tx, ctx.hub, actor=actor, action="form_changed", target=form_id, ip=ip,
                       detail={"kind": kind, **detail})
    return new


def contacts(ctx: Forms, row: Any) -> tuple[str, list[str], int]:
    """(webhook URL, staff notification addresses, number of signing secrets)."""
    fid = str(row.id)
    notify = open_list(ctx, fid, "notify_staff", row.notify_staff)
    listed = open_list(ctx, fid, "webhook_secrets", row.webhook_secrets)
    return str(row.webhook_url), list(notify), len(listed)


async def save_delivery(ctx: Forms, form_id: str, webhook_url: str, notify: list[str],
                        actor: str, ip: str | None) -> None:
    async with ctx.store.begin() as tx:
        await tx.conn.execute(update(forms).where(forms.c.id == form_id).values(
            webhook_url=webhook_url, updated_at=ctx.clock(),
            notify_staff=seal_json(ctx, form_id, "notify_staff", notify) if notify else ""))
        await audit_in(tx, ctx.hub, actor=actor, action="form_changed", target=form_id, ip=ip,
                       detail={"kind": "delivery", "webhook": bool(webhook_url),
                               "notify": len(notify)})


async def issue_secret(ctx: Forms, form_id: str, actor: str, ip: str | None) -> str:
    """A new signing secret, newest first; returned once to be shown, stored sealed."""
    secret = new_secret()
    async with ctx.store.begin() as tx:
        row = (await tx.conn.execute(select(forms.c.webhook_secrets)
                                     .where(forms.c.id == form_id))).first()
        if row is None:
            raise refuse("not_found", "form", "フォームが見つかりません", "No such form")
        old = open_list(ctx, form_id, "webhook_secrets", row[0])
        kept = [secret, *old][:KEEP_SECRETS]
        await tx.conn.execute(update(forms).where(forms.c.id == form_id).values(
            webhook_secrets=seal_json(ctx, form_id, "webhook_secrets", kept)))
        await audit_in(tx, ctx.hub, actor=actor, action="form_secret_created", target=form_id,
                       ip=ip, detail={"secrets": len(kept)})
    return secret


async def published_versions(ctx: Forms, form_id: str) -> list[Any]:
    async with ctx.store.read() as tx:
        return list((await tx.conn.execute(
            select(form_versions.c.version, form_versions.c.digest,
                   form_versions.c.published_at)
            .where(form_versions.c.form_id == form_id)
            .order_by(form_versions.c.version.desc()))).all())


async def publish(ctx: Forms, form_id: str, actor: str, ip: str | None) -> int:
    """The draft as the next version; residents get it from now on, those mid-answer keep
    theirs. The draft goes on as the next version's working copy."""
    async with ctx.store.begin() as tx:
        row = (await tx.conn.execute(select(forms).where(forms.c.id == form_id))).first()
        if row is None:
            raise refuse("not_found", "form", "フォームが見つかりません", "No such form")
        last = (await tx.conn.execute(select(func.max(form_versions.c.version))
                                      .where(form_versions.c.form_id == form_id))).scalar()
        number = int(last or 0) + 1
        frozen = versions.publish(draft_of(row), number)
        now = ctx.clock()
        await tx.conn.execute(form_versions.insert().values(
            form_id=form_id, version=number, definition=_json(frozen),
            digest=versions.digest(frozen), published_at=now, published_by=actor))
        await tx.conn.execute(update(forms).where(forms.c.id == form_id).values(
            status="published", published_version=number, updated_at=now,
            draft=_json(versions.next_draft(frozen))))
        await audit_in(tx, ctx.hub, actor=actor, action="form_published", target=form_id, ip=ip,
                       detail={"version": number})
    return number


async def set_status(ctx: Forms, form_id: str, new: str, actor: str, ip: str | None) -> None:
    """published → closed (no new answers) and closed → published (reopen)."""
    old = "published" if new == "closed" else "closed"
    async with ctx.store.begin() as tx:
        done = await tx.conn.execute(update(forms).where(
            forms.c.id == form_id, forms.c.status == old,
            forms.c.published_version.is_not(None)).values(status=new, updated_at=ctx.clock()))
        if done.rowcount != 1:
            raise refuse("wrong_status", "status", "この状態では変更できません",
                         "Not possible in this status")
        await audit_in(tx, ctx.hub, actor=actor,
                       action="form_closed" if new == "closed" else "form_changed",
                       target=form_id, ip=ip, detail={"kind": "status", "status": new})


async def copy(ctx: Forms, row: Any, actor: str, ip: str | None) -> str:
    draft = draft_of(row)
    new = versions.copy_form(draft, new_form_id())
    title = Text(ja=f"{draft.title.ja}（コピー）"[:10000],
                 en=f"{draft.title.en} (copy)" if draft.title.en else "")
    new = versions.edit(new, title=title)
    async with ctx.store.begin() as tx:
        await _insert(ctx, tx, new, str(row.department), actor)
        await audit_in(tx, ctx.hub, actor=actor, action="form_copied", target=new.id, ip=ip,
                       detail={"from": draft.id})
    return new.id


async def import_file(ctx: Forms, department: str, data: bytes, actor: str,
                      ip: str | None) -> str:
    """A form from an export file as a new draft with a new id; nothing saved on a problem."""
    try:
        got = versions.import_form(data)
    except FormInvalid as exc:
        raise EditRefused([Issue(p.code, p.where, p.ja, p.en) for p in exc.problems]) from None
    form = versions.copy_form(got, new_form_id())
    async with ctx.store.begin() as tx:
        await _insert(ctx, tx, form, department, actor)
        await audit_in(tx, ctx.hub, actor=actor, action="form_imported", target=form.id, ip=ip,
                       detail={"department": department, "pages": len(form.pages)})
    return form.id


async def audit_export(ctx: Forms, form_id: str, version: int | None, actor: str,
                       ip: str | None) -> None:
    async with ctx.store.begin() as tx:
        await audit_in(tx, ctx.hub, actor=actor, action="form_exported", target=form_id, ip=ip,
                       detail={"version": version})


async def deletion_facts(ctx: Forms, form_id: str) -> tuple[int, int]:
    """(submissions of any status, residents' unfinished drafts) of the form: what the confirm
    page says and what decides whether it may go."""
    async with ctx.store.read() as tx:
        subs = (await tx.conn.execute(select(func.count()).select_from(form_submissions).where(
            form_submissions.c.form_id == form_id))).scalar_one()
        drafts = (await tx.conn.execute(select(func.count()).select_from(form_drafts).where(
            form_drafts.c.form_id == form_id))).scalar_one()
    return int(subs), int(drafts)


async def delete_form(ctx: Forms, form_id: str, actor: str, ip: str | None) -> int:
    """Delete a form that holds no application: its row, versions, residents' unfinished drafts
    and their attachments, codes, counters and page views; audited ``form_deleted``. Returns
    the number of attachment files removed.

    Why only without applications: an application is kept for its form's retention period
    (F5) whatever happens to the form, and deleted by ``retention`` then; a form that still
    takes answers must be closed first, so no resident is mid-answer on a form that vanishes.
    The checks and the deletes run in one transaction (the row is re-read there), so an
    application sent meanwhile refuses the deletion instead of being orphaned. The files go
    after the commit, as in ``retention.purge``."""
    async with ctx.store.begin() as tx:
        row = (await tx.conn.execute(select(forms.c.status).where(forms.c.id == form_id)
                                     .with_for_update())).first()
        if row is None:
            raise refuse("not_found", "form", "フォームが見つかりません", "No such form")
        if row.status == "published":
            raise refuse("close_first", "form",
                         "受付中のフォームは削除できません。先に受付を終了してください",
                         "A form that takes applications cannot be deleted: close it first")
        subs = (await tx.conn.execute(select(func.count()).select_from(form_submissions).where(
            form_submissions.c.form_id == form_id))).scalar_one()
        if subs:
            raise refuse("has_submissions", "form",
                         "申請が残っているため削除できません。申請は保存期間が過ぎると"
                         "自動で削除されます",
                         "Applications are kept for this form, so it cannot be deleted; "
                         "they are deleted automatically when their retention period ends")
        drafts = select(form_drafts.c.id).where(form_drafts.c.form_id == form_id)
        blobs = [str(r[0]) for r in (await tx.conn.execute(select(form_files.c.id).where(
            (form_files.c.form_id == form_id) | form_files.c.draft_id.in_(drafts)))).all()]
        n_drafts = (await tx.conn.execute(select(func.count()).select_from(form_drafts).where(
            form_drafts.c.form_id == form_id))).scalar_one()
        await tx.conn.execute(delete(form_files).where(form_files.c.id.in_(blobs)))
        await tx.conn.execute(delete(form_drafts).where(form_drafts.c.form_id == form_id))
        for table in (form_codes, form_counters, form_views, form_versions):
            await tx.conn.execute(delete(table).where(table.c.form_id == form_id))
        await tx.conn.execute(delete(forms).where(forms.c.id == form_id))
        await audit_in(tx, ctx.hub, actor=actor, action="form_deleted", target=form_id, ip=ip,
                       detail={"drafts": int(n_drafts), "files": len(blobs)})
    for key in [k for k in ctx.versions if k[0] == form_id]:
        del ctx.versions[key]
    removed = 0
    for blob in blobs:
        removed += int(await ctx.intake.delete(blob))
    return removed
