"""The resident's answering: one page at a time, the review, the submission (F2, F3).

Why the draft is reloaded on every request and hidden answers are dropped on every save: the
resident may go back and change an answer that hides a page; what they answered there must not
linger in the draft or reach the submission (``conditions.keep_visible``). The draft answers on
the version it started with (``service.version_of``), never the newest.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from sqlalchemy import select

from hub.forms import pay_store, profiles, service
from hub.forms import resident_store as drafts
from hub.forms.attachments import FieldRules, Refusal
from hub.forms.conditions import keep_visible, visible_fields, visible_pages
from hub.forms.model import FileField, Form, Page
from hub.forms.records import open_field
from hub.forms.resident_fields import page_fields
from hub.forms.resident_http import (
    BadPost,
    ctx_of,
    draft_token,
    drop_draft_cookie,
    ip_of,
    lang_of,
    message,
    read_post,
    render,
    see_other,
)
from hub.forms.resident_store import Draft
from hub.forms.resident_view import as_inputs, raw_with_files, shown, text
from hub.forms.submit import FeeUnavailable, create_submission, jsonable, resubmit
from hub.forms.tables import form_history
from hub.forms.validate import FieldError, validate_page
from hub.kit.runtime import runtime


@dataclass(frozen=True)
class Upload:
    """A file already attached, as ``validate`` counts it."""

    id: str
    filename: str
    size: int
    content_type: str


Open = tuple[Any, Form, Draft]


async def open_draft(request: web.Request) -> Open | web.Response:
    """The form's row (``resident_store.FormHead``), the version the draft answers and the
    draft; else a page saying why. The draft and the row come in one statement."""
    ctx, form_id = ctx_of(request), request.match_info["form_id"]
    got = await drafts.load_draft_and_form(ctx, form_id, draft_token(request))
    if got is None:
        return message(request, 404, "no_draft", back=f"/f/{form_id}")
    draft, row = got
    form = None if row is None else await service.version_of(ctx, form_id, draft.version)
    if row is None or form is None:
        return message(request, 404, "not_found")
    if row.status != "published" and draft.submission_id is None:
        return message(request, 410, "closed")
    return row, form, draft


async def returned_comment(request: web.Request, draft: Draft) -> str:
    """The staff's latest comment to the resident on the submission being corrected."""
    if draft.submission_id is None:
        return ""
    ctx = ctx_of(request)
    async with ctx.store.read() as tx:
        row = (await tx.conn.execute(select(form_history).where(
            form_history.c.submission_id == draft.submission_id,
            form_history.c.to_resident == 1).order_by(form_history.c.at.desc()))).first()
    return "" if row is None else open_field(ctx, str(row.id), "comment", row.comment)


def _without(page: Page, answers: Mapping[str, Any]) -> dict[str, Any]:
    ids = {f.id for f in page.fields}
    return {k: v for k, v in answers.items() if k.split(".")[0] not in ids}


def _files_of(page: Page, answers: Mapping[str, Any]) -> dict[str, list[Upload]]:
    return {f.id: [Upload(str(a["id"]), str(a["filename"]), int(a["size"]),
                          str(a["content_type"])) for a in answers.get(f.id) or ()]
            for f in page.fields if isinstance(f, FileField)}


def first_incomplete(form: Form, answers: Mapping[str, Any]) -> int | None:
    """The number (1-based) of the first visible page whose saved answers do not pass."""
    kept = keep_visible(form, answers)
    inputs = as_inputs(form, kept)
    for n, page in enumerate(visible_pages(form, kept), 1):
        if not validate_page(page, inputs, _files_of(page, kept), _without(page, kept)).ok:
            return n
    return None


async def _page_view(request: web.Request, opened: Open, n: int, status: int = 200,
                     values: Mapping[str, list[Any]] | None = None,
                     errors: list[FieldError] | None = None) -> web.Response:
    row, form, draft = opened
    ctx = ctx_of(request)
    kept = keep_visible(form, draft.answers)
    pages = visible_pages(form, kept)
    page = pages[n - 1]
    lang = lang_of(request)
    resume = f"{ctx.hub.public_url}/f/{form.id}/resume/{draft_token(request)}"
    fields_html = page_fields(
        runtime(request).jinja, ctx.fields_html, form, visible_fields(page, kept), lang,
        values if values is not None else as_inputs(form, kept), {e.field: e for e in errors or []})
    return render(request, "resident_page.html", status, lang=lang, page=page, n=n,
                  total=len(pages), fields_html=fields_html, errors=errors or [],
                  multipart=any(isinstance(f, FileField) for f in page.fields),
                  title=text(form.title, lang), page_title=text(page.title, lang),
                  comment=await returned_comment(request, draft), resume=resume,
                  can_mail=bool(draft.email), form_id=str(row.id))


def _number(request: web.Request, pages: list[Page]) -> int | None:
    raw = request.match_info["n"]
    n = int(raw) if raw.isdigit() and len(raw) < 4 else 0
    return n if 1 <= n <= len(pages) else None


async def page_get(request: web.Request) -> web.Response:
    opened = await open_draft(request)
    if isinstance(opened, web.Response):
        return opened
    _row, form, draft = opened
    n = _number(request, visible_pages(form, keep_visible(form, draft.answers)))
    if n is None:
        return see_other(request, f"/f/{form.id}/page/1")
    return await _page_view(request, opened, n)


async def page_post(request: web.Request) -> web.Response:
    opened = await open_draft(request)
    if isinstance(opened, web.Response):
        return opened
    _row, form, draft = opened
    ctx = ctx_of(request)
    answers = dict(keep_visible(form, draft.answers))
    pages = visible_pages(form, answers)
    n = _number(request, pages)
    if n is None:
        return see_other(request, f"/f/{form.id}/page/1")
    page = pages[n - 1]
    on_page = {f.id: f for f in visible_fields(page, answers) if isinstance(f, FileField)}
    refused: list[FieldError] = []

    async def on_file(name: str, filename: str, declared: str | None,
                      chunks: AsyncIterator[bytes]) -> None:
        fld = on_page.get(name)
        if fld is None:
            return
        current = list(answers.get(name) or [])
        if len(current) >= fld.max_files:
            return
        got = await ctx.intake.accept(FieldRules(fld.max_bytes, frozenset(fld.allowed_types)),
                                      chunks, filename=filename, declared_type=declared)
        if isinstance(got, Refusal):
            refused.append(FieldError(fld.id, fld.id, got.code, got.ja, got.en))
            return
        ref = await drafts.add_file(ctx, draft, fld.id, got)
        answers[name] = [*current, ref.answer()]

    try:
        raw, ok = await read_post(request, on_file)
    except BadPost:
        return message(request, 400, "bad_post", back=f"/f/{form.id}/page/{n}")
    if not ok:
        return message(request, 403, "form_expired", back=f"/f/{form.id}/page/{n}")
    remove = (raw.get("remove_file") or [""])[0]
    if remove:
        for fid in on_page:
            answers[fid] = [a for a in answers.get(fid) or () if a.get("id") != remove]
        await drafts.remove_file(ctx, draft, remove)
        await drafts.save_answers(ctx, draft, answers, n)
        return see_other(request, f"/f/{form.id}/page/{n}")
    result = validate_page(page, raw, _files_of(page, answers), _without(page, answers))
    if refused or not result.ok:
        if refused:  # the accepted files of this POST are kept; nothing else is saved
            await drafts.save_answers(ctx, draft, answers, n)
        return await _page_view(request, opened, n, 400,
                                raw_with_files(raw, form, answers), refused + result.errors)
    saved = jsonable(keep_visible(form, _without(page, answers) | jsonable(result.values)))
    after = visible_pages(form, saved)
    ahead = [p for p in after[after.index(page) + 1:]] if page in after else []
    await drafts.save_answers(ctx, draft, saved, n + 1 if ahead else n)
    if ahead:
        return see_other(request, f"/f/{form.id}/page/{n + 1}")
    return see_other(request, f"/f/{form.id}/review")


async def review_get(request: web.Request) -> web.Response:
    opened = await open_draft(request)
    if isinstance(opened, web.Response):
        return opened
    row, form, draft = opened
    kept = keep_visible(form, draft.answers)
    missing = first_incomplete(form, kept)
    if missing is not None:
        return see_other(request, f"/f/{form.id}/page/{missing}")
    lang = lang_of(request)
    sections = []
    for n, page in enumerate(visible_pages(form, kept), 1):
        items = [{"id": f.id, "label": text(f.label, lang), "value": shown(f, kept.get(f.id), lang)}
                 for f in visible_fields(page, kept) if f.type != "fixed_text"]
        sections.append({"n": n, "title": text(page.title, lang), "items": items})
    return render(request, "resident_review.html", form_id=str(row.id),
                  title=text(form.title, lang), sections=sections,
                  comment=await returned_comment(request, draft),
                  correcting=draft.submission_id is not None,
                  fee_yen=0 if draft.submission_id is not None else form.fee_yen,
                  fee_note=text(form.fee_note, lang) if form.fee_note else "",
                  **await profiles.review_values(ctx_of(request), form, draft, lang))


async def submit_post(request: web.Request) -> web.Response:
    opened = await open_draft(request)
    if isinstance(opened, web.Response):
        return opened
    row, form, draft = opened
    ctx, lang = ctx_of(request), lang_of(request)
    try:
        _raw, ok = await read_post(request)
    except BadPost:
        return message(request, 400, "bad_post", back=f"/f/{form.id}/review")
    if not ok:
        return message(request, 403, "form_expired", back=f"/f/{form.id}/review")
    kept = keep_visible(form, draft.answers)
    missing = first_incomplete(form, kept)
    if missing is not None:
        return see_other(request, f"/f/{form.id}/page/{missing}")
    files = await drafts.draft_files(ctx, draft)
    if draft.submission_id is not None:
        try:
            ref = await resubmit(ctx, row, form, draft.submission_id, kept, files, lang,
                                 draft_id=draft.id, ip=ip_of(request))
        except service.FormError:
            return message(request, 409, "not_returned")
        await profiles.remember(ctx, form, draft, kept, _raw, ip_of(request))
    else:
        try:
            sid, ref = await create_submission(
                ctx, row, form, kept, files, draft.email or _email_answer(form, kept), lang,
                "web", str(draft.identity.get("key") or ""), "resident", draft_id=draft.id,
                ip=ip_of(request))
        except FeeUnavailable:  # nothing stored: the draft stays for when payments work
            return message(request, 503, "pay_unavailable", back=f"/f/{form.id}/review")
        await profiles.remember(ctx, form, draft, kept, _raw, ip_of(request))
        if form.fee_yen:  # complete only once paid (hub.forms.resident_pay)
            response = see_other(request, f"/f/{form.id}/pay/{pay_store.pay_token(ctx, sid)}")
            drop_draft_cookie(response, str(row.id))
            return response
    response = see_other(request, f"/f/{form.id}/done?ref={ref}")
    drop_draft_cookie(response, str(row.id))
    return response


def _email_answer(form: Form, answers: Mapping[str, Any]) -> str:
    """Without a signed-in address: the first e-mail the resident gave, for the receipt."""
    for _, fld in form.fields():
        if fld.type == "email" and answers.get(fld.id):
            return str(answers[fld.id])
    return ""
