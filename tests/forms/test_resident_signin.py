"""Signing in with an e-mail code, the version a draft answers on, and correcting a returned
submission (sign in again with the same address, the staff's comment, resubmit)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from clamd_support import Clamd, start_clamd
from forms_support import (
    Resident,
    add_form,
    audits,
    count,
    publish_version,
    resident_app,
    rows,
    simple,
)
from sqlalchemy import insert, update

from hub.forms.records import new_id, open_json, seal_field
from hub.forms.tables import (
    form_codes,
    form_deliveries,
    form_drafts,
    form_history,
    form_submissions,
)

ADDRESS = "hanako@example.jp"
NAME = {"nm.family": "山田", "nm.given": "花子", "nm.family_kana": "ヤマダ",
        "nm.given_kana": "ハナコ"}


@pytest.fixture(scope="module")
def clamd() -> Iterator[Clamd]:
    daemon = start_clamd()
    yield daemon
    daemon.stop()


def code_id_of(html: str) -> str:
    match = re.search(r'name="code_id" value="([^"]+)"', html)
    assert match is not None, "no code form on the page"
    return match.group(1)


async def _ask_code(r: Resident, base: str, address: str = ADDRESS) -> tuple[int, str]:
    status, html, _ = await r.post(f"{base}/code", {"email": address})
    return status, html


async def test_email_code_signs_in_and_prefills_the_address(tmp_path: Path,
                                                           clamd: Clamd) -> None:
    async with resident_app(tmp_path, clamd.client()) as r:
        form_id = await add_form(r.ctx, simple("x", identity="email_code"))
        status, html, _ = await r.get(f"/f/{form_id}")
        assert 'id="send-code"' in html
        assert 'autocomplete="email"' in html
        status, html = await _ask_code(r, f"/f/{form_id}", "not an address")
        assert status == 400
        assert 'href="#email"' in html
        status, html = await _ask_code(r, f"/f/{form_id}")
        assert status == 200
        assert 'id="code-sent"' in html
        [_mail] = r.mails(ADDRESS)
        code = r.last_code()
        [row] = await rows(r.ctx.store, form_codes, form_id=form_id)
        assert code not in row.code_hmac
        assert ADDRESS not in row.email
        wrong = "000000" if code != "000000" else "111111"
        status, html, _ = await r.post(f"/f/{form_id}/verify",
                                       {"code_id": code_id_of(html), "code": wrong})
        assert status == 400
        assert "あと4回" in html
        assert 'href="#code"' in html
        status, _, headers = await r.post(f"/f/{form_id}/verify",
                                          {"code_id": row.id, "code": code})
        assert status == 303
        assert headers["Location"].startswith(f"/f/{form_id}/page/1")
        status, html, _ = await r.get(headers["Location"])
        assert f'value="{ADDRESS}"' in html  # the e-mail field is prefilled
        assert len(await audits(r.ctx.store, "form_resident_login")) == 1
        # save and resume: the link by mail opens the draft in another browser
        status, html, _ = await r.post(f"/f/{form_id}/resume-mail")
        assert status == 200
        link = re.search(r"https://ward\.example(/f/\S+/resume/\S+)", r.box[-1].body)
        assert link is not None
        assert r.box[-1].to == ADDRESS
        r.client.session.cookie_jar.clear()
        status, _, headers = await r.get(link.group(1))
        assert status == 303
        status, html, _ = await r.get(headers["Location"])
        assert f'value="{ADDRESS}"' in html
        # a used code does not work twice
        status, html, _ = await r.post(f"/f/{form_id}/verify", {"code_id": row.id, "code": code})
        assert status == 400
        assert "使えなくなりました" in html


async def test_five_wrong_codes_spend_it_and_five_codes_an_hour(tmp_path: Path,
                                                               clamd: Clamd) -> None:
    async with resident_app(tmp_path, clamd.client()) as r:
        form_id = await add_form(r.ctx, simple("x", identity="email_code"))
        await r.get(f"/f/{form_id}")
        _, html = await _ask_code(r, f"/f/{form_id}")
        code, cid = r.last_code(), code_id_of(html)
        wrong = "000000" if code != "000000" else "111111"
        for _ in range(5):
            status, _, _ = await r.post(f"/f/{form_id}/verify", {"code_id": cid, "code": wrong})
            assert status == 400
        status, html, _ = await r.post(f"/f/{form_id}/verify", {"code_id": cid, "code": code})
        assert status == 400
        assert "使えなくなりました" in html
        assert await count(r.ctx.store, form_drafts) == 0
        assert len(await audits(r.ctx.store, "form_code_locked")) == 1
        for _ in range(4):
            status, _ = await _ask_code(r, f"/f/{form_id}")
            assert status == 200
        status, html = await _ask_code(r, f"/f/{form_id}")
        assert status == 429
        assert "上限" in html
        assert len(r.mails(ADDRESS)) == 5
        r.clock.advance(minutes=61)
        status, _ = await _ask_code(r, f"/f/{form_id}")
        assert status == 200


async def test_a_draft_started_on_v1_finishes_on_v1(tmp_path: Path, clamd: Clamd) -> None:
    async with resident_app(tmp_path, clamd.client()) as r:
        form_id = await add_form(r.ctx)
        await r.get(f"/f/{form_id}")
        await r.post(f"/f/{form_id}/start")
        await r.post(f"/f/{form_id}/page/1", {**NAME, "has_dog": "no"})
        v2 = simple(form_id)
        v2["pages"][2]["fields"].append({"type": "text", "id": "extra",
                                         "label": {"ja": "新しい質問", "en": "New"}})
        await publish_version(r.ctx, form_id, v2, 2)
        status, html, _ = await r.get(f"/f/{form_id}/page/2")
        assert status == 200
        assert "新しい質問" not in html
        await r.post(f"/f/{form_id}/page/2", {"ok": "true"}, files=[])
        status, _, _headers = await r.post(f"/f/{form_id}/submit")
        assert status == 303
        [sub] = await rows(r.ctx.store, form_submissions, form_id=form_id)
        assert sub.version == 1
        assert set(open_json(r.ctx, sub.id, "answers", sub.answers)) == {"nm", "has_dog", "ok"}
        # a new resident gets version 2
        r.client.session.cookie_jar.clear()
        await r.get(f"/f/{form_id}")
        await r.post(f"/f/{form_id}/start")
        await r.post(f"/f/{form_id}/page/1", {**NAME, "has_dog": "no"})
        status, html, _ = await r.get(f"/f/{form_id}/page/2")
        assert "新しい質問" in html


async def _returned(r: Resident, form_id: str) -> tuple[str, str]:
    """Apply once (signed in by code), then staff return it with a comment."""
    await r.get(f"/f/{form_id}")
    _, html = await _ask_code(r, f"/f/{form_id}")
    await r.post(f"/f/{form_id}/verify", {"code_id": code_id_of(html), "code": r.last_code()})
    await r.post(f"/f/{form_id}/page/1", {**NAME, "has_dog": "yes"})
    await r.post(f"/f/{form_id}/page/2", {"dog": "ぽち"})
    await r.post(f"/f/{form_id}/page/3", {"ok": "true"}, files=[])
    await r.post(f"/f/{form_id}/submit")
    [sub] = await rows(r.ctx.store, form_submissions, form_id=form_id)
    hid = new_id()
    r.clock.advance(days=1)
    async with r.ctx.store.begin() as tx:
        await tx.conn.execute(update(form_submissions).where(
            form_submissions.c.id == sub.id).values(status="returned"))
        await tx.conn.execute(insert(form_history).values(
            id=hid, submission_id=sub.id, at=r.clock(), actor="staff1", status="returned",
            comment=seal_field(r.ctx, hid, "comment", "犬の名前をカタカナで書いてください"),
            to_resident=1))
    r.client.session.cookie_jar.clear()
    return str(sub.id), str(sub.reference)


async def test_a_returned_submission_is_corrected_and_resubmitted(tmp_path: Path,
                                                                 clamd: Clamd) -> None:
    async with resident_app(tmp_path, clamd.client()) as r:
        form_id = await add_form(r.ctx, simple("x", identity="email_code"),
                                 webhook_url="https://erp.example/hook")
        sid, ref = await _returned(r, form_id)
        base = f"/f/{form_id}/s/{ref}"
        r.clock.advance(days=1)
        status, html, _ = await r.get(base)
        assert status == 200
        assert ref in html
        assert 'id="send-code"' in html
        # another address gets the same page but no mail, and its code never works
        sent_before = len(r.box)
        status, html = await _ask_code(r, base, "other@example.jp")
        assert status == 200
        assert len(r.box) == sent_before
        status, html = await _ask_code(r, base)
        assert status == 200
        status, _, headers = await r.post(f"{base}/verify", {"code_id": code_id_of(html),
                                                             "code": r.last_code()})
        assert status == 303
        status, html, _ = await r.get(headers["Location"])
        assert "犬の名前をカタカナで書いてください" in html
        assert 'value="山田"' in html
        await r.post(f"/f/{form_id}/page/1", {**NAME, "has_dog": "yes"})
        await r.post(f"/f/{form_id}/page/2", {"dog": "ポチ"})
        await r.post(f"/f/{form_id}/page/3", {"ok": "true"}, files=[])
        status, html, _ = await r.get(f"/f/{form_id}/review")
        assert 'id="submit"' in html
        assert "再提出" in html
        status, html, _ = await r.follow(f"/f/{form_id}/submit")
        assert status == 200
        assert ref in html
        [sub] = await rows(r.ctx.store, form_submissions, form_id=form_id)
        assert sub.id == sid
        assert sub.status == "received"
        assert open_json(r.ctx, sid, "answers", sub.answers)["dog"] == "ポチ"
        history = sorted(await rows(r.ctx.store, form_history, submission_id=sid),
                         key=lambda h: h.at)
        assert [(h.actor, h.status) for h in history] == [
            ("resident", "received"), ("staff1", "returned"), ("resident", "received")]
        events = sorted(d.event_type for d in await rows(r.ctx.store, form_deliveries,
                                                          submission_id=sid))
        assert events == ["submission.received", "submission.resubmitted"]
        assert await count(r.ctx.store, form_drafts) == 0
        # once resubmitted, the link no longer opens a correction: no code is mailed
        sent_before = len(r.box)
        _, html = await _ask_code(r, base)
        assert len(r.box) == sent_before
        status, _, _ = await r.post(f"{base}/verify", {"code_id": code_id_of(html),
                                                       "code": r.last_code()})
        assert status == 400
        assert await count(r.ctx.store, form_drafts) == 0
