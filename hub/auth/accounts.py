"""Account administration (admins only, enforced by the routes' access level): list, disable,
roles per site, reset MFA. Every change goes to the audit trail."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, insert, select, update

from hub.auth.service import AccountError, _check_grants, audit, parse_networks, writing
from hub.auth.tables import staff, staff_recovery, staff_roles, staff_sessions
from hub.settings import HubSettings
from hub.store import HubStore


async def list_staff(store: HubStore) -> list[dict[str, Any]]:
    """Every account with its grants; no hash or secret leaves this function."""
    async with store.read() as tx:
        rows = (await tx.conn.execute(select(
            staff.c.id, staff.c.login, staff.c.name, staff.c.disabled, staff.c.networks,
            staff.c.locked_until, staff.c.last_login_at,
            staff.c.totp_sealed.is_not(None).label("mfa")).order_by(staff.c.login))).all()
        grants = (await tx.conn.execute(select(staff_roles))).all()
    by_id: dict[str, list[tuple[str, str]]] = {}
    for g in grants:
        by_id.setdefault(str(g.staff_id), []).append((str(g.site), str(g.role)))
    return [{**r._asdict(), "grants": sorted(by_id.get(str(r.id), []))} for r in rows]


async def one(store: HubStore, staff_id: str) -> dict[str, Any] | None:
    return next((a for a in await list_staff(store) if a["id"] == staff_id), None)


async def set_disabled(store: HubStore, settings: HubSettings, actor: str, staff_id: str,
                       disabled: bool, ip: str) -> None:
    if actor == staff_id and disabled:
        raise AccountError("you cannot disable your own account")
    async with writing(store) as tx:
        await tx.conn.execute(update(staff).where(staff.c.id == staff_id).values(
            disabled=disabled))
        if disabled:
            await tx.conn.execute(delete(staff_sessions).where(
                staff_sessions.c.staff_id == staff_id))
    await audit(store, settings, actor=actor, action="account_disabled" if disabled
                else "account_enabled", target=staff_id, ip=ip)


async def set_grants(store: HubStore, settings: HubSettings, actor: str, staff_id: str,
                     grants: Sequence[tuple[str, str]], networks: str, ip: str) -> None:
    _check_grants(grants)
    parse_networks(networks)
    if actor == staff_id and ("*", "admin") not in grants:
        raise AccountError("you cannot remove your own administrator role")
    async with writing(store) as tx:
        await tx.conn.execute(delete(staff_roles).where(staff_roles.c.staff_id == staff_id))
        for site, role in sorted(set(grants)):
            await tx.conn.execute(insert(staff_roles).values(staff_id=staff_id, site=site,
                                                             role=role))
        await tx.conn.execute(update(staff).where(staff.c.id == staff_id).values(
            networks=networks.strip()))
    await audit(store, settings, actor=actor, action="role_changed", target=staff_id, ip=ip,
                detail={"grants": [f"{s}:{r}" for s, r in sorted(set(grants))],
                        "networks": networks.strip()})


async def reset_mfa(store: HubStore, settings: HubSettings, actor: str, staff_id: str,
                    ip: str) -> None:
    """Forget the account's TOTP and recovery codes and end its sessions: it enrols again at
    its next login (required for privileged roles)."""
    async with writing(store) as tx:
        await tx.conn.execute(update(staff).where(staff.c.id == staff_id).values(
            totp_sealed=None, totp_pending=None))
        await tx.conn.execute(delete(staff_recovery).where(
            staff_recovery.c.staff_id == staff_id))
        await tx.conn.execute(delete(staff_sessions).where(
            staff_sessions.c.staff_id == staff_id))
    await audit(store, settings, actor=actor, action="mfa_reset", target=staff_id, ip=ip)
