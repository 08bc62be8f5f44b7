"""``/f/…``: the residents' pages of a published form (F2, F3): the start page and sign-in (none,
an e-mail code, or OpenID Connect), the pages, the review, the submission, the done page, the
resume link and the correction of a returned submission. Public routes; each page checks the
draft cookie itself.

Server-rendered, phone first, complete without JavaScript. Internet Explorer gets a page asking
for another browser (003 §8.1). Handlers of the answering itself are in ``resident_pages``.
"""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web
from sqlalchemy import select

from hub.forms import profiles, profiles_pages, resident_auth, resident_oidc, service
from hub.forms import resident_routes as rr
from hub.forms import resident_store as drafts
from hub.forms.model import Form
from hub.forms.records import email_hmac, open_json
from hub.forms.resident_http import (
    BadPost,
    ctx_of,
    draft_token,
    ip_of,
    lang_of,
    message,
    old_browser,
    read_post,
    render,
    see_other,
    set_draft_cookie,
)
from hub.forms.resident_pages import page_get, page_post, review_get, submit_post
from hub.forms.resident_view import text
from hub.forms.submit import count_view
from hub.forms.tables import form_submissions
from hub.notify.senders import Notice
from hub.web.api import Route

_REF = re.compile(r"F-\d{4}-\d{6}")


def oidc_configured(request: web.Request) -> bool:
    """OpenID Connect sign-in needs ``MADOGUCHI_FORMS_OIDC_*`` (``resident_oidc``); without
    it an ``oidc`` form says sign-in is not available."""
    return resident_oidc.provider(ctx_of(request)) is not None


def _one(raw: dict[str, list[str]], key: str) -> str:
    return (raw.get(key) or [""])[0].strip()


def _needs(form: Form) -> list[str]:
    """What the start page lists under "what you need" (catalogue keys)."""
    out = []
    if form.identity == "email_code":
        out.append("need_email")
    if form.identity == "oidc":
        out.append("need_card")
    if any(f.type == "file" for _, f in form.fields()):
        out.append("need_files")
    return out


async def _start_page(request: web.Request, row: Any, form: Form, status: int = 200,
                      **values: Any) -> web.Response:
    lang = lang_of(request)
    values.setdefault("sent", False)
    values.setdefault("error", None)
    values.setdefault("email", "")
    values.setdefault("returned", None)
    values.setdefault("code_id", "")
    has_draft = await drafts.load_draft(ctx_of(request), str(row.id), draft_token(request))
    return render(request, "resident_start.html", status, form_id=str(row.id),
                  title=text(form.title, lang), description=text(form.description, lang),
                  identity=form.identity, needs=_needs(form), pages=len(form.pages),
                  oidc=oidc_configured(request), has_draft=has_draft is not None,
                  minutes=ctx_of(request).settings.code_minutes, fee_yen=form.fee_yen,
                  fee_note=text(form.fee_note, lang) if form.fee_note else "",
                  payments_off=ctx_of(request).payments is None, **values)


async def _published(request: web.Request) -> tuple[Any, Form] | web.Response:
    got = await service.published(ctx_of(request), request.match_info["form_id"])
    if got is None:
        row = await service.get(ctx_of(request), request.match_info["form_id"])
        return message(request, 410 if row is not None and row.status == "closed" else 404,
                       "closed" if row is not None and row.status == "closed" else "not_found")
    return got


async def start(request: web.Request) -> web.Response:
    if old_browser(request):
        return render(request, "resident_old_browser.html", 200)
    got = await _published(request)
    if isinstance(got, web.Response):
        return got
    row, form = got
    ctx = ctx_of(request)
    async with ctx.store.begin() as tx:
        await count_view(tx, str(row.id), ctx.clock().date().isoformat(), views=1)
    return await _start_page(request, row, form)


async def start_draft_response(request: web.Request, row: Any, form: Form,
                               identity: dict[str, Any], answers: dict[str, Any] | None = None,
                               submission_id: str | None = None) -> web.Response:
    """A new draft and its cookie; 303 to its first page, or first to the question whether to
    use the resident's saved details when a signed-in resident has some that would fill
    empty fields (``profiles_pages``; never when correcting a returned submission)."""
    ctx = ctx_of(request)
    _did, token = await drafts.start_draft(ctx, str(row.id), form.version,
                                           identity, answers=answers,
                                           submission_id=submission_id)
    ask = submission_id is None and bool(await profiles.offer(ctx, form, identity,
                                                              answers or {}))
    response = see_other(request, f"/f/{row.id}/profile" if ask else f"/f/{row.id}/page/1")
    set_draft_cookie(request, response, str(row.id), token)
    return response


def _prefill(form: Form, email: str) -> dict[str, Any]:
    return {f.id: email for _, f in form.fields() if f.type == "email"
            and getattr(f, "prefill", None) == "email"}


async def _posted(request: web.Request) -> dict[str, list[str]] | web.Response:
    try:
        raw, ok = await read_post(request)
    except BadPost:
        return message(request, 400, "bad_post")
    if not ok:
        return message(request, 403, "form_expired", back=f"/f/{request.match_info['form_id']}")
    return raw


async def start_post(request: web.Request) -> web.Response:
    got = await _published(request)
    if isinstance(got, web.Response):
        return got
    raw = await _posted(request)
    if isinstance(raw, web.Response):
        return raw
    row, form = got
    if form.identity != "anonymous":
        return await _start_page(request, row, form, 400)
    return await start_draft_response(request, row, form, {"method": "anonymous"})


async def _submission(request: web.Request) -> Any:
    ref = request.match_info.get("reference", "")
    if not _REF.fullmatch(ref):
        return None
    ctx = ctx_of(request)
    async with ctx.store.read() as tx:
        return (await tx.conn.execute(select(form_submissions).where(
            form_submissions.c.form_id == request.match_info["form_id"],
            form_submissions.c.reference == ref))).first()


async def code_post(request: web.Request) -> web.Response:
    """Mail a sign-in code (a new form, or the correction of a returned submission)."""
    ctx = ctx_of(request)
    row = await service.get(ctx, request.match_info["form_id"])
    returned = request.match_info.get("reference")
    if row is None:
        return message(request, 404, "not_found")
    if returned is None:
        got = await _published(request)
        if isinstance(got, web.Response):
            return got
        form = got[1]
    else:
        form = await _form_for(request, row)
    raw = await _posted(request)
    if isinstance(raw, web.Response):
        return raw
    lang = lang_of(request)
    email = resident_auth.normalise_email(_one(raw, "email"))
    if email is None:
        err = service.FormError("bad_email", "メールアドレスは name@example.jp のような形式で"
                                "入力してください", "Enter an email address in the correct "
                                "format, like name@example.jp", "email")
        return await _start_page(request, row, form, 400, error=err, email=_one(raw, "email"),
                                 returned=returned)
    mail = True
    if returned is not None:
        sub = await _submission(request)
        mail = sub is not None and sub.status == "returned" and \
            sub.email_hmac == email_hmac(ctx, email)
    try:
        code_id = await resident_auth.send_code(ctx, str(row.id), text(form.title, lang), email,
                                                lang, mail=mail)
    except service.FormError as err:
        return await _start_page(request, row, form, 429, error=err, email=email,
                                 returned=returned)
    return await _start_page(request, row, form, sent=True, code_id=code_id, email=email,
                             returned=returned)


async def verify_post(request: web.Request) -> web.Response:
    ctx = ctx_of(request)
    returned = request.match_info.get("reference")
    row = await service.get(ctx, request.match_info["form_id"])
    if row is None:
        return message(request, 404, "not_found")
    raw = await _posted(request)
    if isinstance(raw, web.Response):
        return raw
    code_id = _one(raw, "code_id")
    try:
        email = await resident_auth.verify_code(ctx, str(row.id), code_id, _one(raw, "code"),
                                                ip_of(request))
    except service.FormError as err:
        form = await _form_for(request, row)
        sent = isinstance(err, resident_auth.BadCode)
        return await _start_page(request, row, form, 400, error=err, sent=sent,
                                 code_id=code_id, returned=returned)
    if returned is None:
        got = await _published(request)
        if isinstance(got, web.Response):
            return got
        return await start_draft_response(request, row, got[1],
                                          {"method": "email_code", "email": email},
                                          answers=_prefill(got[1], email))
    sub = await _submission(request)
    if sub is None or sub.status != "returned" or sub.email_hmac != email_hmac(ctx, email):
        return message(request, 404, "no_return")
    version = await service.version_of(ctx, str(row.id), int(sub.version))
    if version is None:
        return message(request, 404, "not_found")
    answers = open_json(ctx, str(sub.id), "answers", sub.answers)
    return await start_draft_response(request, row, version,
                                      {"method": "email_code", "email": email},
                                      answers=answers, submission_id=str(sub.id))


async def _form_for(request: web.Request, row: Any) -> Form:
    sub = await _submission(request) if request.match_info.get("reference") else None
    version = int(sub.version) if sub is not None else row.published_version
    form = await service.version_of(ctx_of(request), str(row.id), int(version or 0))
    return form if form is not None else service.draft_of(row)


async def returned_get(request: web.Request) -> web.Response:
    """The link in the "returned" mail: sign in again with the same address."""
    if old_browser(request):
        return render(request, "resident_old_browser.html", 200)
    row = await service.get(ctx_of(request), request.match_info["form_id"])
    if row is None or not _REF.fullmatch(request.match_info["reference"]):
        return message(request, 404, "not_found")
    form = await _form_for(request, row)
    return await _start_page(request, row, form, returned=request.match_info["reference"])


async def oidc_begin(request: web.Request) -> web.Response:
    got = await _published(request)
    if isinstance(got, web.Response):
        return got
    if got[1].identity != "oidc":
        return see_other(request, f"/f/{got[0].id}")
    return await resident_oidc.begin(request, got[1])


async def resume(request: web.Request) -> web.Response:
    """The resume link: puts the draft's cookie back and goes on where the resident left."""
    form_id = request.match_info["form_id"]
    draft = await drafts.load_draft(ctx_of(request), form_id, request.match_info["token"])
    if draft is None:
        return message(request, 404, "no_draft", back=f"/f/{form_id}")
    response = see_other(request, f"/f/{form_id}/page/{max(1, draft.page)}")
    set_draft_cookie(request, response, form_id, request.match_info["token"])
    response.headers["Cache-Control"] = "no-store"
    return response


async def resume_mail(request: web.Request) -> web.Response:
    """Mail the resume link to the signed-in address (never to one typed here)."""
    ctx, form_id = ctx_of(request), request.match_info["form_id"]
    raw = await _posted(request)
    if isinstance(raw, web.Response):
        return raw
    token = draft_token(request)
    draft = await drafts.load_draft(ctx, form_id, token)
    if draft is None or not draft.email:
        return message(request, 404, "no_draft", back=f"/f/{form_id}")
    lang = lang_of(request)
    link = f"{ctx.hub.public_url}/f/{form_id}/resume/{token}"
    days = ctx.settings.draft_days
    body = (f"入力の続きは次のリンクから再開できます（{days}日間有効）。\n{link}\n" if lang == "ja"
            else f"Continue your application from this link (valid for {days} days):\n{link}\n")
    subject = "入力の再開用リンク" if lang == "ja" else "Your link to continue"
    await ctx.mailer.send_batch([Notice(f"form-resume:{draft.id}", draft.email, lang, subject,
                                        body)])
    return message(request, 200, "resume_sent", back=f"/f/{form_id}/page/{max(1, draft.page)}")


async def done(request: web.Request) -> web.Response:
    ref = request.query.get("ref", "")
    row = await service.get(ctx_of(request), request.match_info["form_id"])
    if row is None or not _REF.fullmatch(ref):
        return message(request, 404, "not_found")
    return render(request, "resident_done.html", reference=ref, title=str(row.title),
                  form_id=str(row.id))


async def step_get(request: web.Request) -> web.Response:
    """A POST-only address opened by GET (the language switch after a refused POST)."""
    ref = request.match_info.get("reference")
    form_id = request.match_info["form_id"]
    return see_other(request, f"/f/{form_id}/s/{ref}" if ref else f"/f/{form_id}")


_PAGE = {"multipart/form-data": {"type": "object", "properties": {"csrf": {"type": "string"}}},
         **rr.FORM}
_F = "/f/{form_id}"
_S = "/f/{form_id}/s/{reference}"
ROUTES: tuple[Route, ...] = (
    rr.page(_F, "A published form's start page (title, what you need, sign-in); counted as a "
         "view; Internet Explorer gets the old-browser page", start),
    rr.action(f"{_F}/start", "Start answering an anonymous form (form {csrf}): a new draft and its "
          "cookie", start_post),
    rr.action(f"{_F}/code", "Mail a 6-digit sign-in code (form {csrf, email}); 429 after 5 an hour",
          code_post),
    rr.action(f"{_F}/verify", "Check the code (form {csrf, code_id, code}): a new draft; 5 wrong "
          "tries spend the code", verify_post),
    rr.page(f"{_F}/oidc", "Sign in with OpenID Connect (マイナンバーカード): 303 to the provider; "
         "503 when not configured", oidc_begin),
    rr.page(resident_oidc.CALLBACK, "The provider's answer (?code, state): a draft with the "
         "profile prefilled; 303 to its first page", resident_oidc.callback),
    rr.page(f"{_F}/page/{{n}}", "One visible page of the draft's form version", page_get),
    rr.action(f"{_F}/page/{{n}}", "Save a page (form or multipart with attachments; {remove_file} "
          "removes one); 400 with the error summary", page_post, _PAGE),
    rr.page(f"{_F}/review", "Every visible answer with change links", review_get),
    rr.action(f"{_F}/submit", "Submit (or resubmit a returned submission): 303 to the done page",
          submit_post),
    rr.page(f"{_F}/done", "The reference number of the submission (?ref=)", done),
    rr.page(f"{_F}/resume/{{token}}", "The resume link: the draft's cookie again, on to its page",
         resume),
    rr.action(f"{_F}/resume-mail", "Mail the resume link to the signed-in address", resume_mail),
    *profiles_pages.ROUTES,
    rr.page(_S, "A returned submission: sign in again with the same address", returned_get),
    rr.action(f"{_S}/code", "Mail a code for correcting a returned submission", code_post),
    rr.action(f"{_S}/verify", "Check the code: a correction draft on the submission's version",
          verify_post),
    *(rr.page(f"{_S}/{step}", "A sign-in step opened by GET: back to its page", step_get)
      for step in ("code", "verify")),
    *(rr.page(f"{_F}/{step}", "A step opened by GET (the language switch after a POST): back "
           "to the start page", step_get)
      for step in ("start", "code", "verify", "submit", "resume-mail")),
)
