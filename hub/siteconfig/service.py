"""Publishing a site's settings from the editor: the version check, the push, the audit row.
No aiohttp: the routes call these with the runtime's store, ingest and settings.

Why the version check happens inside the storing transaction: two staff may open the same
site, edit, and publish seconds apart. Each form carries the version it was based on; the
store computes the next version in the transaction that inserts it, and a draft based on an
older version is refused there (``Conflict``), never stored over the other's edit. The second
person keeps their draft on screen with the other's change shown, and decides.
"""

from __future__ import annotations

import datetime as _dt
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from edge.config import ConfigError, Problem
from hub.audit.service import append, audit_key, record
from hub.audit.tables import audit_log
from hub.configs import check_config, with_version
from hub.ingest import Ingest
from hub.settings import HubSettings
from hub.store import HubStore
from hub.store.schema import site_configs

PUBLISHED = "config_published"
ROLLED_BACK = "config_rolled_back"
REFUSED = "config_conflict"


class Conflict(Exception):
    """The live version moved on since the draft was started."""

    def __init__(self, base: int, live: int) -> None:
        super().__init__(f"draft based on v{base}, live is v{live}")
        self.base = base
        self.live = live


@dataclass(frozen=True)
class Version:
    version: int
    created_at: _dt.datetime
    actor: str | None  # staff id of who published it from the editor (None: CLI / file)
    action: str | None  # PUBLISHED or ROLLED_BACK (None: not from the editor)
    rollback_of: int | None


def problems(site: str, text: str) -> list[Problem]:
    """Every problem ``madoguchi config check`` would report (the same parser), plus a file
    for another site."""
    try:
        check_config(site, text, "editor")
    except ConfigError as exc:
        return exc.problems
    return []


async def live(store: HubStore, site: str) -> tuple[int, str] | None:
    return await store.config(site)


async def publish(store: HubStore, ingest: Ingest | None, settings: HubSettings, site: str,
                  text: str, *, base: int, actor: str, ip: str | None,
                  rollback_of: int | None = None) -> int:
    """Store ``text`` as version ``base + 1`` and push it (retained) to the site; audited.
    Raises ``ConfigError`` (nothing stored) or ``Conflict`` (nothing stored; audited too)."""
    found = problems(site, text)
    if found:
        raise ConfigError("editor", found)

    key, key_id = audit_key(settings)
    action = ROLLED_BACK if rollback_of is not None else PUBLISHED
    try:
        async with store.begin() as tx:  # the version, its text and its audit row: all or none
            version = await tx.next_config_version(site)
            if version != base + 1:
                raise Conflict(base, version - 1)
            body = with_version(text, version)
            await tx.add_config(site, version, body)
            detail: dict[str, Any] = {"site": site, "version": version, "base": base}
            if rollback_of is not None:
                detail["rollback_of"] = rollback_of
            await append(tx, actor=actor, action=action, target=site, detail=detail, ip=ip,
                         key=key, key_id=key_id)
    except IntegrityError:  # the other publish won the same version number (PostgreSQL)
        latest = await store.config(site)
        conflict: Conflict | None = Conflict(base, latest[0] if latest else base + 1)
    except Conflict as exc:
        conflict = exc
    else:
        conflict = None
    if conflict is not None:
        await record(store, actor=actor, action=REFUSED, target=site,
                     detail={"site": site, "base": conflict.base, "live": conflict.live},
                     ip=ip, key=key, key_id=key_id)
        raise conflict
    if ingest is not None:
        ingest.publish_config(site, version, body)
        await ingest.refold(site)
    return version


async def versions(store: HubStore, site: str, limit: int = 50) -> list[Version]:
    """The site's versions, newest first, with who published each from the editor (from the
    audit trail: the one record of who did what)."""
    async with store.read() as tx:
        rows = (await tx.conn.execute(
            select(site_configs.c.version, site_configs.c.created_at)
            .where(site_configs.c.site == site)
            .order_by(site_configs.c.version.desc()).limit(limit))).all()
        audits = (await tx.conn.execute(
            select(audit_log.c.actor, audit_log.c.action, audit_log.c.detail)
            .where(audit_log.c.target == site)
            .where(audit_log.c.action.in_((PUBLISHED, ROLLED_BACK))))).all()
    who: dict[int, tuple[str | None, str, int | None]] = {}
    for actor, action, detail in audits:
        d = _detail(detail)
        if isinstance(d.get("version"), int):
            back = d.get("rollback_of")
            who[d["version"]] = (actor, action, back if isinstance(back, int) else None)
    out = []
    for version, created in rows:
        actor, action, back = who.get(int(version), (None, None, None))
        out.append(Version(int(version), created, actor, action, back))
    return out


def _detail(raw: str) -> Mapping[str, Any]:
    try:
        value = json.loads(raw)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
