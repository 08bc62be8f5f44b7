"""A resident's page, made cheaper (issue 17's forms bench): the fields nobody has answered are
rendered once per form version and language (``hub.forms.resident_fields``), and the draft and
the form's row are read in one statement (``resident_store.load_draft_and_form``).

What must hold: the HTML is exactly what ``forms/fields.html``'s ``page_fields`` makes, with and
without answers and errors, in both languages; no answer is ever kept; a piece is never used for
another ``Form`` object; the kept pieces stay bounded; and the page still refuses a closed form,
another form's draft cookie and an expired draft on every request (nothing about the form's
status is kept)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2
import pytest
from forms_support import add_form, resident_app, simple
from sqlalchemy import update

from hub.forms import resident_fields
from hub.forms.conditions import keep_visible, visible_fields, visible_pages
from hub.forms.model import Form
from hub.forms.resident_fields import FIELDS_TEMPLATE, Kept, page_fields
from hub.forms.resident_view import as_inputs
from hub.forms.scan import ClamdClient
from hub.forms.tables import form_drafts, forms
from hub.forms.validate import FieldError
from hub.forms.versions import parse_form
from hub.kit.module import environment
from hub.web.app import modules

SECRET_NAME = "秘密山田"  # an answer that must never be kept


def _t(ja: str, en: str = "") -> dict[str, str]:
    return {"ja": ja, "en": en} if en else {"ja": ja}


def definition(form_id: str, label: str = "件名") -> dict[str, Any]:
    """Every kind of field markup: groups (name, address, split date, choice, checkboxes),
    single inputs, a dropdown, a file, a consent, a text with no English, help texts."""
    opts = [{"value": v, "label": _t(ja, en)} for v, ja, en in (
        ("r", "赤", "Red"), ("g", "緑", "Green"), ("b", "青", ""))]
    return {"id": form_id, "title": _t("すべて", "All"), "retention_days": 30,
            "pages": [{"id": "p1", "title": _t("入力", "Answers"), "fields": [
                {"type": "fixed_text", "id": "intro", "text": _t("はじめに。\n\n二段落目。")},
                {"type": "text", "id": "t", "label": _t(label, "Subject"),
                 "help": _t("説明", "A hint")},
                {"type": "long_text", "id": "lt", "label": _t("詳細"), "required": False},
                {"type": "number", "id": "num", "label": _t("人数", "People")},
                {"type": "email", "id": "mail", "label": _t("メール", "E-mail")},
                {"type": "phone", "id": "tel", "label": _t("電話", "Phone")},
                {"type": "date", "id": "d1", "display": "seireki", "label": _t("利用日", "Day")},
                {"type": "date", "id": "d2", "display": "wareki", "label": _t("生年月日")},
                {"type": "choice", "id": "ch", "options": opts, "label": _t("色", "Colour")},
                {"type": "checkboxes", "id": "cb", "options": opts, "label": _t("好きな色")},
                {"type": "dropdown", "id": "dd", "options": opts, "label": _t("車の色")},
                {"type": "name", "id": "nm", "label": _t("氏名", "Name")},
                {"type": "address", "id": "addr", "label": _t("住所", "Address")},
                {"type": "file", "id": "doc", "label": _t("書類", "Document"),
                 "required": False},
                {"type": "consent", "id": "ok", "label": _t("同意", "Consent"),
                 "text": _t("誤りはありません", "The answers are true")},
            ]}]}


ANSWERS: dict[str, Any] = {
    "t": "<b>駐輪場</b> & \"x\"", "lt": "二台目\nです", "num": 2, "mail": "a@example.jp",
    "tel": "0312345678", "d1": "2026-12-24", "d2": "1990-04-01", "ch": "r", "cb": ["g", "b"],
    "dd": "b", "nm": {"family": SECRET_NAME, "given": "花子"},
    "addr": {"postal": "1768501", "prefecture": "東京都", "city": "練馬区"},
    "doc": [{"id": "f_1", "filename": "a<1>.pdf", "size": 2048,
             "content_type": "application/pdf"}], "ok": True}


@pytest.fixture(scope="module")
def env() -> jinja2.Environment:
    return environment(modules())


def _macro(env: jinja2.Environment, form: Form, lang: str, values: dict[str, list[Any]],
           errors: dict[str, FieldError]) -> str:
    """What ``{{ fields.page_fields(page, lang, values, errors, shown) }}`` makes."""
    page = form.pages[0]
    module: Any = env.get_template(FIELDS_TEMPLATE).module
    return str(module.page_fields(page, lang, values, errors, list(page.fields)))


def _ours(env: jinja2.Environment, kept: Kept, form: Form, lang: str,
          values: dict[str, list[Any]], errors: dict[str, FieldError]) -> str:
    return str(page_fields(env, kept, form, form.pages[0].fields, lang, values, errors))


def _cases(form: Form) -> list[tuple[dict[str, list[Any]], dict[str, FieldError]]]:
    every = as_inputs(form, ANSWERS)
    some = as_inputs(form, {k: ANSWERS[k] for k in ("t", "cb", "nm", "doc")})
    wrong = {f: FieldError(f, inp, "bad", "正しくありません", "Not right")
             for f, inp in (("num", "num"), ("d1", "d1"), ("nm", "nm.family"), ("cb", "cb"))}
    return [({}, {}), (every, {}), (some, {}), ({}, wrong), (some, wrong),
            ({"t": ["typed <i>"], "d1.year": ["20x6"]}, wrong)]


@pytest.mark.parametrize("lang", ["ja", "en"])
def test_the_fields_are_exactly_the_macros_html(env: jinja2.Environment, lang: str) -> None:
    form = parse_form(definition("f1"))
    kept: Kept = {}
    for values, errors in _cases(form) * 2:  # twice: the second time from kept pieces
        assert _ours(env, kept, form, lang, values, errors) == _macro(env, form, lang, values,
                                                                      errors)
    assert kept  # the unanswered fields were kept and used


def test_only_fields_without_an_answer_or_error_are_kept(env: jinja2.Environment) -> None:
    form = parse_form(definition("f1"))
    kept: Kept = {}
    values = as_inputs(form, {"nm": ANSWERS["nm"], "t": ANSWERS["t"]})
    errors = {"num": FieldError("num", "num", "bad", "正しくありません", "Not right")}
    html = _ours(env, kept, form, "ja", values, errors)
    assert SECRET_NAME in html
    assert {key[2] for key in kept} == {f.id for f in form.pages[0].fields} - {"nm", "t", "num"}
    assert all(key[:2] == ("f1", form.version) and key[3] == "ja" for key in kept)
    assert not any(SECRET_NAME in piece for _form, _tpl, piece in kept.values())


def test_a_piece_is_never_used_for_another_form_object(env: jinja2.Environment) -> None:
    """Same id and version (a version read again, a test's store): the newer object's own
    texts, never the older one's."""
    kept: Kept = {}
    first = parse_form(definition("f1", label="最初の件名"))
    assert "最初の件名" in _ours(env, kept, first, "ja", {}, {})
    second = parse_form(definition("f1", label="次の件名"))
    html = _ours(env, kept, second, "ja", {}, {})
    assert "次の件名" in html
    assert "最初の件名" not in html
    assert html == _macro(env, second, "ja", {}, {})


def test_the_kept_pieces_stay_bounded(env: jinja2.Environment,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(resident_fields, "KEPT_MAX", 5)
    kept: Kept = {}
    for n in range(4):
        form = parse_form(definition(f"f{n}"))
        for lang in ("ja", "en"):
            assert _ours(env, kept, form, lang, {}, {}) == _macro(env, form, lang, {}, {})
            assert len(kept) <= 5


def test_a_condition_hides_a_field_the_same_way(env: jinja2.Environment) -> None:
    """``shown`` (the visible fields) is what is rendered, as ``page_fields(…, shown)``."""
    form = parse_form(simple("f1"))
    answers = {"has_dog": "no"}
    kept_answers = keep_visible(form, answers)
    page = visible_pages(form, kept_answers)[0]
    shown = visible_fields(page, kept_answers)
    values = as_inputs(form, kept_answers)
    module: Any = env.get_template(FIELDS_TEMPLATE).module
    for lang in ("ja", "en"):
        assert str(page_fields(env, {}, form, shown, lang, values, {})) == str(
            module.page_fields(page, lang, values, {}, shown))


async def test_the_page_refuses_a_closed_form_another_forms_cookie_and_an_expired_draft(
        tmp_path: Path) -> None:
    async with resident_app(tmp_path, ClamdClient.from_address("127.0.0.1:9")) as r:
        form_id = await add_form(r.ctx)
        other_id = await add_form(r.ctx)
        await r.get(f"/f/{form_id}")
        assert (await r.post(f"/f/{form_id}/start"))[0] == 303
        status, html, _ = await r.get(f"/f/{form_id}/page/1")
        assert status == 200
        assert 'name="nm.family"' in html
        # the same cookie value sent for another form: no draft there
        token = next(c.value for c in r.client.session.cookie_jar
                     if c.key == "madoguchi_form_draft")
        status, _, _ = await r.get(f"/f/{other_id}/page/1",
                                   Cookie=f"madoguchi_form_draft={token}")
        assert status == 404
        # closed: refused at once (the form's status is read with the draft every time)
        async with r.ctx.store.begin() as tx:
            await tx.conn.execute(update(forms).where(forms.c.id == form_id).values(
                status="closed"))
        assert (await r.get(f"/f/{form_id}/page/1"))[0] == 410
        async with r.ctx.store.begin() as tx:
            await tx.conn.execute(update(forms).where(forms.c.id == form_id).values(
                status="published"))
        assert (await r.get(f"/f/{form_id}/page/1"))[0] == 200
        # a correction draft (of a returned submission) opens even on a closed form
        async with r.ctx.store.begin() as tx:
            await tx.conn.execute(update(forms).where(forms.c.id == form_id).values(
                status="closed"))
            await tx.conn.execute(update(form_drafts).values(submission_id="s_returned"))
        assert (await r.get(f"/f/{form_id}/page/1"))[0] == 200
        # expired
        r.clock.advance(days=r.ctx.settings.draft_days + 1)
        status, html, _ = await r.get(f"/f/{form_id}/page/1")
        assert status == 404
