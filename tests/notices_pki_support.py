"""Test support for notice signing: a running test PKI, a SoftHSM2 token, a small Japanese PDF.

The fixtures ``notice_pki`` and ``softhsm_token`` are registered once for the whole run by
``tests/conftest.py`` (``pytest_plugins``): a test takes them by name, never imports them (an
import would make a second instance per module). SoftHSM2 missing skips the PKCS#11 tests, or
fails them with MADOGUCHI_STRICT=1.

Why one session-wide token: the PKCS#11 module reads SOFTHSM2_CONF once, when the process first
loads it, so every test of the session must share one token directory.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import unavailable

from hub.notices.signing import SignerSpec
from hub.notices.testpki import TestPki

MODULE_PATHS = (
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/local/lib/softhsm/libsofthsm2.so",
)


@dataclass(frozen=True)
class SoftHsmToken:
    module: str
    label: str
    pin: str
    key_label: str
    conf: Path


def find_softhsm_module() -> str | None:
    """The SoftHSM2 PKCS#11 module, from the usual Debian paths or a search of /usr/lib."""
    for path in MODULE_PATHS:
        if os.path.isfile(path):
            return path
    found = sorted(Path("/usr/lib").rglob("libsofthsm2.so"))
    return str(found[0]) if found else None


@pytest.fixture(scope="session")
def notice_pki() -> Iterator[TestPki]:
    """The test PKI, serving CRL and TSA on 127.0.0.1 for the whole session."""
    with TestPki() as pki:
        yield pki


@pytest.fixture(scope="session")
def softhsm_token(notice_pki: TestPki, tmp_path_factory: pytest.TempPathFactory,
                  ) -> Iterator[SoftHsmToken]:
    """A fresh SoftHSM2 token holding the test signer's key (the certificate stays a file)."""
    module, util = find_softhsm_module(), shutil.which("softhsm2-util")
    if module is None or util is None:
        unavailable("SoftHSM2 not installed (apt-get install softhsm2)")
    base = tmp_path_factory.mktemp("softhsm")
    (base / "tokens").mkdir()
    conf = base / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {base / 'tokens'}\nobjectstore.backend = file\n"
                    "log.level = ERROR\n", encoding="utf-8")
    key_file = base / "signer.p8.pem"
    key_file.write_bytes(notice_pki.signer_key_pem)
    token = SoftHsmToken(module=module, label="madoguchi-test", pin="1234",
                         key_label="notice-signer", conf=conf)
    env = {**os.environ, "SOFTHSM2_CONF": str(conf)}

    def run(*args: str) -> None:
        done = subprocess.run([util, *args], env=env, capture_output=True, text=True,
                              timeout=30, check=False)
        if done.returncode != 0:
            pytest.fail(f"softhsm2-util {args[0]} failed: {done.stderr or done.stdout}")

    run("--init-token", "--free", "--label", token.label, "--pin", token.pin,
        "--so-pin", "5678")
    run("--import", str(key_file), "--token", token.label, "--label", token.key_label,
        "--id", "01", "--pin", token.pin)
    key_file.unlink()
    old = os.environ.get("SOFTHSM2_CONF")
    os.environ["SOFTHSM2_CONF"] = str(conf)
    try:
        yield token
    finally:
        if old is None:
            os.environ.pop("SOFTHSM2_CONF", None)
        else:
            os.environ["SOFTHSM2_CONF"] = old


def pkcs11_spec(pki: TestPki, token: SoftHsmToken, **overrides: Any) -> SignerSpec:
    """The test PKI's spec with the key in the SoftHSM2 token instead of the PKCS#12 file."""
    assert pki.dir is not None
    cert = pki.dir / "signer.cert.pem"
    fields: dict[str, Any] = {
        "pkcs12_path": None, "pkcs12_passphrase": None, "pkcs11_module": token.module,
        "pkcs11_token_label": token.label, "pkcs11_key_label": token.key_label,
        "pkcs11_pin": token.pin, "pkcs11_cert_path": cert}
    return pki.spec(**{**fields, **overrides})


_FONT = "HeiseiMin-W3"


def small_pdf(pages_text: list[str]) -> bytes:
    """A small PDF with one line of (Japanese) text per page, built with reportlab."""
    from reportlab.pdfbase import pdfmetrics  # type: ignore[import-untyped]
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont  # type: ignore[import-untyped]
    from reportlab.pdfgen import canvas  # type: ignore[import-untyped]

    if _FONT not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(UnicodeCIDFont(_FONT))
    out = io.BytesIO()
    pdf = canvas.Canvas(out, invariant=True)
    for text in pages_text:
        pdf.setFont(_FONT, 12)
        pdf.drawString(72, 720, text)
        pdf.showPage()
    pdf.save()
    return out.getvalue()
