"""Shared fixtures for tests that use real services (broker, database, browser).

Without ``MADOGUCHI_STRICT=1`` a missing service skips the test; with it (CI) the test fails,
so CI can never pass by skipping. Helpers are importable: ``from conftest import free_port``.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import NoReturn
from urllib.parse import urlsplit

import pytest

# notices_pki_support: its session fixtures (one test PKI, one SoftHSM2 token) registered once;
# imported into each module they would be one per module, and SoftHSM2 reads its config once
# per process, so a second token would sign with the first one's key
pytest_plugins = ["pytester", "notices_pki_support"]

STRICT = os.environ.get("MADOGUCHI_STRICT") == "1"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def unavailable(message: str) -> NoReturn:
    """Skip the test, or fail it in strict mode."""
    if STRICT:
        pytest.fail(f"{message} [MADOGUCHI_STRICT=1]", pytrace=False)
    pytest.skip(message)


def require_service(name: str, host: str, port: int, why: str) -> None:
    """Return if ``host:port`` accepts a TCP connection within 1 s, else skip/fail."""
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return
    except OSError:
        unavailable(f"{name} not reachable at {host}:{port}: {why}")


def _service_url(env: str, default: str, default_port: int) -> tuple[str, str, int]:
    url = os.environ.get(env) or default
    parts = urlsplit(url)
    return url, parts.hostname or "127.0.0.1", parts.port or default_port


@pytest.fixture
def mqtt_broker_url() -> str:
    """``mqtt://host:port`` of a running broker (mosquitto); env MADOGUCHI_TEST_MQTT."""
    url, host, port = _service_url("MADOGUCHI_TEST_MQTT", "mqtt://127.0.0.1:1883", 1883)
    require_service("MQTT broker", host, port, "start mosquitto or set MADOGUCHI_TEST_MQTT")
    return url


@pytest.fixture
def postgres_url() -> str:
    """URL of a PostgreSQL database for tests; env MADOGUCHI_TEST_PG."""
    url, host, port = _service_url(
        "MADOGUCHI_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test", 5432
    )
    require_service("PostgreSQL", host, port, "start postgresql or set MADOGUCHI_TEST_PG")
    return url


@pytest.fixture
def chromium_path() -> Path:
    """Path of a Chromium binary; env MADOGUCHI_TEST_CHROMIUM."""
    path = Path(os.environ.get("MADOGUCHI_TEST_CHROMIUM") or "/usr/bin/chromium")
    if not (path.is_file() and os.access(path, os.X_OK)):
        unavailable(
            f"Chromium not found at {path}: install chromium or set MADOGUCHI_TEST_CHROMIUM"
        )
    return path


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The manuals' build (tests/docs/) runs last: it takes the screenshots the browser tests
    of this same run wrote (issue 18: the manuals' pictures are fresh from the CI run)."""
    items.sort(key=lambda item: "/tests/docs/" in str(item.path))
