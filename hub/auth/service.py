"""Staff accounts, logins and sessions: the rules, without aiohttp (time from ``now_utc``).

A login is two or three steps, each leaving a session row whose ``stage`` says what is still
owed: ``mfa`` (password ok, TOTP or recovery code next), ``enrol`` (password ok, a privileged role
without TOTP: enrol now), ``ok`` (fully logged in). Only the SHA-256 of a session id is stored, so
a copy of the database opens no session. Lockouts count failures per account and per client
address; a locked account answers exactly like a wrong password plus a lockout notice.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import logging
import secrets
import uuid
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal
from weakref import WeakKeyDictionary

from sqlalchemy import delete, insert, select, update

from hub.auth import passwords
from hub.auth.access import ANY_SITE, ROLES, needs_mfa
from hub.auth.tables import login_failures, staff, staff_roles, staff_sessions
from hub.settings import HubSettings
from hub.store import HubStore, Tx
from hub.store.store import now_utc

_LOGGER = logging.getLogger(__name__)

Outcome = Literal["ok", "mfa", "enrol", "bad", "locked"]


SEEN_EVERY_S = 15  # a session's last activity is written at most this often (idle precision)
_LOCKS: WeakKeyDictionary[HubStore, asyncio.Lock] = WeakKeyDictionary()


@asynccontextmanager
async def writing(store: HubStore) -> AsyncIterator[Tx]:
    """A write transaction; on SQLite, writers of this process queue on an asyncio lock
    instead of SQLite's sleeping busy handler (which turned a burst of 50 sign-ins into seconds
    of back-off). PostgreSQL writers run concurrently."""
    if store.dialect != "sqlite":
        async with store.begin() as tx:
            yield tx
        return
    lock = _LOCKS.setdefault(store, asyncio.Lock())
    async with lock, store.begin() as tx:
        yield tx


class AccountError(ValueError):
    """An account change that cannot be made (duplicate login, unknown role, bad range)."""


@dataclass(frozen=True)
class Session:
    """A live session as the web layer sees it (``sid``: the raw id, memory only)."""

    sid: str
    staff_id: str
    login: str
    name: str
    stage: str
    grants: tuple[tuple[str, str], ...]
    prev_login_at: datetime | None
    prev_logout_at: datetime | None
    prev_failed: int

    @property
    def csrf(self) -> str:
        return csrf_token(self.sid)


@dataclass(frozen=True)
class LoginResult:
    outcome: Outcome
    sid: str | None = None
    staff_id: str | None = None


def hash_sid(sid: str) -> str:
    return hashlib.sha256(sid.encode()).hexdigest()


def csrf_token(sid: str) -> str:
    """Synchronizer token bound to the session: derived from its id, so nothing more is
    stored, and it reveals nothing about the id."""
    return hmac.new(sid.encode(), b"madoguchi/csrf/v1", hashlib.sha256).hexdigest()


def csrf_ok(sid: str, token: str | None) -> bool:
    return token is not None and hmac.compare_digest(csrf_token(sid), token)


def parse_networks(text: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """``"10.0.0.0/8, 192.168.1.0/24"`` -> networks; raises AccountError naming a bad one."""
    nets = []
    for part in filter(None, (p.strip() for p in text.replace("\n", ",").split(","))):
        try:
            nets.append(ipaddress.ip_network(part, strict=False))
        except ValueError:
            raise AccountError(f"not an address range: {part!r}") from None
    return tuple(nets)


def address_allowed(networks: str, ip: str | None) -> bool:
    nets = parse_networks(networks)
    if not nets:
        return True
    try:
        addr = ipaddress.ip_address(ip or "")
    except ValueError:
        return False
    return any(addr in n for n in nets)


def _totp_row(staff_id: str) -> str:
    return f"staff-totp:{staff_id}"  # the sealed secret opens only on its own account


async def audit(store: HubStore, settings: HubSettings, *, actor: str | None, action: str,
                target: str | None = None, ip: str | None = None,
                detail: dict[str, Any] | None = None) -> None:
    """Append to the audit trail (hub.audit); until that module is complete this is a no-op."""
    try:
        from hub.audit.service import audit_key, record

        key, key_id = audit_key(settings)
        await record(store, actor=actor, action=action, target=target, detail=detail, ip=ip,
                     key=key, key_id=key_id)
    except (ImportError, NotImplementedError):
        _LOGGER.debug("audit trail not available; %s not recorded", action)


async def create_staff(store: HubStore, login: str, password: str, name: str = "",
                       grants: Iterable[tuple[str, str]] = (), networks: str = "") -> str:
    login = login.strip()
    if not login or len(login) > 64 or any(c.isspace() for c in login):
        raise AccountError("login ID: 1-64 characters without spaces")
    if len(password) < 12:
        raise AccountError("password: at least 12 characters")
    parse_networks(networks)
    grants = tuple(grants)
    _check_grants(grants)
    hashed = await passwords.hash_async(password)
    sid = str(uuid.uuid4())
    async with writing(store) as tx:
        if (await tx.conn.execute(select(staff.c.id).where(staff.c.login == login))).first():
            raise AccountError(f"login ID {login!r} is taken")
        await tx.conn.execute(insert(staff).values(
            id=sid, login=login, name=name or login, password_hash=hashed, disabled=False,
            networks=networks.strip(), failed=0, failed_since_login=0, created_at=now_utc()))
        for site, role in grants:
            await tx.conn.execute(insert(staff_roles).values(staff_id=sid, site=site, role=role))
    return sid


def _check_grants(grants: Sequence[tuple[str, str]]) -> None:
    for site, role in grants:
        if role not in ROLES:
            raise AccountError(f"unknown role {role!r}")
        if role == "admin" and site != ANY_SITE:
            raise AccountError("the administrator role covers every site (*)")
        if not site or len(site) > 64:
            raise AccountError("site: 1-64 characters, or *")


async def grants_of(store: HubStore, staff_id: str) -> tuple[tuple[str, str], ...]:
    async with store.read() as tx:
        rows = (await tx.conn.execute(select(staff_roles.c.site, staff_roles.c.role).where(
            staff_roles.c.staff_id == staff_id).order_by(staff_roles.c.site,
                                                          staff_roles.c.role))).all()
    return tuple((str(r[0]), str(r[1])) for r in rows)


async def _address_failed(store: HubStore, settings: HubSettings, ip: str, now: datetime) -> bool:
    """Count a failure from ``ip``; True when that locks the address."""
    async with writing(store) as tx:
        row = (await tx.conn.execute(select(login_failures.c.failed).where(
            login_failures.c.address == ip))).first()
        count = (int(row[0]) if row else 0) + 1
        locked = count >= settings.address_max_failures
        values = {"failed": 0 if locked else count, "updated_at": now,
                  "locked_until": now + timedelta(seconds=settings.lockout_s) if locked else None}
        if row is None:
            await tx.conn.execute(insert(login_failures).values(address=ip, **values))
        else:
            await tx.conn.execute(update(login_failures).where(
                login_failures.c.address == ip).values(**values))
    return locked


async def login(store: HubStore, settings: HubSettings, login_id: str, password: str,
                ip: str) -> LoginResult:
    """Check an ID and password; on success open a session at the stage still owed."""
    now = now_utc()
    async with store.read() as tx:  # one read for the address lock, account and its roles
        blocked = (await tx.conn.execute(select(login_failures.c.locked_until).where(
            login_failures.c.address == ip, login_failures.c.locked_until > now))).first()
        row = (await tx.conn.execute(select(staff).where(staff.c.login == login_id))).first()
        grants = tuple((str(g[0]), str(g[1])) for g in (await tx.conn.execute(
            select(staff_roles.c.site, staff_roles.c.role).where(
                staff_roles.c.staff_id == row.id))).all()) if row is not None else ()
    if blocked is not None:
        await passwords.check_async(None, password)
        return LoginResult("locked")
    account = row._asdict() if row is not None else None
    ok = await passwords.check_async(account["password_hash"] if account else None, password)
    if account is not None and account["locked_until"] is not None \
            and account["locked_until"] > now:
        return LoginResult("locked")
    if account is None or not ok or account["disabled"] \
            or not address_allowed(account["networks"], ip):
        return await _failed(store, settings, account, login_id, ip, now)
    stage: Outcome = "mfa" if account["totp_sealed"] else (
        "enrol" if needs_mfa(grants) else "ok")
    sid = secrets.token_urlsafe(32)
    async with writing(store) as tx:
        await tx.conn.execute(insert(staff_sessions).values(
            id_hash=hash_sid(sid), staff_id=account["id"], stage=stage, created_at=now,
            seen_at=now, ip=ip[:64], prev_login_at=account["last_login_at"],
            prev_logout_at=account["last_logout_at"],
            prev_failed=account["failed_since_login"]))
        if stage == "ok":
            await _mark_login(tx.conn, account["id"], now)
    if stage == "ok":
        await audit(store, settings, actor=account["id"], action="login", ip=ip)
    return LoginResult(stage, sid, account["id"])


async def _mark_login(conn: Any, staff_id: str, now: datetime) -> None:
    await conn.execute(update(staff).where(staff.c.id == staff_id).values(
        failed=0, failed_since_login=0, locked_until=None, last_login_at=now))


async def _failed(store: HubStore, settings: HubSettings, account: dict[str, Any] | None,
                  login_id: str, ip: str, now: datetime) -> LoginResult:
    locked = await _address_failed(store, settings, ip, now)
    if account is not None:
        count = int(account["failed"]) + 1
        account_locked = count >= settings.login_max_failures
        async with writing(store) as tx:
            await tx.conn.execute(update(staff).where(staff.c.id == account["id"]).values(
                failed=0 if account_locked else count,
                failed_since_login=staff.c.failed_since_login + 1,
                locked_until=now + timedelta(seconds=settings.lockout_s)
                if account_locked else account["locked_until"]))
        locked = locked or account_locked
    target = account["id"] if account is not None else None
    await audit(store, settings, actor=None, action="login_failed", target=target, ip=ip,
                detail=None if account is not None else {"known": False})
    if locked:
        await audit(store, settings, actor=None, action="lockout", target=target, ip=ip)
    return LoginResult("locked" if locked else "bad")


async def session(store: HubStore, settings: HubSettings, sid: str | None) -> Session | None:
    """The live session for a cookie value, or None (unknown, idle or too old: then removed).
    Touches ``seen_at`` so that activity keeps it alive."""
    if not sid or len(sid) > 128:
        return None
    now = now_utc()
    key = hash_sid(sid)
    async with store.read() as tx:
        row = (await tx.conn.execute(
            select(staff_sessions, staff.c.login, staff.c.name, staff.c.disabled)
            .join(staff, staff.c.id == staff_sessions.c.staff_id)
            .where(staff_sessions.c.id_hash == key))).first()
    if row is None:
        return None
    r = row._asdict()
    expired = (now - r["seen_at"] > timedelta(seconds=settings.session_idle_s)
               or now - r["created_at"] > timedelta(seconds=settings.session_absolute_s))
    if expired or r["disabled"]:
        async with writing(store) as tx:
            await tx.conn.execute(delete(staff_sessions).where(staff_sessions.c.id_hash == key))
        return None
    if now - r["seen_at"] > timedelta(seconds=SEEN_EVERY_S):
        async with writing(store) as tx:
            await tx.conn.execute(update(staff_sessions).where(
                staff_sessions.c.id_hash == key).values(seen_at=now))
    grants = await grants_of(store, r["staff_id"])
    return Session(sid, r["staff_id"], r["login"], r["name"], r["stage"], grants,
                   r["prev_login_at"], r["prev_logout_at"], int(r["prev_failed"]))


async def logout(store: HubStore, settings: HubSettings, current: Session, ip: str) -> None:
    now = now_utc()
    async with writing(store) as tx:
        await tx.conn.execute(delete(staff_sessions).where(
            staff_sessions.c.id_hash == hash_sid(current.sid)))
        if current.stage == "ok":
            await tx.conn.execute(update(staff).where(staff.c.id == current.staff_id).values(
                last_logout_at=now))
    await audit(store, settings, actor=current.staff_id, action="logout", ip=ip)


async def _promote(store: HubStore, settings: HubSettings, current: Session, ip: str) -> None:
    async with writing(store) as tx:
        await tx.conn.execute(update(staff_sessions).where(
            staff_sessions.c.id_hash == hash_sid(current.sid)).values(stage="ok"))
        await _mark_login(tx.conn, current.staff_id, now_utc())
    await audit(store, settings, actor=current.staff_id, action="login", ip=ip)
