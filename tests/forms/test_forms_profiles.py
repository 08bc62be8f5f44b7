"""Saved details reused across forms on request (F2): saved only with the box ticked and only
for a signed-in identity, sealed at rest, offered after signing in on another form, never
replacing an answer, deleted by the resident, purged a year after their last use."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest
from clamd_support import Clamd, start_clamd
from forms_support import Resident, add_form, audits, count, resident_app, rows, simple
from hypothesis import given, settings
from hypothesis import strategies as st
from oidc_support import CLIENT_ID, CLIENT_SECRET, REDIRECT_URI, LocalProvider

from hub.forms import jobs, profiles
from hub.forms.model import PREFILL_TYPES, Form
from hub.forms.profiles import form_profiles
from hub.forms.records import open_json
from hub.forms.tables import form_drafts

ADDRESS = "hanako@example.jp"
PERSON = {"nm.family": "山田", "nm.given": "花子", "nm.family_kana": "ヤマダ",
          "nm.given_kana": "ハナコ", "tel": "03-1234-5678", "addr.postal": "176-8501",
          "addr.prefecture": "東京都", "addr.city": "練馬区豊玉北", "addr.street": "6-12-1",
          "born.year": "1980", "born.month": "4", "born.day": "2"}


@pytest.fixture(scope="module")
def clamd() -> Iterator[Clamd]:
    daemon = start_clamd()
    yield daemon
    daemon.stop()


def _label(ja: str) -> dict[str, str]:
    return {"ja": ja, "en": ja}


def form_a(identity: str = "email_code") -> dict[str, Any]:
    """``simple`` with a phone, an address, a birth date (marked) and a move-in date (not)."""
    body = simple("x", identity=identity)
    body["pages"][0]["fields"][1:1] = [
        {"type": "phone", "id": "tel", "label": _label("電話番号")},
        {"type": "address", "id": "addr", "label": _label("住所")},
        {"type": "date", "id": "born", "prefill": "birth_date", "label": _label("生年月日")},
        {"type": "date", "id": "moved", "required": False, "label": _label("転入日")}]
    return body


def form_b() -> dict[str, Any]:
    """Another form: name and address on page 1, phone and a consent on page 2."""
    return {"id": "x", "title": _label("児童手当"), "retention_days": 365,
            "identity": "email_code", "pages": [
                {"id": "who", "title": _label("申請者"), "fields": [
                    {"type": "name", "id": "applicant", "label": _label("氏名")},
                    {"type": "address", "id": "home", "label": _label("住所")}]},
                {"id": "reach", "title": _label("連絡先"), "fields": [
                    {"type": "phone", "id": "phone", "label": _label("電話")},
                    {"type": "consent", "id": "ok", "label": _label("同意"),
                     "text": _label("内容に誤りはありません")}]}]}


async def sign_in(r: Resident, form_id: str, address: str = ADDRESS) -> str:
    """The e-mail code sign-in; the Location the verification sends the resident to."""
    await r.get(f"/f/{form_id}")
    _, html, _ = await r.post(f"/f/{form_id}/code", {"email": address})
    match = re.search(r'name="code_id" value="([^"]+)"', html)
    assert match is not None
    status, _, headers = await r.post(f"/f/{form_id}/verify",
                                      {"code_id": match.group(1), "code": r.last_code()})
    assert status == 303
    return str(headers["Location"])


def inputs(html: str) -> dict[str, str]:
    """The text inputs and selected options of a page, as a browser posts them."""
    out = {m.group(1): m.group(2) for m in re.finditer(
        r'<input type="(?:text|tel|email)"[^>]*?name="([^"]+)"[^>]*?value="([^"]*)"', html)}
    for m in re.finditer(r'<select[^>]*name="([^"]+)"[^>]*>(.*?)</select>', html, re.S):
        chosen = re.search(r'<option value="([^"]*)" selected', m.group(2))
        if chosen:
            out[m.group(1)] = chosen.group(1)
    return out


async def answer_a(r: Resident, form_id: str, *, remember: bool) -> str:
    """Fill form A, open the review, submit (ticking the box or not); the review's HTML."""
    await r.get(f"/f/{form_id}/page/1")
    status, _, headers = await r.post(f"/f/{form_id}/page/1",
                                      {**PERSON, "mail": ADDRESS, "has_dog": "no"})
    assert status == 303, headers
    await r.post(f"/f/{form_id}/page/2", {"ok": "true"})
    status, review, _ = await r.get(f"/f/{form_id}/review")
    assert status == 200
    status, _, headers = await r.post(f"/f/{form_id}/submit",
                                      {profiles.FIELD: "yes"} if remember else {})
    assert status == 303
    assert "/done?ref=F-" in headers["Location"]
    return review


async def test_saved_with_consent_sealed_and_reused_on_another_form(
        tmp_path: Path, clamd: Clamd) -> None:
    async with resident_app(tmp_path, clamd.client()) as r:
        a = await add_form(r.ctx, form_a())
        assert (await sign_in(r, a)).startswith(f"/f/{a}/page/1")  # nothing saved yet
        review = await answer_a(r, a, remember=True)
        box = re.search(r'<input type="checkbox" id="remember"[^>]*>', review)
        assert box is not None
        assert "checked" not in box.group(0)
        assert "氏名・住所・生年月日・電話番号・メールアドレス" in review
        assert "1年" in review
        assert "削除" in review
        [row] = await rows(r.ctx.store, form_profiles)
        raw = " ".join(str(v) for v in row)
        for secret in ("山田", "ヤマダ", "0312345678", "1768501", "練馬", "1980-04-02",
                       ADDRESS, "hanako"):
            assert secret not in raw
        saved = open_json(r.ctx, row.id, "answers", row.answers)
        assert saved["name"]["family"] == "山田"
        assert saved["birth_date"] == "1980-04-02"
        assert set(saved) == {"name", "address", "birth_date", "phone", "email"}
        [audit] = await audits(r.ctx.store, "form_profile_saved")
        assert audit.actor == "resident"
        assert json.loads(audit.detail) == {"kinds": ["address", "birth_date", "email", "name",
                                                      "phone"]}

        b = await add_form(r.ctx, form_b())
        where = await sign_in(r, b)
        assert where.startswith(f"/f/{b}/profile")  # asked first: "on request"
        status, html, _ = await r.get(where)
        assert status == 200
        assert 'id="profile-use"' in html
        assert 'id="profile-skip"' in html
        assert "氏名・住所・電話番号" in html
        status, _, headers = await r.post(f"/f/{b}/profile/use", {"choice": "use"})
        assert status == 303
        assert headers["Location"].startswith(f"/f/{b}/page/1")
        status, html, _ = await r.get(headers["Location"])
        assert 'value="山田"' in html
        assert 'value="ヤマダ"' in html
        assert 'value="1768501"' in html
        assert 'value="練馬区豊玉北"' in html
        assert len(await audits(r.ctx.store, "form_profile_used")) == 1


async def test_skipping_fills_nothing_and_nothing_is_replaced(tmp_path: Path,
                                                              clamd: Clamd) -> None:
    async with resident_app(tmp_path, clamd.client()) as r:
        a = await add_form(r.ctx, form_a())
        await sign_in(r, a)
        await answer_a(r, a, remember=True)
        b = await add_form(r.ctx, form_b())
        await sign_in(r, b)
        status, _, _headers = await r.post(f"/f/{b}/profile/use", {"choice": "skip"})
        assert status == 303
        [draft] = await rows(r.ctx.store, form_drafts, form_id=b)
        assert open_json(r.ctx, draft.id, "answers", draft.answers) == {}
        # the resident types another name, then asks for the saved details after all
        status, _, _ = await r.post(f"/f/{b}/page/1", {
            "applicant.family": "佐藤", "applicant.given": "一郎",
            "applicant.family_kana": "サトウ", "applicant.given_kana": "イチロウ",
            **{k.replace("addr.", "home."): v for k, v in PERSON.items()
               if k.startswith("addr.")}})
        assert status == 303
        await r.post(f"/f/{b}/profile/use", {"choice": "use"})
        [draft] = await rows(r.ctx.store, form_drafts, form_id=b)
        answers = open_json(r.ctx, draft.id, "answers", draft.answers)
        assert answers["applicant"]["family"] == "佐藤"
        assert answers["phone"] == "0312345678"


async def test_without_the_box_nothing_is_saved_and_no_question(tmp_path: Path,
                                                               clamd: Clamd) -> None:
    async with resident_app(tmp_path, clamd.client()) as r:
        a = await add_form(r.ctx, form_a())
        await sign_in(r, a)
        review = await answer_a(r, a, remember=False)
        assert 'id="remember"' in review
        assert 'id="profile-delete"' not in review  # nothing saved yet
        assert await count(r.ctx.store, form_profiles) == 0
        assert await audits(r.ctx.store, "form_profile_saved") == []
        b = await add_form(r.ctx, form_b())
        assert (await sign_in(r, b)).startswith(f"/f/{b}/page/1")
        status, _, headers = await r.get(f"/f/{b}/profile")  # nothing to ask
        assert status == 303
        assert "/page/1" in headers["Location"]


async def test_an_anonymous_form_offers_nothing_and_saves_nothing(tmp_path: Path,
                                                                 clamd: Clamd) -> None:
    async with resident_app(tmp_path, clamd.client()) as r:
        a = await add_form(r.ctx, form_a("anonymous"))
        await r.get(f"/f/{a}")
        status, _, _headers = await r.post(f"/f/{a}/start")
        assert status == 303
        review = await answer_a(r, a, remember=True)  # the box posted by hand
        assert 'id="remember"' not in review
        assert profiles.FIELD not in review
        assert await count(r.ctx.store, form_profiles) == 0
        status, _, _ = await r.post(f"/f/{a}/profile/delete")
        assert status == 404


async def test_the_resident_deletes_the_saved_details(tmp_path: Path, clamd: Clamd) -> None:
    async with resident_app(tmp_path, clamd.client()) as r:
        a = await add_form(r.ctx, form_a())
        await sign_in(r, a)
        await answer_a(r, a, remember=True)
        b = await add_form(r.ctx, form_b())
        await sign_in(r, b)
        await r.post(f"/f/{b}/profile/use", {"choice": "use"})
        _, page1, _ = await r.get(f"/f/{b}/page/1")
        await r.post(f"/f/{b}/page/1", inputs(page1))  # the prefilled page sent as it is
        _, page2, _ = await r.get(f"/f/{b}/page/2")
        await r.post(f"/f/{b}/page/2", {**inputs(page2), "ok": "true"})
        status, review, _ = await r.get(f"/f/{b}/review")
        assert status == 200
        assert 'id="profile-delete"' in review
        status, _, headers = await r.post(f"/f/{b}/profile/delete", {"back": "review"})
        assert status == 303
        status, html, _ = await r.get(headers["Location"])
        assert status == 200
        assert 'data-mode="deleted"' in html
        assert f'href="/f/{b}/review?lang=ja"' in html
        assert await count(r.ctx.store, form_profiles) == 0
        [audit] = await audits(r.ctx.store, "form_profile_deleted")
        assert audit.actor == "resident"
        assert audit.target == b
        # without the signed-in draft there is nothing to delete with
        r.client.session.cookie_jar.clear()
        await r.get(f"/f/{b}")
        status, _, _ = await r.post(f"/f/{b}/profile/delete")
        assert status == 404


async def test_a_year_without_use_purges_and_use_extends(tmp_path: Path,
                                                         clamd: Clamd) -> None:
    async with resident_app(tmp_path, clamd.client()) as r:
        a = await add_form(r.ctx, form_a())
        await sign_in(r, a)
        await answer_a(r, a, remember=True)
        r.clock.advance(days=300)
        b = await add_form(r.ctx, form_b())
        await sign_in(r, b)
        await r.post(f"/f/{b}/profile/use", {"choice": "use"})  # used: a year from now
        r.clock.advance(days=300)
        assert await profiles.purge_profiles(r.ctx, r.clock()) == 0
        assert await count(r.ctx.store, form_profiles) == 1
        r.clock.advance(days=66)
        assert await profiles.load(r.ctx, {"method": "email_code", "email": ADDRESS}) is None
        await jobs.retention_round(r.ctx)  # the hourly job purges
        assert await count(r.ctx.store, form_profiles) == 0
        [audit] = await audits(r.ctx.store, "form_profiles_purged")
        assert json.loads(audit.detail) == {"count": 1}


def test_keep_days_is_a_year() -> None:
    assert timedelta(days=profiles.KEEP_DAYS) >= timedelta(days=365)


@pytest.fixture
async def provider(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[LocalProvider]:
    p = LocalProvider()
    await p.start()
    monkeypatch.setenv("MADOGUCHI_FORMS_OIDC_ISSUER", p.issuer)
    monkeypatch.setenv("MADOGUCHI_FORMS_OIDC_CLIENT_ID", CLIENT_ID)
    monkeypatch.setenv("MADOGUCHI_FORMS_OIDC_CLIENT_SECRET", CLIENT_SECRET)
    monkeypatch.setenv("MADOGUCHI_FORMS_OIDC_REDIRECT_URI", REDIRECT_URI)
    yield p
    await p.stop()


async def oidc_sign_in(r: Resident, form_id: str) -> str:
    """Through the local provider; the Location the callback sends the resident to."""
    r.clock.now = datetime.now(UTC)  # the provider signs with the real time
    _, _, headers = await r.get(f"/f/{form_id}/oidc")
    async with aiohttp.ClientSession() as http, http.get(
            headers["Location"], allow_redirects=False) as answer:
        back = urlsplit(answer.headers["Location"])
    status, _, headers = await r.get(f"{back.path}?{back.query}")
    assert status == 303
    return str(headers["Location"])


async def test_an_oidc_identity_has_its_own_profile_and_the_card_wins(
        tmp_path: Path, clamd: Clamd, provider: LocalProvider) -> None:
    async with resident_app(tmp_path, clamd.client()) as r:
        c = await add_form(r.ctx, form_a("oidc"))
        assert (await oidc_sign_in(r, c)).startswith(f"/f/{c}/page/1")
        await answer_a(r, c, remember=True)
        [row] = await rows(r.ctx.store, form_profiles)
        assert row.id != profiles.profile_key(r.ctx, {"method": "email_code",
                                                       "email": ADDRESS})
        body = form_b() | {"identity": "oidc"}
        body["pages"][0]["fields"][0]["prefill"] = "name"  # from the card
        d = await add_form(r.ctx, body)
        where = await oidc_sign_in(r, d)
        assert where.startswith(f"/f/{d}/profile")  # the phone was saved, not on the card
        _, html, _ = await r.get(where)
        assert "住所・電話番号" in html
        assert "氏名" not in html
        await r.post(f"/f/{d}/profile/use", {"choice": "use"})
        [draft] = await rows(r.ctx.store, form_drafts, form_id=d)
        answers = open_json(r.ctx, draft.id, "answers", draft.answers)
        assert answers["phone"] == "0312345678"
        assert answers["applicant"]["family"] == "練馬"  # the card's name is not replaced
        assert answers["home"]["city"] == "練馬区豊玉北"


# --- the rules, for any form -----------------------------------------------------------------

_TYPES = ("name", "address", "phone", "email", "date", "text", "number")
_PROFILE = {"name": {"family": "山田", "given": "花子", "family_kana": "ヤマダ",
                     "given_kana": "ハナコ"},
            "address": {"postal": "1768501", "prefecture": "東京都", "city": "練馬区",
                        "street": "1-1"},
            "birth_date": "1980-04-02", "phone": "0312345678", "email": "a@example.jp"}
_KIND_OF_TYPE = {t: k for k, t in PREFILL_TYPES.items() if k != "birth_date"}


@st.composite
def forms(draw: st.DrawFn) -> Form:
    fields = []
    types: list[str] = draw(st.lists(st.sampled_from(_TYPES), min_size=1, max_size=8))
    for i, ftype in enumerate(types):
        fld: dict[str, Any] = {"type": ftype, "id": f"f{i}", "label": _label(f"項目{i}")}
        kinds = [k for k, t in PREFILL_TYPES.items() if t == ftype]
        marked: bool = draw(st.booleans())
        if kinds and marked:
            fld["prefill"] = kinds[0]
        fields.append(fld)
    return Form.model_validate({"id": "x", "title": _label("t"), "retention_days": 30,
                                "pages": [{"id": "p", "title": _label("p"),
                                           "fields": fields}]})


@given(forms(), st.dictionaries(st.sampled_from([f"f{i}" for i in range(8)]),
                                st.sampled_from(["", "typed", None])))
@settings(max_examples=200, deadline=None)
def test_filling_goes_by_type_and_never_replaces(form: Form, answers: dict[str, Any]) -> None:
    added = profiles.fill(form, _PROFILE, answers)
    for fid, value in added.items():
        fld = form.field(fid)
        assert fld is not None
        assert fld.type in PREFILL_TYPES.values()  # never a text or number field
        if fld.type == "date":
            assert fld.prefill == "birth_date"
            assert value == _PROFILE["birth_date"]
        elif fld.type == "name":
            assert value["family"] == "山田"
        else:
            assert value == _PROFILE[_KIND_OF_TYPE[fld.type]]
        assert answers.get(fid) in (None, "")  # only empty fields
    # what is filled is what would be saved from it again (the same kinds, by the same rule)
    for kind, value in profiles.extract(form, added).items():
        assert value == _PROFILE[kind] or kind == "name"


@given(forms())
@settings(max_examples=200, deadline=None)
def test_an_unmarked_type_with_several_fields_is_left_alone(form: Form) -> None:
    added = profiles.fill(form, _PROFILE, {})
    for ftype in ("name", "address", "phone", "email"):
        same = [f for _, f in form.fields() if f.type == ftype]
        if len(same) > 1 and all(f.prefill is None for f in same):
            assert not any(f.id in added for f in same)
