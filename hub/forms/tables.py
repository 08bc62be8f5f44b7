"""The online-form tables on the hub's one ``metadata`` (migration ``v0011_forms``).

A *form* belongs to one department (``form_staff`` granted there, or administrators, edit it).
Staff edit its ``draft`` (the JSON of ``hub.forms.model.Form``); publishing freezes the draft as
the next row of ``forms_versions``. A resident's answers are tied to the version they started
on (``version``), so a form edited later never changes under them.

Personal data: every answer, contact and comment is sealed (``hub.forms.records``: AES-256-GCM
bound to the row and field); ``email_hmac`` (a keyed hash) is the only comparable form of an
address. Attachments live in the sealed file store; ``forms_files`` names each blob. Retention:
``purge_after`` on each submission (its form's period from the submission's creation), and the
purge deletes rows and files (``hub.forms.retention``).

Statuses are strings checked in the services, not enums, so SQLite and PostgreSQL agree.
"""

from __future__ import annotations

from sqlalchemy import (
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    text,
)

from hub.store.schema import UtcDateTime, metadata

ID = String(32)

forms = Table(
    "forms_forms", metadata,
    Column("id", ID, primary_key=True),
    Column("department", String(64), nullable=False),
    Column("title", Text, nullable=False),  # ja title of the draft, for lists (no personal data)
    Column("draft", Text, nullable=False),  # JSON of hub.forms.model.Form (the working copy)
    Column("status", String(16), nullable=False),  # draft | published | closed
    Column("published_version", Integer, nullable=True),  # what residents get now
    Column("webhook_url", Text, nullable=False),  # "" : none
    Column("webhook_secrets", Text, nullable=False),  # sealed JSON list (newest first)
    Column("notify_staff", Text, nullable=False),  # sealed JSON list of staff addresses
    Column("created_at", UtcDateTime, nullable=False),
    Column("created_by", String(128), nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    # the business systems' API key of the form (hub.forms.api): only its SHA-256, None: none
    Column("api_key_hash", String(64), nullable=True),
)

Index("ix_forms_department", forms.c.department, forms.c.status)

form_versions = Table(
    "forms_versions", metadata,
    Column("form_id", ID, ForeignKey("forms_forms.id", ondelete="CASCADE"), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("definition", Text, nullable=False),  # JSON, never changed once written
    Column("digest", String(64), nullable=False),  # SHA-256 of the definition
    Column("published_at", UtcDateTime, nullable=False),
    Column("published_by", String(128), nullable=False),
)

# a resident's answers in progress (save and resume): the token is in the resident's cookie
# or resume link, only its hash here
form_drafts = Table(
    "forms_drafts", metadata,
    Column("id", ID, primary_key=True),
    Column("form_id", ID, ForeignKey("forms_forms.id", ondelete="CASCADE"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("identity", Text, nullable=False),  # sealed JSON: method, email / oidc key, profile
    Column("answers", Text, nullable=False),  # sealed JSON {field: value}
    Column("page", Integer, nullable=False),  # the page to go on from
    Column("submission_id", ID, nullable=True),  # a returned submission being corrected
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime, nullable=False),
)

Index("ix_forms_drafts_expiry", form_drafts.c.expires_at)

form_submissions = Table(
    "forms_submissions", metadata,
    Column("id", ID, primary_key=True),
    Column("form_id", ID, ForeignKey("forms_forms.id", ondelete="CASCADE"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("reference", String(32), nullable=False, unique=True),  # shown to the resident
    # awaiting_payment (a fee not paid yet: hub.forms.pay_store) received in_review returned
    # completed
    Column("status", String(16), nullable=False),
    Column("channel", String(16), nullable=False),  # web | staff (paper, phone: 004)
    Column("answers", Text, nullable=False),  # sealed JSON {field: value}
    Column("contact", Text, nullable=False),  # sealed e-mail ("" sealed: none)
    Column("email_hmac", String(64), nullable=False),  # "" when no address
    Column("identity_key", String(64), nullable=False),  # HMAC of the OIDC subject, or ""
    Column("lang", String(8), nullable=False),
    Column("payment", String(16), nullable=False),  # none | pending | confirmed | refunded
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("submitted_at", UtcDateTime, nullable=False),  # last (re)submission
    Column("purge_after", UtcDateTime, nullable=False),  # retention (F5)
    # when staff were warned of the coming purge (hub.forms.retention; None: not yet)
    Column("warned_at", UtcDateTime, nullable=True),
    # when staff were reminded that it waits (hub.forms.staff_overdue; None: not yet)
    Column("reminded_at", UtcDateTime, nullable=True),
)

Index("ix_forms_submissions_form", form_submissions.c.form_id, form_submissions.c.status)
Index("ix_forms_submissions_purge", form_submissions.c.purge_after)

# what happened to a submission: status changes and comments (comments sealed)
form_history = Table(
    "forms_history", metadata,
    Column("id", ID, primary_key=True),
    Column("submission_id", ID, ForeignKey("forms_submissions.id", ondelete="CASCADE"),
           nullable=False),
    Column("at", UtcDateTime, nullable=False),
    Column("actor", String(128), nullable=False),  # staff login, or "resident"
    Column("status", String(16), nullable=False),  # the status after this step
    Column("comment", Text, nullable=False),  # sealed ("" sealed: none)
    Column("to_resident", Integer, nullable=False),  # 1: the comment is shown to the resident
)

Index("ix_forms_history_submission", form_history.c.submission_id, form_history.c.at)

# attachments: a blob in the sealed file store, first of a draft, then of its submission
form_files = Table(
    "forms_files", metadata,
    Column("id", ID, primary_key=True),  # the blob id
    Column("form_id", ID, ForeignKey("forms_forms.id", ondelete="CASCADE"), nullable=False),
    Column("draft_id", ID, nullable=True),
    Column("submission_id", ID, nullable=True),
    Column("field", String(64), nullable=False),
    Column("filename", Text, nullable=False),  # sealed
    Column("content_type", String(128), nullable=False),  # sniffed, never the client's
    Column("size", Integer, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
)

Index("ix_forms_files_submission", form_files.c.submission_id)
Index("ix_forms_files_draft", form_files.c.draft_id)

# e-mail one-time codes for residents (identity "email_code"): only an HMAC of the code
form_codes = Table(
    "forms_codes", metadata,
    Column("id", ID, primary_key=True),
    Column("form_id", ID, ForeignKey("forms_forms.id", ondelete="CASCADE"), nullable=False),
    Column("email_hmac", String(64), nullable=False),
    Column("email", Text, nullable=False),  # sealed: the session needs the address after
    Column("code_hmac", String(64), nullable=False),
    Column("tries", Integer, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime, nullable=False),
    Column("used_at", UtcDateTime, nullable=True),
)

Index("ix_forms_codes_email", form_codes.c.email_hmac, form_codes.c.created_at)

# the outbox of webhook deliveries (hub.forms.webhook; inserted with the submission)
form_deliveries = Table(
    "forms_webhook_deliveries", metadata,
    Column("id", ID, primary_key=True),
    Column("form_id", ID, nullable=False),
    Column("submission_id", ID, nullable=False),
    Column("event_type", String(64), nullable=False),
    Column("body", Text, nullable=False),  # sealed: it carries answers
    Column("created_at", UtcDateTime, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_at", UtcDateTime, nullable=False),
    Column("status", String(16), nullable=False),  # pending | delivered | failed
    Column("last_error", String(64), nullable=False),
    Column("delivered_at", UtcDateTime, nullable=True),
)

Index("ix_forms_deliveries_due", form_deliveries.c.status, form_deliveries.c.next_at)

# page views per form and day (the dashboard), no visitor data
form_views = Table(
    "forms_views", metadata,
    Column("form_id", ID, ForeignKey("forms_forms.id", ondelete="CASCADE"), primary_key=True),
    Column("day", String(10), primary_key=True),
    Column("views", Integer, nullable=False),
    Column("starts", Integer, nullable=False),
    Column("submissions", Integer, nullable=False),
)

# reference numbers: one counter per form and year (F-2026-000001)
form_counters = Table(
    "forms_counters", metadata,
    Column("form_id", ID, ForeignKey("forms_forms.id", ondelete="CASCADE"), primary_key=True),
    Column("year", Integer, primary_key=True),
    Column("last", Integer, nullable=False),
)

# the fee of a web submission (hub.forms.payment, hub.forms.pay_store): one row per attempt (a
# cancelled or failed attempt, then a new one); at most one attempt of a submission is open
# (created, pending or confirmed), which the partial unique index holds on both databases
_OPEN = "status IN ('created', 'pending', 'confirmed')"
form_payments = Table(
    "forms_payments", metadata,
    Column("id", ID, primary_key=True),  # the payment id the provider gets
    Column("submission_id", ID, ForeignKey("forms_submissions.id", ondelete="CASCADE"),
           nullable=False),
    Column("form_id", ID, nullable=False),
    Column("amount_yen", Integer, nullable=False),
    Column("status", String(16), nullable=False),  # hub.forms.payment.PaymentStatus
    Column("provider", String(32), nullable=False),  # the adapter's name ("fake")
    Column("provider_ref", String(128), nullable=True),
    Column("confirmed_at", UtcDateTime, nullable=True),
    Column("refunds", Text, nullable=False),  # JSON list of {id, amount_yen, at}
    Column("seen_events", Text, nullable=False),  # JSON list of provider event ids applied
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)

Index("ix_forms_payments_submission", form_payments.c.submission_id, form_payments.c.created_at)
Index("ux_forms_payments_open", form_payments.c.submission_id, unique=True,
      sqlite_where=text(_OPEN), postgresql_where=text(_OPEN))

TABLES = (forms, form_versions, form_drafts, form_submissions, form_history, form_files,
          form_codes, form_deliveries, form_views, form_counters, form_payments)
