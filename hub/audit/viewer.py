"""The admin audit viewer's rules, without aiohttp: its filters, the chain banner, and the
"verify now" run whose result is itself a row of the trail.

Why the banner shows the LAST verification instead of verifying on every view: a full walk
costs one HMAC and one JSON encoding per row, measured at ~26 µs a row on this hub's 2-core box
(200 000 rows: 5.2 s on SQLite), so three years of a ward's trail (~1 million rows) take tens of
seconds: far too slow for a page view, fine for a button. A verification run (the button here)
appends an ``audit_verified`` row holding its outcome (intact or the first broken row, the
rows read, the head it reached); the banner reads the newest such row by the ``action`` index
and checks, cheaply, that this row's own MAC is right and that the head it reached is still
there unchanged, so an edited "intact" result or an edited head shows up without a full walk.
Rows written since that run are counted, not checked: the banner says so.
"""

from __future__ import annotations

import asyncio
import json
import re
import time as clock
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal
from weakref import WeakKeyDictionary
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from hub.audit.chain import Row, row_mac
from hub.audit.search import Query, to_row
from hub.audit.service import audit_key, audit_keys, record, verify
from hub.audit.tables import audit_log
from hub.settings import HubSettings
from hub.store.store import HubStore

JST = ZoneInfo("Asia/Tokyo")  # the ward's time: every time on the page and in the filters
PAGE_SIZE = 50  # rows per page: one indexed keyset query, whatever the table's size
VERIFIED = "audit_verified"  # the action of a verification run's row
VIEWED = "personal_data_viewed"  # the audit rows hold staff ids and client addresses
TARGET = "audit_log"
MAX_FIELD = 200
_ACTION = re.compile(r"[a-z_]{1,64}")
_VERIFYING: WeakKeyDictionary[HubStore, asyncio.Lock] = WeakKeyDictionary()

State = Literal["none", "ok", "broken", "forged"]


class FilterError(ValueError):
    """A filter the page cannot use; ``code`` keys the message in the audit i18n catalogue."""

    def __init__(self, code: str, field: str) -> None:
        super().__init__(code)
        self.code, self.field = code, field


@dataclass(frozen=True, slots=True)
class Filters:
    """The page's filters as typed (dates are the ward's local dates, both inclusive) and its
    keyset cursor (``before``: rows older than that id; ``after``: rows newer)."""

    since: date | None = None
    until: date | None = None
    actor: str = ""
    action: str = ""
    target: str = ""
    before: int | None = None
    after: int | None = None

    def params(self) -> dict[str, str]:
        """The filters (no cursor) as query parameters, for links and forms."""
        out = {"from": self.since.isoformat() if self.since else "",
               "to": self.until.isoformat() if self.until else "",
               "actor": self.actor, "action": self.action, "target": self.target}
        return {k: v for k, v in out.items() if v}


def _date(values: Mapping[str, str], name: str) -> date | None:
    text = values.get(name, "").strip()
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise FilterError("bad_date", name) from None


def _cursor(values: Mapping[str, str], name: str) -> int | None:
    text = values.get(name, "").strip()
    if not text:
        return None
    if not text.isdigit() or len(text) > 18 or int(text) < 1:
        raise FilterError("bad_cursor", name)
    return int(text)


def _text(values: Mapping[str, str], name: str) -> str:
    text = values.get(name, "").strip()
    if len(text) > MAX_FIELD:
        raise FilterError("too_long", name)
    return text


def parse_filters(values: Mapping[str, str]) -> Filters:
    """The page's query string as ``Filters``; ``FilterError`` names the first bad field."""
    since, until = _date(values, "from"), _date(values, "to")
    if since and until and since > until:
        raise FilterError("bad_range", "to")
    action = _text(values, "action")
    if action and not _ACTION.fullmatch(action):
        raise FilterError("bad_action", "action")
    before, after = _cursor(values, "before"), _cursor(values, "after")
    return Filters(since, until, _text(values, "actor"), action, _text(values, "target"),
                   before, None if before is not None else after)


def local_midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), JST).astimezone(UTC)


def to_query(filters: Filters, logins: Mapping[str, str]) -> Query:
    """``logins``: staff id -> login. The actor box takes a login (or an id, ``system``,
    ``cli:…``); the target box matches text in the target or the accounts whose login has it."""
    by_login = {login.casefold(): sid for sid, login in logins.items()}
    actor = by_login.get(filters.actor.casefold(), filters.actor) if filters.actor else None
    needle = filters.target.casefold()
    ids = tuple(sorted(sid for sid, login in logins.items() if needle and needle in
                       login.casefold()))
    return Query(actor=actor, action=filters.action or None,
                 since=local_midnight(filters.since) if filters.since else None,
                 until=local_midnight(filters.until + timedelta(days=1))
                 if filters.until else None,
                 target_text=filters.target or None, target_ids=ids)


def local_time(at: datetime) -> str:
    return at.astimezone(JST).strftime("%Y-%m-%d %H:%M:%S")


_HEX = re.compile(r"[0-9a-f]{32,}")


def detail_items(detail: str, lang: str = "ja") -> list[tuple[str, str]]:
    """A row's detail JSON as (key, text) pairs for the page: nested maps as ``k=v``, MACs
    cut to 12 digits (the CSV has them whole), and of a text kept in both languages
    (``message_ja``/``message_en``) only the page's."""
    try:
        data = json.loads(detail)
    except ValueError:
        return [("", detail)]
    if not isinstance(data, dict):
        return [("", detail)]
    other = "message_en" if lang == "ja" else "message_ja"

    def flat(value: Any) -> str:
        if isinstance(value, dict):
            return ", ".join(f"{k}={flat(v)}" for k, v in value.items()) or "—"
        if isinstance(value, list):
            return ", ".join(flat(v) for v in value) or "—"
        if value is None:
            return "—"
        if isinstance(value, bool):
            return "true" if value else "false"
        text = str(value)
        return text[:12] + "…" if _HEX.fullmatch(text) else text

    return [(str(k), flat(v)) for k, v in data.items() if k != other]


@dataclass(frozen=True, slots=True)
class Check:
    """What the banner says about the chain, from the newest verification run.

    ``state``: ``none`` never verified; ``ok`` intact when verified; ``broken`` the run found
    ``bad_id`` at fault; ``forged`` the run's own row or the head it reached has been altered
    or removed since (``bad_id`` names it).
    """

    state: State
    run_id: int | None = None
    at: datetime | None = None
    actor: str | None = None
    rows: int = 0
    head_id: int | None = None
    bad_id: int | None = None
    kind: str | None = None
    message_ja: str = ""
    message_en: str = ""
    newer: int = 0  # rows appended after the run (not covered by it)


async def _one(store: HubStore, row_id: int) -> Row | None:
    async with store.read() as tx:
        found = (await tx.conn.execute(
            select(audit_log).where(audit_log.c.id == row_id))).first()
    return None if found is None else to_row(found)


async def last_check(store: HubStore, settings: HubSettings) -> Check:
    """The banner: the newest ``audit_verified`` row, its MAC and its head re-checked (one
    read by the action index, the id's min and max, the head by primary key, two HMACs:
    constant time at any table size)."""
    keys = audit_keys(settings)
    async with store.read() as tx:
        newest = (await tx.conn.execute(
            select(audit_log).where(audit_log.c.action == VERIFIED)
            .order_by(audit_log.c.id.desc()).limit(1))).first()
        # two queries: SQLite answers a lone min() or max() from the index, both at once
        # by a full scan
        top = (await tx.conn.execute(select(func.max(audit_log.c.id)))).scalar()
        bottom = (await tx.conn.execute(select(func.min(audit_log.c.id)))).scalar()
    if newest is None:
        return Check("none")
    run = to_row(newest)
    newer = int(top or run.id) - run.id
    key = keys.get(run.key_id)
    if key is None or row_mac(key, run) != run.mac:
        return Check("forged", run.id, run.at, run.actor, bad_id=run.id, kind="altered",
                     newer=newer)
    try:
        data = json.loads(run.detail)
    except ValueError:
        data = {}
    base = Check("ok" if data.get("ok") is True else "broken", run.id, run.at, run.actor,
                 rows=int(data.get("rows") or 0), head_id=data.get("head_id"),
                 bad_id=data.get("bad_id"), kind=data.get("kind"),
                 message_ja=str(data.get("message_ja") or ""),
                 message_en=str(data.get("message_en") or ""), newer=newer)
    head_id, head_mac = data.get("head_id"), data.get("head_mac")
    if base.state == "ok" and isinstance(head_id, int) and isinstance(head_mac, str):
        head = await _one(store, head_id)
        if head is None and bottom is not None and int(bottom) <= head_id:
            return Check("forged", run.id, run.at, run.actor, rows=base.rows, head_id=head_id,
                         bad_id=head_id, kind="removed", newer=newer)
        head_key = None if head is None else keys.get(head.key_id)
        if head is not None and (head.mac != head_mac or head_key is None
                                 or row_mac(head_key, head) != head.mac):
            return Check("forged", run.id, run.at, run.actor, rows=base.rows, head_id=head_id,
                         bad_id=head_id, kind="altered", newer=newer)
    return base


async def check_now(store: HubStore, settings: HubSettings, *, actor: str | None,
                    ip: str | None) -> Check:
    """Walk the whole chain now and append the outcome as an ``audit_verified`` row (who ran
    it, the result, how long it took). One run at a time per store: a second click waits for
    the first instead of doubling the load."""
    lock = _VERIFYING.setdefault(store, asyncio.Lock())
    async with lock:
        started = clock.perf_counter()
        result = await verify(store, audit_keys(settings))
        detail: dict[str, Any] = {
            "ok": result.ok, "rows": result.rows, "kind": result.kind, "bad_id": result.bad_id,
            "head_id": result.head_id, "head_mac": result.head_mac,
            "message_ja": result.message_ja, "message_en": result.message_en,
            "ms": round((clock.perf_counter() - started) * 1000)}
        if result.pruned_through is not None:
            detail["pruned_through"] = result.pruned_through
        key, key_id = audit_key(settings)
        await record(store, actor=actor, action=VERIFIED, target=TARGET,
                     detail={k: v for k, v in detail.items() if v is not None}, ip=ip,
                     key=key, key_id=key_id)
    return await last_check(store, settings)


async def record_view(store: HubStore, settings: HubSettings, query: Query,
                      filters: Filters, shown: list[Row], *, actor: str | None,
                      ip: str | None) -> None:
    """A page of the trail was shown: ``personal_data_viewed`` (the rows hold staff ids and
    client addresses), with the filters, the page's cursor and which ids were on it."""
    cursor = {k: v for k, v in (("before", filters.before), ("after", filters.after)) if v}
    detail: dict[str, Any] = {"filters": {**query.filters(), **cursor}, "rows": len(shown)}
    if shown:
        detail["ids"] = f"{shown[-1].id}-{shown[0].id}"
    key, key_id = audit_key(settings)
    await record(store, actor=actor, action=VIEWED, target=TARGET, detail=detail, ip=ip,
                 key=key, key_id=key_id)
