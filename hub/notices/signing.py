"""PAdES signing of notice PDFs (B-LT, or B-LTA) with pyHanko, and offline verification.

Why B-LT: a resident may open a notice years later, when the ward's CRL server has moved or the
certificate has expired. The signature carries an RFC 3161 timestamp (when it was made) and the
document security store (DSS) carries the certificates and CRLs/OCSP responses that prove the
chain was good at that time, so ``verify`` needs nothing but the trust root. ``lta=True`` adds a
document timestamp over all of it (B-LTA), which can later be renewed before the TSA key ages.

Why one ``PdfSigner`` per batch: opening a PKCS#12 file or a PKCS#11 session, and fetching the
CRLs of the chain, cost far more than a signature. The signer keeps the loaded key and one
validation context (its fetchers cache CRLs/OCSP by URL) for all documents of a batch and builds
a fresh context every ``revinfo_max_age_s`` so that a long-lived signer never embeds stale data.

The signed bytes are final: nothing here (nor any caller) rewrites them; ``verify`` only reads.
Error texts never contain document content (names, addresses): only stable codes.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path
from types import TracebackType
from typing import Any

from asn1crypto import pem
from asn1crypto import x509 as asn1_x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ec import ECDSA, EllipticCurvePrivateKey
from cryptography.hazmat.primitives.asymmetric.padding import PKCS1v15
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.misc import PdfError
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import fields, signers
from pyhanko.sign.timestamps.common_utils import TimestampRequestError
from pyhanko.sign.timestamps.requests_client import RequestsHTTPTimeStamper
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator.errors import (
    InsufficientRevinfoError,
    PathBuildingError,
    PathValidationError,
    RevokedError,
)
from pyhanko_certvalidator.fetchers.requests_fetchers import RequestsFetcherBackend
from pyhanko_certvalidator.util import get_pyca_cryptography_hash

from hub.settings import SettingsError

_LOGGER = logging.getLogger(__name__)

PREFIX = "MADOGUCHI_NOTICE_"


class SignerSettingsError(SettingsError):
    """Incomplete or contradictory signing settings; ``code`` is stable, texts ja/en."""

    def __init__(self, code: str, ja: str, en: str) -> None:
        super().__init__(en)
        self.code, self.ja, self.en = code, ja, en


class SigningError(Exception):
    """A document could not be signed; ``code`` is stable, ``ja``/``en`` are for staff."""

    def __init__(self, code: str, ja: str, en: str) -> None:
        super().__init__(f"{code}: {en}")
        self.code, self.ja, self.en = code, ja, en


_TEXTS: dict[str, tuple[str, str]] = {
    "tsa_unreachable": ("タイムスタンプ局に接続できません。",
                        "The timestamp authority is unreachable."),
    "key_unavailable": ("署名鍵を使用できません（トークン・PIN・ファイルを確認してください）。",
                        "The signing key is unavailable (check the token, PIN or file)."),
    "pdf_unreadable": ("PDFを読み取れません。", "The PDF cannot be read."),
    "revocation_unavailable": ("失効情報（CRL/OCSP）を取得できません。",
                               "Revocation data (CRL/OCSP) cannot be fetched."),
    "certificate_revoked": ("署名用証明書が失効しています。",
                            "The signing certificate is revoked."),
    "certificate_untrusted": ("署名用証明書を信頼済みルートまで検証できません。",
                              "The signing certificate does not chain to a trusted root."),
    "signing_failed": ("署名に失敗しました。", "Signing failed."),
}


def _error(code: str) -> SigningError:
    ja, en = _TEXTS[code]
    return SigningError(code, ja, en)


def load_certs(data: bytes) -> list[asn1_x509.Certificate]:
    """Certificates from DER or (one or more blocks of) PEM."""
    if pem.detect(data):
        return [asn1_x509.Certificate.load(der) for _, _, der in pem.unarmor(data, multiple=True)]
    return [asn1_x509.Certificate.load(data)]


@dataclass(frozen=True)
class SignerSpec:
    """Where the key is (PKCS#12 file xor PKCS#11 token), the TSA and what the signature says.

    ``trust_roots`` (PEM/DER) are needed at signing time: pyHanko validates the chain and fetches
    its revocation data then, to embed it. ``extra_certs`` are intermediates not in the key file.
    For PKCS#11, the certificate is read from the token by ``pkcs11_cert_label`` (default: the key
    label) unless ``pkcs11_cert_path`` gives it as a file (SoftHSM2 imports keys only).
    """

    tsa_url: str
    trust_roots: tuple[bytes, ...]
    pkcs12_path: Path | None = None
    pkcs12_passphrase: bytes | None = field(default=None, repr=False)
    pkcs11_module: str | None = None
    pkcs11_token_label: str | None = None
    pkcs11_key_label: str | None = None
    pkcs11_pin: str | None = field(default=None, repr=False)
    pkcs11_cert_label: str | None = None
    pkcs11_cert_path: Path | None = None
    extra_certs: tuple[bytes, ...] = ()
    field_name: str = "MadoguchiNotice"
    reason: str | None = "行政通知 / Administrative notice"
    location: str | None = None
    lta: bool = False
    timeout_s: float = 10.0
    revinfo_max_age_s: float = 600.0

    def __post_init__(self) -> None:
        p12 = self.pkcs12_path is not None
        p11 = self.pkcs11_module is not None
        if p12 == p11:
            raise SignerSettingsError(
                "key_source",
                "署名鍵は PKCS#12 ファイルか PKCS#11 トークンのどちらか一方を指定してください。",
                f"Give exactly one key source: {PREFIX}SIGN_P12 or {PREFIX}SIGN_PKCS11_MODULE.")
        if p11 and not (self.pkcs11_token_label and self.pkcs11_key_label and self.pkcs11_pin):
            raise SignerSettingsError(
                "pkcs11_incomplete", "PKCS#11 にはトークン名・鍵ラベル・PIN が必要です。",
                f"PKCS#11 needs {PREFIX}SIGN_PKCS11_TOKEN, _KEY and _PIN.")
        if not self.tsa_url.startswith(("http://", "https://")):
            raise SignerSettingsError(
                "tsa_url", "タイムスタンプ局の URL（http/https）が必要です。",
                f"{PREFIX}TSA_URL must be an http(s) URL.")
        if not self.trust_roots:
            raise SignerSettingsError(
                "trust_roots", "信頼済みルート証明書（PEM）が必要です。",
                f"{PREFIX}TRUST_ROOTS must name a PEM file with the trust root(s).")


def parse_signer_spec(env: Mapping[str, str]) -> SignerSpec | None:
    """The spec from ``MADOGUCHI_NOTICE_*`` settings; None when signing is not configured at all.

    Files named by the settings (trust roots, extra certs) are read here, so a bad path fails at
    start rather than at the first batch.
    """
    def get(name: str) -> str | None:
        value = env.get(PREFIX + name, "").strip()
        return value or None

    p12, module = get("SIGN_P12"), get("SIGN_PKCS11_MODULE")
    if p12 is None and module is None:
        return None
    tsa, roots_path = get("TSA_URL"), get("TRUST_ROOTS")
    if tsa is None:
        raise SignerSettingsError(
            "tsa_url", "タイムスタンプ局の URL（MADOGUCHI_NOTICE_TSA_URL）が未設定です。",
            f"{PREFIX}TSA_URL is not set.")
    if roots_path is None:
        raise SignerSettingsError(
            "trust_roots", "信頼済みルート（MADOGUCHI_NOTICE_TRUST_ROOTS）が未設定です。",
            f"{PREFIX}TRUST_ROOTS is not set.")

    def read(name: str, path: str) -> bytes:
        try:
            data = Path(path).read_bytes()
            load_certs(data)
        except (OSError, ValueError) as exc:
            raise SignerSettingsError(
                "cert_file", f"{PREFIX}{name} の証明書ファイルを読めません。",
                f"{PREFIX}{name}: cannot read a certificate file ({type(exc).__name__}).") from exc
        return data

    extra = get("EXTRA_CERTS")
    password = get("SIGN_P12_PASS")
    cert_path = get("SIGN_PKCS11_CERT_FILE")
    return SignerSpec(
        tsa_url=tsa,
        trust_roots=(read("TRUST_ROOTS", roots_path),),
        extra_certs=(read("EXTRA_CERTS", extra),) if extra else (),
        pkcs12_path=Path(p12) if p12 else None,
        pkcs12_passphrase=password.encode() if password is not None else None,
        pkcs11_module=module,
        pkcs11_token_label=get("SIGN_PKCS11_TOKEN"),
        pkcs11_key_label=get("SIGN_PKCS11_KEY"),
        pkcs11_pin=get("SIGN_PKCS11_PIN"),
        pkcs11_cert_label=get("SIGN_PKCS11_CERT"),
        pkcs11_cert_path=Path(cert_path) if cert_path else None,
        reason=get("SIGN_REASON") or SignerSpec.reason,
        location=get("SIGN_LOCATION"),
        lta=(get("SIGN_LTA") or "").lower() in ("1", "true", "yes"),
    )


def _classify(exc: BaseException) -> str:
    """A stable code for an exception from pyHanko, looking through its causes."""
    seen: BaseException | None = exc
    for _ in range(10):
        if seen is None:
            break
        if isinstance(seen, TimestampRequestError):
            return "tsa_unreachable"
        if isinstance(seen, RevokedError):
            return "certificate_revoked"
        if isinstance(seen, InsufficientRevinfoError):
            return "revocation_unavailable"
        if isinstance(seen, (PathBuildingError, PathValidationError)):
            return "certificate_untrusted"
        if type(seen).__module__.startswith("pkcs11"):
            return "key_unavailable"
        seen = seen.__cause__ or seen.__context__
    return "signing_failed"


class _ParsedKeySigner(signers.SimpleSigner):
    """A SimpleSigner that parses its private key once.

    pyHanko's ``SimpleSigner.sign_raw`` re-parses the key for every signature, which for RSA
    includes the key consistency check (~35 ms, twice per document with the size estimate);
    over a 500-document batch that is most of the CPU time. Other mechanisms (PSS) fall back.
    """

    def __init__(self, base: signers.SimpleSigner) -> None:
        super().__init__(signing_cert=base.signing_cert, signing_key=base.signing_key,
                         cert_registry=base.cert_registry,
                         signature_mechanism=base.signature_mechanism)
        self._key = serialization.load_der_private_key(base.signing_key.dump(), password=None)

    def sign_raw(self, data: bytes, digest_algorithm: str) -> bytes:
        mechanism = self.get_signature_mechanism_for_digest(digest_algorithm)
        algo = mechanism["algorithm"].native
        hash_algo = get_pyca_cryptography_hash(digest_algorithm)
        if algo in ("rsassa_pkcs1v15", "sha256_rsa", "sha384_rsa", "sha512_rsa") and \
                isinstance(self._key, RSAPrivateKey):
            return self._key.sign(data, PKCS1v15(), hash_algo)
        if algo.endswith("ecdsa") and isinstance(self._key, EllipticCurvePrivateKey):
            return self._key.sign(data, ECDSA(hash_algo))
        return bytes(super().sign_raw(data, digest_algorithm))


class PdfSigner:
    """Signs PDFs with one loaded key; use as a context manager (closes a PKCS#11 session).

    ``sign`` is synchronous and serialised by an internal lock (the PKCS#11 session and the
    validation context are not safe for concurrent use): call it through ``asyncio.to_thread``,
    and for parallel signing open one ``PdfSigner`` per worker thread.
    """

    def __init__(self, spec: SignerSpec) -> None:
        self.spec = spec
        self._lock = threading.Lock()
        self._session: Any = None
        self._signer: signers.Signer | None = None
        self._vc: ValidationContext | None = None
        self._vc_made = 0.0
        self._reserved: int | None = None  # signature size (hex digits), measured once
        self._roots = [c for data in spec.trust_roots for c in load_certs(data)]
        self._extra = [c for data in spec.extra_certs for c in load_certs(data)]
        self._backend = RequestsFetcherBackend(per_request_timeout=spec.timeout_s)
        self._timestamper = RequestsHTTPTimeStamper(  # type: ignore[no-untyped-call]
            spec.tsa_url, timeout=spec.timeout_s)

    def __enter__(self) -> PdfSigner:
        self.open()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def open(self) -> None:
        """Load the key (PKCS#12) or log in to the token (PKCS#11); SigningError on failure."""
        spec = self.spec
        try:
            if spec.pkcs12_path is not None:
                loaded = signers.SimpleSigner.load_pkcs12(  # type: ignore[no-untyped-call]
                    str(spec.pkcs12_path), passphrase=spec.pkcs12_passphrase,
                    other_certs=self._extra)
                if loaded is None:
                    raise _error("key_unavailable")
                self._signer = _ParsedKeySigner(loaded)
            else:
                self._signer = self._open_pkcs11()
        except SigningError:
            raise
        except Exception as exc:
            _LOGGER.warning("notice signer: key unavailable (%s)", type(exc).__name__)
            self.close()
            raise _error("key_unavailable") from exc

    def _open_pkcs11(self) -> signers.Signer:
        from pyhanko.config.pkcs11 import TokenCriteria
        from pyhanko.sign.pkcs11 import PKCS11Signer, open_pkcs11_session

        spec = self.spec
        assert spec.pkcs11_module is not None
        self._session = open_pkcs11_session(
            spec.pkcs11_module, token_criteria=TokenCriteria(label=spec.pkcs11_token_label),
            user_pin=spec.pkcs11_pin)
        cert = None
        if spec.pkcs11_cert_path is not None:
            cert = load_certs(spec.pkcs11_cert_path.read_bytes())[0]
        cert_label = None if cert is not None else (spec.pkcs11_cert_label or spec.pkcs11_key_label)
        return PKCS11Signer(self._session, key_label=spec.pkcs11_key_label, signing_cert=cert,
                            cert_label=cert_label, ca_chain=self._extra)

    def close(self) -> None:
        """Log out of the token; the signer cannot sign afterwards."""
        session, self._session, self._signer = self._session, None, None
        if session is not None:
            try:
                session.close()
            except Exception as exc:  # a token pulled out: nothing more to do
                _LOGGER.warning("notice signer: closing the token failed (%s)", type(exc).__name__)

    def _context(self) -> ValidationContext:
        """The shared validation context (its fetchers cache revocation data), renewed when old."""
        now = time.monotonic()
        if self._vc is None or now - self._vc_made > self.spec.revinfo_max_age_s:
            self._vc = ValidationContext(
                trust_roots=self._roots, other_certs=self._extra, allow_fetching=True,
                revocation_mode="hard-fail", fetcher_backend=self._backend)
            self._vc_made = now
        return self._vc

    def sign(self, pdf: bytes) -> bytes:
        """The PDF signed as PAdES B-LT (B-LTA if ``spec.lta``); raises SigningError."""
        with self._lock:
            if self._signer is None:
                raise _error("key_unavailable")
            try:
                writer = IncrementalPdfFileWriter(BytesIO(pdf), strict=False)
            except (PdfError, ValueError, KeyError, TypeError) as exc:
                raise _error("pdf_unreadable") from exc
            meta = signers.PdfSignatureMetadata(
                field_name=self.spec.field_name, reason=self.spec.reason,
                location=self.spec.location, md_algorithm="sha256",
                subfilter=fields.SigSeedSubFilter.PADES, embed_validation_info=True,
                use_pades_lta=self.spec.lta, validation_context=self._context())
            out = BytesIO()
            try:
                signers.PdfSigner(meta, self._signer, timestamper=self._timestamper).sign_pdf(
                    writer, output=out, bytes_reserved=self._reserved)
            except SigningError:
                raise
            except PdfError as exc:
                code = _classify(exc)
                raise _error("pdf_unreadable" if code == "signing_failed" else code) from exc
            except Exception as exc:
                code = _classify(exc)
                _LOGGER.warning("notice signer: %s (%s)", code, type(exc).__name__)
                if code in ("revocation_unavailable", "tsa_unreachable"):
                    self._vc = None  # do not keep a context that cached a failure
                raise _error(code) from exc
            signed = out.getvalue()
            if self._reserved is None:
                self._reserved = _reserved_size(signed, self.spec.field_name)
            return signed


def _reserved_size(signed: bytes, field_name: str) -> int | None:
    """The /Contents size pyHanko estimated (a dummy signature + timestamp) for the first
    document: the same for every document of a batch, so later ones skip the estimate."""
    for sig in PdfFileReader(BytesIO(signed), strict=False).embedded_regular_signatures:
        if sig.field_name == field_name:
            return 2 * len(sig.sig_object["/Contents"])
    return None
