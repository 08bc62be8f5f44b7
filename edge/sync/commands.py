"""Hub commands: dedupe by id, refuse expired ones, run ``issue``, build replies.

A command id is remembered (with its reply) for 24 h, the last few hundred of them also in
``meta``, so a redelivered or retried command is answered again with the same reply instead of
issuing a second ticket. An id is recorded *before* the command runs: a crash in between loses
the command (the hub retries or tells the resident) rather than running it twice.
"""

from __future__ import annotations

import json
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from edge import protocol
from edge.domain.commands import Issue
from edge.protocol import SYNC_VERSION, WireError
from edge.store.store import EventStore, StoreError
from edge.store.writer import Writer
from edge.web.schemas import IssueBody

_LOGGER = logging.getLogger(__name__)

META_SEEN = "sync.commands_seen"

_TEXTS = {
    "expired": ("The command expired before it reached the office",
                "コマンドは窓口に届く前に有効期限が切れました"),
    "bad_command": ("The command is malformed", "コマンドの形式が正しくありません"),
    "unknown_command": ("Unknown command type", "不明なコマンドです"),
    "store_error": ("The office could not save the ticket", "窓口で発券を保存できませんでした"),
    "interrupted": ("The office restarted while running the command; its outcome is unknown",
                    "コマンドの実行中に窓口の端末が再起動したため、結果が不明です"),
}


@dataclass(frozen=True, slots=True)
class Command:
    id: str
    type: str
    expires_at: datetime | None
    data: dict[str, Any]


def parse(raw: dict[str, Any]) -> Command | str | None:
    """A command; a problem text when only its id is usable; None when it has no usable id.

    The shape is ``edge.protocol.Command`` (what the hub builds with); the problem text names
    the field and rule only.
    """
    cid = raw.get("id")
    if not isinstance(cid, str) or not protocol.WIRE_ID.match(cid):
        return None
    try:
        msg = protocol.Command.from_raw(raw)
    except WireError as exc:
        return str(exc)
    expires = None if msg.expires_at is None else datetime.fromisoformat(msg.expires_at)
    return Command(msg.id, msg.type, expires, msg.data)


def reply(site: str, command_id: str, *, data: dict[str, Any] | None = None,
          code: str | None = None, message: str | None = None,
          message_ja: str | None = None) -> dict[str, Any]:
    """``{v, site, command_id, ok, data | error}``; an error when ``code`` is given.

    Built with ``edge.protocol.Reply``; should that refuse it (a bug), the hand-built reply is
    sent and logged, so the hub still learns the command's outcome.
    """
    out: dict[str, Any] = {"v": SYNC_VERSION, "site": site, "command_id": command_id}
    if code is None:
        out.update(ok=True, data=data or {})
    else:
        en, ja = _TEXTS.get(code, ("", ""))
        out.update(ok=False, error={"code": code, "message": message or en,
                                    "message_ja": message_ja or ja or en})
    try:
        return protocol.Reply.from_raw(out).to_wire()
    except WireError as exc:
        _LOGGER.error("reply to command %s does not fit the wire model: %s", command_id, exc)
        return out


async def issue(writer: Writer, site: str, cmd: Command) -> dict[str, Any]:
    """A web ticket: ``data`` has the ``POST /api/tickets`` fields, channel ``web`` by default."""
    try:
        body = IssueBody.model_validate({"channel": "web", **cmd.data})
    except ValidationError as exc:
        fields = ", ".join(".".join(str(p) for p in e["loc"]) for e in exc.errors())
        return reply(site, cmd.id, code="bad_command",
                     message=f"invalid issue fields: {fields}",
                     message_ja=f"発券の項目が正しくありません: {fields}")
    try:
        outcome = await writer.execute(
            Issue(body.service, body.channel, body.lang, body.priority, body.kiosk))
    except StoreError:
        _LOGGER.exception("web ticket command %s: store error", cmd.id)
        return reply(site, cmd.id, code="store_error")
    if outcome.refused is not None:
        r = outcome.refused
        return reply(site, cmd.id, code=r.code, message=r.message, message_ja=r.message_ja)
    return reply(site, cmd.id, data={"ticket": outcome.ticket})


class Seen:
    """Command ids handled in the last ``ttl_s``, newest last, with their replies (or None)."""

    def __init__(self, raw: str | None, now: float, *, ttl_s: float = 86_400,
                 keep: int = 500) -> None:
        self._ttl = ttl_s
        self._keep = keep
        self._items: OrderedDict[str, tuple[float, dict[str, Any] | None]] = OrderedDict()
        try:
            loaded = json.loads(raw) if raw else []
        except ValueError:
            loaded = []
        if isinstance(loaded, list):
            for item in loaded:
                if isinstance(item, list) and len(item) == 3 and isinstance(item[0], str) \
                        and isinstance(item[1], int | float):
                    rep = item[2] if isinstance(item[2], dict) else None
                    self._items[item[0]] = (float(item[1]), rep)
        self.prune(now)

    def prune(self, now: float) -> None:
        while self._items:
            cid, (at, _r) = next(iter(self._items.items()))
            if now - at <= self._ttl and len(self._items) <= self._keep:
                break
            del self._items[cid]

    def get(self, cid: str) -> tuple[float, dict[str, Any] | None] | None:
        return self._items.get(cid)

    def add(self, cid: str, now: float, result: dict[str, Any] | None = None) -> None:
        at = self._items[cid][0] if cid in self._items else now
        self._items[cid] = (at, result)
        self._items.move_to_end(cid)
        self.prune(now)

    def dump(self) -> str:
        return json.dumps([[k, at, r] for k, (at, r) in self._items.items()],
                          ensure_ascii=False, separators=(",", ":"))

    def __len__(self) -> int:
        return len(self._items)


RunDb = Callable[[Callable[[EventStore], None]], Awaitable[None]]


class Desk:
    """Receives commands: dedupe, expiry, dispatch, reply (through ``send``)."""

    def __init__(self, writer: Writer, site: str, run_db: RunDb,
                 send: Callable[[dict[str, Any]], None],
                 replay: Callable[[int], Awaitable[int]], now: Callable[[], datetime]) -> None:
        self.writer = writer
        self.site = site
        self.seen = Seen(None, time.time())
        self.handled = 0
        self.duplicates = 0
        self._run_db = run_db
        self._send = send
        self._replay = replay
        self._now = now
        self._running: set[str] = set()

    async def handle(self, raw: dict[str, Any]) -> None:
        cmd = parse(raw)
        if cmd is None:
            _LOGGER.warning("dropped command without a usable id")
            return
        cid: str = raw["id"]
        seen = self.seen.get(cid)
        if seen is not None:
            self.duplicates += 1
            if cid not in self._running:  # running: its reply is on the way
                self._send(seen[1] or reply(self.site, cid, code="interrupted"))
            return
        self.seen.add(cid, time.time())
        self._running.add(cid)
        try:
            if isinstance(cmd, str):
                rep = reply(self.site, cid, code="bad_command", message=cmd)
            elif cmd.expires_at is not None and cmd.expires_at <= self._now():
                rep = reply(self.site, cid, code="expired")
            elif cmd.type == "issue":
                await self._save()  # before the ticket exists: never issue it twice
                rep = await issue(self.writer, self.site, cmd)
            elif cmd.type == "replay":
                rep = await self._start_replay(cmd)
            else:
                rep = reply(self.site, cid, code="unknown_command")
            self.seen.add(cid, time.time(), rep)
            self.handled += 1
            await self._save()
        finally:
            self._running.discard(cid)
        self._send(rep)

    async def _save(self) -> None:
        dump = self.seen.dump()
        await self._run_db(lambda st: st.set_meta(META_SEEN, dump))

    async def _start_replay(self, cmd: Command) -> dict[str, Any]:
        try:
            data = protocol.ReplayData.from_raw(cmd.data)
        except WireError:
            return reply(self.site, cmd.id, code="bad_command",
                         message="from_seq must be a non-negative integer",
                         message_ja="from_seq は 0 以上の整数で指定してください")
        start = max(data.from_seq, 1)
        upto = await self._replay(start)
        return reply(self.site, cmd.id, data={"from_seq": start, "to_seq": upto})
