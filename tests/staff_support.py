"""Staff sessions for tests that call staff routes: make an account, sign it in, return its
cookie (``{"madoguchi_staff": sid}``) for ``aiohttp.ClientSession(cookies=…)`` or a request's
``cookies=``. Administrators are enrolled in TOTP on the way (MFA is required for them)."""

from __future__ import annotations

import secrets
from urllib.parse import parse_qs, urlparse

import pyotp

from hub.auth import mfa, service
from hub.auth.guard import COOKIE
from hub.settings import HubSettings
from hub.store import HubStore

PASSWORD = "correct horse battery staple"


def totp_secret(uri: str) -> str:
    """The base32 secret of an ``otpauth://`` URI."""
    return parse_qs(urlparse(uri).query)["secret"][0]


async def staff_cookie(store: HubStore, settings: HubSettings, role: str = "ward_staff",
                       site: str = "*", login: str | None = None,
                       password: str = PASSWORD) -> dict[str, str]:
    """A new account with ``role`` at ``site``, signed in; its session cookie."""
    login = login or f"{role}-{secrets.token_hex(3)}"
    await service.create_staff(store, login, password, grants=[(site, role)])
    result = await service.login(store, settings, login, password, "127.0.0.1")
    assert result.sid is not None, result
    if result.outcome == "enrol":
        partial = await service.session(store, settings, result.sid)
        assert partial is not None
        uri = await mfa.start_enrolment(store, settings, partial)
        code = pyotp.TOTP(totp_secret(uri)).now()
        assert await mfa.confirm_enrolment(store, settings, partial, code, "127.0.0.1")
    else:
        assert result.outcome == "ok", result
    return {COOKIE: result.sid}


_AT: dict[str, dict[str, str]] = {}


async def staff_cookie_at(db_url: str) -> dict[str, str]:
    """A ward-staff session in the hub database at ``db_url`` (for hubs run as a separate
    process); one per database, reused."""
    if db_url not in _AT:
        store = await HubStore.open(db_url)
        try:
            _AT[db_url] = await staff_cookie(store, HubSettings.from_env())
        finally:
            await store.close()
    return _AT[db_url]
