"""A throw-away local PKI for tests, the demo and the benchmark — NEVER for production.

It makes a root CA, a signer certificate ("練馬区長 (テスト)") and a timestamp authority
certificate with fresh keys (RSA; EC P-256 for the TSA) in a temporary folder, and serves the
root's CRL and an RFC 3161 timestamp endpoint over HTTP on 127.0.0.1 with certomancer's
animator (a WSGI app) under werkzeug in a daemon thread. The server socket is bound first
(port 0) so that the certificates' CRL distribution points name the real port; the app is
attached afterwards.

Why certomancer: it is what pyHanko's own tests use, it issues CRLs and timestamps from the same
declarative config (``testpki.yml`` next to this file), and it runs in-process.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
from pathlib import Path
from types import TracebackType
from typing import Any

import yaml
from certomancer.integrations.animator import Animator, AnimatorArchStore
from certomancer.registry import ArchLabel, CertLabel, CertomancerConfig
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from hub.notices.signing import SignerSpec

CONFIG = Path(__file__).with_name("testpki.yml")
ARCH = "notices"
PASSPHRASE = b"test-only-passphrase"


def _placeholder_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    start_response("503 Service Unavailable", [("Content-Type", "text/plain")])
    return [b"starting"]


class _QuietHandler(WSGIRequestHandler):
    """No access log lines: test output stays readable (errors are still logged)."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


class TestPki:
    """The running test PKI; ``start()``/``stop()`` or ``with TestPki() as pki:``.

    After ``start``: ``base_url``, ``tsa_url``, ``crl_url``, ``root_pem``, ``signer_cert_pem``,
    ``signer_key_pem`` (PKCS#8, for ``softhsm2-util --import``), ``tsa_cert_pem``,
    ``pkcs12_path`` (passphrase ``PASSPHRASE``) and ``dir`` (the temporary folder).
    """

    __test__ = False  # not a pytest test class despite its name

    def __init__(self, key_size: int = 2048) -> None:
        self.key_size = key_size
        self.dir: Path | None = None
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self.base_url = self.tsa_url = self.crl_url = ""
        self.root_pem = self.signer_cert_pem = self.signer_key_pem = self.tsa_cert_pem = b""
        self.pkcs12_path = Path()
        self.passphrase = PASSPHRASE

    def __enter__(self) -> TestPki:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Generate keys and certificates for a fresh port and serve CRL + TSA on it."""
        self.dir = Path(tempfile.mkdtemp(prefix="madoguchi-testpki-"))
        server = make_server("127.0.0.1", 0, _placeholder_app, threaded=True,
                             request_handler=_QuietHandler)
        self.base_url = f"http://127.0.0.1:{server.server_port}"
        keys: dict[str, bytes] = {}
        for name in ("root", "signer", "tsa"):
            # the TSA key is EC: certomancer parses it per request, and an RSA parse (~35 ms,
            # in this process, under the GIL) would dominate a benchmark with a local TSA
            key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey = (
                ec.generate_private_key(ec.SECP256R1()) if name == "tsa" else
                rsa.generate_private_key(public_exponent=65537, key_size=self.key_size))
            keys[name] = key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption())
            (self.dir / f"{name}.key.pem").write_bytes(keys[name])
        config = CertomancerConfig(yaml.safe_load(CONFIG.read_text(encoding="utf-8")),
                                   key_search_dir=str(self.dir),
                                   external_url_prefix=self.base_url)
        arch = config.get_pki_arch(ArchLabel(ARCH))

        def cert_pem(label: str) -> bytes:
            der = arch.get_cert(CertLabel(label)).dump()
            return _pem(der)

        self.root_pem, self.signer_cert_pem, self.tsa_cert_pem = (
            cert_pem("root"), cert_pem("signer"), cert_pem("tsa"))
        self.signer_key_pem = keys["signer"]
        self.pkcs12_path = self.dir / "signer.p12"
        self.pkcs12_path.write_bytes(arch.package_pkcs12(
            CertLabel("signer"), certs_to_embed=[CertLabel("root")], password=self.passphrase))
        for name, data in (("root.cert.pem", self.root_pem), ("signer.cert.pem",
                           self.signer_cert_pem), ("signer.p8.pem", self.signer_key_pem)):
            (self.dir / name).write_bytes(data)
        self.tsa_url = f"{self.base_url}/{ARCH}/tsa/tsa"
        self.crl_url = f"{self.base_url}/{ARCH}/crls/root/latest.crl"
        server.app = Animator(AnimatorArchStore({ArchLabel(ARCH): arch}), with_web_ui=False,
                              allow_time_override=False)
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, name="testpki",
                                        kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop serving (afterwards nothing can be fetched: truly offline) and remove the files."""
        server, thread, self._server, self._thread = self._server, self._thread, None, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join(timeout=5)
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    def spec(self, **overrides: Any) -> SignerSpec:
        """A PKCS#12 SignerSpec for this PKI; ``overrides`` replace any field (e.g. PKCS#11)."""
        fields: dict[str, Any] = {
            "tsa_url": self.tsa_url, "trust_roots": (self.root_pem,),
            "pkcs12_path": self.pkcs12_path, "pkcs12_passphrase": self.passphrase,
            "location": "東京都練馬区 (テスト)",
        }
        fields.update(overrides)
        return SignerSpec(**fields)


def _pem(der: bytes) -> bytes:
    from asn1crypto import pem

    return bytes(pem.armor("CERTIFICATE", der))
