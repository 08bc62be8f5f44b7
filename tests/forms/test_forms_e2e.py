"""Online forms end to end in Chromium (issue 17, "Must show"), with real parts only: PostgreSQL
in a fresh schema, a real clamd, mails over SMTP to aiosmtpd, a webhook receiver that checks
signatures. A staff member builds a three-page form through the builder (a page shown only for
one answer, an address with postal code, a PDF attachment, e-mail code sign-in, a webhook with
a secret shown once) and publishes it; a resident on a phone signs in with the mailed code,
meets the error summary, fixes the postal code, attaches a PDF and submits; staff return it with
a comment, the resident is mailed, corrects and resubmits, staff complete it; every webhook
event is accepted exactly once despite one injected 500; a PDF carrying EICAR is refused with
nothing stored. Then, over HTTP: a draft begun on version 1 finishes on version 1 after staff
publish version 2 through the builder."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from clamd_support import Clamd, eicar, pdf, start_clamd
from forms_builder_support import form_id_of
from forms_e2e_support import (
    PHONE,
    SHOTS,
    FormsHub,
    WebhookReceiver,
    add_field,
    blobs,
    body_of,
    count_rows,
    deliver_once,
    deliveries_of,
    fill_address,
    forms_hub,
    mails_to,
    return_link_in,
    sign_in,
    staff_context,
    staff_post,
    submit,
)
from forms_support import resident_app, rows
from mail_support import SmtpSink
from playwright.async_api import Browser, Page, async_playwright
from sqlalchemy import select
from staff_support import staff_cookie

from hub.forms.records import open_json
from hub.forms.scan import ClamdClient
from hub.forms.tables import form_files, form_submissions, form_versions

DEPT = "kankyo"
TITLE = "駐輪場の利用申請"
RESIDENT, SECOND = "hanako@example.jp", "taro@example.jp"
STAFF_MAIL = "kankyo-desk@city.example.jp"
COMMENT = "番地が住民票と異なります。確認して再度お送りください。"


@pytest.fixture(scope="module")
def clamd() -> Iterator[Clamd]:
    daemon = start_clamd()
    yield daemon
    daemon.stop()


async def build_form(browser: Browser, hub: FormsHub, receiver: WebhookReceiver
                     ) -> tuple[str, dict[str, str]]:
    """The staff member's part: returns the form id and its field ids."""
    ctx = await staff_context(browser, hub, DEPT)
    page = await ctx.new_page()
    await page.goto(f"{hub.url}/admin/forms?lang=ja")
    if await page.locator("select#f-department").count():
        await page.select_option("#f-department", DEPT)
    else:
        await page.fill("#f-department", DEPT)
    await page.fill("#f-title_ja", TITLE)
    await page.fill("#f-title_en", "Bicycle parking")
    await submit(page, "[data-testid=new-form] button[type=submit]")
    match = re.search(r"/admin/forms/(f[0-9a-f]+)", page.url)
    assert match is not None, page.url
    fid = match.group(1)
    for ja, en in (("代理人について", "The proxy"), ("住所と書類", "Address and papers")):
        await page.fill("#new-title_ja", ja)
        await page.fill("#new-title_en", en)
        await submit(page, "form:has(#new-title_ja) button[type=submit]")
    pids = await page.eval_on_selector_all("section.builder-page",
                                           "els => els.map(e => e.dataset.page)")
    assert len(pids) == 3, pids
    ids = {"who": await add_field(page, fid, pids[0], "choice", label_ja="申請者",
                                  label_en="Applicant", required="1",
                                  options="self|本人|Myself\nproxy|代理人|A proxy")}
    ids["proxy"] = await add_field(page, fid, pids[1], "text", label_ja="代理人の氏名",
                                   label_en="Proxy's name", required="1")
    ids["addr"] = await add_field(page, fid, pids[2], "address", label_ja="住所",
                                  label_en="Address", required="1")
    ids["doc"] = await add_field(page, fid, pids[2], "file", label_ja="本人確認書類",
                                 label_en="Proof of identity", required="1", max_mb="5",
                                 allowed="pdf")
    section = f"[id='page-{pids[1]}']"
    await page.click(f"{section} details.page-edit summary")
    await page.select_option(f"[id='{pids[1]}-cond_field']", ids["who"])
    await page.select_option(f"[id='{pids[1]}-cond_op']", "equals")
    await page.fill(f"[id='{pids[1]}-cond_value']", "proxy")
    await submit(page, f"{section} details.page-edit button[type=submit]")
    assert "代理人" in await page.inner_text(f"{section} p.cond")  # the option's label

    await page.click(f"a[href^='/admin/forms/{fid}/settings']")
    await page.check("input[name=identity][value=email_code]")
    await page.fill("#f-webhook_url", receiver.url)
    await page.fill("#f-notify", STAFF_MAIL)
    await submit(page, "[data-testid=settings-form] button[type=submit]")
    await page.goto(f"{hub.url}/admin/forms/{fid}/settings?lang=ja")
    assert await page.input_value("#f-webhook_url") == receiver.url
    assert await page.is_checked("input[name=identity][value=email_code]")
    await submit(page, f"form[action^='/admin/forms/{fid}/secret'] button")
    secret = (await page.inner_text("[data-testid=secret] code")).strip()
    assert secret.startswith("whsec_"), secret
    receiver.secrets.append(secret)
    await page.goto(f"{hub.url}/admin/forms/{fid}/settings?lang=ja")
    assert secret not in await page.content()  # shown once

    await page.goto(f"{hub.url}/admin/forms/{fid}?lang=ja")
    await page.screenshot(path=str(SHOTS / "builder-1366x768.png"), full_page=True)
    await submit(page, "section.publish form button")
    assert await page.locator("[data-testid=versions] tr[data-version='1']").count() == 1
    await ctx.close()
    return fid, ids


async def resident_applies(browser: Browser, hub: FormsHub, sink: SmtpSink, fid: str,
                           ids: dict[str, str], tmp_path: Path) -> str:
    ctx = await browser.new_context(viewport=PHONE, locale="ja-JP", is_mobile=True,
                                    has_touch=True)
    page = await ctx.new_page()
    await page.goto(f"{hub.url}/f/{fid}")
    assert await page.inner_text("#form-title") == TITLE
    await page.screenshot(path=str(SHOTS / "resident-start-390x844.png"), full_page=True)
    await sign_in(page, sink, RESIDENT)
    assert page.url.split("?")[0].endswith(f"/f/{fid}/page/1"), page.url
    await page.check(f"input[name={ids['who']}][value=proxy]")
    await page.screenshot(path=str(SHOTS / "resident-page1-390x844.png"), full_page=True)
    await submit(page, "#next")
    assert page.url.split("?")[0].endswith("/page/2"), page.url  # the proxy's page is shown
    await page.fill(f"[id='{ids['proxy']}']", "山田太郎")
    await submit(page, "#next")
    assert page.url.split("?")[0].endswith("/page/3"), page.url

    addr = ids["addr"]
    await fill_address(page, addr, "12345", "豊玉北6-12-1")
    await submit(page, "#next")
    summary = page.locator("#error-summary")
    assert await summary.is_visible()
    links = summary.locator("a")
    texts = await links.all_inner_texts()
    postal = [i for i, t in enumerate(texts) if "郵便番号" in t]
    assert postal, texts
    assert "7桁" in texts[postal[0]]
    href = await links.nth(postal[0]).get_attribute("href")
    assert href == f"#{addr}.postal"
    target = await page.evaluate(
        "id => { const e = document.getElementById(id); return e && [e.tagName, e.name,"
        " e.getAttribute('aria-invalid')]; }", href[1:])
    assert target == ["INPUT", f"{addr}.postal", "true"]
    await page.screenshot(path=str(SHOTS / "resident-error-summary-390x844.png"),
                         full_page=True)
    await links.nth(postal[0]).click()
    assert await page.evaluate("() => location.hash") == f"#{addr}.postal"

    await fill_address(page, addr, "176-8501", "豊玉北6-12-1")
    document = tmp_path / "本人確認書類.pdf"
    document.write_bytes(pdf(8192))
    await page.set_input_files(f"[id='{ids['doc']}']", str(document))
    await submit(page, "#next")
    assert page.url.split("?")[0].endswith(f"/f/{fid}/review"), await page.inner_text("main")
    review = await page.inner_text("main")
    assert "1768501" in review.replace("-", "")
    assert "山田太郎" in review
    await page.screenshot(path=str(SHOTS / "resident-review-390x844.png"), full_page=True)
    await submit(page, "#submit")
    reference = (await page.inner_text("#reference")).strip()
    assert re.fullmatch(r"F-\d{4}-\d{6}", reference), reference
    await page.screenshot(path=str(SHOTS / "resident-done-390x844.png"), full_page=True)
    await ctx.close()
    return reference


async def staff_act(page: Page, hub: FormsHub, fid: str, reference: str, action: str,
                    comment: str = "", shots: bool = False) -> str:
    await page.goto(f"{hub.url}/admin/forms/{fid}/submissions?lang=ja")
    row = page.locator("[data-testid=submissions] tbody tr", has_text=reference)
    assert await row.count() == 1
    if shots:
        await page.screenshot(path=str(SHOTS / "staff-list-1366x768.png"), full_page=True)
    await row.locator("a").click()
    await page.wait_for_selector("[data-testid=answers]")
    if shots:
        await page.screenshot(path=str(SHOTS / "staff-detail-1366x768.png"), full_page=True)
    if comment:
        await page.fill("#f-comment", comment)
    await submit(page, f"button[data-action={action}]")
    return str(await page.get_attribute("[data-testid=status]", "data-status"))


async def resident_corrects(browser: Browser, hub: FormsHub, sink: SmtpSink, fid: str,
                            ids: dict[str, str], link: str, reference: str) -> None:
    ctx = await browser.new_context(viewport=PHONE, locale="ja-JP", is_mobile=True,
                                    has_touch=True)
    page = await ctx.new_page()
    await page.goto(link)
    assert reference in await page.inner_text("main")
    await sign_in(page, sink, RESIDENT)
    assert COMMENT in await page.inner_text("#returned-comment")
    await page.screenshot(path=str(SHOTS / "resident-returned-390x844.png"), full_page=True)
    await page.goto(f"{hub.url}/f/{fid}/page/3?lang=ja")
    assert await page.input_value(f"[id='{ids['addr']}.postal']") in ("1768501", "176-8501")
    await page.fill(f"[id='{ids['addr']}.street']", "豊玉北6-12-2")
    await submit(page, "#next")
    assert "豊玉北6-12-2" in await page.inner_text("main")
    await submit(page, "#submit")
    assert (await page.inner_text("#reference")).strip() == reference
    await ctx.close()


async def eicar_refused(browser: Browser, hub: FormsHub, sink: SmtpSink, fid: str,
                        ids: dict[str, str], tmp_path: Path) -> None:
    rows_before = await count_rows(hub, form_files)
    blobs_before = blobs(hub.files_dir)
    ctx = await browser.new_context(viewport=PHONE, locale="ja-JP", is_mobile=True)
    page = await ctx.new_page()
    await page.goto(f"{hub.url}/f/{fid}")
    await sign_in(page, sink, SECOND)
    await page.check(f"input[name={ids['who']}][value=self]")
    await submit(page, "#next")
    assert await page.locator(f"[id='{ids['addr']}.postal']").count() == 1  # page 2 skipped
    await fill_address(page, ids["addr"], "1768501", "豊玉北6-12-1")
    bare = tmp_path / "eicar.pdf"  # the bare test file: not a PDF, refused before the scan
    bare.write_bytes(eicar())
    await page.set_input_files(f"[id='{ids['doc']}']", str(bare))
    await submit(page, "#next")
    summary = await page.inner_text("#error-summary")
    assert "この種類のファイルは添付できません" in summary, summary
    infected = tmp_path / "申請書.pdf"  # a real PDF carrying it: clamd finds it
    infected.write_bytes(pdf(text=eicar()))
    await page.set_input_files(f"[id='{ids['doc']}']", str(infected))
    await submit(page, "#next")
    summary = await page.inner_text("#error-summary")
    assert "ファイルからウイルスが検出されたため、受け付けできませんでした。" in summary, summary
    assert await page.get_attribute("#error-summary a", "href") == f"#{ids['doc']}"
    await page.screenshot(path=str(SHOTS / "resident-eicar-390x844.png"), full_page=True)
    await ctx.close()
    assert await count_rows(hub, form_files) == rows_before
    assert blobs(hub.files_dir) == blobs_before


@pytest.mark.slow
async def test_build_apply_return_resubmit_complete_with_webhooks(
        tmp_path: Path, clamd: Clamd, chromium_path: Path, postgres_url: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    sink = SmtpSink()
    sink.controller.start()
    receiver: WebhookReceiver | None = None
    schema = f"fe_{uuid.uuid4().hex[:12]}"
    try:
        async with forms_hub(tmp_path, sink, clamd, postgres_url, schema) as hub:
            receiver = WebhookReceiver(hub.clock)
            await receiver.start()
            async with async_playwright() as pw:
                browser = await pw.chromium.launch(executable_path=str(chromium_path))
                try:
                    fid, ids = await build_form(browser, hub, receiver)
                    reference = await resident_applies(browser, hub, sink, fid, ids, tmp_path)
                    receipt = mails_to(sink, RESIDENT)[-1]
                    assert reference in body_of(receipt)
                    [new] = mails_to(sink, STAFF_MAIL)
                    assert f"/admin/forms/{fid}/submissions/" in body_of(new)
                    assert "豊玉" not in body_of(new)  # no answers in mails
                    assert "豊玉" not in body_of(receipt)

                    # the first delivery (submission.received) is answered 500
                    [first] = await deliver_once(hub.ctx)
                    assert first.status.value == "pending"
                    assert [r.status for r in receiver.got] == [500]
                    assert receiver.got[0].verified

                    staff = await staff_context(browser, hub, DEPT)
                    desk = await staff.new_page()
                    before = len(sink.messages)
                    assert await staff_act(desk, hub, fid, reference, "return", COMMENT,
                                           shots=True) == "returned"
                    [told] = mails_to(sink, RESIDENT, before)
                    assert COMMENT in body_of(told)
                    link = return_link_in(told)
                    assert link.startswith(f"{hub.url}/f/{fid}/s/{reference}")

                    await resident_corrects(browser, hub, sink, fid, ids, link, reference)
                    before = len(sink.messages)
                    assert await staff_act(desk, hub, fid, reference, "complete") == "completed"
                    [done] = mails_to(sink, RESIDENT, before)
                    assert "完了" in str(done["Subject"])
                    assert return_link_in(done) == link
                    answers = await desk.inner_text("[data-testid=answers]")
                    assert "豊玉北6-12-2" in answers
                    await staff.close()

                    await eicar_refused(browser, hub, sink, fid, ids, tmp_path)
                finally:
                    await browser.close()

            for _ in range(6):  # retries: the clock moved past each delay, no waiting
                hub.clock.move(minutes=15)
                await deliver_once(hub.ctx)
                if all(s != "pending" for _i, _e, s in await deliveries_of(hub)):
                    break
            rows = await deliveries_of(hub)
            events = sorted(e for _i, e, _s in rows)
            assert events == sorted(["submission.received", "submission.status_changed",
                                     "submission.resubmitted", "submission.status_changed"])
            assert all(s == "delivered" for _i, _e, s in rows), rows
            assert all(r.verified for r in receiver.got)
            assert receiver.accepted() == {i: 1 for i, _e, _s in rows}
            received = next(i for i, e, _s in rows if e == "submission.received")
            assert receiver.got[0].msg_id == received
            bodies = [json.loads(r.body) for r in receiver.got if r.status == 200]
            assert {b["type"] for b in bodies} == set(events)
            async with hub.ctx.store.read() as tx:
                [sub] = (await tx.conn.execute(select(form_submissions))).all()
            assert (sub.reference, sub.status) == (reference, "completed")
    finally:
        if receiver is not None:
            await receiver.stop()
        sink.controller.stop()


SETTINGS_FORM = [("title_ja", "犬の登録"), ("title_en", "Dogs"), ("description_ja", ""),
                 ("description_en", ""), ("identity", "anonymous"), ("retention_days", "365"),
                 ("webhook_url", "")]


async def test_a_resident_on_v1_finishes_unchanged_after_v2_is_published_in_the_builder(
        tmp_path: Path) -> None:
    """The builder's publish (not a table write): v2 renames the answered field and adds a
    required one on the page the resident has already passed; the v1 draft is neither sent
    back nor relabelled, and is stored as version 1; a new resident gets version 2."""
    async with resident_app(tmp_path, ClamdClient.from_address("127.0.0.1:9")) as r:
        cookie = await staff_cookie(r.ctx.store, r.ctx.hub, "form_staff", DEPT)
        where = await staff_post(r, cookie, "/admin/forms/new?lang=ja", [
            ("department", DEPT), ("title_ja", "犬の登録"), ("title_en", "Dogs")])
        fid = form_id_of(where)
        where = await staff_post(r, cookie, f"/admin/forms/{fid}/pages/p1/fields?lang=ja",
                                  [("type", "text")])
        pet = where.rsplit("#field-", 1)[1]
        await staff_post(r, cookie, f"/admin/forms/{fid}/fields/{pet}?lang=ja", [
            ("label_ja", "犬の名前"), ("label_en", "Dog's name"), ("required", "1")])
        await staff_post(r, cookie, f"/admin/forms/{fid}/settings?lang=ja", [
            *SETTINGS_FORM, ("notify", STAFF_MAIL)])
        await staff_post(r, cookie, f"/admin/forms/{fid}/publish?lang=ja", [])

        status, _html, _h = await r.get(f"/f/{fid}")
        assert status == 200
        assert (await r.post(f"/f/{fid}/start"))[0] == 303
        status, _html, headers = await r.post(f"/f/{fid}/page/1", {pet: "ポチ"})
        assert (status, headers["Location"].split("?")[0]) == (303, f"/f/{fid}/review")

        await staff_post(r, cookie, f"/admin/forms/{fid}/fields/{pet}?lang=ja", [
            ("label_ja", "飼い犬の呼び名"), ("label_en", "Name"), ("required", "1")])
        where = await staff_post(r, cookie, f"/admin/forms/{fid}/pages/p1/fields?lang=ja",
                                  [("type", "number")])
        age = where.rsplit("#field-", 1)[1]
        await staff_post(r, cookie, f"/admin/forms/{fid}/fields/{age}?lang=ja", [
            ("label_ja", "犬の年齢"), ("label_en", "Age"), ("required", "1")])
        await staff_post(r, cookie, f"/admin/forms/{fid}/publish?lang=ja", [])
        assert sorted(v.version for v in await rows(r.ctx.store, form_versions,
                                                    form_id=fid)) == [1, 2]

        status, html, _h = await r.get(f"/f/{fid}/review")
        assert status == 200
        assert "犬の名前" in html
        assert "ポチ" in html
        assert "飼い犬の呼び名" not in html
        assert "犬の年齢" not in html
        status, _html, headers = await r.post(f"/f/{fid}/submit")
        assert (status, headers["Location"].split("?")[0]) == (303, f"/f/{fid}/done")
        [sub] = await rows(r.ctx.store, form_submissions, form_id=fid)
        assert sub.version == 1
        assert open_json(r.ctx, str(sub.id), "answers", sub.answers) == {pet: "ポチ"}

        r.client.session.cookie_jar.clear()  # a new resident
        await r.get(f"/f/{fid}")
        await r.post(f"/f/{fid}/start")
        status, html, _h = await r.get(f"/f/{fid}/page/1")
        assert "飼い犬の呼び名" in html
        assert "犬の年齢" in html


async def test_a_builder_form_without_staff_addresses_takes_a_submission(
        tmp_path: Path) -> None:
    async with resident_app(tmp_path, ClamdClient.from_address("127.0.0.1:9")) as r:
        cookie = await staff_cookie(r.ctx.store, r.ctx.hub, "form_staff", DEPT)
        fid = form_id_of(await staff_post(r, cookie, "/admin/forms/new?lang=ja", [
            ("department", DEPT), ("title_ja", "犬の登録"), ("title_en", "Dogs")]))
        where = await staff_post(r, cookie, f"/admin/forms/{fid}/pages/p1/fields?lang=ja",
                                  [("type", "text")])
        pet = where.rsplit("#field-", 1)[1]
        await staff_post(r, cookie, f"/admin/forms/{fid}/publish?lang=ja", [])
        await r.get(f"/f/{fid}")
        await r.post(f"/f/{fid}/start")
        await r.post(f"/f/{fid}/page/1", {pet: "ポチ"})
        status, _html, headers = await r.post(f"/f/{fid}/submit")
        assert (status, headers.get("Location", "").split("?")[0]) == (303, f"/f/{fid}/done")
