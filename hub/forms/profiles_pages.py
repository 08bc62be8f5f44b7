"""The residents' pages of saved details (``hub.forms.profiles``): the question after signing
in (use them or not), and their deletion. Public routes; each needs the signed-in draft of the
form in its cookie, so only the holder of that identity's draft can use or delete its details.

Why a question after sign-in rather than filling at once: F2 says answers are reused "on
request". The question comes once, between sign-in and page 1, only when there is something
to fill; the resident's choice is explicit and nothing already in the draft is replaced.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from hub.forms import profiles
from hub.forms import resident_routes as rr
from hub.forms import resident_store as drafts
from hub.forms.resident_http import (
    BadPost,
    ctx_of,
    ip_of,
    lang_of,
    message,
    read_post,
    render,
    see_other,
)
from hub.forms.resident_pages import open_draft
from hub.forms.resident_view import text
from hub.web.api import Route

PATH = "/f/{form_id}/profile"


def _page(request: web.Request, form_id: str, title: str, mode: str, status: int = 200,
          **values: Any) -> web.Response:
    lang = lang_of(request)
    return render(request, "resident_profile.html", status, form_id=form_id, title=title,
                  mode=mode, p=profiles.TEXTS[lang if lang in profiles.TEXTS else "ja"],
                  **values)


async def ask(request: web.Request) -> web.Response:
    """Use the saved details in this draft? (303 to page 1 when there is nothing to fill.)"""
    opened = await open_draft(request)
    if isinstance(opened, web.Response):
        return opened
    row, form, draft = opened
    kinds = await profiles.offer(ctx_of(request), form, draft.identity, draft.answers)
    if not kinds:
        return see_other(request, f"/f/{row.id}/page/{max(1, draft.page)}")
    lang = lang_of(request)
    lead = profiles.TEXTS[lang if lang in profiles.TEXTS else "ja"]["use_lead"]
    return _page(request, str(row.id), text(form.title, lang), "use",
                 lead=lead.format(kinds=profiles.kinds_text(kinds, lang)))


async def _post(request: web.Request) -> tuple[Any, Any, Any, dict[str, list[str]]] \
        | web.Response:
    opened = await open_draft(request)
    if isinstance(opened, web.Response):
        return opened
    back = f"/f/{opened[0].id}/page/{max(1, opened[2].page)}"
    try:
        raw, ok = await read_post(request)
    except BadPost:
        return message(request, 400, "bad_post", back=back)
    if not ok:
        return message(request, 403, "form_expired", back=back)
    return (*opened, raw)


async def use_post(request: web.Request) -> web.Response:
    """``choice=use``: fill the empty fields from the saved details; anything else: go on."""
    got = await _post(request)
    if isinstance(got, web.Response):
        return got
    row, form, draft, raw = got
    ctx = ctx_of(request)
    if (raw.get("choice") or [""])[0] == "use":
        profile = await profiles.load(ctx, draft.identity)
        added = profiles.fill(form, profile, draft.answers) if profile is not None else {}
        if added:
            await drafts.save_answers(ctx, draft, {**draft.answers, **added}, draft.page)
            await profiles.touch(ctx, draft.identity, str(row.id), ip_of(request))
    return see_other(request, f"/f/{row.id}/page/{max(1, draft.page)}")


async def delete_post(request: web.Request) -> web.Response:
    """Delete the signed-in identity's saved details, then say so (``?back=review`` returns
    to the review page)."""
    got = await _post(request)
    if isinstance(got, web.Response):
        return got
    row, _form, draft, raw = got
    if profiles.profile_key(ctx_of(request), draft.identity) is None:
        return message(request, 404, "no_draft", back=f"/f/{row.id}")
    gone = await profiles.forget(ctx_of(request), draft.identity, str(row.id), ip_of(request))
    back = "review" if (raw.get("back") or [""])[0] == "review" else "page"
    return see_other(request, f"/f/{row.id}/profile/deleted?back={back}&gone={int(gone)}")


async def deleted(request: web.Request) -> web.Response:
    """After the deletion (a GET, so reloading or switching language sends nothing again)."""
    opened = await open_draft(request)
    if isinstance(opened, web.Response):
        return opened
    row, form, draft = opened
    back = (f"/f/{row.id}/review" if request.query.get("back") == "review"
            else f"/f/{row.id}/page/{max(1, draft.page)}")
    mode = "deleted" if request.query.get("gone") == "1" else "none"
    return _page(request, str(row.id), text(form.title, lang_of(request)), mode, back=back)


async def step_get(request: web.Request) -> web.Response:
    """A POST-only address opened by GET (the language switch after a refused POST)."""
    return see_other(request, f"/f/{request.match_info['form_id']}/profile")


_BODY = {"application/x-www-form-urlencoded": {"type": "object", "properties": {
    "csrf": {"type": "string"}, "choice": {"type": "string", "enum": ["use", "skip"]},
    "back": {"type": "string", "enum": ["review", "page"]}}}}


ROUTES: tuple[Route, ...] = (
    rr.page(PATH, "After signing in: use the resident's saved details in this draft? (needs the "
         "signed-in draft; 303 to page 1 when there is nothing to fill)", ask),
    rr.action(f"{PATH}/use", "Fill the draft's empty fields from the saved details (form "
              "{csrf, choice: use | skip}); 303 to the draft's page", use_post, _BODY,
              "on to the draft's page"),
    rr.action(f"{PATH}/delete", "Delete the signed-in resident's saved details (form "
              "{csrf, back}); audited", delete_post, _BODY, "on to the confirmation"),
    rr.page(f"{PATH}/deleted", "The saved details are deleted (?back=review|page)", deleted),
    *(rr.page(f"{PATH}/{step}", "A step opened by GET: back to the question", step_get)
      for step in ("use", "delete")),
)
