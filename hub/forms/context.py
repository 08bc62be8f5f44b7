"""The forms module's settings and its one per-process object (``Forms``).

Settings (environment, read once at start; the README lists them):

- ``MADOGUCHI_FORMS_FILES``: the directory of the sealed attachment store (default:
  ``form-files`` beside the hub's SQLite database, or under the working directory).
- ``MADOGUCHI_CLAMD``: where clamd listens (``/run/clamav/clamd.ctl``, ``unix:/…`` or
  ``host:port``; default ``/run/clamav/clamd.ctl``). Without a clamd that answers, no file is
  accepted (fail closed).
- ``MADOGUCHI_FORMS_CODE_MINUTES`` (10): how long an e-mail sign-in code works.
- ``MADOGUCHI_FORMS_DRAFT_DAYS`` (30): how long unfinished answers are kept for resuming.
- ``MADOGUCHI_FORMS_WEBHOOK_ALLOW_PRIVATE``: ``1`` lets webhooks go to private addresses (a
  business system inside the ward's own network, LGWAN); link-local addresses never.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from aiohttp import web

from hub.forms.attachments import AttachmentIntake
from hub.forms.model import Form
from hub.forms.scan import ClamdClient
from hub.kit.mail import Mailer
from hub.settings import HubSettings, positive_int
from hub.store.store import HubStore, now_utc

CODE_MAX_TRIES = 5  # wrong codes before a code is spent
CODES_PER_HOUR = 5  # codes sent to one address per form and hour


@dataclass(frozen=True)
class FormSettings:
    files_dir: Path
    clamd: str = "/run/clamav/clamd.ctl"
    code_minutes: int = 10
    draft_days: int = 30
    webhook_allow_private: bool = False

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None,
                 default_dir: Path | None = None) -> FormSettings:
        env = os.environ if env is None else env
        raw_dir = env.get("MADOGUCHI_FORMS_FILES")
        return cls(
            files_dir=Path(raw_dir) if raw_dir else (default_dir or Path("form-files")),
            clamd=env.get("MADOGUCHI_CLAMD") or cls.clamd,
            code_minutes=positive_int(env, "MADOGUCHI_FORMS_CODE_MINUTES", cls.code_minutes),
            draft_days=positive_int(env, "MADOGUCHI_FORMS_DRAFT_DAYS", cls.draft_days),
            webhook_allow_private=env.get("MADOGUCHI_FORMS_WEBHOOK_ALLOW_PRIVATE") == "1",
        )


def default_files_dir(store: HubStore) -> Path | None:
    """``form-files`` beside a SQLite database file; None for PostgreSQL or memory."""
    url = store.engine.url
    if not url.drivername.startswith("sqlite") or url.database in (None, "", ":memory:"):
        return None
    return Path(url.database).resolve().parent / "form-files"


@dataclass
class Forms:
    """What every part of the module works with: the store, the hub's keys, the attachment
    intake (sealed store + clamd), the mailer and the clock (injected: tests move time)."""

    store: HubStore
    hub: HubSettings
    settings: FormSettings
    intake: AttachmentIntake
    mailer: Mailer
    clock: Callable[[], datetime] = now_utc
    # published versions never change: each is read and validated once per process
    # (``service.version_of``), not on every page a resident opens
    versions: dict[tuple[str, int], Form] = field(default_factory=dict)

    @classmethod
    def build(cls, store: HubStore, hub: HubSettings, settings: FormSettings,
              mailer: Mailer) -> Forms:
        scanner = ClamdClient.from_address(settings.clamd)
        intake = AttachmentIntake.open(settings.files_dir, hub.keys, hub.key_id, scanner)
        return cls(store, hub, settings, intake, mailer)


FORMS: web.AppKey[Forms] = web.AppKey("forms", Forms)
