"""Online forms (issue 17) in ``madoguchi demo``: a virus scanner, one published form, one draft.

Why: the forms module accepts no attachment that clamd has not scanned (fail closed), and a
newcomer has no clamd configured. The demo starts a private clamd (``hub.forms.localclamd``:
the Debian daemon with a one-signature EICAR database, NEVER for production) when the
``clamd`` program is installed, and points the module's settings at it and at an attachment
store in the demo's work dir before the hub starts (the module reads them once, at setup).
Without clamd the demo still runs and the banner says attachments are refused.

The seed goes through the builder's own store functions (create, change, publish), as staff
would on ``/admin/forms``: a published application form with e-mail code sign-in (the codes
arrive in the demo's mail sink, ``/demo/mail``), three pages, a page shown only for agents,
an address with postal code and an attachment; a published certificate request with a fee,
paid at the test payment provider (``hub.forms.fake_pay``, started by the demo on a port of
its own, as a real provider is another site: no money moves); and a draft to edit and publish
by hand.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aiohttp import web

    from hub.app import Hub
    from hub.forms.localclamd import Clamd

_LOGGER = logging.getLogger(__name__)
DEPARTMENT = "shimin"  # the made-up department of the demo's forms


@dataclass
class DemoScanner:
    """The private clamd (None: not installed) and the environment values it replaced."""

    clamd: Clamd | None
    saved: dict[str, str | None] = field(default_factory=dict)

    def stop(self) -> None:
        if self.clamd is not None:
            self.clamd.stop()
        _restore(self.saved)


def start_scanner(workdir: Path) -> DemoScanner:
    """Start a private clamd if the program is installed; set the forms module's settings."""
    from hub.forms import localclamd

    clamd: Clamd | None
    try:
        clamd = localclamd.start_clamd(stream_max=12_000_000)
    except localclamd.ClamdMissing as exc:
        _LOGGER.warning("demo: no virus scanner, form attachments will be refused (%s)",
                        str(exc).splitlines()[0])
        clamd = None
    env = {"MADOGUCHI_FORMS_FILES": str(workdir / "form-files"),
           "MADOGUCHI_CLAMD": f"127.0.0.1:{clamd.port}" if clamd else "127.0.0.1:9"}
    running = DemoScanner(clamd, {k: os.environ.get(k) for k in env})
    os.environ.update(env)
    return running


def stop_with(app: web.Application, running: DemoScanner,
              payments: DemoPayments | None = None) -> None:
    """Stop clamd and the payment provider and restore the environment when the hub's app is
    cleaned up."""

    async def cleanup(_app: web.Application) -> None:
        running.stop()
        if payments is not None:
            await payments.stop()

    app.on_cleanup.append(cleanup)


@dataclass
class DemoPayments:
    """The test payment provider's server and the environment values it replaced."""

    runner: web.AppRunner
    url: str
    saved: dict[str, str | None] = field(default_factory=dict)

    async def stop(self) -> None:
        await self.runner.cleanup()
        _restore(self.saved)


def _restore(saved: dict[str, str | None]) -> None:
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


async def start_payments(host: str = "127.0.0.1") -> DemoPayments:
    """The fake provider on a free port, and the forms module's payment settings pointing at it
    (read once when the hub starts, like the scanner's)."""
    import secrets

    from aiohttp import web

    from hub.forms.fake_pay import make_app
    from hub.forms.webhook import new_secret

    api_key, secret = secrets.token_urlsafe(16), new_secret()
    runner = web.AppRunner(make_app(api_key, secret), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, 0)
    await site.start()
    port = runner.addresses[0][1]
    url = f"http://{host}:{port}"
    env = {"MADOGUCHI_FORMS_PAY_PROVIDER": "fake", "MADOGUCHI_FORMS_PAY_URL": url,
           "MADOGUCHI_FORMS_PAY_API_KEY": api_key, "MADOGUCHI_FORMS_PAY_SECRET": secret}
    running = DemoPayments(runner, url, {k: os.environ.get(k) for k in env})
    os.environ.update(env)
    return running


def _t(ja: str, en: str) -> dict[str, str]:
    return {"ja": ja, "en": en}


def application(form_id: str) -> dict[str, Any]:
    """住民票の写しの交付申請: who applies, the agent's page (only for agents), the address,
    the copies and the proof of identity."""
    who = [{"value": v, "label": _t(ja, en)} for v, ja, en in (
        ("self", "本人", "Myself"), ("family", "同じ世帯の家族", "Family in my household"),
        ("agent", "代理人", "An agent"))]
    return {
        "id": form_id, "title": _t("住民票の写しの交付申請（デモ）",
                                   "Copy of the residence record (demo)"),
        "description": _t("デモ用の架空の申請です。入力した内容はデモの終了とともに消えます。",
                          "A made-up application of the demo; gone when the demo stops."),
        "retention_days": 30, "identity": "email_code",
        "pages": [
            {"id": "applicant", "title": _t("申請する人", "Who applies"), "fields": [
                {"type": "choice", "id": "who", "label": _t("申請する人", "Who applies"),
                 "options": who},
                {"type": "name", "id": "name", "label": _t("氏名", "Name"), "prefill": "name"},
                {"type": "phone", "id": "phone", "label": _t("日中の電話番号",
                                                             "Daytime phone")},
            ]},
            {"id": "agent", "title": _t("代理人の方", "The agent"),
             "condition": {"field": "who", "op": "equals", "value": "agent"}, "fields": [
                 {"type": "fixed_text", "id": "agent_note",
                  "text": _t("委任状の写しを最後のページで添付してください。",
                             "Attach a copy of the letter of attorney on the last page.")},
                 {"type": "name", "id": "agent_name", "label": _t("代理人の氏名",
                                                                 "The agent's name")},
             ]},
            {"id": "request", "title": _t("申請の内容", "Your request"), "fields": [
                {"type": "address", "id": "address", "label": _t("住所", "Address"),
                 "prefill": "address"},
                {"type": "date", "id": "born", "label": _t("生年月日", "Date of birth"),
                 "display": "wareki"},
                {"type": "number", "id": "copies", "label": _t("必要な通数", "Copies"),
                 "min": 1, "max": 5, "integer": True},
                {"type": "file", "id": "proof", "label": _t("本人確認書類",
                                                            "Proof of identity"),
                 "help": _t("運転免許証などの写し（PDF・JPEG・PNG、10MBまで）",
                            "A copy of e.g. a driving licence (PDF, JPEG, PNG, up to 10 MB)")},
                {"type": "consent", "id": "agree", "label": _t("確認", "Confirmation"),
                 "text": _t("記入した内容に誤りはありません。", "What I entered is correct.")},
            ]},
        ],
    }


def certificate(form_id: str) -> dict[str, Any]:
    """印鑑登録証明書の交付申請 with a fee of 300 yen: one page, paid online at the end."""
    return {
        "id": form_id, "title": _t("印鑑登録証明書の交付申請（デモ・手数料あり）",
                                   "Seal registration certificate (demo, with a fee)"),
        "description": _t("デモ用の架空の申請です。手数料はテスト用の決済画面で支払います"
                          "（実際にはお金は動きません）。",
                          "A made-up application of the demo. The fee is paid on a test "
                          "payment page (no money moves)."),
        "retention_days": 30, "identity": "anonymous", "fee_yen": 300,
        "fee_note": _t("1通300円", "300 yen a copy"),
        "pages": [{"id": "request", "title": _t("申請の内容", "Your request"), "fields": [
            {"type": "name", "id": "name", "label": _t("氏名", "Name")},
            {"type": "email", "id": "mail", "label": _t("メールアドレス", "E-mail"),
             "help": _t("受付の連絡をお送りします", "We send the receipt here")},
            {"type": "text", "id": "card", "label": _t("印鑑登録証の番号",
                                                       "Seal registration card number")},
        ]}],
    }


@dataclass(frozen=True)
class Seeded:
    published: str  # form ids
    draft: str
    with_fee: str


async def seed(hub: Hub, actor: str) -> Seeded:
    """Two published applications (one with a fee) and a draft, as the demo staff account
    (its staff id)."""
    from hub.forms.builder_store import change, create, publish
    from hub.forms.context import FORMS
    from hub.forms.versions import parse_form

    ctx = hub.runner.app[FORMS]
    published = await create(ctx, DEPARTMENT, "住民票の写しの交付申請（デモ）",
                             "Copy of the residence record (demo)", actor, None)
    body = application(published)
    await change(ctx, published, "demo", lambda _draft: parse_form(body), actor, None)
    await publish(ctx, published, actor, None)
    with_fee = await create(ctx, DEPARTMENT, "印鑑登録証明書の交付申請（デモ・手数料あり）",
                            "Seal registration certificate (demo, with a fee)", actor, None)
    fee_body = certificate(with_fee)
    await change(ctx, with_fee, "demo", lambda _draft: parse_form(fee_body), actor, None)
    await publish(ctx, with_fee, actor, None)
    draft = await create(ctx, DEPARTMENT, "転入届の事前入力（デモ・下書き）",
                         "Moving in: fill in ahead (demo, draft)", actor, None)
    return Seeded(published, draft, with_fee)
