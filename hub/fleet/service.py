"""Fleet storage: rules per site, sealed recipients, incidents (no aiohttp here).

Every staff change (rules, a recipient added or removed) is written with its audit row in one
transaction, so a change without its trail (or the reverse) cannot exist. Recipient addresses
are sealed with the hub key (``hub.notify.crypto``), never written to a log or the audit trail
(the trail holds the recipient's id and site), and opened only to send or to show masked.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, update

from hub.audit.service import append, audit_key
from hub.fleet.rules import RULES, Thresholds
from hub.fleet.tables import fleet_incidents, fleet_recipients, fleet_rules
from hub.notify import contacts, crypto
from hub.settings import HubSettings
from hub.store.store import HubStore, now_utc

_LOGGER = logging.getLogger(__name__)

ALL_SITES = "*"
LANGS = ("ja", "en")
MAX_RECIPIENTS = 20  # per site
RECENT = 50


class FleetError(ValueError):
    """A refused change: a stable ``code`` (texts in i18n) and the form field it concerns."""

    def __init__(self, code: str, field: str = "") -> None:
        super().__init__(code)
        self.code, self.field = code, field


def _aad_id(recipient_id: str) -> str:
    return f"fleet-recipient:{recipient_id}"  # apart from notice subscriptions' row ids


# --- rules ---------------------------------------------------------------------------------------

async def all_rules(store: HubStore) -> dict[str, Thresholds]:
    async with store.read() as tx:
        rows = (await tx.conn.execute(select(fleet_rules.c.site, fleet_rules.c.rules))).all()
    return {str(r[0]): Thresholds.from_json(str(r[1])) for r in rows}


def rules_for(rules: dict[str, Thresholds], site: str) -> Thresholds:
    """The site's own rules, else the ward's default row, else the shipped defaults."""
    return rules.get(site) or rules.get(ALL_SITES) or Thresholds()


async def set_rules(store: HubStore, settings: HubSettings, site: str, new: Thresholds, *,
                    actor: str | None, ip: str | None) -> dict[str, Any]:
    """Store a site's rules and audit what changed (``fleet_rules_changed``); returns the
    changes (empty: nothing was written)."""
    key, key_id = audit_key(settings)
    now = now_utc()
    async with store.begin() as tx:
        row = (await tx.conn.execute(select(fleet_rules.c.rules).where(
            fleet_rules.c.site == site))).first()
        if row is None:
            default = (await tx.conn.execute(select(fleet_rules.c.rules).where(
                fleet_rules.c.site == ALL_SITES))).first()
            old = Thresholds.from_json(str(default[0])) if default else Thresholds()
        else:
            old = Thresholds.from_json(str(row[0]))
        changes = old.changes(new)
        if row is not None and not changes:
            return {}
        values = {"rules": new.to_json(), "updated_at": now, "updated_by": actor}
        stmt = tx.insert(fleet_rules).values(site=site, **values)
        await tx.conn.execute(stmt.on_conflict_do_update(index_elements=["site"], set_=values))
        await append(tx, actor=actor, action="fleet_rules_changed", target=f"site:{site}",
                     detail={"site": site, "changes": changes}, ip=ip, key=key, key_id=key_id,
                     at=now)
    return changes


# --- recipients ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Recipient:
    id: str
    site: str
    address: str
    lang: str

    def __repr__(self) -> str:  # never the address, even in a traceback
        return f"Recipient(id={self.id!r}, site={self.site!r})"


def mask(address: str) -> str:
    """``h***@mail.example.jp``: enough for staff to tell recipients apart on the page."""
    local, _, domain = address.rpartition("@")
    return f"{local[:1]}***@{domain}"


async def add_recipient(store: HubStore, settings: HubSettings, site: str, address: str,
                        lang: str, *, actor: str | None, ip: str | None) -> str:
    try:
        clean = contacts.email(address)
    except contacts.InvalidContact:
        raise FleetError("bad_address", "address") from None
    if lang not in LANGS:
        raise FleetError("bad_lang", "lang")
    rid = str(uuid.uuid4())
    sealed = crypto.seal(settings.keys, settings.key_id, _aad_id(rid), clean)
    key, key_id = audit_key(settings)
    now = now_utc()
    async with store.begin() as tx:
        count = len((await tx.conn.execute(select(fleet_recipients.c.id).where(
            fleet_recipients.c.site == site))).all())
        if count >= MAX_RECIPIENTS:
            raise FleetError("too_many", "address")
        await tx.conn.execute(fleet_recipients.insert().values(
            id=rid, site=site, address_ct=sealed, lang=lang, created_at=now, created_by=actor))
        await append(tx, actor=actor, action="fleet_recipient_added", target=f"site:{site}",
                     detail={"site": site, "recipient_id": rid, "lang": lang}, ip=ip, key=key,
                     key_id=key_id, at=now)
    return rid


async def remove_recipient(store: HubStore, settings: HubSettings, rid: str,
                           sites: Iterable[str] | None, *, actor: str | None,
                           ip: str | None) -> bool:
    """Remove one recipient if it belongs to one of ``sites`` (None: any); audited."""
    key, key_id = audit_key(settings)
    async with store.begin() as tx:
        row = (await tx.conn.execute(select(fleet_recipients.c.site).where(
            fleet_recipients.c.id == rid))).first()
        if row is None or (sites is not None and str(row[0]) not in set(sites)):
            return False
        site = str(row[0])
        await tx.conn.execute(delete(fleet_recipients).where(fleet_recipients.c.id == rid))
        await append(tx, actor=actor, action="fleet_recipient_removed", target=f"site:{site}",
                     detail={"site": site, "recipient_id": rid}, ip=ip, key=key, key_id=key_id)
    return True


async def recipients(store: HubStore, settings: HubSettings,
                     sites: Iterable[str] | None = None) -> list[Recipient]:
    """Recipients of ``sites`` (None: all), opened; one that no key opens is skipped (and
    logged by id only)."""
    stmt = select(fleet_recipients).order_by(fleet_recipients.c.site,
                                             fleet_recipients.c.created_at)
    if sites is not None:
        stmt = stmt.where(fleet_recipients.c.site.in_(list(sites)))
    async with store.read() as tx:
        rows = (await tx.conn.execute(stmt)).all()
    out: list[Recipient] = []
    for r in rows:
        try:
            address = crypto.open_sealed(settings.keys, _aad_id(r.id), r.address_ct)
        except crypto.CryptoError:
            _LOGGER.warning("fleet recipient %s cannot be opened with the hub keys", r.id)
            continue
        out.append(Recipient(r.id, r.site, address, r.lang))
    return out


# --- incidents -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Incident:
    id: str
    site: str
    rule: str
    subject: str
    opened_at: datetime
    closed_at: datetime | None
    detail: dict[str, Any]
    open_mail: str
    close_mail: str | None


def _incident(r: Any) -> Incident:
    try:
        detail = json.loads(r.detail)
    except ValueError:
        detail = {}
    return Incident(r.id, r.site, r.rule, r.subject, r.opened_at, r.closed_at,
                    detail if isinstance(detail, dict) else {}, r.open_mail, r.close_mail)


async def open_incident(store: HubStore, site: str, rule: str, subject: str, at: datetime,
                        detail: dict[str, Any]) -> str:
    assert rule in RULES
    iid = str(uuid.uuid4())
    async with store.begin() as tx:
        await tx.conn.execute(fleet_incidents.insert().values(
            id=iid, site=site, rule=rule, subject=subject[:64], opened_at=at, closed_at=None,
            detail=json.dumps(detail, ensure_ascii=False, sort_keys=True), open_mail="pending",
            close_mail=None))
    return iid


async def close_incident(store: HubStore, site: str, rule: str, subject: str,
                         at: datetime) -> str | None:
    """Close the open incident of this key; its id (None: none was open)."""
    async with store.begin() as tx:
        row = (await tx.conn.execute(select(fleet_incidents.c.id).where(
            fleet_incidents.c.site == site, fleet_incidents.c.rule == rule,
            fleet_incidents.c.subject == subject[:64],
            fleet_incidents.c.closed_at.is_(None)))).first()
        if row is None:
            return None
        await tx.conn.execute(update(fleet_incidents).where(
            fleet_incidents.c.id == row[0]).values(closed_at=at, close_mail="pending"))
    return str(row[0])


async def mark_mail(store: HubStore, ids: Iterable[str], which: str, state: str) -> None:
    column = "open_mail" if which == "opened" else "close_mail"
    async with store.begin() as tx:
        await tx.conn.execute(update(fleet_incidents).where(
            fleet_incidents.c.id.in_(list(ids))).values({column: state}))


async def open_incidents(store: HubStore) -> list[Incident]:
    async with store.read() as tx:
        rows = (await tx.conn.execute(select(fleet_incidents).where(
            fleet_incidents.c.closed_at.is_(None)).order_by(fleet_incidents.c.opened_at))).all()
    return [_incident(r) for r in rows]


async def recent_incidents(store: HubStore, sites: Iterable[str] | None,
                           limit: int = RECENT) -> list[Incident]:
    """Open ones first, then the most recently opened closed ones."""
    stmt = select(fleet_incidents)
    if sites is not None:
        stmt = stmt.where(fleet_incidents.c.site.in_(list(sites)))
    async with store.read() as tx:
        rows = (await tx.conn.execute(stmt.order_by(
            fleet_incidents.c.closed_at.is_not(None), fleet_incidents.c.opened_at.desc())
            .limit(limit))).all()
    return [_incident(r) for r in rows]
