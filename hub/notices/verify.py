"""Offline verification of a signed notice PDF (tests, the staff page, the bench).

Split from ``signing`` (which makes signatures) because checking needs none of the key
handling: only the PDF's own embedded data (DSS: certificates, CRLs) and the trust roots.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from io import BytesIO
from typing import Any

from asn1crypto import x509 as asn1_x509
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import (
    DocumentSecurityStore,
    EmbeddedPdfSignature,
    validate_pdf_signature,
    validate_pdf_timestamp,
)
from pyhanko_certvalidator import ValidationContext

from hub.notices.signing import load_certs

_LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True)
class Verification:
    """What the staff page shows: ok only if every signature is intact, trusted and LTV-complete.

    ``reason`` is a stable code when not ok: pdf_unreadable, unsigned, not_intact, modified,
    untrusted, no_timestamp, ltv_missing, timestamp_invalid.
    """

    ok: bool
    intact: bool = False
    trusted: bool = False
    has_timestamp: bool = False
    ltv: bool = False
    signer_subject: str | None = None
    signing_time: datetime | None = None
    signatures: int = 0
    document_timestamps: int = 0
    reason: str | None = None


def _offline_context(dss: DocumentSecurityStore | None, roots: list[asn1_x509.Certificate],
                     moment: datetime | None, hard: bool) -> ValidationContext:
    kwargs: dict[str, Any] = {
        "trust_roots": roots, "allow_fetching": False,
        "revocation_mode": "hard-fail" if hard else "soft-fail",
    }
    if moment is not None:
        kwargs["moment"] = moment
    if dss is None:  # no DSS: nothing to check revocation with (hard-fail then fails)
        return ValidationContext(crls=[], ocsps=[], **kwargs)
    return dss.as_validation_context(kwargs)


def verify(pdf: bytes, trust_roots: Sequence[bytes]) -> Verification:
    """Validate every signature of ``pdf`` offline, with only the data embedded in it.

    Each signature's chain is validated at the time its trusted timestamp proves (that is what
    B-LT promises: the embedded CRLs were current then), with revocation checking required
    ("hard-fail") and nothing fetched. Document timestamps (B-LTA) are validated too.
    Synchronous (pyHanko runs an event loop of its own): from async code use asyncio.to_thread.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:  # would fail inside pyHanko and read as "not intact": say what is wrong instead
        raise RuntimeError("verify() blocks and runs its own event loop: call it with "
                           "asyncio.to_thread from async code")
    roots = [c for data in trust_roots for c in load_certs(data)]
    try:
        reader = PdfFileReader(BytesIO(pdf), strict=False)
    except Exception:
        return Verification(ok=False, reason="pdf_unreadable")
    try:
        sigs = reader.embedded_regular_signatures
        doc_ts = reader.embedded_timestamp_signatures
    except Exception as exc:  # a signature dictionary or CMS blob that does not parse
        _LOGGER.info("notice verify: unreadable signature (%s)", type(exc).__name__)
        return Verification(ok=False, reason="not_intact")
    if not sigs:
        return Verification(ok=False, reason="unsigned")
    try:
        dss: DocumentSecurityStore | None = DocumentSecurityStore.read_dss(reader)
    except Exception:
        dss = None
    try:
        return _verify_all(sigs, doc_ts, dss, roots)
    except Exception as exc:  # a mangled CMS blob or signature dictionary
        _LOGGER.info("notice verify: unreadable signature (%s)", type(exc).__name__)
        return Verification(ok=False, signatures=len(sigs), reason="not_intact")


def _verify_all(sigs: list[EmbeddedPdfSignature], doc_ts: list[EmbeddedPdfSignature],
                dss: DocumentSecurityStore | None,
                roots: list[asn1_x509.Certificate]) -> Verification:
    result: Verification | None = None
    for sig in sigs:
        first = validate_pdf_signature(sig, _offline_context(dss, roots, None, hard=False))
        ts = first.timestamp_validity
        has_ts = ts is not None and ts.intact and ts.valid and ts.trusted
        moment = ts.timestamp if ts is not None and has_ts else None
        status = validate_pdf_signature(sig, _offline_context(dss, roots, moment, hard=True))
        intact = bool(status.intact and status.valid)
        unmodified = bool(status.docmdp_ok or status.modification_level is None)
        ltv = bool(status.trusted)  # hard-fail, offline: the embedded data alone suffice
        trusted = bool(status.trusted or first.trusted)
        reason = (None if intact and unmodified and trusted and has_ts and ltv else
                  "not_intact" if not intact else "modified" if not unmodified else
                  "untrusted" if not trusted else "no_timestamp" if not has_ts else "ltv_missing")
        result = Verification(
            ok=reason is None, intact=intact and unmodified, trusted=trusted,
            has_timestamp=has_ts, ltv=ltv,
            signer_subject=status.signing_cert.subject.human_friendly,
            signing_time=moment, signatures=len(sigs), document_timestamps=len(doc_ts),
            reason=reason)
        if not result.ok:
            return result
    for tsig in doc_ts:
        tstatus = validate_pdf_timestamp(tsig, _offline_context(dss, roots, None, hard=False))
        if not (tstatus.intact and tstatus.valid and tstatus.trusted):
            assert result is not None
            return replace(result, ok=False, reason="timestamp_invalid")
    assert result is not None
    return result
