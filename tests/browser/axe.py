"""axe-core (the npm package, pinned and verified) run inside a Playwright page.

The tarball is fetched once from the npm registry into ``.tools/cache/`` (the bootstrap's
gitignored folder), its sha512 checked against the registry's ``dist.integrity``, and
``package/axe.min.js`` extracted next to it. Later runs use the cache: no network at test time.
If the download fails the test skips with the reason, or fails under ``MADOGUCHI_STRICT=1``.
"""

from __future__ import annotations

import base64
import hashlib
import io
import tarfile
import urllib.request
from pathlib import Path
from typing import Any

from conftest import unavailable
from playwright.async_api import Page

AXE_VERSION = "4.14.1"
# `npm view axe-core@4.14.1 dist.integrity` (registry metadata), checked before extraction
AXE_INTEGRITY = ("sha512-FHfa+lmNjQZfJz1q8wKqIDwC6DExcHt/pkjNQb09a3NPjCKg2rhu5qb2S4r76ASyFNNt"
                 "uFooJpZe37OgudVGtQ==")
AXE_URL = f"https://registry.npmjs.org/axe-core/-/axe-core-{AXE_VERSION}.tgz"
REPO_ROOT = Path(__file__).resolve().parents[2]
CACHE = REPO_ROOT / ".tools" / "cache"
BLOCKING = ("serious", "critical")


class AxeUnavailable(Exception):
    """axe-core could not be fetched or did not verify."""


def _integrity(data: bytes) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


def fetch_axe(cache: Path = CACHE, url: str = AXE_URL, integrity: str = AXE_INTEGRITY) -> Path:
    """Path of the verified ``axe.min.js``; downloads and extracts it on first use."""
    script = cache / f"axe-core-{AXE_VERSION}" / "axe.min.js"
    if script.is_file():
        return script
    tgz = cache / f"axe-core-{AXE_VERSION}.tgz"
    if tgz.is_file():
        data = tgz.read_bytes()
    else:
        try:
            with urllib.request.urlopen(url, timeout=60) as resp:
                data = resp.read()
        except OSError as exc:
            raise AxeUnavailable(f"could not download axe-core {AXE_VERSION} from {url}: {exc}. "
                                 f"Fetch it once with network access (it is cached in {cache})"
                                 ) from exc
    got = _integrity(data)
    if got != integrity:
        raise AxeUnavailable(f"axe-core tarball from {url} fails its integrity check: "
                             f"expected {integrity}, got {got}")
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        member = tar.extractfile("package/axe.min.js")
        if member is None:
            raise AxeUnavailable(f"{url} holds no package/axe.min.js")
        source = member.read()
    cache.mkdir(parents=True, exist_ok=True)
    tgz.write_bytes(data)
    script.parent.mkdir(parents=True, exist_ok=True)
    tmp = script.with_suffix(".tmp")
    tmp.write_bytes(source)
    tmp.replace(script)
    return script


def axe_source() -> str:
    """The axe-core script text, or skip (fail in strict mode) with the reason."""
    try:
        return fetch_axe().read_text(encoding="utf-8")
    except AxeUnavailable as exc:
        unavailable(str(exc))


async def run_axe(page: Page, source: str) -> list[dict[str, Any]]:
    """All axe violations on the page as it is now (every rule axe runs by default)."""
    if not await page.evaluate("() => typeof window.axe !== 'undefined'"):
        await page.add_script_tag(content=source)
    result: dict[str, Any] = await page.evaluate(
        "async () => await axe.run(document, {resultTypes: ['violations']})")
    violations: list[dict[str, Any]] = result["violations"]
    return violations


def blocking(violations: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [v for v in violations if v.get("impact") in BLOCKING]


def describe(violations: list[dict[str, Any]]) -> str:
    """Every violation with its nodes: rule, impact, help, then target, HTML and summary."""
    lines: list[str] = []
    for v in violations:
        lines.append(f"[{v.get('impact')}] {v['id']}: {v['help']} ({v.get('helpUrl', '')})")
        for node in v.get("nodes", []):
            lines.append(f"    at {node.get('target')}: {node.get('html', '')[:200]}")
            summary = (node.get("failureSummary") or "").replace("\n", "\n       ")
            if summary:
                lines.append(f"       {summary}")
    return "\n".join(lines)
