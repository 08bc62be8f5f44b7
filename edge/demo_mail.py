"""The demo's mail sink: notices ("your turn is near", "called") shown at ``/demo/mail`` on the hub.

Why: without a mail server the notice form could not be tried at all. The demo gives the hub a
``MemorySink`` for e-mail and SMS instead of SMTP or a gateway; messages stay in this process's
memory only (bounded, gone when the demo stops), are never logged or written to disk, and this
page says so. It exists only in ``madoguchi demo``; a real hub has no such route.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from datetime import datetime
from html import escape
from zoneinfo import ZoneInfo

from aiohttp import web

from hub.notify.senders import MemorySink, Sender, SinkMessage

TZ = ZoneInfo("Asia/Tokyo")
KEEP = 200  # newest messages kept

_PAGE = """<!doctype html>
<html lang="ja">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="refresh" content="5">
<title>デモ用メール受信箱 / Demo mail sink — madoguchi</title>
<style>
body {{ font-family: "Noto Sans CJK JP", "Noto Sans JP", sans-serif; margin: 0 auto;
  max-width: 60rem; padding: 1rem 1.2rem 3rem; line-height: 1.6; color: #1a1a1a;
  word-break: auto-phrase; }}
h1 {{ font-size: 1.5rem; margin: .4rem 0; }}
.demo {{ background: #fff4d6; border: 2px solid #c98a00; border-radius: .4rem;
  padding: .5rem .9rem; }}
.demo p {{ margin: .2rem 0; }}
.msg {{ border: 1px solid #bbb; border-radius: .4rem; padding: .5rem .9rem; margin: .8rem 0; }}
.meta {{ color: #555; font-size: .95rem; margin: 0; }}
.to {{ overflow-wrap: anywhere; }}
.subject {{ font-weight: bold; margin: .3rem 0; }}
.body {{ white-space: pre-wrap; overflow-wrap: anywhere; margin: 0; }}
.none {{ color: #555; }}
</style>
</head>
<body>
<h1>デモ用メール受信箱 <span lang="en">/ Demo mail sink</span></h1>
<div class="demo" role="note">
<p>デモ専用です。お知らせは実際には送信されず、このデモのメモリにだけ保存され、デモを終了すると消えます。</p>
<p lang="en">Demo only: notices are not sent anywhere. They are kept in this demo's memory
only and are gone when the demo stops. A real hub sends them by SMTP or an SMS gateway.</p>
<p>番号札のページ（QRコードの先）でメールアドレスを登録すると、順番が近づいたときと呼び出されたときにここに届きます。
<span lang="en">Register an e-mail address on a ticket's page (the QR code's link): the
notices arrive here when the turn is near and when it is called.</span></p>
<p>オンライン通知のメール（通知ページへのリンクと確認コード）もここに届きます。リンクを開くと住民用の通知ページを試せます。
<span lang="en">Online notices arrive here too (the link to the notice portal and the
one-time codes): open a link to try the residents' portal.</span></p>
</div>
<p>{count}</p>
{items}
</body>
</html>
"""


def sink(clock: Callable[[], datetime]) -> tuple[deque[SinkMessage], dict[str, Sender]]:
    """One bounded box and the hub's senders that fill it (e-mail and SMS)."""
    box: deque[SinkMessage] = deque(maxlen=KEEP)
    senders: dict[str, Sender] = {ch: MemorySink(ch, box, clock) for ch in ("email", "sms")}
    return box, senders


def render(box: deque[SinkMessage]) -> str:
    """The page, newest first; every field escaped."""
    items = []
    for m in reversed(box):
        channel = "メール e-mail" if m.channel == "email" else "SMS"
        items.append(
            f'<article class="msg" lang="{escape(m.lang)}">'
            f'<p class="meta" lang="ja">{m.at.astimezone(TZ):%Y-%m-%d %H:%M:%S} · {channel} · '
            f'宛先 to <span class="to">{escape(m.to)}</span> · {escape(m.lang)}</p>'
            f'<p class="subject">{escape(m.subject)}</p>'
            f'<p class="body">{escape(m.body)}</p></article>')
    count = (f"{len(box)} 件 / {len(box)} message(s)" if box else
             '<span class="none">まだありません / none yet</span>')
    return _PAGE.format(count=count, items="\n".join(items))


def add_mail_routes(app: web.Application, box: deque[SinkMessage]) -> None:
    """``GET /demo/mail`` (the page) and ``/demo/mail.json`` (the same, for scripts and tests)."""

    async def page(_request: web.Request) -> web.Response:
        return web.Response(text=render(box), content_type="text/html", charset="utf-8",
                            headers={"Cache-Control": "no-store"})

    async def as_json(_request: web.Request) -> web.Response:
        return web.json_response({"demo_only": True, "messages": [
            {"at": m.at.isoformat(), "channel": m.channel, "to": m.to, "lang": m.lang,
             "subject": m.subject, "body": m.body} for m in box]},
            headers={"Cache-Control": "no-store"})

    app.router.add_get("/demo/mail", page)
    app.router.add_get("/demo/mail.json", as_json)
    from hub.web.api import declare  # the hub's deny-by-default access table

    declare(app, "GET", "/demo/mail", "public")  # the demo's fake mailbox, no real contacts
    declare(app, "GET", "/demo/mail.json", "public")
