"""The CSV export's columns: the catalogue (key, Japanese and English header, how a value comes
from a report row) and the named column sets staff keep (S3: columns "easy to change").

A set belongs to one staff member (``owner`` = their login) or to the whole ward (``owner`` =
``"*"``; only ward staff and administrators save or delete those). Sets are validated here
(known keys, no repeats, a name) and their changes are audited (``stats_columns_saved``,
``stats_columns_deleted``) in the same transaction.
"""

from __future__ import annotations

import json
import unicodedata
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import and_, delete, or_, select

from hub.audit.service import append, audit_key
from hub.settings import HubSettings
from hub.stats import periods
from hub.stats.figures import FIGURES
from hub.stats.report import Row, Scope
from hub.stats.tables import stats_column_sets
from hub.store import HubStore
from hub.store.store import now_utc

Kind = Literal["key", "count", "minutes", "percent", "hours"]
WARD = "*"
REPORTS = ("summary",)
MAX_COLUMNS = 120
MAX_NAME = 64
MAX_SETS = 50  # per owner


@dataclass(frozen=True)
class Column:
    key: str
    ja: str
    en: str
    kind: Kind
    figure: str = ""  # the report figure (empty: a key column)
    last_year: bool = False

    def header(self, lang: str) -> str:
        return self.ja if lang == "ja" else self.en


_KEYS: tuple[tuple[str, str, str], ...] = (
    ("period", "期間", "Period"), ("site", "拠点", "Site"), ("service", "業務", "Service"),
    ("counter", "窓口", "Counter"), ("staff", "職員", "Staff member"),
    ("weekday", "曜日", "Weekday"), ("hour", "時台", "Hour"),
)
_FIGURES: tuple[tuple[str, str, str, Kind], ...] = (
    ("issued", "発券数", "Tickets issued", "count"),
    ("issued_kiosk", "発券数（発券機）", "Issued at the ticket machine", "count"),
    ("issued_web", "発券数（Web番号札）", "Issued as web tickets", "count"),
    ("issued_reservation", "発券数（予約）", "Issued for reservations", "count"),
    ("issued_staff", "発券数（職員）", "Issued by staff", "count"),
    ("issued_other", "発券数（その他）", "Issued otherwise", "count"),
    ("called", "呼出数", "Called", "count"),
    ("wait1_mean", "平均待ち時間（分）", "Mean wait (min)", "minutes"),
    ("wait1_median", "待ち時間の中央値（分）", "Median wait (min)", "minutes"),
    ("wait1_p90", "待ち時間の90パーセンタイル（分）", "90th percentile wait (min)", "minutes"),
    ("wait1_max", "最長待ち時間（分）", "Longest wait (min)", "minutes"),
    ("called2", "2次待ちの後の呼出数", "Calls after a second wait", "count"),
    ("wait2_mean", "2次待ちの平均（分）", "Mean second wait (min)", "minutes"),
    ("wait2_median", "2次待ちの中央値（分）", "Median second wait (min)", "minutes"),
    ("wait2_p90", "2次待ちの90パーセンタイル（分）", "90th percentile second wait (min)",
     "minutes"),
    ("wait2_max", "2次待ちの最長（分）", "Longest second wait (min)", "minutes"),
    ("handled", "対応件数", "Handled", "count"),
    ("handling_mean", "平均対応時間（分）", "Mean handling time (min)", "minutes"),
    ("served", "完了数", "Finished", "count"),
    ("absent", "不在数", "Absent", "count"),
    ("recall", "再呼出数", "Recalls", "count"),
    ("cancel", "取消数", "Cancelled", "count"),
    ("transfer", "送りの数", "Transfers", "count"),
    ("expired", "閉庁時の未完了数", "Still open at closing", "count"),
    ("noshow", "来庁なし（Web番号札・予約）", "Did not come (web tickets, reservations)", "count"),
    ("checkin", "チェックイン数", "Check-ins", "count"),
    ("open_hours", "窓口開設時間（時間）", "Counter open time (h)", "hours"),
    ("utilisation", "窓口稼働率（％）", "Counter utilisation (%)", "percent"),
    ("res_booked", "予約数", "Reservations booked", "count"),
    ("res_used", "予約の来庁数", "Reservations used", "count"),
    ("res_noshow", "予約の来庁なし", "Reservations not used", "count"),
    ("web_views", "ウェブページ閲覧数", "Web page views", "count"),
)
assert {f for f, *_ in _FIGURES} == set(FIGURES), "every report figure has a column"

CATALOGUE: dict[str, Column] = {
    **{k: Column(k, ja, en, "key") for k, ja, en in _KEYS},
    **{f: Column(f, ja, en, kind, f) for f, ja, en, kind in _FIGURES},
    **{f"{f}_ly": Column(f"{f}_ly", f"{ja}（前年同期）", f"{en} (same period last year)", kind,
                         f, True) for f, ja, en, kind in _FIGURES},
}
DEFAULT_COLUMNS: tuple[str, ...] = (
    "period", "site", "issued", "issued_kiosk", "issued_web", "issued_reservation",
    "wait1_mean", "wait1_median", "wait1_p90", "wait1_max", "wait2_mean", "handling_mean",
    "served", "absent", "cancel", "transfer", "utilisation", "issued_ly", "wait1_mean_ly")


class ColumnError(ValueError):
    """A column set refused: ``field`` of the form, ``code`` of the message."""

    def __init__(self, field: str, code: str) -> None:
        super().__init__(f"{field}: {code}")
        self.field, self.code = field, code


def validate(keys: list[str]) -> tuple[str, ...]:
    """Known keys, each once, at least one, at most ``MAX_COLUMNS``; in the order given."""
    if not keys:
        raise ColumnError("columns", "no_columns")
    if len(keys) > MAX_COLUMNS:
        raise ColumnError("columns", "too_many")
    if any(k not in CATALOGUE for k in keys):
        raise ColumnError("columns", "unknown_column")
    if len(set(keys)) != len(keys):
        raise ColumnError("columns", "repeated_column")
    return tuple(keys)


def clean_name(raw: str) -> str:
    name = unicodedata.normalize("NFC", raw).strip()
    if not name:
        raise ColumnError("name", "no_name")
    if len(name) > MAX_NAME or any(unicodedata.category(c).startswith("C") for c in name):
        raise ColumnError("name", "bad_name")
    return name


# --- values ----------------------------------------------------------------------------------

def key_text(dim: str, value: str, lang: str) -> str:
    """A key's value as the CSV holds it (days stay ISO dates, so a spreadsheet reads them as
    dates)."""
    if dim == "fy":
        return periods.fy_label(int(value), lang)
    if dim == "weekday":
        names = periods.WEEKDAYS_JA if lang == "ja" else periods.WEEKDAYS_EN
        return names[int(value)]
    return value


def key_value(col: str, scope: Scope, row: Row, lang: str) -> str:
    """A key column's cell: the row's key where the report is grouped by it, else what the
    scope fixes (the one site, the chosen service, the whole period), else empty."""
    dims = ("day", "week", "month", "fy") if col == "period" else (col,)
    for i, dim in enumerate(scope.group):
        if dim in dims:
            return key_text(dim, row.key[i], lang) if row.key else ""
    if col == "period":
        return periods.label(scope.period, lang)
    if col == "site" and scope.sites is not None and len(scope.sites) == 1:
        return next(iter(scope.sites))
    if col in ("service", "counter", "staff"):
        return getattr(scope, col) or ""
    return ""


def number(kind: Kind, value: float | None) -> float | int | None:
    """A figure in the unit its column names: minutes and hours to 0.1, percent to 0.1."""
    if value is None:
        return None
    if kind == "minutes":
        return round(value / 60.0, 1)
    if kind == "hours":
        return round(value, 1)
    if kind == "percent":
        return round(value * 100.0, 1)
    return int(value)


def cell(col: Column, scope: Scope, row: Row, lang: str) -> str | float | int | None:
    if col.kind == "key":
        return key_value(col.key, scope, row, lang)
    source = row.last if col.last_year else row.figures
    return number(col.kind, None if source is None else source.get(col.figure))


# --- stored sets -----------------------------------------------------------------------------

@dataclass(frozen=True)
class ColumnSet:
    id: int
    owner: str
    name: str
    columns: tuple[str, ...]

    @property
    def ward(self) -> bool:
        return self.owner == WARD


async def list_sets(store: HubStore, login: str, report: str = "summary") -> list[ColumnSet]:
    """The ward's sets and ``login``'s own, ward first, each by name."""
    t = stats_column_sets.c
    async with store.read() as tx:
        rows = (await tx.conn.execute(select(t.id, t.owner, t.name, t.columns).where(and_(
            t.report == report, or_(t.owner == WARD, t.owner == login))))).all()
    out = []
    for r in rows:
        try:
            cols = validate([str(c) for c in json.loads(r.columns)])
        except (ValueError, TypeError):
            continue  # a set naming a column since removed from the catalogue: not offered
        out.append(ColumnSet(int(r.id), str(r.owner), str(r.name), cols))
    return sorted(out, key=lambda s: (not s.ward, s.name))


async def save_set(store: HubStore, settings: HubSettings, *, owner: str, name: str,
                   columns: list[str], actor: str | None, login: str, ip: str | None,
                   report: str = "summary") -> ColumnSet:
    """Create or replace the set ``name`` of ``owner`` (a login, or ``WARD``); audited."""
    name, cols = clean_name(name), validate(columns)
    t = stats_column_sets.c
    now = now_utc()
    key, key_id = audit_key(settings)
    async with store.begin() as tx:
        count = len((await tx.conn.execute(select(t.id).where(and_(
            t.owner == owner, t.report == report)))).all())
        old = (await tx.conn.execute(select(t.id).where(and_(
            t.owner == owner, t.report == report, t.name == name)))).first()
        values = {"columns": json.dumps(list(cols)), "updated_at": now, "updated_by": login}
        if old is None:
            if count >= MAX_SETS:
                raise ColumnError("name", "too_many_sets")
            got = await tx.conn.execute(stats_column_sets.insert().values(
                owner=owner, report=report, name=name, **values))
            set_id = int(got.inserted_primary_key[0])  # type: ignore[index]
        else:
            set_id = int(old.id)
            await tx.conn.execute(stats_column_sets.update().where(t.id == set_id)
                                  .values(**values))
        await append(tx, actor=actor, action="stats_columns_saved", target=f"column_set:{set_id}",
                     detail={"owner": owner, "name": name, "columns": list(cols),
                             "replaced": old is not None}, ip=ip, key=key, key_id=key_id,
                     at=now)
    return ColumnSet(set_id, owner, name, cols)


async def delete_set(store: HubStore, settings: HubSettings, set_id: int, *, login: str,
                     may_ward: bool, actor: str | None, ip: str | None) -> bool:
    """Delete one of ``login``'s sets, or a ward set when ``may_ward``; audited. False: no such
    set of theirs (nothing happens)."""
    t = stats_column_sets.c
    owners = [login, WARD] if may_ward else [login]
    key, key_id = audit_key(settings)
    async with store.begin() as tx:
        row = (await tx.conn.execute(select(t.owner, t.name).where(and_(
            t.id == set_id, t.owner.in_(owners))))).first()
        if row is None:
            return False
        await tx.conn.execute(delete(stats_column_sets).where(t.id == set_id))
        await append(tx, actor=actor, action="stats_columns_deleted",
                     target=f"column_set:{set_id}", detail={"owner": row.owner,
                                                            "name": row.name},
                     ip=ip, key=key, key_id=key_id)
    return True
