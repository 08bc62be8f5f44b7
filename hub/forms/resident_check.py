"""``POST /f/{form_id}/check/{n}``: a page's answers checked without saving them, for the inline
messages of ``/static/forms-check.js`` (issue 17: "with JavaScript, inline validation").

Why an endpoint and not the rules again in JavaScript: one copy of the rules. The script posts
the page's text fields as they are (never the contents of a file input) and gets back exactly
the errors ``page_post`` would give, worded by ``hub.forms.validate`` in the resident's
language; files already attached count as ``page_post`` counts them. Nothing is saved, so a
resident who never presses "next" leaves the draft as it was.

The same draft cookie as the page (``resident_pages.open_draft``) and the same double-submit
CSRF token (the page's hidden ``csrf`` field, or the header ``X-CSRF-Token`` as the hub's other
scripts send it). The page is complete without this: the server checks again on every POST.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from hub.forms.conditions import keep_visible, visible_pages
from hub.forms.resident_http import BadPost, csrf_ok, lang_of, read_post
from hub.forms.resident_pages import _files_of, _number, _without, open_draft
from hub.forms.validate import validate_page
from hub.web.api import STR, Route, array, error_response, json_response, lang_param, obj

FORM = "application/x-www-form-urlencoded"
HEADER = "X-CSRF-Token"
_NO_STORE = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}
_REFUSED: dict[int, tuple[str, str, str]] = {
    400: ("bad_post", "The answers could not be read", "入力内容を読み取れませんでした"),
    403: ("form_expired", "The page has expired: reload it", "ページの有効期限が切れました。"
          "再読み込みしてください"),
    404: ("no_draft", "No application in progress on this device",
          "この端末で入力中の申請はありません"),
    410: ("closed", "This form is closed", "この申請の受付は終了しました"),
    415: ("form_only", "Send the page's fields as a form (no files)",
          "ページの入力欄をフォーム形式で送ってください（ファイルは送れません）"),
}


def _refused(status: int) -> web.Response:
    code, en, ja = _REFUSED.get(status, _REFUSED[404])
    response = error_response(status, code, en, ja)
    response.headers.update(_NO_STORE)
    return response


async def check_page(request: web.Request) -> web.Response:
    """The errors ``page_post`` would answer for these fields; saves nothing."""
    opened = await open_draft(request)
    if isinstance(opened, web.Response):  # the page's own refusal, said as JSON
        return _refused(opened.status)
    _row, form, draft = opened
    answers = dict(keep_visible(form, draft.answers))
    pages = visible_pages(form, answers)
    n = _number(request, pages)
    if n is None:
        return _refused(404)
    if request.content_type != FORM:
        return _refused(415)
    try:
        raw, ok = await read_post(request)
    except BadPost:
        return _refused(400)
    if not (ok or csrf_ok(request, request.headers.get(HEADER, ""))):
        return _refused(403)
    page = pages[n - 1]
    result = validate_page(page, raw, _files_of(page, answers), _without(page, answers))
    en = lang_of(request) == "en"
    errors: list[dict[str, Any]] = [
        {"field": e.field, "input": e.input, "code": e.code, "message": e.en if en else e.ja}
        for e in result.errors]
    response = json_response({"errors": errors})
    response.headers.update(_NO_STORE)
    return response


CHECKED = obj({"errors": array(obj({"field": STR, "input": STR, "code": STR,
                                     "message": STR}))})

ROUTES: tuple[Route, ...] = (
    Route("POST", "/f/{form_id}/check/{n}", "Check one page's fields as the page would post "
          "them (form {csrf, …}; no files; the header X-CSRF-Token also carries the token): "
          "the errors in the resident's language; nothing is saved. For the page's script",
          check_page, access="public", content_type="application/json",
          body={FORM: {"type": "object", "properties": {"csrf": {"type": "string"}}}},
          query=(lang_param(("ja", "en")),), response=CHECKED),
)
