"""Turning answers into a submission (F2, F4): one transaction, then the mails.

Why one transaction: the submission row, its first history row, its files moving from the draft
to the submission, the deleted draft, the webhook outbox row and the audit row either all exist
or none does, so a crash can neither lose a resident's application nor tell a business system
about one that does not exist. Mails go after the commit (a mail server that is down must not
undo an application); they never carry answers, only the reference and a link.

``create_submission`` is also what staff use to enter a paper or phone application (channel
``staff``); ``resubmit`` is the resident's corrected answers after staff returned one.

A form with a fee (``Form.fee_yen``, F3): a resident's submission is stored in the same one
transaction as ``awaiting_payment`` with its first payment attempt (``hub.forms.pay_store``); the
webhook event and the mails wait for the provider's confirmation (``pay_store.apply_event``).
Staff-entered applications are paid at the counter, so they are received at once.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import delete, exists, insert, select, text, update
from sqlalchemy.exc import IntegrityError

from hub.auth.service import audit_in
from hub.forms import deliveries, pay_store
from hub.forms.attachments import Attachment
from hub.forms.conditions import keep_visible
from hub.forms.context import Forms
from hub.forms.model import FileField, Form
from hub.forms.records import email_hmac, new_id, open_json, seal_field, seal_json
from hub.forms.review import audit_tag
from hub.forms.service import FormError
from hub.forms.tables import (
    form_counters,
    form_drafts,
    form_files,
    form_history,
    form_submissions,
    form_views,
)
from hub.notify.senders import Notice
from hub.store.store import Tx

_LOGGER = logging.getLogger(__name__)
REF_TRIES = 5  # transactions tried when two forms pick one reference at once
_REF_LOCK = 0x466F726D73526566  # "FormsRef": the advisory lock of reference numbering


class FeeUnavailable(Exception):
    """The form has a fee and no payment provider is configured (``MADOGUCHI_FORMS_PAY_*``)."""


@dataclass(frozen=True, slots=True)
class FileRef:
    """An accepted attachment of one field (already in the sealed store)."""

    id: str
    field: str
    filename: str
    content_type: str
    size: int
    sha256: str = ""

    @classmethod
    def of(cls, field: str, a: Attachment) -> FileRef:
        return cls(a.id, field, a.filename, a.mime, a.size, a.sha256)

    def answer(self) -> dict[str, Any]:
        """How a file appears in the (sealed) answers."""
        return {"id": self.id, "filename": self.filename, "size": self.size,
                "content_type": self.content_type}


def jsonable(value: Any) -> Any:
    """A normalised answer (``hub.forms.validate``) as JSON: dates ISO, decimals as text,
    tuples as lists, uploaded files as their ``{id, filename, size, content_type}``."""
    if isinstance(value, date | datetime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return {"id": value.id, "filename": value.filename, "size": value.size,
            "content_type": value.content_type}


def file_ids(form: Form, answers: Mapping[str, Any]) -> set[str]:
    """The attachment ids the answers refer to."""
    out: set[str] = set()
    for _, fld in form.fields():
        if isinstance(fld, FileField):
            for item in answers.get(fld.id) or ():
                if isinstance(item, Mapping) and "id" in item:
                    out.add(str(item["id"]))
    return out


async def next_reference(tx: Tx, form_id: str, year: int) -> str:
    """``F-YYYY-NNNNNN``: the form's counter for the year, bumped with one UPSERT (two
    submissions at once get two numbers). References are unique across forms, so a number
    another form already used is skipped; two forms taking one number at the same moment make
    one transaction fail on the unique reference, and ``create_submission`` tries again. On
    PostgreSQL a transaction-scoped advisory lock makes numbering one at a time (SQLite has one
    writer anyway), so that is rare; the submission's audit row takes a lock of the same kind
    later in the transaction."""
    if tx.dialect == "postgresql":
        await tx.conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _REF_LOCK})
    while True:
        stmt = tx.insert(form_counters).values(form_id=form_id, year=year, last=1)
        stmt = stmt.on_conflict_do_update(index_elements=["form_id", "year"],
                                          set_={"last": form_counters.c.last + 1})
        last = (await tx.conn.execute(stmt.returning(form_counters.c.last))).scalar_one()
        ref = f"F-{year}-{int(last):06d}"
        taken = (await tx.conn.execute(select(exists().where(
            form_submissions.c.reference == ref)))).scalar()
        if not taken:
            return ref


async def count_view(tx: Tx, form_id: str, day: str, *, views: int = 0, starts: int = 0,
                     submissions: int = 0) -> None:
    """One UPSERT on the form's row of the day (no visitor data at all)."""
    stmt = tx.insert(form_views).values(form_id=form_id, day=day, views=views, starts=starts,
                                        submissions=submissions)
    c = form_views.c
    await tx.conn.execute(stmt.on_conflict_do_update(
        index_elements=["form_id", "day"],
        set_={"views": c.views + views, "starts": c.starts + starts,
              "submissions": c.submissions + submissions}))


async def _attach(tx: Tx, ctx: Forms, form_id: str, sid: str, files: Sequence[FileRef],
                  now: datetime) -> None:
    for f in files:
        moved = await tx.conn.execute(update(form_files).where(
            form_files.c.id == f.id, form_files.c.form_id == form_id).values(
            submission_id=sid, draft_id=None))
        if moved.rowcount == 0:
            await tx.conn.execute(insert(form_files).values(
                id=f.id, form_id=form_id, draft_id=None, submission_id=sid, field=f.field,
                filename=seal_field(ctx, f.id, "filename", f.filename),
                content_type=f.content_type, size=f.size, sha256=f.sha256, created_at=now))


def _payload(ref: str, form: Form, answers: Mapping[str, Any], status: str,
             channel: str, now: datetime) -> dict[str, Any]:
    return {"reference": ref, "form_version": form.version, "status": status,
            "channel": channel, "submitted_at": now.isoformat(), "answers": dict(answers)}


@dataclass(frozen=True)
class _New:
    sid: str
    form_id: str
    form: Form
    answers: Any
    keep_ids: set[str]
    contact: str
    lang: str
    channel: str
    identity_key: str
    actor: str
    draft_id: str | None
    ip: str | None
    now: datetime
    fee_yen: int = 0  # > 0: stored as awaiting_payment with its first payment attempt
    provider: str = ""


async def _insert(ctx: Forms, tx: Tx, form_row: Any, n: _New,
                  files: Sequence[FileRef]) -> tuple[str, list[str]]:
    """Everything a new submission writes, in the caller's transaction; its reference and the
    draft's unused attachments whose rows were deleted (their blobs go after the commit)."""
    sid, now = n.sid, n.now
    status = pay_store.AWAITING if n.fee_yen else "received"
    ref = await next_reference(tx, n.form_id, now.year)
    await tx.conn.execute(insert(form_submissions).values(
        id=sid, form_id=n.form_id, version=n.form.version, reference=ref, status=status,
        channel=n.channel, answers=seal_json(ctx, sid, "answers", n.answers),
        contact=seal_field(ctx, sid, "contact", n.contact),
        email_hmac=email_hmac(ctx, n.contact) if n.contact else "",
        identity_key=n.identity_key, lang=n.lang if n.lang in ("ja", "en") else "ja",
        payment="pending" if n.fee_yen else "none", created_at=now, updated_at=now,
        submitted_at=now, purge_after=now + timedelta(days=n.form.retention_days),
        warned_at=None))
    hid = new_id()
    await tx.conn.execute(insert(form_history).values(
        id=hid, submission_id=sid, at=now, actor="resident" if n.channel == "web" else n.actor,
        status=status, comment=seal_field(ctx, hid, "comment", ""), to_resident=0))
    await _attach(tx, ctx, n.form_id, sid, [f for f in files if f.id in n.keep_ids], now)
    unused = await _unused_in(tx, n.form_id, n.draft_id, n.keep_ids)
    if n.draft_id is not None:
        await tx.conn.execute(delete(form_drafts).where(form_drafts.c.id == n.draft_id))
    if n.fee_yen:
        await pay_store.insert_payment(tx, sid, n.form_id, n.fee_yen, n.provider, now)
    elif form_row.webhook_url:
        await deliveries.enqueue(tx, ctx, n.form_id, sid, "submission.received",
                                 _payload(ref, n.form, n.answers, "received", n.channel, now),
                                 now)
    await count_view(tx, n.form_id, now.date().isoformat(), submissions=1)
    await audit_in(tx, ctx.hub, actor=n.actor,
                   action="form_submitted" if n.channel == "web" else "form_staff_entered",
                   target=n.form_id, ip=n.ip,
                   detail={"submission": audit_tag(ctx, sid), "version": n.form.version,
                           "files": len(n.keep_ids), **({"fee_yen": n.fee_yen}
                                                        if n.fee_yen else {})})
    return ref, unused


async def create_submission(ctx: Forms, form_row: Any, form: Form, answers: Mapping[str, Any],
                            files: Sequence[FileRef], contact: str, lang: str, channel: str,
                            identity_key: str, actor: str, *, draft_id: str | None = None,
                            ip: str | None = None) -> tuple[str, str]:
    """Store a submission of ``form`` (the version answered) and return (id, reference).

    ``answers``: normalised values (hidden ones are dropped here); ``files``: the accepted
    attachments (rows of a draft are moved, others inserted); ``contact``: the e-mail for the
    receipt ("" none); ``draft_id``: the resident's draft, deleted in the same transaction.
    A web submission of a form with a fee waits for its payment: no webhook, no mails yet
    (``FeeUnavailable`` when no provider is configured: nothing is stored)."""
    if channel not in ("web", "staff"):
        raise ValueError("channel is web or staff")
    kept = jsonable(keep_visible(form, jsonable(answers)))
    keep_ids = file_ids(form, kept)
    now = ctx.clock()
    sid = new_id()
    form_id = str(form_row.id)
    contact = contact.strip()
    fee = form.fee_yen if channel == "web" else 0
    if fee and ctx.payments is None:
        raise FeeUnavailable
    new = _New(sid, form_id, form, kept, keep_ids, contact, lang, channel, identity_key,
               actor, draft_id, ip, now, fee, ctx.payments.name if ctx.payments else "")
    for attempt in range(REF_TRIES):
        try:
            async with ctx.store.begin() as tx:
                ref, unused = await _insert(ctx, tx, form_row, new, files)
            break
        except IntegrityError:  # another form took this number meanwhile: again
            if attempt == REF_TRIES - 1:
                raise
    for blob in unused:
        await ctx.intake.delete(blob)
    if not fee:
        await send_mails(ctx, form_row, sid, ref, contact, lang, resubmitted=False)
    return sid, ref


async def resubmit(ctx: Forms, form_row: Any, form: Form, sid: str, answers: Mapping[str, Any],
                   files: Sequence[FileRef], lang: str, *, draft_id: str | None = None,
                   ip: str | None = None) -> str:
    """The resident's corrected answers to a returned submission: the same row gets them and
    goes back to ``received``; returns the reference. Files no longer referred to are deleted."""
    kept = jsonable(keep_visible(form, jsonable(answers)))
    keep_ids = file_ids(form, kept)
    now = ctx.clock()
    form_id = str(form_row.id)
    async with ctx.store.begin() as tx:
        row = (await tx.conn.execute(select(form_submissions).where(
            form_submissions.c.id == sid, form_submissions.c.form_id == form_id))).first()
        if row is None or row.status != "returned":
            raise FormError("not_returned", "この申請は修正を受け付けていません",
                            "This application is not open for corrections")
        done = await tx.conn.execute(update(form_submissions).where(
            form_submissions.c.id == sid, form_submissions.c.status == "returned").values(
            answers=seal_json(ctx, sid, "answers", kept), status="received", updated_at=now,
            submitted_at=now))
        if done.rowcount != 1:
            raise FormError("not_returned", "この申請は修正を受け付けていません",
                            "This application is not open for corrections")
        hid = new_id()
        await tx.conn.execute(insert(form_history).values(
            id=hid, submission_id=sid, at=now, actor="resident", status="received",
            comment=seal_field(ctx, hid, "comment", ""), to_resident=0))
        await _attach(tx, ctx, form_id, sid, [f for f in files if f.id in keep_ids], now)
        gone = (await tx.conn.execute(select(form_files.c.id).where(
            form_files.c.submission_id == sid))).scalars().all()
        dropped = [g for g in gone if g not in keep_ids]
        if dropped:
            await tx.conn.execute(delete(form_files).where(form_files.c.id.in_(dropped)))
        dropped += await _unused_in(tx, form_id, draft_id, keep_ids)
        if draft_id is not None:
            await tx.conn.execute(delete(form_drafts).where(form_drafts.c.id == draft_id))
        if form_row.webhook_url:
            await deliveries.enqueue(tx, ctx, form_id, sid, "submission.resubmitted",
                                     _payload(str(row.reference), form, kept, "received",
                                              str(row.channel), now), now)
        await audit_in(tx, ctx.hub, actor="resident", action="form_submitted", target=form_id,
                       ip=ip, detail={"submission": audit_tag(ctx, sid), "resubmitted": True,
                                      "version": form.version, "files": len(keep_ids)})
    for blob in dropped:
        await ctx.intake.delete(blob)
    await send_mails(ctx, form_row, sid, str(row.reference), "", lang, resubmitted=True)
    return str(row.reference)


async def _unused_in(tx: Tx, form_id: str, draft_id: str | None, keep: set[str]) -> list[str]:
    """Attachments of the finished draft that the answers no longer use (a removed file, a
    field hidden later): their rows are deleted in the caller's transaction (the submission's
    own, so a submission is one write transaction); the caller deletes the blobs after the
    commit."""
    if draft_id is None:
        return []
    left = (await tx.conn.execute(select(form_files.c.id).where(
        form_files.c.draft_id == draft_id, form_files.c.form_id == form_id))).scalars().all()
    unused = [str(x) for x in left if x not in keep]
    if unused:
        await tx.conn.execute(delete(form_files).where(form_files.c.id.in_(unused)))
    return unused


def _link(ctx: Forms, path: str) -> str:
    return f"{ctx.hub.public_url.rstrip('/')}{path}"


async def send_mails(ctx: Forms, form_row: Any, sid: str, ref: str, contact: str, lang: str,
                     *, resubmitted: bool) -> None:
    """The resident's receipt (when there is an address) and the form's staff notice; no
    answers in either. A failure is logged by reference only."""
    form_id = str(form_row.id)
    mails: list[Notice] = []
    if contact:
        ja = lang != "en"
        subject = (f"申請を受け付けました（{ref}）" if ja
                   else f"We have received your application ({ref})")
        body = (f"申請を受け付けました。受付番号は {ref} です。\nお問い合わせの際は、"
                "この番号をお伝えください。\n\nこのメールは送信専用です。\n" if ja else
                f"We have received your application. Its reference number is {ref}.\n"
                "Please quote it if you contact us.\n\nThis mailbox is not monitored.\n")
        mails.append(Notice(f"form-receipt:{sid}", contact, "ja" if ja else "en", subject, body))
    staff = (open_json(ctx, form_id, "notify_staff", form_row.notify_staff)
             if form_row.notify_staff else None) or []  # "" : no addresses
    link = _link(ctx, f"/admin/forms/{form_id}/submissions/{sid}")
    what_ja, what_en = ("再提出", "resubmitted") if resubmitted else ("新しい申請", "new")
    for address in staff:
        mails.append(Notice(
            f"form-staff:{sid}", str(address), "ja",
            f"【{what_ja}】{form_row.title}（{ref}）",
            f"「{form_row.title}」に{what_ja}が届きました。受付番号 {ref}\n{link}\n\n"
            f"A {what_en} application ({ref}) has arrived for this form:\n{link}\n"))
    if not mails:
        return
    try:
        outcomes = await ctx.mailer.send_batch(mails)
    except Exception:  # the application is stored; the mail is secondary
        _LOGGER.warning("form mails for %s could not be sent", ref)
        return
    failed = sum(1 for o in outcomes if o.status != "sent")
    if failed:
        _LOGGER.warning("form mails for %s: %d not sent", ref, failed)
