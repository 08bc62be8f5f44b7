"""The audit chain, as pure logic: canonical row encoding, the row MAC, detail cleaning, and the
walk that finds the first altered, removed or reordered row. No database, no clock.

Why an HMAC chain and not a plain hash chain: anyone with write access to the database could
recompute plain hashes after an edit. The MAC key is derived from the hub's secret keys, which
live in the environment and never in the database, so a database-only attacker cannot forge a
row; each row's MAC also covers the previous row's MAC, so rows cannot be removed or moved
without breaking the next link.

What a chain cannot show on its own: rows cut off the END (the newest rows). ``verify`` reports
the last id and MAC (the head) so an operator can note it elsewhere and compare later.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

FORMAT = b"madoguchi/audit/v1"
GENESIS = "0" * 64  # ``prev`` of the very first row
CHECKPOINT = "checkpoint"  # the action of the row that records a prune
MAX_TEXT = 200  # longest string kept in detail (a value, not a document)
RENUMBER_WINDOW = 64  # how far away a moved row's own id is looked for when naming the fault

# Words in a detail key that mean it may hold a secret or personal data: such keys are dropped
# (their names are kept under "_dropped" so the caller's mistake is visible, not the value).
_SECRET_WORDS = frozenset({
    "password", "passwd", "pwd", "passphrase", "secret", "totp", "otp", "mfa", "token",
    "session", "sid", "cookie", "csrf", "recovery", "credential", "credentials", "pin",
    "contact", "contacts", "phone", "tel", "telephone", "mobile", "email", "mail", "address",
    "name", "birthday", "birthdate", "apikey", "key", "hash", "seed",
})
_ALLOWED_KEYS = frozenset({"key_id", "role", "roles", "site", "sites", "setting", "count",
                           "rows", "reason", "filters", "old", "new", "attempts", "format"})
_WORD = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+")

Kind = Literal["altered", "removed", "reordered", "unknown_key"]


@dataclass(frozen=True, slots=True)
class Row:
    """One audit row as stored. ``detail`` is the stored JSON text, verbatim."""

    id: int
    at: datetime
    actor: str | None
    action: str
    target: str | None
    detail: str
    ip: str | None
    key_id: str
    prev: str
    mac: str


@dataclass(frozen=True, slots=True)
class VerifyResult:
    """The outcome of a walk. When broken, ``bad_id`` is the FIRST row at fault."""

    ok: bool
    rows: int  # rows read
    head_id: int | None = None  # the last row's id and MAC (note them to detect truncation)
    head_mac: str | None = None
    bad_id: int | None = None
    kind: Kind | None = None
    message_ja: str = ""
    message_en: str = ""
    pruned_through: int | None = field(default=None)  # rows up to this id were pruned (lawfully)


def is_secret_key(name: str) -> bool:
    """Whether a detail key looks like it names a secret or personal data."""
    if name.lower() in _ALLOWED_KEYS:
        return False
    words = {w.lower() for w in _WORD.findall(name)}
    flat = re.sub(r"[^a-z0-9]", "", name.lower())
    return bool(words & _SECRET_WORDS) or any(
        w in flat for w in ("password", "secret", "token", "session", "totp", "email", "phone"))


def clean_detail(detail: Mapping[str, Any] | None) -> dict[str, Any]:
    """A JSON-safe copy of ``detail`` without keys that may hold secrets or personal data.

    The callers are told (README) never to pass passwords, TOTP secrets, session ids or
    contacts; this is the second line: such keys are dropped at any depth, long strings cut.
    """
    dropped: list[str] = []

    def clean(value: Any, depth: int) -> Any:
        if isinstance(value, Mapping):
            if depth > 4:
                return "…"
            out: dict[str, Any] = {}
            for k, v in value.items():
                name = str(k)[:64]
                if is_secret_key(name):
                    dropped.append(name)
                else:
                    out[name] = clean(v, depth + 1)
            return out
        if isinstance(value, list | tuple | set | frozenset):
            items = sorted(value, key=str) if isinstance(value, set | frozenset) else value
            return [clean(v, depth + 1) for v in list(items)[:50]]
        if value is None or isinstance(value, bool | int):
            return value
        if isinstance(value, float):
            return value if value == value and abs(value) != float("inf") else str(value)
        return str(value)[:MAX_TEXT]

    out = clean(dict(detail or {}), 0)
    assert isinstance(out, dict)
    if dropped:
        out["_dropped"] = sorted(set(dropped))
    return out


def detail_json(detail: Mapping[str, Any]) -> str:
    """The canonical JSON text stored in the row (sorted keys, no spaces, UTF-8 kept)."""
    return json.dumps(detail, ensure_ascii=False, sort_keys=True, separators=(",", ":"),
                      allow_nan=False)


def canonical_at(at: datetime) -> str:
    """UTC, microseconds always shown: both backends round-trip microseconds exactly."""
    if at.tzinfo is None:
        raise ValueError("naive datetime: pass an aware one")
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def encode(row_id: int, at: datetime, actor: str | None, action: str, target: str | None,
           detail: str, ip: str | None, key_id: str, prev: str) -> bytes:
    """The exact bytes the MAC covers: a JSON array, so no field can bleed into the next."""
    fields = [row_id, canonical_at(at), actor, action, target, detail, ip, key_id, prev]
    return FORMAT + b"\x00" + json.dumps(fields, ensure_ascii=False,
                                         separators=(",", ":")).encode()


def mac_of(key: bytes, row_id: int, at: datetime, actor: str | None, action: str,
           target: str | None, detail: str, ip: str | None, key_id: str, prev: str) -> str:
    data = encode(row_id, at, actor, action, target, detail, ip, key_id, prev)
    return hmac.new(key, data, hashlib.sha256).hexdigest()


def row_mac(key: bytes, row: Row, row_id: int | None = None) -> str:
    """The MAC ``row`` should carry (as if stored at ``row_id``, default its own id)."""
    return mac_of(key, row.id if row_id is None else row_id, row.at, row.actor, row.action,
                  row.target, row.detail, row.ip, row.key_id, row.prev)


def _mac_ok(key: bytes, row: Row, row_id: int | None = None) -> bool:
    return hmac.compare_digest(row_mac(key, row, row_id), row.mac)


def checkpoint_claim(row: Row) -> tuple[int, str] | None:
    """What a (MAC-checked) checkpoint row says was pruned: (last pruned id, its mac)."""
    if row.action != CHECKPOINT:
        return None
    try:
        data = json.loads(row.detail)
        through, mac = int(data["pruned_through"]), str(data["pruned_mac"])
    except (ValueError, KeyError, TypeError):
        return None
    return through, mac


def _broken(rows: int, row_id: int, kind: Kind, ja: str, en: str) -> VerifyResult:
    return VerifyResult(False, rows, bad_id=row_id, kind=kind, message_ja=ja, message_en=en)


def _moved_from(key: bytes, row: Row) -> int | None:
    """The id ``row`` was written at, if it now sits at another (looked for nearby)."""
    for delta in range(1, RENUMBER_WINDOW + 1):
        for other in (row.id - delta, row.id + delta):
            if other > 0 and _mac_ok(key, row, other):
                return other
    return None


class Walk:
    """Check rows fed in id order; the first fault found is returned by ``feed``.

    - altered: the row's MAC does not match its fields (edited, or forged without the key);
    - reordered: the row's MAC matches it only at another id (ids swapped or renumbered), or
      its MAC is right but it does not follow the row before it (rows swapped);
    - removed: the ids skip (the missing id is named), or the oldest rows are gone without a
      checkpoint recording their pruning.
    A pruned chain starts at a row whose ``prev`` is unknown here; it is accepted only if a
    MAC-checked checkpoint row later in the chain records exactly that id and MAC.
    Incremental, so a chain of millions of rows is checked in constant memory.
    """

    def __init__(self, keys: Mapping[str, bytes]) -> None:
        self.keys = keys
        self.count = 0
        self.prev_id: int | None = None
        self.prev_mac = GENESIS
        self.start: tuple[int, str] | None = None  # (last pruned id, its mac) if pruned
        self.claims: set[tuple[int, str]] = set()

    def feed(self, row: Row) -> VerifyResult | None:
        self.count += 1
        count, prev_id = self.count, self.prev_id
        key = self.keys.get(row.key_id)
        if key is None:
            return _broken(count, row.id, "unknown_key",
                           f"ID {row.id} の行は未知の鍵 {row.key_id!r} で署名されています。"
                           "鍵を設定から外していないか確認してください。",
                           f"row {row.id} is signed with an unknown key {row.key_id!r}: "
                           "check that the key was not removed from the settings")
        if prev_id is not None and row.id <= prev_id:
            return _broken(count, row.id, "reordered",
                           f"ID {row.id} の行の順序が不正です。",
                           f"row {row.id} is out of order")
        if not _mac_ok(key, row):
            moved = _moved_from(key, row)
            if moved is not None:
                return _broken(count, row.id, "reordered",
                               f"ID {row.id} の行は本来 ID {moved} の行です。"
                               "行が入れ替えられたか、番号が付け替えられています。",
                               f"row {row.id} was written as row {moved}: rows were "
                               "swapped or renumbered")
            return _broken(count, row.id, "altered",
                           f"ID {row.id} の行が改ざんされています（署名が一致しません）。",
                           f"row {row.id} was altered (its MAC does not match)")
        if prev_id is None and row.id != 1:
            self.start = (row.id - 1, row.prev)  # pruned, or the oldest rows removed: finish()
        elif prev_id is not None and row.id != prev_id + 1:
            missing = prev_id + 1
            return _broken(count, missing, "removed",
                           f"ID {missing} の行が削除されています"
                           f"（ID {prev_id} の次が ID {row.id} です）。",
                           f"row {missing} was removed (row {prev_id} is followed by "
                           f"row {row.id})")
        elif row.prev != self.prev_mac:
            if prev_id is None:
                return _broken(count, row.id, "altered",
                               f"ID {row.id} の行は最初の行ですが、前の行を指しています。",
                               f"row {row.id} is the first row but links to an earlier one")
            return _broken(count, row.id, "reordered",
                           f"ID {row.id} の行は ID {prev_id} の行の次に書かれた行ではありません。"
                           "行が入れ替えられたか、置き換えられています。",
                           f"row {row.id} was not written after row {prev_id}: rows were "
                           "reordered or replaced")
        claim = checkpoint_claim(row)
        if claim is not None:
            self.claims.add(claim)
        self.prev_id, self.prev_mac = row.id, row.mac
        return None

    def finish(self) -> VerifyResult:
        count, start = self.count, self.start
        if start is not None and start not in self.claims:
            first = start[0] + 1
            return _broken(count, start[0], "removed",
                           f"ID {start[0]} までの行が削除されています（記録は ID {first} から"
                           "始まり、保存期間による削除の記録がありません）。",
                           f"row {start[0]} and any before it were removed (the log starts "
                           f"at row {first} and no checkpoint records a prune)")
        return VerifyResult(True, count, head_id=self.prev_id,
                            head_mac=None if self.prev_id is None else self.prev_mac,
                            pruned_through=None if start is None else start[0],
                            message_ja=f"正常: {count} 行を検証しました。",
                            message_en=f"ok: {count} rows")


def walk(rows: Iterable[Row], keys: Mapping[str, bytes]) -> VerifyResult:
    """Check ``rows`` (in id order) and name the first one at fault (see ``Walk``)."""
    walker = Walk(keys)
    for row in rows:
        broken = walker.feed(row)
        if broken is not None:
            return broken
    return walker.finish()
