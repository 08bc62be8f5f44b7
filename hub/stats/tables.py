"""The statistics tables on the hub's one ``metadata`` (migration ``v0009_stats``).

``stats_rollup`` is one additive fact table: each row is a cell (site, business day, measure and
the dimensions that measure has) holding a count ``n``, a sum of seconds ``total`` and a maximum
``max_s``. Cells only ever grow by adding deltas (``hub.stats.store.add``), so rows of any grain
(day → week → month → fiscal year, counter → site → ward) are sums of these rows and reports never
read raw events. Dimensions a measure does not have hold ``""`` (text) or ``-1`` (hour, bucket),
never NULL, so they can be part of the primary key. What each measure means is
``hub.stats.rollup``'s docstring.

``stats_column_sets`` holds the named CSV column sets (S3: "easy to change"), per staff member
(``owner`` = login) or for the whole ward (``owner`` = ``"*"``).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Float,
    Index,
    Integer,
    PrimaryKeyConstraint,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from hub.store.schema import SITE, UtcDateTime, metadata

stats_rollup = Table(
    "stats_rollup", metadata,
    Column("site", SITE, nullable=False),
    Column("day", String(10), nullable=False),  # the business day (the edge's ``day``), JST
    Column("measure", String(16), nullable=False),  # hub.stats.rollup.MEASURES
    Column("hour", SmallInteger, nullable=False),  # 0-23 in Asia/Tokyo, -1: not by hour
    Column("service", String(8), nullable=False),
    Column("counter", String(16), nullable=False),
    Column("staff", String(64), nullable=False),  # the login ID, "" if none signed in
    Column("channel", String(16), nullable=False),  # kiosk | web | reservation | staff ...
    Column("bucket", SmallInteger, nullable=False),  # wait histograms: hub.stats.rollup.bucket
    Column("n", BigInteger, nullable=False),
    Column("total", Float, nullable=False),  # seconds (waits, handling, open time); else 0
    Column("max_s", Float, nullable=False),
    PrimaryKeyConstraint("site", "day", "measure", "hour", "service", "counter", "staff",
                         "channel", "bucket", name="pk_stats_rollup"),
)

Index("ix_stats_rollup_day", stats_rollup.c.day, stats_rollup.c.measure)

stats_column_sets = Table(
    "stats_column_sets", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("owner", String(128), nullable=False),  # a login, or "*" for the whole ward
    Column("report", String(16), nullable=False),  # which export: hub.stats.columns.REPORTS
    Column("name", String(64), nullable=False),
    Column("columns", Text, nullable=False),  # JSON list of column keys, in order
    Column("updated_at", UtcDateTime, nullable=False),
    Column("updated_by", String(128), nullable=False),
    UniqueConstraint("owner", "report", "name", name="uq_stats_column_set"),
)
