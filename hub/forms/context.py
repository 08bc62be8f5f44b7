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
- ``MADOGUCHI_FORMS_PAY_PROVIDER``: the payment provider for forms with a fee (``fake``, the
  test provider of ``hub.forms.fake_pay``, is the only adapter so far); unset: no payments, and
  a form with a fee says so instead of accepting applications. ``MADOGUCHI_FORMS_PAY_URL`` (the
  provider's API), ``MADOGUCHI_FORMS_PAY_API_KEY``, ``MADOGUCHI_FORMS_PAY_SECRET`` (the
  ``whsec_`` secret its callbacks are signed with).
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
from hub.forms.payment import PaymentProvider
from hub.forms.resident_fields import Kept
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
    pay_provider: str = ""  # "" : no payments
    pay_url: str = ""
    pay_api_key: str = field(default="", repr=False)
    pay_secret: str = field(default="", repr=False)

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
            pay_provider=_provider(env.get("MADOGUCHI_FORMS_PAY_PROVIDER", "")),
            pay_url=env.get("MADOGUCHI_FORMS_PAY_URL", ""),
            pay_api_key=env.get("MADOGUCHI_FORMS_PAY_API_KEY", ""),
            pay_secret=env.get("MADOGUCHI_FORMS_PAY_SECRET", ""),
        )


PAY_PROVIDERS = ("fake",)
PAY_CALLBACK = "/forms/payments/callback"
PAY_RETURN = "/forms/payments/return/{payment_id}"


def _provider(name: str) -> str:
    """A provider the hub has an adapter for; anything else stops the start (a typo must not
    silently switch payments off)."""
    name = name.strip()
    if name and name not in PAY_PROVIDERS:
        raise ValueError(f"MADOGUCHI_FORMS_PAY_PROVIDER: unknown provider {name!r} "
                         f"(known: {', '.join(PAY_PROVIDERS)})")
    return name


def payment_provider(settings: FormSettings, public_url: str) -> PaymentProvider | None:
    """The configured adapter, or None when payments are off. The provider calls back at
    ``PAY_CALLBACK`` and sends the resident's browser back to ``PAY_RETURN``."""
    if settings.pay_provider != "fake":
        return None
    from hub.forms.fake_pay import FakePayProvider

    base = public_url.rstrip("/")
    return FakePayProvider(settings.pay_url, settings.pay_api_key, settings.pay_secret,
                           base + PAY_CALLBACK, base + PAY_RETURN)


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
    # the payment provider's adapter (``MADOGUCHI_FORMS_PAY_*``); None: forms with a fee say
    # that payments are not available
    payments: PaymentProvider | None = None
    # the HTML of fields nobody has answered yet, per form version, field and language
    # (``hub.forms.resident_fields``: never an answer)
    fields_html: Kept = field(default_factory=dict)

    @classmethod
    def build(cls, store: HubStore, hub: HubSettings, settings: FormSettings,
              mailer: Mailer) -> Forms:
        scanner = ClamdClient.from_address(settings.clamd)
        intake = AttachmentIntake.open(settings.files_dir, hub.keys, hub.key_id, scanner)
        return cls(store, hub, settings, intake, mailer,
                   payments=payment_provider(settings, hub.public_url))


FORMS: web.AppKey[Forms] = web.AppKey("forms", Forms)
