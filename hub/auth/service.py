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
import secrets
import uuid
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal
from weakref import WeakKeyDictionary

from sqlalchemy import delete, exists, insert, select, update

from hub.audit import service as audit_trail
from hub.auth import passwords
from hub.auth.access import ANY_SITE, PRIVILEGED, ROLES
from hub.auth.tables import login_failures, staff, staff_roles, staff_sessions
from hub.settings import HubSettings
from hub.store import HubStore, Tx
from hub.store.store import now_utc

Outcome = Literal["ok", "mfa", "enrol", "bad", "locked"]


SEEN_EVERY_S = 15  # a session's last activity is written at most this often (idle precision)
_LOCKS: WeakKeyDictionary[HubStore, asyncio.Lock] = WeakKeyDictionary()
# sign-ins in progress at once (the rest wait in line, first come first served): enough to keep
# every argon2 worker busy while others read or write, few enough (4 on a 2-core hub) that a
# burst stays within the database pool's 5 kept connections instead of opening, and closing again,
# a PostgreSQL connection for every sign-in waiting for the hash
IN_FLIGHT = 2 * passwords.WORKERS
_GATES: WeakKeyDictionary[HubStore, asyncio.Semaphore] = WeakKeyDictionary()


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
    """Compared as bytes: ``compare_digest`` refuses non-ASCII text with a TypeError, and a
    forged token must get a 403, not a 500."""
    return token is not None and same_secret(csrf_token(sid), token)


def same_secret(expected: str, given: str) -> bool:
    """Constant-time comparison of two texts of any characters."""
    return hmac.compare_digest(expected.encode("utf-8", "surrogatepass"),
                               given.encode("utf-8", "surrogatepass"))


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
    """Append to the audit trail (``hub.audit``) in a transaction of its own."""
    async with writing(store) as tx:
        await audit_in(tx, settings, actor=actor, action=action, target=target, ip=ip,
                       detail=detail)


async def audit_in(tx: Tx, settings: HubSettings, *, actor: str | None, action: str,
                   target: str | None = None, ip: str | None = None,
                   detail: dict[str, Any] | None = None) -> None:
    """Append to the audit trail inside the caller's write transaction: the change and its
    audit row commit together or not at all, and a sign-in costs one transaction, not two."""
    key, key_id = audit_trail.audit_key(settings)
    await audit_trail.append(tx, actor=actor, action=action, target=target, detail=detail,
                             ip=ip, key=key, key_id=key_id)


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


async def _address_failed(tx: Tx, settings: HubSettings, ip: str, now: datetime) -> bool:
    """Count a failure from ``ip``; True when that locks the address. One upsert that adds 1
    in the database, so failures posted in parallel are each counted (a read-then-write would
    let a parallel guesser's failures overwrite each other and never reach the limit)."""
    upsert = tx.insert(login_failures).values(
        address=ip, failed=1, locked_until=None, updated_at=now)
    count = (await tx.conn.execute(upsert.on_conflict_do_update(
        index_elements=[login_failures.c.address],
        set_={"failed": login_failures.c.failed + 1, "updated_at": now})
        .returning(login_failures.c.failed))).scalar_one()
    if count < settings.address_max_failures:
        return False
    await tx.conn.execute(update(login_failures).where(login_failures.c.address == ip).values(
        failed=0, locked_until=now + timedelta(seconds=settings.lockout_s)))
    return True


async def _account_failed(tx: Tx, settings: HubSettings, staff_id: str, now: datetime) -> bool:
    """Count a failure of an account (added in the database, as for addresses); True when that
    locks it."""
    count = (await tx.conn.execute(update(staff).where(staff.c.id == staff_id).values(
        failed=staff.c.failed + 1, failed_since_login=staff.c.failed_since_login + 1)
        .returning(staff.c.failed))).scalar_one()
    if count < settings.login_max_failures:
        return False
    await tx.conn.execute(update(staff).where(staff.c.id == staff_id).values(
        failed=0, locked_until=now + timedelta(seconds=settings.lockout_s)))
    return True


_PRIVILEGED = exists().where(staff_roles.c.staff_id == staff.c.id,
                             staff_roles.c.role.in_(sorted(PRIVILEGED))).label("privileged")


async def login(store: HubStore, settings: HubSettings, login_id: str, password: str,
                ip: str) -> LoginResult:
    """Check an ID and password; on success open a session at the stage still owed.

    The database work of a sign-in is one read (the address lock; the account and whether a
    role of it needs MFA) before the argon2id check and one write transaction after it (the
    session, the account's sign-in time, a re-hash at the current cost when the stored hash is
    older, and the audit row), so the hash, which is most of the cost, is what a burst of
    sign-ins queues on (``IN_FLIGHT`` at a time)."""
    async with _GATES.setdefault(store, asyncio.Semaphore(IN_FLIGHT)):
        return await _login(store, settings, login_id, password, ip)


async def _login(store: HubStore, settings: HubSettings, login_id: str, password: str,
                 ip: str) -> LoginResult:
    now = now_utc()
    async with store.read() as tx:
        blocked = (await tx.conn.execute(select(login_failures.c.locked_until).where(
            login_failures.c.address == ip, login_failures.c.locked_until > now))).first()
        row = (await tx.conn.execute(select(staff, _PRIVILEGED).where(
            staff.c.login == login_id))).first()
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
    rehashed = await passwords.hash_async(password) \
        if passwords.needs_rehash(account["password_hash"]) else None
    stage: Outcome = "mfa" if account["totp_sealed"] else (
        "enrol" if account["privileged"] else "ok")
    sid = secrets.token_urlsafe(32)
    async with writing(store) as tx:
        await tx.conn.execute(insert(staff_sessions).values(
            id_hash=hash_sid(sid), staff_id=account["id"], stage=stage, created_at=now,
            seen_at=now, ip=ip[:64], prev_login_at=account["last_login_at"],
            prev_logout_at=account["last_logout_at"],
            prev_failed=account["failed_since_login"]))
        if rehashed is not None:
            await tx.conn.execute(update(staff).where(staff.c.id == account["id"]).values(
                password_hash=rehashed))
        if stage == "ok":
            await _mark_login(tx.conn, account["id"], now)
            await audit_in(tx, settings, actor=account["id"], action="login", ip=ip)
    return LoginResult(stage, sid, account["id"])


async def _mark_login(conn: Any, staff_id: str, now: datetime) -> None:
    await conn.execute(update(staff).where(staff.c.id == staff_id).values(
        failed=0, failed_since_login=0, locked_until=None, last_login_at=now))


async def _failed(store: HubStore, settings: HubSettings, account: dict[str, Any] | None,
                  login_id: str, ip: str, now: datetime) -> LoginResult:
    """Count the failure against the address and the account, with its audit rows, in one
    transaction."""
    target = account["id"] if account is not None else None
    async with writing(store) as tx:
        locked = await _address_failed(tx, settings, ip, now)
        if account is not None:
            locked = await _account_failed(tx, settings, account["id"], now) or locked
        await audit_in(tx, settings, actor=None, action="login_failed", target=target, ip=ip,
                       detail=None if account is not None else {"known": False})
        if locked:
            await audit_in(tx, settings, actor=None, action="lockout", target=target, ip=ip)
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
        grants = tuple((str(g[0]), str(g[1])) for g in (await tx.conn.execute(
            select(staff_roles.c.site, staff_roles.c.role)
            .where(staff_roles.c.staff_id == r["staff_id"])
            .order_by(staff_roles.c.site, staff_roles.c.role))).all())
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
        await audit_in(tx, settings, actor=current.staff_id, action="logout", ip=ip)


async def _promote(store: HubStore, settings: HubSettings, current: Session, ip: str) -> None:
    async with writing(store) as tx:
        await tx.conn.execute(update(staff_sessions).where(
            staff_sessions.c.id_hash == hash_sid(current.sid)).values(stage="ok"))
        await _mark_login(tx.conn, current.staff_id, now_utc())
        await audit_in(tx, settings, actor=current.staff_id, action="login", ip=ip)
