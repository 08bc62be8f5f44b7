"""The fleet tables, on the hub's one ``metadata`` (the migration ``v0007_fleet`` creates them).

Kept here so the fleet module owns its tables (as hub/audit does). Alert recipients' addresses
are sealed (AES-GCM, ``hub.notify.crypto``, bound to the row id): a database copy holds no
readable address.
"""

from __future__ import annotations

from sqlalchemy import Column, Index, String, Table, Text

from hub.store.schema import SITE, UtcDateTime, metadata

fleet_rules = Table(  # a site's alert rules ("*": the default for every site without its own)
    "fleet_rules", metadata,
    Column("site", SITE, primary_key=True),
    Column("rules", Text, nullable=False),  # JSON: hub.fleet.rules.Thresholds
    Column("updated_at", UtcDateTime, nullable=False),
    Column("updated_by", String(128), nullable=True),
)

fleet_recipients = Table(  # who is e-mailed about a site's incidents ("*": every site)
    "fleet_recipients", metadata,
    Column("id", String(36), primary_key=True),
    Column("site", SITE, nullable=False),
    Column("address_ct", Text, nullable=False),  # sealed with the hub key, AAD = id
    Column("lang", String(8), nullable=False),  # ja | en: the language of the e-mail's first part
    Column("created_at", UtcDateTime, nullable=False),
    Column("created_by", String(128), nullable=True),
)

fleet_incidents = Table(
    "fleet_incidents", metadata,
    Column("id", String(36), primary_key=True),
    Column("site", SITE, nullable=False),
    Column("rule", String(32), nullable=False),
    Column("subject", String(64), nullable=False),  # a device id, or "" for the site itself
    Column("opened_at", UtcDateTime, nullable=False),
    Column("closed_at", UtcDateTime, nullable=True),
    Column("detail", Text, nullable=False),  # JSON: the values that tripped the rule
    Column("open_mail", String(16), nullable=False),  # pending | sent | failed | off | none
    Column("close_mail", String(16), nullable=True),
)

Index("ix_fleet_recipients_site", fleet_recipients.c.site)
Index("ix_fleet_incidents_open", fleet_incidents.c.closed_at, fleet_incidents.c.site)
Index("ix_fleet_incidents_opened", fleet_incidents.c.opened_at)
