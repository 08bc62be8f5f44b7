"""Missing services skip a test locally and fail it under MADOGUCHI_STRICT=1 (CI)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from conftest import free_port

CONFTEST = Path(__file__).with_name("conftest.py").read_text(encoding="utf-8")
# the inner project has our conftest but not the test supports it loads as plugins
PLUGINS = 'pytest_plugins = ["pytester", "notices_pki_support"]'
assert PLUGINS in CONFTEST
CONFTEST = CONFTEST.replace(PLUGINS, 'pytest_plugins = ["pytester"]')

NEEDS_SERVICES = """
import os
from conftest import require_service

def test_mqtt(mqtt_broker_url):
    pass

def test_pg(postgres_url):
    pass

def test_chromium(chromium_path):
    pass

def test_direct():
    require_service("thing", "127.0.0.1", int(os.environ["CLOSED_PORT"]), "for the test")
"""


@pytest.fixture
def inner(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> int:
    """A pytester project with our conftest whose services all point at a closed port."""
    closed = free_port()
    monkeypatch.setenv("CLOSED_PORT", str(closed))
    monkeypatch.setenv("MADOGUCHI_TEST_MQTT", f"mqtt://127.0.0.1:{closed}")
    monkeypatch.setenv("MADOGUCHI_TEST_PG", f"postgresql://postgres@127.0.0.1:{closed}/test")
    monkeypatch.setenv("MADOGUCHI_TEST_CHROMIUM", str(tmp_path / "no-such-chromium"))
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_needs_services=NEEDS_SERVICES)
    return closed


def test_missing_services_skip_without_strict(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, inner: int
) -> None:
    monkeypatch.delenv("MADOGUCHI_STRICT", raising=False)
    result = pytester.runpytest_subprocess("-p", "no:asyncio", "-rs")
    result.assert_outcomes(skipped=4)
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines([f"*MQTT broker not reachable at 127.0.0.1:{inner}*"])
    result.stdout.fnmatch_lines([f"*PostgreSQL not reachable at 127.0.0.1:{inner}*"])
    result.stdout.fnmatch_lines(["*Chromium not found at*"])


def test_missing_services_fail_in_strict_mode(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, inner: int
) -> None:
    monkeypatch.setenv("MADOGUCHI_STRICT", "1")
    result = pytester.runpytest_subprocess("-p", "no:asyncio")
    # fixtures that fail count as errors; the direct call fails the test itself
    result.assert_outcomes(errors=3, failed=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines([f"*MQTT broker not reachable at 127.0.0.1:{inner}*STRICT=1*"])
    result.stdout.fnmatch_lines([f"*thing not reachable at 127.0.0.1:{inner}*STRICT=1*"])


def test_reachable_service_passes_in_strict_mode(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, inner: int
) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        monkeypatch.setenv("MADOGUCHI_STRICT", "1")
        monkeypatch.setenv("MADOGUCHI_TEST_MQTT", f"mqtt://127.0.0.1:{port}")
        monkeypatch.setenv("MADOGUCHI_TEST_PG", f"postgresql://postgres@127.0.0.1:{port}/test")
        result = pytester.runpytest_subprocess("-p", "no:asyncio", "-k", "mqtt or pg")
    result.assert_outcomes(passed=2, deselected=2)
    assert result.ret == pytest.ExitCode.OK
