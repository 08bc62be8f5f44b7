"""The notice module's settings and its one per-process object (``Notices``).

Settings (environment, read once at start; the README lists them):

- ``MADOGUCHI_NOTICE_FILES``: the directory of the encrypted PDF store (default: ``notice-files``
  beside the hub's SQLite database, or under the working directory).
- ``MADOGUCHI_NOTICE_LINK_DAYS`` (30): how long the link in a notice e-mail works.
- ``MADOGUCHI_NOTICE_CODE_MINUTES`` (10): how long a one-time code works.
- ``MADOGUCHI_NOTICE_TEST_ADDRESSES``: staff addresses every test-mode notice goes to (N8),
  comma-separated; a notice may add its own.
- the signing key and timestamp authority: ``hub.notices.signing.parse_signer_spec``.

Limits that protect residents are constants, not settings: 5 wrong codes lock the recipient's
portal for 30 minutes; at most 5 codes are sent per recipient per hour.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from aiohttp import web

from hub.kit.mail import Mailer
from hub.notices.downloads import DownloadLog
from hub.notices.files import FileStore
from hub.settings import HubSettings, positive_int
from hub.store.store import HubStore, now_utc

CODE_MAX_TRIES = 5
CODES_PER_HOUR = 5
LOCK = timedelta(minutes=30)
SESSION = timedelta(minutes=30)


@dataclass(frozen=True)
class NoticeSettings:
    files_dir: Path
    link_days: int = 30
    code_minutes: int = 10
    test_addresses: tuple[str, ...] = ()
    signer_env: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None,
                 default_dir: Path | None = None) -> NoticeSettings:
        env = os.environ if env is None else env
        raw_dir = env.get("MADOGUCHI_NOTICE_FILES")
        files_dir = Path(raw_dir) if raw_dir else (default_dir or Path("notice-files"))
        return cls(
            files_dir=files_dir,
            link_days=positive_int(env, "MADOGUCHI_NOTICE_LINK_DAYS", cls.link_days),
            code_minutes=positive_int(env, "MADOGUCHI_NOTICE_CODE_MINUTES", cls.code_minutes),
            test_addresses=tuple(a.strip() for a in env.get(
                "MADOGUCHI_NOTICE_TEST_ADDRESSES", "").split(",") if a.strip()),
            signer_env={k: v for k, v in env.items() if k.startswith("MADOGUCHI_NOTICE_")},
        )


def default_files_dir(store: HubStore) -> Path | None:
    """``notice-files`` beside a SQLite database file; None for PostgreSQL or memory (then the
    setting, or ``./notice-files``)."""
    url = store.engine.url
    if not url.drivername.startswith("sqlite") or url.database in (None, "", ":memory:"):
        return None
    return Path(url.database).resolve().parent / "notice-files"


@dataclass
class Notices:
    """What every part of the module works with: the store, the hub's keys, the PDF store, the
    mailer, the clock (injected, so tests move time), and the running jobs per notice."""

    store: HubStore
    hub: HubSettings
    settings: NoticeSettings
    files: FileStore
    mailer: Mailer
    clock: Callable[[], datetime] = now_utc
    jobs: dict[str, Any] = field(default_factory=dict)  # notice id -> its progress (jobs.py)
    downloads: DownloadLog = field(init=False)  # the portal's downloads, group-committed

    def __post_init__(self) -> None:
        self.downloads = DownloadLog(self.store, self.hub)

    @classmethod
    def build(cls, store: HubStore, hub: HubSettings, settings: NoticeSettings,
              mailer: Mailer) -> Notices:
        return cls(store, hub, settings,
                   FileStore(settings.files_dir, hub.keys, hub.key_id), mailer)


NOTICES: web.AppKey[Notices] = web.AppKey("notices", Notices)
