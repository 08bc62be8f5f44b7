"""The notice e-mail's subject and body, in Japanese or English (the recipient's ``lang``).

Why plain text and no attachment: the PDF stays on the portal, behind the code or the magic link
(N5); an e-mail can be forwarded or read by a scanner, so it holds only the notice's title, the
staff's message as plain text (links written ``text (URL)``) and the portal link. The sender's
name is the ``MADOGUCHI_NOTICE_SENDER_NAME`` setting (default 区役所 / the ward office).
"""

from __future__ import annotations

import os
from typing import Any

from hub.notices.message import render_text


def _sender(lang: str) -> str:
    name = os.environ.get("MADOGUCHI_NOTICE_SENDER_NAME", "")
    return name or ("区役所" if lang == "ja" else "the ward office")


def notice_mail(notice: Any, name: str, url: str, link_days: int, lang: str,
                again: bool) -> tuple[str, str]:
    """(subject, body) of the mail that brings ``url`` to ``name``."""
    test = bool(notice.test_mode)
    title = str(notice.title)
    message = render_text(str(notice.message_en or notice.message_ja)
                          if lang == "en" else str(notice.message_ja))
    if lang == "en":
        subject = f"{'[TEST] ' if test else ''}{'Reminder: ' if again else ''}{title}"
        body = "\n".join([
            *(["*** This is a test. It is not a real notice. ***", ""] if test else []),
            f"Dear {name},", "",
            f"{_sender(lang)} has sent you a notice: {title}.", "",
            message, "",
            "Open the notice here (the PDF is on this page, not attached to this e-mail):",
            url, "",
            f"The link works for {link_days} days. Only the newest e-mail's link works.",
            "You will be asked to confirm it is you (a one-time code sent to this address, "
            "or a button on the page).", "",
            "If this e-mail is not meant for you, please delete it.",
            f"-- {_sender(lang)}",
        ])
    else:
        subject = f"{'【テスト】' if test else ''}{'【再送】' if again else ''}{title}"
        body = "\n".join([
            *(["※これはテスト送信です。実際の通知ではありません。", ""] if test else []),
            f"{name} 様", "",
            f"{_sender(lang)}から「{title}」をお送りします。", "",
            message, "",
            "次のページで通知をご確認ください（PDFはこのメールには添付していません）。",
            url, "",
            f"このリンクの有効期間は{link_days}日間です。最新のメールのリンクだけが使えます。",
            "ページを開くと、ご本人の確認（このアドレスに届く確認コード、"
            "またはボタン）を行います。", "",
            "お心当たりのない場合は、このメールを削除してください。",
            f"-- {_sender(lang)}",
        ])
    return subject, body
