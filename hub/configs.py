"""Desired site configuration: validated, versioned by the hub, published retained.

The hub owns configuration (no multi-master): each change gets ``version = previous + 1``, and
that number is written into the TOML's top-level ``version`` key too, so the edge that applies
the text reports the same number the hub stored.
"""

from __future__ import annotations

import logging
import re
import uuid

from sqlalchemy.exc import IntegrityError

from edge.config import ConfigError, Problem, parse_site_config
from edge.domain.model import SiteConfig
from edge.protocol import DEFAULT_PREFIX, SYNC_VERSION, dumps, site_topic
from hub.store import HubStore

_LOGGER = logging.getLogger(__name__)

_TABLE = re.compile(r"^\s*\[")
_VERSION = re.compile(r"^\s*version\s*=")


def with_version(text: str, version: int) -> str:
    """The TOML with its top-level ``version`` set (replaced, or added before the first table)."""
    lines = text.splitlines(keepends=True)
    first_table = next((i for i, line in enumerate(lines) if _TABLE.match(line)), len(lines))
    for i in range(first_table):
        if _VERSION.match(lines[i]):
            lines[i] = f"version = {version}\n"
            return "".join(lines)
    if first_table == len(lines) and lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    lines.insert(first_table, f"version = {version}\n")
    return "".join(lines)


def check_config(site: str, text: str, source: str = "<string>") -> SiteConfig:
    """Validate with the edge's own parser, and check the file is for this site."""
    config = parse_site_config(text, source)
    if config.site != site:
        raise ConfigError(source, [Problem(None, "site.id",
                                           f"is {config.site!r}, but the config is set for "
                                           f"{site!r} / このファイルは別の拠点のものです")])
    return config


async def store_config(store: HubStore, site: str, text: str,
                       source: str = "<string>") -> tuple[int, str]:
    """Store ``text`` as the site's next version; returns (version, stored text)."""
    check_config(site, text, source)

    def versioned(version: int) -> str:
        body = with_version(text, version)
        if check_config(site, body, source).version != version:
            raise ConfigError(source, [Problem(None, "version",
                                               "could not set the version key")])
        return body

    for attempt in range(3):  # two writers may pick the same next version on PostgreSQL
        try:
            return await store.add_config(site, versioned)
        except IntegrityError:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def publish_config(mqtt_url: str, site: str, version: int, toml: str,
                   prefix: str = DEFAULT_PREFIX, timeout: float = 10.0) -> bool:
    """Publish one config retained (QoS 1) from a short-lived client; True once the broker has
    it. For the CLI: a running hub publishes stored configs by itself as well."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    from hub.ingest.mqtt import MqttSettings

    settings = MqttSettings.from_url(mqtt_url)
    v5 = settings.protocol == "5"
    client = mqtt.Client(CallbackAPIVersion.VERSION2,
                         client_id=f"madoguchi-config-{uuid.uuid4().hex[:12]}",
                         protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
                         clean_session=None if v5 else True)
    if settings.username is not None:
        client.username_pw_set(settings.username, settings.password)
    if settings.tls:
        client.tls_set(ca_certs=settings.ca_file)
    try:
        client.connect(settings.host, settings.port, settings.keepalive)
    except OSError as exc:
        _LOGGER.warning("cannot reach the broker at %s: %s", settings.describe(), exc)
        return False
    client.loop_start()
    try:
        info = client.publish(site_topic(prefix, site, "config"), dumps(
            {"v": SYNC_VERSION, "site": site, "version": version, "toml": toml}),
            qos=1, retain=True)
        info.wait_for_publish(timeout)
        return info.is_published()
    except (RuntimeError, ValueError) as exc:
        _LOGGER.warning("publishing the config failed: %s", exc)
        return False
    finally:
        client.disconnect()
        client.loop_stop()
