"""PAdES B-LT/B-LTA signing of notices: offline verification, PKCS#11 (SoftHSM2), failures."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
from io import BytesIO
from pathlib import Path

import pytest
from asn1crypto import crl, pem  # type: ignore[import-untyped]
from conftest import free_port
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from notices_pki_support import SoftHsmToken, pkcs11_spec, small_pdf
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import DocumentSecurityStore, validate_pdf_signature
from pyhanko_certvalidator import CertificateValidator, ValidationContext

from hub.notices.signing import (
    PdfSigner,
    SignerSettingsError,
    SigningError,
    load_certs,
    parse_signer_spec,
)
from hub.notices.testpki import TestPki
from hub.notices.verify import verify

PAGES = ["住民税 納税通知書 (テスト)", "2ページ目"]


@pytest.fixture(scope="module")
def signed(notice_pki: TestPki) -> tuple[bytes, bytes]:
    """(original, signed B-LT) with the PKCS#12 key."""
    pdf = small_pdf(PAGES)
    with PdfSigner(notice_pki.spec()) as signer:
        return pdf, signer.sign(pdf)


def _other_root() -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "他区 ルート (テスト)")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(1)
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM)


def test_pkcs12_signature_is_b_lt_and_verifies_offline(signed: tuple[bytes, bytes],
                                                       notice_pki: TestPki) -> None:
    pdf, out = signed
    assert out[: len(pdf)] == pdf  # an incremental update: the resident's pages are untouched
    before = hashlib.sha256(out).digest()
    result = verify(out, [notice_pki.root_pem])
    assert result.ok, result
    assert (result.intact, result.trusted, result.has_timestamp, result.ltv) == (True,) * 4
    assert result.signer_subject is not None
    assert "練馬区長 (テスト)" in result.signer_subject
    assert result.signing_time is not None
    assert abs(result.signing_time - dt.datetime.now(dt.UTC)) < dt.timedelta(minutes=5)
    assert result.signatures == 1
    assert result.document_timestamps == 0
    assert hashlib.sha256(out).digest() == before
    reader = PdfFileReader(BytesIO(out))
    dss = DocumentSecurityStore.read_dss(reader)
    assert dss.crls, "the CRL must be embedded (LTV)"


def test_signing_twice_gives_two_valid_files(notice_pki: TestPki) -> None:
    pdf = small_pdf(PAGES)
    with PdfSigner(notice_pki.spec(lta=True)) as signer:
        first, second = signer.sign(pdf), signer.sign(pdf)
    for out in (first, second):
        result = verify(out, [notice_pki.root_pem])
        assert result.ok, result
        assert result.document_timestamps == 1


async def test_sign_from_async_code_in_threads(notice_pki: TestPki) -> None:
    pdfs = [small_pdf([f"通知 {i}"]) for i in range(3)]
    with PdfSigner(notice_pki.spec()) as signer:
        outs = await asyncio.gather(*(asyncio.to_thread(signer.sign, p) for p in pdfs))
    # verify is synchronous too (pyHanko runs its own event loop): a thread from async code
    results = await asyncio.gather(*(asyncio.to_thread(verify, o, [notice_pki.root_pem])
                                     for o in outs))
    assert all(r.ok for r in results)
    assert len(set(outs)) == 3


def test_validates_with_plain_certvalidator_after_pki_is_stopped(tmp_path: Path) -> None:
    pki = TestPki()
    pki.start()
    try:
        pdf = small_pdf(PAGES)
        with PdfSigner(pki.spec()) as signer:
            out = signer.sign(pdf)
        with PdfSigner(pki.spec(lta=True)) as signer:
            out_lta = signer.sign(pdf)
        root = pki.root_pem
        p12 = tmp_path / "signer.p12"
        p12.write_bytes(pki.pkcs12_path.read_bytes())
        offline_spec = pki.spec(pkcs12_path=p12)
    finally:
        pki.stop()
    assert not pki.running
    # the CRL server is gone: signing cannot embed revocation data and says so
    with PdfSigner(offline_spec) as signer, pytest.raises(SigningError) as err:
        signer.sign(pdf)
    assert err.value.code == "revocation_unavailable"
    for data in (out, out_lta):
        assert verify(data, [root]).ok
        reader = PdfFileReader(BytesIO(data))
        dss = DocumentSecurityStore.read_dss(reader)
        sig = reader.embedded_regular_signatures[0]
        first = validate_pdf_signature(sig, ValidationContext(
            trust_roots=load_certs(root), allow_fetching=False))
        assert first.timestamp_validity is not None
        moment = first.timestamp_validity.timestamp
        vc = ValidationContext(
            trust_roots=load_certs(root), other_certs=list(dss.load_certs()),
            crls=[_crl(c) for c in dss.crls],
            allow_fetching=False, revocation_mode="hard-fail", moment=moment)
        validator = CertificateValidator(sig.signer_cert, validation_context=vc)
        usage = validator.async_validate_usage({"digital_signature"})  # type: ignore[no-untyped-call]
        assert asyncio.run(usage) is not None  # raises if the chain or the CRL check fails
        status = validate_pdf_signature(sig, vc)
        assert status.intact, status.summary()
        assert status.valid, status.summary()
        assert status.trusted, status.summary()


def _crl(ref: generic.IndirectObject) -> crl.CertificateList:
    """A CRL from the document security store, as plain asn1crypto for certvalidator."""
    stream = ref.get_object()  # type: ignore[no-untyped-call]
    assert isinstance(stream, generic.StreamObject)
    return crl.CertificateList.load(stream.data)


def test_pkcs11_softhsm_signature_verifies(
    notice_pki: TestPki,
    softhsm_token: SoftHsmToken,
    signed: tuple[bytes, bytes],
) -> None:
    pdf = small_pdf(PAGES)
    with PdfSigner(pkcs11_spec(notice_pki, softhsm_token)) as signer:
        out = signer.sign(pdf)
        again = signer.sign(pdf)
    result = verify(out, [notice_pki.root_pem])
    assert result.ok, result
    assert result.ltv
    assert result.has_timestamp
    assert result.signer_subject == verify(signed[1], [notice_pki.root_pem]).signer_subject
    assert verify(again, [notice_pki.root_pem]).ok


def test_pkcs11_wrong_pin_is_key_unavailable(
    notice_pki: TestPki,
    softhsm_token: SoftHsmToken,
) -> None:
    spec = pkcs11_spec(notice_pki, softhsm_token, pkcs11_pin="0000")
    with pytest.raises(SigningError) as err:
        PdfSigner(spec).open()
    assert err.value.code == "key_unavailable"


def test_tampered_byte_is_not_ok(signed: tuple[bytes, bytes], notice_pki: TestPki) -> None:
    out = bytearray(signed[1])
    at = out.index(b"ReportLab")
    out[at] = ord("X")
    result = verify(bytes(out), [notice_pki.root_pem])
    assert not result.ok
    assert not result.intact
    assert result.reason == "not_intact"
    mangled = bytearray(signed[1])  # the signature container itself (hex in /Contents)
    at = mangled.index(b"/Contents <") + len(b"/Contents <") + 40
    mangled[at : at + 8] = b"ffffffff"
    assert verify(bytes(mangled), [notice_pki.root_pem]).reason == "not_intact"


def test_wrong_trust_root_is_not_trusted(signed: tuple[bytes, bytes]) -> None:
    result = verify(signed[1], [_other_root()])
    assert not result.ok
    assert not result.trusted
    assert result.reason == "untrusted"
    assert result.intact


def test_unsigned_and_garbage(notice_pki: TestPki) -> None:
    assert verify(small_pdf(["x"]), [notice_pki.root_pem]).reason == "unsigned"
    assert verify(b"not a pdf", [notice_pki.root_pem]).reason == "pdf_unreadable"
    with PdfSigner(notice_pki.spec()) as signer, pytest.raises(SigningError) as err:
        signer.sign(b"%PDF-1.7\n garbage")
    assert err.value.code == "pdf_unreadable"
    assert "garbage" not in str(err.value)


def test_tsa_down_is_tsa_unreachable(notice_pki: TestPki) -> None:
    spec = notice_pki.spec(tsa_url=f"http://127.0.0.1:{free_port()}/tsa", timeout_s=2.0)
    with PdfSigner(spec) as signer, pytest.raises(SigningError) as err:
        signer.sign(small_pdf(["山田 太郎 様"]))
    assert err.value.code == "tsa_unreachable"
    assert err.value.ja
    assert err.value.en
    assert "山田" not in str(err.value)


def test_bad_pkcs12_passphrase_is_key_unavailable(notice_pki: TestPki) -> None:
    with pytest.raises(SigningError) as err:
        PdfSigner(notice_pki.spec(pkcs12_passphrase=b"wrong")).open()
    assert err.value.code == "key_unavailable"


def test_parse_signer_spec(tmp_path: Path, notice_pki: TestPki) -> None:
    roots = tmp_path / "roots.pem"
    roots.write_bytes(notice_pki.root_pem)
    assert parse_signer_spec({}) is None
    base = {"MADOGUCHI_NOTICE_SIGN_P12": str(notice_pki.pkcs12_path),
            "MADOGUCHI_NOTICE_SIGN_P12_PASS": notice_pki.passphrase.decode(),
            "MADOGUCHI_NOTICE_TSA_URL": notice_pki.tsa_url,
            "MADOGUCHI_NOTICE_TRUST_ROOTS": str(roots)}
    spec = parse_signer_spec(base)
    assert spec is not None
    assert spec.pkcs12_passphrase == notice_pki.passphrase
    assert notice_pki.passphrase.decode() not in repr(spec)  # secrets stay out of logs
    assert not spec.lta
    assert spec.trust_roots == (notice_pki.root_pem,)
    assert parse_signer_spec({**base, "MADOGUCHI_NOTICE_SIGN_LTA": "1"}).lta  # type: ignore[union-attr]
    cases = {
        "tsa_url": {**base, "MADOGUCHI_NOTICE_TSA_URL": ""},
        "trust_roots": {k: v for k, v in base.items() if "TRUST" not in k},
        "cert_file": {**base, "MADOGUCHI_NOTICE_TRUST_ROOTS": str(tmp_path / "none.pem")},
        "key_source": {**base, "MADOGUCHI_NOTICE_SIGN_PKCS11_MODULE": "/x.so"},
        "pkcs11_incomplete": {**{k: v for k, v in base.items() if "P12" not in k},
                              "MADOGUCHI_NOTICE_SIGN_PKCS11_MODULE": "/x.so",
                              "MADOGUCHI_NOTICE_SIGN_PKCS11_TOKEN": "t"},
    }
    for code, env in cases.items():
        with pytest.raises(SignerSettingsError) as err:
            parse_signer_spec(env)
        assert err.value.code == code
        assert any(ord(ch) > 0x3000 for ch in err.value.ja), err.value.ja
        assert "MADOGUCHI_NOTICE_" in err.value.en or code == "cert_file"
    bad_tsa = {**base, "MADOGUCHI_NOTICE_TSA_URL": "ftp://x"}
    with pytest.raises(SignerSettingsError):
        parse_signer_spec(bad_tsa)
    assert pem.detect(notice_pki.root_pem)


def test_without_embedded_revocation_data_is_ltv_missing(notice_pki: TestPki) -> None:
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.sign import fields, signers
    from pyhanko.sign.timestamps.requests_client import RequestsHTTPTimeStamper

    signer = signers.SimpleSigner.load_pkcs12(  # type: ignore[no-untyped-call]
        str(notice_pki.pkcs12_path),
                                              passphrase=notice_pki.passphrase)
    assert signer is not None
    meta = signers.PdfSignatureMetadata(field_name="Sig", subfilter=fields.SigSeedSubFilter.PADES)
    out = BytesIO()
    signers.PdfSigner(meta, signer, timestamper=RequestsHTTPTimeStamper(notice_pki.tsa_url)  # type: ignore[no-untyped-call]
                      ).sign_pdf(IncrementalPdfFileWriter(BytesIO(small_pdf(["B-T"]))), output=out)
    result = verify(out.getvalue(), [notice_pki.root_pem])  # B-T only: no DSS, no CRL
    assert result.trusted
    assert result.has_timestamp
    assert not result.ltv
    assert not result.ok
    assert result.reason == "ltv_missing"
