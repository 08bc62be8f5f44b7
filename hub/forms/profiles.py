"""A resident's saved details, reused across forms on request (F2: "one answer reused across
forms"). No aiohttp here; the pages are in ``profiles_pages``.

Why it works this way:

- Only with consent, only for a signed-in identity: the resident ticks a box on the review
  page (unticked by default) and the details are kept under a keyed hash of the identity
  (an e-mail code's address, or the OpenID Connect pseudonym). An anonymous resident has no
  identity to find them by again, so nothing is offered.
- Only the reusable kinds, chosen by the field's *type*, never by its id or label: name (with
  furigana), address with postal code, phone, e-mail, and a date only where the form's author
  marked it ``prefill: birth_date``. When a form has several fields of a type (the applicant
  and a child), only the ones marked with the matching ``prefill`` take part; unmarked ones are
  ambiguous and are neither saved nor filled.
- Reuse is on request: after signing in, the resident is asked whether to use what was saved
  (``profiles_pages``); saved details never replace an answer already in the draft.
- Sealed at rest (``records.seal_json`` bound to the row), deleted by the resident at any
  time, and purged one year after their last use (``purge_profiles``, hourly in ``jobs``).
  Every save, use and deletion is audited, with the kinds only, never the values.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Mapping
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Column, Index, String, Table, Text, delete, insert, select, update
from sqlalchemy.exc import SQLAlchemyError

from hub.auth.service import audit_in
from hub.forms import jp
from hub.forms.conditions import keep_visible
from hub.forms.context import Forms
from hub.forms.model import PREFILL_TYPES, AnyField, Form, NameField
from hub.forms.records import email_hmac, open_json, seal_json
from hub.store.schema import UtcDateTime, metadata
from hub.webticket.pow import derive_key

_LOGGER = logging.getLogger(__name__)

KEEP_DAYS = 365  # after the last save or use
FIELD = "remember"  # the review page's checkbox
KINDS = ("name", "address", "birth_date", "phone", "email")
NAME_PARTS = ("family", "given", "family_kana", "given_kana")
ADDRESS_PARTS = ("postal", "prefecture", "city", "street", "building")

# the saved details of one signed-in identity (migration v0013_forms_profiles)
form_profiles = Table(
    "forms_profiles", metadata,
    Column("id", String(64), primary_key=True),  # keyed hash of the identity (profile_key)
    Column("answers", Text, nullable=False),  # sealed JSON {kind: value}
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),  # last save or use
    Column("expires_at", UtcDateTime, nullable=False),  # KEEP_DAYS after updated_at
)

Index("ix_forms_profiles_expiry", form_profiles.c.expires_at)

TEXTS: dict[str, dict[str, str]] = {
    "ja": {
        "remember_label": "次回の申請で入力を省けるよう、{kinds}をこのサービスに保存する",
        "remember_hint": "保存した情報は暗号化して保管し、最後に使った日から1年で自動的に削除"
                         "します。いつでも削除できます。",
        "saved_note": "このサービスに保存した情報があります。",
        "delete_button": "保存した情報を削除する",
        "use_title": "保存した情報を使いますか",
        "use_lead": "前回の申請で保存した{kinds}を、この申請の入力欄にあらかじめ入れることが"
                    "できます。入れた内容は次の画面で確認・修正できます。",
        "use_button": "保存した情報を使う",
        "skip_button": "使わずに入力する",
        "deleted_title": "保存した情報を削除しました",
        "deleted_lead": "このサービスに保存していた氏名・住所などの情報を削除しました。"
                        "入力中の申請はそのまま続けられます。",
        "none_title": "保存した情報はありません",
        "none_lead": "このサービスに保存されている情報はありません。",
        "continue_link": "申請を続ける",
        "sep": "・",
        "name": "氏名", "address": "住所", "birth_date": "生年月日", "phone": "電話番号",
        "email": "メールアドレス",
    },
    "en": {
        "remember_label": "Save my {kinds} with this service so I do not have to enter them "
                          "again next time",
        "remember_hint": "Saved details are kept encrypted and deleted automatically one year "
                         "after you last use them. You can delete them at any time.",
        "saved_note": "You have details saved with this service.",
        "delete_button": "Delete my saved details",
        "use_title": "Use your saved details?",
        "use_lead": "We can fill in your saved {kinds} from an earlier application. You can "
                    "check and change them on the next pages.",
        "use_button": "Use my saved details",
        "skip_button": "Continue without them",
        "deleted_title": "Your saved details have been deleted",
        "deleted_lead": "The name, address and other details you saved with this service have "
                        "been deleted. You can carry on with this application.",
        "none_title": "No saved details",
        "none_lead": "You have no details saved with this service.",
        "continue_link": "Continue your application",
        "sep": ", ",
        "name": "name", "address": "address", "birth_date": "date of birth",
        "phone": "phone number", "email": "email address",
    },
}


def kinds_text(kinds: list[str], lang: str) -> str:
    """「氏名・住所」 / "name, address": the kinds in the order of ``KINDS``."""
    t = TEXTS[lang if lang in TEXTS else "ja"]
    names = [t[k] for k in KINDS if k in kinds]
    if lang == "en" and len(names) > 1:
        return f"{', '.join(names[:-1])} and {names[-1]}"
    return t["sep"].join(names)


# --- which fields: by type ---------------------------------------------------------------


def targets(form: Form) -> dict[str, list[AnyField]]:
    """The fields of ``form`` each kind is saved from and filled into.

    By type (``model.PREFILL_TYPES``): the fields of the kind's type marked with that
    ``prefill``; else the one field of that type when there is exactly one; a date only when
    marked ``birth_date`` (a date field is as often a move-in or event date)."""
    out: dict[str, list[AnyField]] = {}
    for kind in KINDS:
        same = [f for _, f in form.fields() if f.type == PREFILL_TYPES[kind]]
        marked = [f for f in same if getattr(f, "prefill", None) == kind]
        if marked:
            out[kind] = marked
        elif kind != "birth_date" and len(same) == 1:
            out[kind] = same
    return out


def _clean(kind: str, value: Any) -> Any:
    """A saved answer in the shape the kind keeps, or None (wrong shape, empty)."""
    if kind in ("name", "address"):
        if not isinstance(value, Mapping):
            return None
        parts = NAME_PARTS if kind == "name" else ADDRESS_PARTS
        got = {p: str(value[p]) for p in parts if isinstance(value.get(p), str) and value[p]}
        return got if got.get("family" if kind == "name" else "city") else None
    if kind == "birth_date":
        try:
            return date.fromisoformat(str(value)).isoformat() if value else None
        except ValueError:
            return None
    return value.strip() if isinstance(value, str) and value.strip() else None


def extract(form: Form, answers: Mapping[str, Any]) -> dict[str, Any]:
    """What a submission's answers give to the profile: per kind, the first answered target."""
    out: dict[str, Any] = {}
    for kind, fields in targets(form).items():
        for fld in fields:
            value = _clean(kind, answers.get(fld.id))
            if value is not None:
                out[kind] = value
                break
    return out


def _empty(value: Any) -> bool:
    if isinstance(value, Mapping):
        return not any(value.values())
    return value is None or value == "" or (isinstance(value, list | tuple) and not value)


def _name_for(fld: NameField, saved: Mapping[str, str]) -> dict[str, str]:
    """The saved name in the field's furigana script (or without furigana)."""
    value = {p: saved[p] for p in ("family", "given") if saved.get(p)}
    if fld.furigana != "none":
        convert = jp.to_katakana if fld.furigana == "katakana" else jp.to_hiragana
        value |= {p: convert(saved[p]) for p in ("family_kana", "given_kana") if saved.get(p)}
    return value


def fill(form: Form, profile: Mapping[str, Any], answers: Mapping[str, Any]) -> dict[str, Any]:
    """The answers ``profile`` adds to ``answers`` (only fields still empty)."""
    out: dict[str, Any] = {}
    for kind, fields in targets(form).items():
        value = _clean(kind, profile.get(kind))
        if value is None:
            continue
        for fld in fields:
            if not _empty(answers.get(fld.id)):
                continue
            out[fld.id] = _name_for(fld, value) if isinstance(fld, NameField) else value
    return out


# --- storage ---------------------------------------------------------------------------------


def profile_key(ctx: Forms, identity: Mapping[str, Any]) -> str | None:
    """The row id of a signed-in identity's profile; None for an anonymous one.

    A keyed hash of its own (not the submissions' ``email_hmac`` or ``identity_key``), so the
    profile table cannot be joined to applications without the hub's key."""
    method = identity.get("method")
    if method == "email_code" and identity.get("email"):
        who = "email:" + email_hmac(ctx, str(identity["email"]))
    elif method == "oidc" and identity.get("key"):
        who = "oidc:" + str(identity["key"])
    else:
        return None
    return hmac.new(derive_key(ctx.hub.key, "forms-profile"), who.encode(),
                    hashlib.sha256).hexdigest()


async def load(ctx: Forms, identity: Mapping[str, Any]) -> dict[str, Any] | None:
    """The saved details of a signed-in identity, if any (and not expired)."""
    key = profile_key(ctx, identity)
    if key is None:
        return None
    async with ctx.store.read() as tx:
        row = (await tx.conn.execute(select(form_profiles).where(
            form_profiles.c.id == key))).first()
    if row is None or row.expires_at <= ctx.clock():
        return None
    return dict(open_json(ctx, key, "answers", row.answers))


def _merge(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """New kinds replace old ones; a name given without furigana keeps the saved furigana
    when it is the same name."""
    out = dict(old) | dict(new)
    was, now = old.get("name"), new.get("name")
    if isinstance(was, Mapping) and isinstance(now, Mapping) and "family_kana" not in now \
            and all(was.get(p) == now.get(p) for p in ("family", "given")):
        out["name"] = dict(was) | dict(now)
    return out


async def save(ctx: Forms, identity: Mapping[str, Any], details: Mapping[str, Any],
               form_id: str, ip: str | None = None) -> bool:
    """Create or update the profile with ``details``; False when there is nothing to keep."""
    key = profile_key(ctx, identity)
    if key is None or not details:
        return False
    now = ctx.clock()
    expires = now + timedelta(days=KEEP_DAYS)
    async with ctx.store.begin() as tx:
        row = (await tx.conn.execute(select(form_profiles).where(
            form_profiles.c.id == key))).first()
        if row is None:
            await tx.conn.execute(insert(form_profiles).values(
                id=key, answers=seal_json(ctx, key, "answers", dict(details)), created_at=now,
                updated_at=now, expires_at=expires))
        else:
            old = open_json(ctx, key, "answers", row.answers) if row.expires_at > now else {}
            await tx.conn.execute(update(form_profiles).where(form_profiles.c.id == key).values(
                answers=seal_json(ctx, key, "answers", _merge(old, details)), updated_at=now,
                expires_at=expires))
        await audit_in(tx, ctx.hub, actor="resident", action="form_profile_saved",
                       target=form_id, ip=ip, detail={"kinds": sorted(details)})
    return True


async def touch(ctx: Forms, identity: Mapping[str, Any], form_id: str,
                ip: str | None = None) -> None:
    """The profile was used: one more year from now (audited)."""
    key = profile_key(ctx, identity)
    if key is None:
        return
    now = ctx.clock()
    async with ctx.store.begin() as tx:
        await tx.conn.execute(update(form_profiles).where(form_profiles.c.id == key).values(
            updated_at=now, expires_at=now + timedelta(days=KEEP_DAYS)))
        await audit_in(tx, ctx.hub, actor="resident", action="form_profile_used",
                       target=form_id, ip=ip)


async def forget(ctx: Forms, identity: Mapping[str, Any], form_id: str,
                 ip: str | None = None) -> bool:
    """Delete the profile (the resident asked); True when there was one. Audited."""
    key = profile_key(ctx, identity)
    if key is None:
        return False
    async with ctx.store.begin() as tx:
        gone = await tx.conn.execute(delete(form_profiles).where(form_profiles.c.id == key))
        if gone.rowcount:
            await audit_in(tx, ctx.hub, actor="resident", action="form_profile_deleted",
                           target=form_id, ip=ip)
    return bool(gone.rowcount)


async def purge_profiles(ctx: Forms, now: datetime) -> int:
    """Delete the profiles not used for a year (``expires_at`` passed); audited as a count."""
    async with ctx.store.begin() as tx:
        gone = await tx.conn.execute(delete(form_profiles).where(
            form_profiles.c.expires_at <= now))
        if gone.rowcount:
            await audit_in(tx, ctx.hub, actor="system", action="form_profiles_purged",
                           detail={"count": int(gone.rowcount)})
    return int(gone.rowcount or 0)


# --- the hooks the residents' pages call -----------------------------------------------------


def _ticked(raw_post: Mapping[str, list[str]]) -> bool:
    return "yes" in (raw_post.get(FIELD) or [])


async def remember(ctx: Forms, form: Form, draft: Any, answers: Mapping[str, Any],
                   raw_post: Mapping[str, list[str]], ip: str | None = None) -> None:
    """After a submission is stored: save the reusable answers when the resident ticked the
    review page's box (nothing otherwise). A failure here is logged (its type only) and does
    not undo the submission, which is already stored."""
    if not _ticked(raw_post) or profile_key(ctx, draft.identity) is None:
        return
    try:
        await save(ctx, draft.identity, extract(form, answers), form.id, ip)
    except SQLAlchemyError as exc:
        _LOGGER.warning("forms: a profile could not be saved: %s", type(exc).__name__)


async def review_values(ctx: Forms, form: Form, draft: Any, lang: str) -> dict[str, Any]:
    """What ``resident_review.html`` needs for the box: ``profile`` (None: not offered)."""
    if profile_key(ctx, draft.identity) is None:
        return {"profile": None}
    kinds = list(extract(form, keep_visible(form, draft.answers)))
    saved = await load(ctx, draft.identity) is not None
    if not kinds and not saved:
        return {"profile": None}
    t = TEXTS[lang if lang in TEXTS else "ja"]
    return {"profile": {"offer": bool(kinds), "saved": saved, "field": FIELD,
                        "label": t["remember_label"].format(kinds=kinds_text(kinds, lang)),
                        "hint": t["remember_hint"], "saved_note": t["saved_note"],
                        "delete": t["delete_button"]}}


async def offer(ctx: Forms, form: Form, identity: Mapping[str, Any],
                answers: Mapping[str, Any]) -> list[str]:
    """After signing in: the kinds saved details would fill in this new draft (empty: do not
    ask)."""
    profile = await load(ctx, identity)
    if profile is None:
        return []
    added = fill(form, profile, answers)
    return [k for k, fields in targets(form).items() if any(f.id in added for f in fields)]
