"""``…/submissions/new``: staff enter a paper or phone application (seed 004) for a resident.

The published version's fields on one page (the residents' own field macros, so the checks
and texts are the same), ``validate_form`` over everything at once, then
``submit.create_submission(channel="staff", actor=<staff login>)``, which audits
``form_staff_entered`` in its transaction. The resident's e-mail is optional (a receipt goes
there when given). Scanned attachments go through the same intake as the residents' (size,
sniffed type, clamd, sealed store): the page posts multipart with its CSRF token in the URL so
the body is streamed part by part, never decoded whole. Files accepted in a POST that fails
validation are deleted again (the page asks for them once more, as a browser would re-send).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlencode

from aiohttp import BodyPartReader, web

from hub.auth.guard import ip_of
from hub.auth.texts import pick_lang
from hub.forms import service, submit
from hub.forms.attachments import FieldRules, Refusal
from hub.forms.model import FileField
from hub.forms.pages import render_staff
from hub.forms.staff import (
    BASE,
    FORM_BODY,
    LANG,
    TEXTS,
    actor_of,
    ctx_of,
    form_of,
    missing,
    path_of,
)
from hub.forms.submit import FileRef
from hub.forms.validate import FieldError, validate_form
from hub.web.api import Route

_OWN = ("csrf", "contact", "resident_lang")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
BAD_CONTACT = FieldError("contact", "contact", "bad_email",
                         "メールアドレスの形式が正しくありません（例：hanako@example.jp）",
                         "Enter an e-mail address like hanako@example.jp")


async def _form(request: web.Request) -> tuple[Any, Any] | None:
    row = await form_of(request)
    if row is None:
        return None
    got = await service.published(ctx_of(request), str(row.id))
    return None if got is None else got


def _page(request: web.Request, row: Any, form: Any, values: dict[str, list[str]],
          errors: list[Any], status: int = 200) -> web.Response:
    lang = pick_lang(request)
    return render_staff(request, "staff_sub_new.html", TEXTS, status, form_row=row, form=form,
                        values=values, errors={e.field: e for e in errors},
                        base=path_of(str(row.id)),
                        fields=[f for p in form.pages for f in p.fields],
                        error_items=[{"input": e.input, "text": e.ja if lang == "ja" else e.en}
                                     for e in errors])


async def new_page(request: web.Request) -> web.Response:
    got = await _form(request)
    if got is None:
        return missing(request)
    return _page(request, got[0], got[1], {}, [])


async def _read(request: web.Request, form: Any,
                refused: list[FieldError]) -> tuple[dict[str, list[str]], list[FileRef]]:
    """The posted fields and the accepted files (multipart, streamed; or a plain form)."""
    raw: dict[str, list[str]] = {}
    files: list[FileRef] = []
    if request.content_type != "multipart/form-data":
        posted = await request.post()
        for k in set(posted.keys()):
            raw[k] = [str(v) for v in posted.getall(k)]
        return raw, files
    by_id = {f.id: f for p in form.pages for f in p.fields if isinstance(f, FileField)}
    reader = await request.multipart()
    while (part := await reader.next()) is not None:
        if not isinstance(part, BodyPartReader) or not part.name:
            continue
        if not part.filename:
            raw.setdefault(part.name, []).append((await part.read(decode=True)).decode()[:20000])
            continue
        fld = by_id.get(part.name)
        if fld is None or sum(f.field == fld.id for f in files) >= fld.max_files:
            await part.release()
            continue

        async def chunks(p: BodyPartReader = part) -> AsyncIterator[bytes]:
            while chunk := await p.read_chunk():
                yield chunk

        got = await ctx_of(request).intake.accept(
            FieldRules(fld.max_bytes, frozenset(fld.allowed_types)), chunks(),
            filename=part.filename, declared_type=part.headers.get("Content-Type"))
        if isinstance(got, Refusal):
            refused.append(FieldError(fld.id, fld.id, got.code, got.ja, got.en))
        else:
            files.append(FileRef.of(fld.id, got))
    return raw, files


async def new_post(request: web.Request) -> web.Response:
    got = await _form(request)
    if got is None:
        return missing(request)
    row, form = got
    refused: list[FieldError] = []
    posted, files = await _read(request, form, refused)
    raw = {k: v for k, v in posted.items() if k not in _OWN}
    by_field: dict[str, list[FileRef]] = {}
    for f in files:
        by_field.setdefault(f.field, []).append(f)
    result = validate_form(form, raw, by_field)
    contact = (posted.get("contact") or [""])[0].strip()
    errors = [*refused, *(e for e in result.errors if e.field not in {r.field for r in refused})]
    if contact and not _EMAIL.fullmatch(contact):
        errors.append(BAD_CONTACT)
    if errors:
        for f in files:  # nothing half-stored: the page asks for the files again
            await ctx_of(request).intake.delete(f.id)
        values = {**raw, "contact": [contact]}
        return _page(request, row, form, values, errors, 400)
    lang = "en" if (posted.get("resident_lang") or [""])[0] == "en" else "ja"
    sid, _ref = await submit.create_submission(
        ctx_of(request), row, form, result.values, files, contact, lang, "staff", "",
        actor_of(request), ip=ip_of(request))
    raise web.HTTPSeeOther(f"{path_of(str(row.id), sid)}?"
                           f"{urlencode({'done': 'entered', 'lang': pick_lang(request)})}")


ROUTES: tuple[Route, ...] = (
    Route("GET", f"{BASE}/new", "Enter a paper or phone application: the published "
          "version's fields on one page", new_page, access="forms", content_type="text/html",
          query=(LANG,)),
    Route("POST", f"{BASE}/new", "Store a staff-entered application (the fields as the "
          "resident pages post them, contact, resident_lang); 400 with every error; audited "
          "form_staff_entered", new_post, access="forms", content_type="text/html",
          body=FORM_BODY, query=(LANG,), also={303: "entered: to the new submission"}),
)
