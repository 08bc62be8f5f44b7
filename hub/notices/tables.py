"""The online-notice tables on the hub's one ``metadata`` (migration ``v0010_notices``).

A *notice* is one mailing of one kind (処分通知等), prepared by notice staff of one department.
Its *recipients* come from one imported list; every personal value (name, e-mail, the key that
matches a PDF, the notice data columns) is sealed with ``hub.notify.crypto`` (AES-256-GCM bound
to the row and key id) and only ``email_hmac`` (a keyed hash, for "the same address twice" and
test mode) is comparable. PDFs live in the encrypted file store (``hub.notices.files``); a
``notice_files`` row names each blob, its size, pages and the SHA-256 of its plain bytes, so a
download can be checked to be exactly the signed file.

Portal access: ``link_hash`` is SHA-256 of the token in the recipient's link (the token itself is
only in the e-mail). A one-time code is stored as its HMAC (``code_hmac``), with an expiry and a
count of wrong tries; ``locked_until`` stops guessing. Statuses are strings checked in the
service (``hub.notices.service``), not enums, so SQLite and PostgreSQL agree.
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from hub.store.schema import UtcDateTime, metadata

ID = String(32)

notices = Table(
    "notices", metadata,
    Column("id", ID, primary_key=True),
    Column("department", String(64), nullable=False),
    Column("title", Text, nullable=False),  # what staff and residents see; no personal data
    Column("description", Text, nullable=False),
    Column("message_ja", Text, nullable=False),  # Markdown (hub.notices.message)
    Column("message_en", Text, nullable=False),
    Column("contact", String(16), nullable=False),  # email (the only method built)
    Column("auth", String(16), nullable=False),  # code | link
    Column("remind_after_days", Integer, nullable=True),  # None: no automatic reminder
    Column("remind_max", Integer, nullable=False),
    Column("retention_days", Integer, nullable=False),
    Column("test_mode", Boolean, nullable=False),
    Column("test_addresses", Text, nullable=False),  # sealed JSON list (staff addresses)
    Column("status", String(16), nullable=False),  # draft ready sending sent closed
    Column("pdf_mode", String(16), nullable=False),  # none | single | per_recipient
    Column("split", String(64), nullable=False),  # "key:<regex>" | "pages:<n>" | ""
    Column("signatures", Integer, nullable=False),  # PDFs signed for this notice (N7)
    Column("created_at", UtcDateTime, nullable=False),
    Column("created_by", String(128), nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),  # any change: the live view polls it
    Column("sent_at", UtcDateTime, nullable=True),
    Column("closed_at", UtcDateTime, nullable=True),
    Column("purge_after", UtcDateTime, nullable=True),  # retention: deleted after this
    Column("purged_at", UtcDateTime, nullable=True),  # personal data and PDFs gone
    Column("figures", Text, nullable=False),  # JSON counts kept after the purge (N7)
)

Index("ix_notices_department", notices.c.department, notices.c.status)

notice_recipients = Table(
    "notice_recipients", metadata,
    Column("id", ID, primary_key=True),
    Column("notice_id", ID, ForeignKey("notices.id", ondelete="CASCADE"), nullable=False),
    Column("line", Integer, nullable=False),  # the line of the imported list
    Column("name", Text, nullable=False),  # sealed
    Column("email", Text, nullable=False),  # sealed
    Column("email_hmac", String(64), nullable=False),
    Column("match_key", Text, nullable=False),  # sealed; "" sealed when the list has no key
    Column("data", Text, nullable=False),  # sealed JSON {column: value}
    Column("lang", String(8), nullable=False),
    Column("file_id", ID, nullable=True),  # the recipient's own signed PDF, if any
    Column("status", String(16), nullable=False),  # pending sent bounced failed
    Column("smtp_code", Integer, nullable=True),
    Column("sent_at", UtcDateTime, nullable=True),  # the SMTP server accepted it
    Column("bounced_at", UtcDateTime, nullable=True),
    Column("opened_at", UtcDateTime, nullable=True),  # first download after authenticating
    Column("downloads", Integer, nullable=False),
    Column("contacts", Integer, nullable=False),  # e-mails sent: first + re-contacts (N6)
    Column("last_contact_at", UtcDateTime, nullable=True),
    Column("link_hash", String(64), nullable=True),
    Column("link_expires_at", UtcDateTime, nullable=True),
    Column("link_used_at", UtcDateTime, nullable=True),  # a magic link is consumed by a POST
    Column("code_hmac", String(64), nullable=True),
    Column("code_expires_at", UtcDateTime, nullable=True),
    Column("code_tries", Integer, nullable=False),  # wrong codes since the last good one
    Column("codes_sent", Integer, nullable=False),  # in the current hour window
    Column("codes_window_at", UtcDateTime, nullable=True),
    Column("locked_until", UtcDateTime, nullable=True),
    Column("updated_at", UtcDateTime, nullable=False),
    UniqueConstraint("link_hash", name="uq_notice_recipients_link"),
)

Index("ix_notice_recipients_notice", notice_recipients.c.notice_id, notice_recipients.c.status)

notice_files = Table(
    "notice_files", metadata,
    Column("id", ID, primary_key=True),
    Column("notice_id", ID, ForeignKey("notices.id", ondelete="CASCADE"), nullable=False),
    Column("kind", String(16), nullable=False),  # source | common | part
    Column("signed", Boolean, nullable=False),
    Column("part_index", Integer, nullable=True),  # order of the part in the source
    Column("first_page", Integer, nullable=True),
    Column("pages", Integer, nullable=False),
    Column("match_key", Text, nullable=False),  # sealed key read from the part ("" sealed)
    Column("size", Integer, nullable=False),
    Column("sha256", String(64), nullable=False),  # of the plain bytes (a download's check)
    Column("created_at", UtcDateTime, nullable=False),
)

Index("ix_notice_files_notice", notice_files.c.notice_id, notice_files.c.kind)
