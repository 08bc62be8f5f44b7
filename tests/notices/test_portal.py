"""The residents' notice portal (issue 16, N5/N8): magic links survive mail scanners' GETs and
work once by POST; one-time codes lock after 5 wrong tries (counted in the database, so
parallel guesses count too) and are rate-limited; downloads are the exact signed bytes, only
the recipient's own, counted and audited; test-mode notices say テスト and mail staff only."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from notices_portal_support import (
    Portal,
    add_file,
    add_notice,
    add_recipient,
    audit_rows,
    form_csrf,
    notice_row,
    pdf,
    portal_app,
    recipient,
)
from sqlalchemy import text, update

from hub.audit.service import audit_keys, verify
from hub.notices import portal_auth
from hub.notices.context import CODE_MAX_TRIES, CODES_PER_HOUR
from hub.notices.tables import notice_files

ALICE, BOB = ("練馬 花子", "hanako@example.jp"), ("石神井 太郎", "taro@example.jp")


@pytest.fixture
async def p(tmp_path: Path) -> Portal:  # type: ignore[misc]
    async with portal_app(tmp_path) as made:
        yield made


async def _link_notice(p: Portal) -> tuple[str, str, str, str]:
    nid = await add_notice(p.ctx, auth="link")
    fid = await add_file(p.ctx, nid, pdf("alice"), pages=2)
    rid, token = await add_recipient(p.ctx, nid, name=ALICE[0], email=ALICE[1], file_id=fid)
    return nid, rid, token, fid


async def test_get_never_consumes_the_link_and_the_post_signs_in(p: Portal) -> None:
    nid, rid, token, _fid = await _link_notice(p)
    for _ in range(3):  # a mail scanner, a link preview, the resident
        async with p.client.get(f"/n/{token}") as r:
            page = await r.text()
            assert r.status == 200
            assert r.headers["Cache-Control"] == "no-store"
            assert r.headers["Referrer-Policy"] == "no-referrer"
    assert "通知を開く" in page
    assert "固定資産税の減額決定通知" in page
    assert (await recipient(p.ctx, rid)).link_used_at is None
    status, _body, headers = await p.post(f"/n/{token}/open", csrf=form_csrf(page))
    assert status == 303
    assert headers["Location"].startswith("/n/view")
    cookie = headers.getall("Set-Cookie")
    session = next(c for c in cookie if c.startswith("madoguchi_notice="))
    assert "HttpOnly" in session
    assert "SameSite=Lax" in session
    assert "Path=/n" in session
    assert (await recipient(p.ctx, rid)).link_used_at == p.clock.now
    async with p.client.get("/n/view") as r:
        view = await r.text()
        assert r.status == 200
    assert "固定資産税の減額決定通知" in view
    assert "ダウンロード" in view
    assert "テスト" not in view
    logins = await audit_rows(p.ctx, "notice_portal_login")
    assert [(a.actor, a.target) for a in logins] == [(f"resident:{rid}", nid)]
    assert ALICE[0] not in logins[0].detail
    assert ALICE[1] not in logins[0].detail


async def test_a_used_link_says_so_and_a_new_link_replaces_it(p: Portal) -> None:
    _nid, rid, token, _fid = await _link_notice(p)
    csrf = await p.csrf(token)
    assert (await p.post(f"/n/{token}/open", csrf=csrf))[0] == 303
    status, body, _h = await p.post(f"/n/{token}/open", csrf=csrf)
    assert status == 400
    assert "このリンクは使用済みです" in body
    assert "新しいリンクを送る" in body
    async with p.client.get(f"/n/{token}") as r:
        assert "このリンクは使用済みです" in await r.text()
    status, body, _h = await p.post(f"/n/{token}/relink", csrf=csrf)
    assert status == 200
    assert "新しいリンクを送りました" in body
    mail = p.mails()[-1]
    assert mail.to == ALICE[1]
    assert mail.subject.startswith("【練馬区】")
    assert token not in mail.body
    new = mail.body.split("https://ward.example/n/")[1].split()[0]
    assert (await recipient(p.ctx, rid)).contacts == 1  # a resident's own request: no contact
    async with p.client.get(f"/n/{token}") as r:  # the old link is gone: a plain 404
        assert r.status == 404
    status, _body, _headers = await p.post(f"/n/{new}/open", csrf=await p.csrf(new))
    assert status == 303


async def test_a_post_without_the_form_token_is_refused(p: Portal) -> None:
    _nid, rid, token, _fid = await _link_notice(p)
    await p.csrf(token)
    assert (await p.post(f"/n/{token}/open"))[0] == 403
    assert (await p.post(f"/n/{token}/open", csrf="x" * 32))[0] == 403
    async with p.client.post(f"/n/{token}/open", data={"csrf": await p.csrf(token)},
                             headers={"Sec-Fetch-Site": "cross-site"},
                             allow_redirects=False) as r:
        assert r.status == 403
    assert (await recipient(p.ctx, rid)).link_used_at is None


async def test_an_expired_link_offers_a_new_one(p: Portal) -> None:
    _nid, rid, token, _fid = await _link_notice(p)
    csrf = await p.csrf(token)
    p.clock.advance(days=31)
    async with p.client.get(f"/n/{token}") as r:
        page = await r.text()
        assert r.status == 200
    assert "有効期限が切れています" in page
    assert "新しいリンクを送る" in page
    assert "通知を開く</button>" not in page
    assert (await p.post(f"/n/{token}/open", csrf=csrf))[0] == 400
    assert (await recipient(p.ctx, rid)).link_used_at is None
    assert (await p.post(f"/n/{token}/relink", csrf=csrf))[0] == 200
    assert len(p.mails()) == 1


async def test_unknown_token_is_a_plain_404(p: Portal) -> None:
    async with p.client.get("/n/" + "A" * 43) as r:
        page = await r.text()
        assert r.status == 404
    assert "ページが見つかりません" in page
    assert "/static/notices-portal.css" in page


async def _code_notice(p: Portal, **kw: object) -> tuple[str, str, str]:
    nid = await add_notice(p.ctx, auth="code", **kw)  # type: ignore[arg-type]
    rid, token = await add_recipient(p.ctx, nid, name=ALICE[0], email=ALICE[1])
    await add_recipient(p.ctx, nid, name=BOB[0], email=BOB[1], line=2)
    return nid, rid, token


async def test_five_wrong_codes_lock_even_the_right_one(p: Portal) -> None:
    _nid, rid, token = await _code_notice(p)
    csrf = await p.csrf(token)
    async with p.client.get(f"/n/{token}") as r:
        assert "確認コードを送る" in await r.text()
    status, _b, headers = await p.post(f"/n/{token}/code", csrf=csrf)
    assert status == 303
    assert "sent=1" in headers["Location"]
    mail = p.mails()[-1]
    assert mail.to == ALICE[1]
    assert mail.subject == "【練馬区】確認コード"
    code = p.last_code()
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    for i in range(1, CODE_MAX_TRIES):
        status, body, _h = await p.post(f"/n/{token}/verify", {"code": wrong}, csrf)
        assert status == 400
        assert f"あと{CODE_MAX_TRIES - i}回" in body
    status, body, _h = await p.post(f"/n/{token}/verify", {"code": wrong}, csrf)
    assert status == 429
    assert "しばらくご利用いただけません" in body
    row = await recipient(p.ctx, rid)
    assert row.code_tries == CODE_MAX_TRIES
    assert row.code_hmac is None
    assert row.locked_until == p.clock.now + timedelta(minutes=30)
    status, body, headers = await p.post(f"/n/{token}/verify", {"code": code}, csrf)
    assert status == 429
    assert "madoguchi_notice=" not in " ".join(headers.getall(
        "Set-Cookie", []))
    assert (await p.post(f"/n/{token}/code", csrf=csrf))[0] == 429
    locks = await audit_rows(p.ctx, "notice_code_locked")
    assert [(a.actor, a.target) for a in locks] == [(f"resident:{rid}", rid)]
    p.clock.advance(minutes=31)  # the lock runs out: a new code, five new tries
    assert (await p.post(f"/n/{token}/code", csrf=csrf))[0] == 303
    assert (await p.post(f"/n/{token}/verify", {"code": p.last_code()}, csrf))[0] == 303


async def test_the_right_code_signs_in_and_resets_the_tries(p: Portal) -> None:
    _nid, rid, token = await _code_notice(p)
    csrf = await p.csrf(token)
    await p.post(f"/n/{token}/code", csrf=csrf)
    code = p.last_code()
    await p.post(f"/n/{token}/verify", {"code": f"{(int(code) + 7) % 10**6:06d}"}, csrf)
    assert (await recipient(p.ctx, rid)).code_tries == 1
    status, _b, headers = await p.post(f"/n/{token}/verify", {"code": code}, csrf)
    assert status == 303
    assert headers["Location"].startswith("/n/view")
    row = await recipient(p.ctx, rid)
    assert row.code_tries == 0
    assert row.code_hmac is None
    async with p.client.get("/n/view") as r:
        assert r.status == 200
    # the code is single-use
    assert (await p.post(f"/n/{token}/verify", {"code": code}, csrf))[0] == 400


async def test_full_width_code_is_accepted(p: Portal) -> None:
    _nid, _rid, token = await _code_notice(p)
    csrf = await p.csrf(token)
    await p.post(f"/n/{token}/code", csrf=csrf)
    wide = p.last_code().translate(str.maketrans("0123456789", "０１２３４５６７８９"))
    status, _b, _h = await p.post(f"/n/{token}/verify", {"code": wide[:3] + " " + wide[3:]}, csrf)
    assert status == 303


async def test_the_language_switch_after_a_post_goes_back_to_the_page(p: Portal) -> None:
    _nid, _rid, token = await _code_notice(p)
    async with p.client.get(f"/n/{token}/verify?lang=ko", allow_redirects=False) as r:
        assert r.status == 303
        assert r.headers["Location"] == f"/n/{token}?lang=ko&sent=1"
    async with p.client.get(f"/n/{token}?lang=ko&sent=1") as r:
        assert "확인 코드" in await r.text()


async def test_a_code_expires(p: Portal) -> None:
    _nid, _rid, token = await _code_notice(p)
    csrf = await p.csrf(token)
    await p.post(f"/n/{token}/code", csrf=csrf)
    p.clock.advance(minutes=11)
    status, body, _h = await p.post(f"/n/{token}/verify", {"code": p.last_code()}, csrf)
    assert status == 400
    assert "有効期限が切れています" in body


async def test_the_sixth_code_within_the_hour_is_refused(p: Portal) -> None:
    _nid, _rid, token = await _code_notice(p)
    csrf = await p.csrf(token)
    for _ in range(CODES_PER_HOUR):
        assert (await p.post(f"/n/{token}/code", csrf=csrf))[0] == 303
        p.clock.advance(minutes=5)
    status, body, _h = await p.post(f"/n/{token}/code", csrf=csrf)
    assert status == 429
    assert "1時間に5回まで" in body
    assert len(p.mails()) == CODES_PER_HOUR
    p.clock.advance(minutes=40)  # an hour after the first
    assert (await p.post(f"/n/{token}/code", csrf=csrf))[0] == 303


async def test_download_is_exact_counted_and_audited(p: Portal) -> None:
    nid, rid, token, fid = await _link_notice(p)
    before = (await notice_row(p.ctx, nid)).updated_at
    await p.post(f"/n/{token}/open", csrf=await p.csrf(token))
    async with p.client.get("/n/view") as r:
        view = await r.text()
    assert f"/n/file/{fid}" in view
    assert "2ページ" in view
    p.clock.advance(minutes=1)
    first = p.clock.now
    async with p.client.get(f"/n/file/{fid}") as r:
        body = await r.read()
        assert r.status == 200
        assert r.headers["Content-Type"] == "application/pdf"
        assert r.headers["Cache-Control"] == "no-store"
        disposition = r.headers["Content-Disposition"]
    assert body == pdf("alice")
    assert hashlib.sha256(body).hexdigest() == hashlib.sha256(pdf("alice")).hexdigest()
    assert disposition.startswith("attachment;")
    assert "filename*=UTF-8''" in disposition
    assert "%E5%9B%BA" in disposition  # 固 of the title, UTF-8 encoded
    assert 'filename="notice.pdf"' in disposition  # the plain-ASCII fallback
    row = await recipient(p.ctx, rid)
    assert row.opened_at == first
    assert row.downloads == 1
    assert (await notice_row(p.ctx, nid)).updated_at == first != before
    p.clock.advance(minutes=1)
    async with p.client.get(f"/n/file/{fid}") as r:
        assert await r.read() == pdf("alice")
    row = await recipient(p.ctx, rid)
    assert row.opened_at == first
    assert row.downloads == 2
    rows = await audit_rows(p.ctx, "notice_downloaded")
    assert [(a.actor, a.target) for a in rows] == [(f"resident:{rid}", fid)] * 2
    assert all(ALICE[0] not in a.detail and ALICE[1] not in a.detail for a in rows)


async def test_only_the_recipients_own_signed_files(p: Portal) -> None:
    nid, _rid, token, fid = await _link_notice(p)
    other = await add_file(p.ctx, nid, pdf("bob"))
    await add_recipient(p.ctx, nid, name=BOB[0], email=BOB[1], line=2, file_id=other)
    common = await add_file(p.ctx, nid, pdf("common"), kind="common")
    unsigned = await add_file(p.ctx, nid, pdf("draft"), kind="common", signed=False)
    await p.post(f"/n/{token}/open", csrf=await p.csrf(token))
    async with p.client.get("/n/view") as r:
        view = await r.text()
    assert fid in view
    assert common in view
    assert other not in view
    assert unsigned not in view
    for bad in (other, unsigned, "nosuchfile123"):
        async with p.client.get(f"/n/file/{bad}") as r:
            assert r.status == 404
    async with p.client.get(f"/n/file/{common}") as r:
        assert await r.read() == pdf("common")
    async with p.ctx.store.begin() as tx:  # a stored file that is not what was signed
        await tx.conn.execute(update(notice_files).where(notice_files.c.id == fid).values(
            sha256="0" * 64))
    async with p.client.get(f"/n/file/{fid}") as r:
        assert r.status == 404


async def test_without_a_session_nothing_is_shown(p: Portal) -> None:
    _nid, rid, _token, fid = await _link_notice(p)
    async with p.client.get("/n/view") as r:
        assert r.status == 401
        assert "メールのリンクから" in await r.text()
    async with p.client.get(f"/n/file/{fid}") as r:
        assert r.status == 401
    forged = portal_auth.sign_session(p.ctx, rid, p.clock.now)[:-2] + "AA"
    p.client.session.cookie_jar.update_cookies({"madoguchi_notice": forged})
    async with p.client.get(f"/n/file/{fid}") as r:
        assert r.status == 401
    assert (await recipient(p.ctx, rid)).downloads == 0


async def test_the_session_expires_and_logout_ends_it(p: Portal) -> None:
    _nid, _rid, token, _fid = await _link_notice(p)
    await p.post(f"/n/{token}/open", csrf=await p.csrf(token))
    async with p.client.get("/n/view") as r:
        view = await r.text()
    status, body, _h = await p.post("/n/logout", csrf=form_csrf(view))
    assert status == 200
    assert "ログアウトしました" in body
    async with p.client.get("/n/view") as r:
        assert r.status == 401
    sid = portal_auth.sign_session(p.ctx, _rid, p.clock.now)
    assert portal_auth.read_session(p.ctx, sid, p.clock.now) == _rid
    p.clock.advance(minutes=31)
    assert portal_auth.read_session(p.ctx, sid, p.clock.now) is None


async def test_test_mode_shows_the_stamp_and_mails_staff_only(p: Portal) -> None:
    _nid, rid, token = await _code_notice(p, test_mode=True,
                                          test_addresses=("notice-team@city.example",))
    async with p.client.get(f"/n/{token}") as r:
        page = await r.text()
    assert 'id="test-stamp"' in page
    assert "テスト" in page
    await p.post(f"/n/{token}/code", csrf=form_csrf(page))
    assert sorted(m.to for m in p.mails()) == ["notice-team@city.example",
                                                "staff-a@city.example"]
    assert (await p.post(f"/n/{token}/verify", {"code": p.last_code()},
                         form_csrf(page)))[0] == 303
    async with p.client.get("/n/view?lang=en") as r:
        view = await r.text()
    assert "TEST (テスト)" in view
    assert 'id="test-stamp"' in view
    assert (await recipient(p.ctx, rid)).downloads == 0


async def test_pages_hold_no_personal_data(p: Portal) -> None:
    nid, _rid, token, _fid = await _link_notice(p)
    await add_recipient(p.ctx, nid, name=BOB[0], email=BOB[1], line=2)
    pages = []
    for lang in ("ja", "en", "zh", "ko"):
        async with p.client.get(f"/n/{token}?lang={lang}") as r:
            pages.append(await r.text())
            assert r.headers["Content-Language"] == lang
    await p.post(f"/n/{token}/open", csrf=form_csrf(pages[0]))
    async with p.client.get("/n/view") as r:
        pages.append(await r.text())
    for page in pages:
        for value in (*ALICE, *BOB, "K0001", "K0002"):
            assert value not in page
    assert "<strong>ご確認ください。</strong>" in pages[-1]  # the message, rendered Markdown


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
async def test_parallel_wrong_codes_each_count(kind: str, tmp_path: Path,
                                               request: pytest.FixtureRequest) -> None:
    if kind == "postgresql":
        url = request.getfixturevalue("postgres_url")
        schema = f"np_{uuid.uuid4().hex[:12]}"
        cm = portal_app(tmp_path, url, schema)
    else:
        cm = portal_app(tmp_path)
    async with cm as p:
        try:
            _nid, rid, token = await _code_notice(p)
            assert (await portal_auth.send_code(p.ctx, token, p.clock.now)).ok
            p.clock.advance(minutes=1)  # a second code in the same hour replaces the first
            assert (await portal_auth.send_code(p.ctx, token, p.clock.now)).ok
            assert (await recipient(p.ctx, rid)).codes_sent == 2
            code = p.last_code()
            wrong = [f"{(int(code) + i) % 10**6:06d}" for i in range(1, 9)]
            results = await asyncio.gather(*(portal_auth.check_code(
                p.ctx, token, w, p.clock.now) for w in wrong))
            codes = sorted(r.code for r in results)
            assert codes.count("wrong_code") == CODE_MAX_TRIES - 1
            assert codes.count("locked") == len(wrong) - (CODE_MAX_TRIES - 1)
            row = await recipient(p.ctx, rid)
            assert row.code_tries == CODE_MAX_TRIES
            assert row.locked_until is not None
            assert len(await audit_rows(p.ctx, "notice_code_locked")) == 1
            assert not (await portal_auth.check_code(p.ctx, token, code, p.clock.now)).ok
        finally:
            if kind == "postgresql":
                async with p.ctx.store.engine.begin() as conn:
                    await conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
async def test_concurrent_downloads_are_each_recorded_in_one_intact_chain(
        kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """Sixty downloads at once (group commit): each counted on its recipient and audited, the
    chain intact, every body exact; a failed commit refuses its downloads."""
    schema = f"np_{uuid.uuid4().hex[:12]}"
    cm = portal_app(tmp_path, request.getfixturevalue("postgres_url"), schema) \
        if kind == "postgresql" else portal_app(tmp_path)
    async with cm as q:
        try:
            await _sixty_downloads(q)
        finally:
            if kind == "postgresql":
                async with q.ctx.store.engine.begin() as conn:
                    await conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))


async def _sixty_downloads(q: Portal) -> None:
    nid = await add_notice(q.ctx, auth="link")
    people = []
    for i in range(20):
        fid = await add_file(q.ctx, nid, pdf(f"r{i}"))
        rid, _token = await add_recipient(q.ctx, nid, name=f"住民{i}", line=i + 1,
                                          email=f"r{i}@example.jp", file_id=fid)
        people.append((rid, fid))
    now = q.clock.now
    got = await asyncio.gather(*(portal_auth.download(q.ctx, rid, fid, now, "192.0.2.1")
                                 for _ in range(3) for rid, fid in people))
    assert [g[0] if g else None for g in got] == [pdf(f"r{i}") for _ in range(3)
                                                   for i in range(20)]
    for rid, _fid in people:
        row = await recipient(q.ctx, rid)
        assert (row.downloads, row.opened_at) == (3, now)
    rows = await audit_rows(q.ctx, "notice_downloaded")
    assert sorted((a.actor, a.target) for a in rows) == sorted(
        (f"resident:{rid}", fid) for _ in range(3) for rid, fid in people)
    assert (await verify(q.ctx.store, audit_keys(q.ctx.hub))).ok

    async def broken(_batch: object) -> None:
        raise RuntimeError("disk full")

    q.ctx.downloads._write = broken  # type: ignore[method-assign]
    rid, fid = people[0]
    with pytest.raises(RuntimeError):
        await portal_auth.download(q.ctx, rid, fid, now)
    assert (await recipient(q.ctx, rid)).downloads == 3
