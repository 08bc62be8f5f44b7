"""Hub settings for the resident side, read once from the environment (``MADOGUCHI_*``).

Secrets come from the environment (a systemd ``EnvironmentFile`` in production), never from the
database. With no keys configured (the demo) a random key is made for this process only, and a
warning says that registered contacts cannot be read after a restart.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field

_LOGGER = logging.getLogger(__name__)


class SettingsError(ValueError):
    """A setting that cannot be used; the message names the variable."""


@dataclass(frozen=True)
class HubSettings:
    public_url: str = "http://127.0.0.1:8090"  # base of links in notices and ticket QR pages
    # AES-256-GCM keys by id; ``key_id`` is the one new data is encrypted with (rotation: add a
    # new key, make it current, keep the old ones until nothing encrypted with them remains)
    keys: dict[str, bytes] = field(default_factory=dict)
    key_id: str = ""
    smtp_url: str | None = None  # smtp://host:port (notices by e-mail); None: e-mail off
    smtp_from: str = "madoguchi@localhost"
    sms_url: str | None = None  # the SMS gateway's HTTP endpoint; None: SMS off
    sms_token: str | None = None
    notice_texts: str | None = None  # staff-edited texts file (TOML); None: the shipped texts
    trust_proxy: bool = False  # take the client address from X-Forwarded-For
    # staff logins (hub/auth/README.md)
    login_max_failures: int = 5  # per account, then locked for ``lockout_s``
    address_max_failures: int = 20  # per client address, then locked for ``lockout_s``
    lockout_s: int = 900
    session_idle_s: int = 1800
    session_absolute_s: int = 12 * 3600
    login_message: str = ""  # shown on the login page (e.g. "authorised staff only")
    cookie_secure: bool | None = None  # None: Secure when public_url is https
    main_site: str | None = None  # listed first on the residents' status page (the main office)

    @property
    def key(self) -> bytes:
        return self.keys[self.key_id]

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> HubSettings:
        env = os.environ if env is None else env
        keys, key_id = parse_keys(env.get("MADOGUCHI_HUB_KEYS", ""))
        if not keys:
            key_id, keys = "ephemeral", {"ephemeral": secrets.token_bytes(32)}
            _LOGGER.warning("MADOGUCHI_HUB_KEYS is not set: a key for this process only is used; "
                            "contacts registered now cannot be read after a restart")
        return cls(
            public_url=env.get("MADOGUCHI_HUB_PUBLIC_URL", cls.public_url).rstrip("/"),
            keys=keys, key_id=key_id,
            smtp_url=env.get("MADOGUCHI_SMTP_URL") or None,
            smtp_from=env.get("MADOGUCHI_SMTP_FROM", cls.smtp_from),
            sms_url=env.get("MADOGUCHI_SMS_URL") or None,
            sms_token=env.get("MADOGUCHI_SMS_TOKEN") or None,
            notice_texts=env.get("MADOGUCHI_NOTICE_TEXTS") or None,
            trust_proxy=env.get("MADOGUCHI_TRUST_PROXY", "") in ("1", "true", "yes"),
            login_max_failures=positive_int(env, "MADOGUCHI_LOGIN_MAX_FAILURES",
                                            cls.login_max_failures),
            address_max_failures=positive_int(env, "MADOGUCHI_ADDRESS_MAX_FAILURES",
                                              cls.address_max_failures),
            lockout_s=positive_int(env, "MADOGUCHI_LOCKOUT_S", cls.lockout_s),
            session_idle_s=positive_int(env, "MADOGUCHI_SESSION_IDLE_S", cls.session_idle_s),
            session_absolute_s=positive_int(env, "MADOGUCHI_SESSION_ABSOLUTE_S",
                                            cls.session_absolute_s),
            login_message=env.get("MADOGUCHI_LOGIN_MESSAGE", ""),
            main_site=env.get("MADOGUCHI_MAIN_SITE") or None,
            cookie_secure=({"1": True, "true": True, "0": False, "false": False}
                           .get(env.get("MADOGUCHI_COOKIE_SECURE", "").lower())),
        )

    @property
    def secure_cookies(self) -> bool:
        """Session cookies carry ``Secure`` when served over TLS (or when told to)."""
        if self.cookie_secure is not None:
            return self.cookie_secure
        return self.public_url.startswith("https://")


def positive_int(env: Mapping[str, str], name: str, default: int) -> int:
    """A whole number of at least 1 from the environment, or ``default`` when unset; a bad
    value stops the start with the variable's name (every module's settings use this)."""
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name}: a whole number, got {raw!r}") from None
    if value < 1:
        raise SettingsError(f"{name}: must be at least 1")
    return value


def parse_keys(text: str) -> tuple[dict[str, bytes], str]:
    """``"k2:BASE64,k1:BASE64"`` -> keys by id and the current id (the first). Each key is 32
    bytes (AES-256), base64-encoded."""
    keys: dict[str, bytes] = {}
    current = ""
    for part in filter(None, (p.strip() for p in text.split(","))):
        kid, sep, b64 = part.partition(":")
        if not sep or not kid.isalnum() or len(kid) > 16:
            raise SettingsError("MADOGUCHI_HUB_KEYS: each entry is ID:BASE64 with an "
                                "alphanumeric ID of up to 16 characters")
        try:
            raw = base64.b64decode(b64, validate=True)
        except (binascii.Error, ValueError):
            raise SettingsError(f"MADOGUCHI_HUB_KEYS: key {kid!r} is not base64") from None
        if len(raw) != 32:
            raise SettingsError(f"MADOGUCHI_HUB_KEYS: key {kid!r} must be 32 bytes, "
                                f"got {len(raw)}")
        if kid in keys:
            raise SettingsError(f"MADOGUCHI_HUB_KEYS: key id {kid!r} given twice")
        keys[kid] = raw
        current = current or kid
    return keys, current
