"""The pure half of the OpenID Connect relying party (``oidc.py`` does the HTTP): the error
type with its resident-facing texts, the claim mapping into a form ``Profile``, and the ID
token checks.

Why the checks are ours and not only PyJWT's: PyJWT verifies the signature, ``iss`` and ``aud``
(the part not to write by hand), but the algorithm allow-list, the key choice, ``azp``, the
``nonce``, ``at_hash`` and the times belong to OpenID Connect, and the times are checked
against the caller's ``now`` so that tests (and a hub whose clock is being moved) decide
"expired" deterministically. Only RS256 and ES256 are accepted: never ``none``, never an HMAC
algorithm (with a provider's public key as the "secret" that would let anyone forge tokens).

Nothing here logs or formats a claim value: ``Profile`` prints as field names only, and an
``OidcError`` carries a stable code and a detail for operators that never holds personal data.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import date, datetime
from typing import Any

import jwt

ALGORITHMS = ("RS256", "ES256")
_KEY_TYPE = {"RS256": ("RSA", None), "ES256": ("EC", "P-256")}

# code -> (ja, en); what a resident reads. Never a stack trace, never a provider's raw text.
MESSAGES: dict[str, tuple[str, str]] = {
    "oidc_state_mismatch": (
        "ログインの手続きを確認できませんでした。お手数ですが、最初からやり直してください。",
        "We could not match this sign-in to your visit. Please start again."),
    "oidc_session_expired": (
        "ログインの有効期限が切れました。お手数ですが、もう一度お試しください。",
        "The sign-in took too long and has expired. Please try again."),
    "oidc_nonce_mismatch": (
        "認証サービスからの応答を確認できませんでした。最初からやり直してください。",
        "The answer from the sign-in service could not be verified. Please start again."),
    "oidc_bad_signature": (
        "認証サービスからの応答の署名を確認できませんでした。時間をおいてお試しください。",
        "The signature on the sign-in service's answer could not be verified. "
        "Please try again later."),
    "oidc_bad_token": (
        "認証サービスからの応答が正しくありません。時間をおいてお試しください。",
        "The sign-in service's answer was not valid. Please try again later."),
    "oidc_expired": (
        "認証サービスからの応答の有効期限が切れています。もう一度お試しください。",
        "The sign-in service's answer has expired. Please try again."),
    "oidc_wrong_audience": (
        "この認証結果は当サービス向けではありません。最初からやり直してください。",
        "This sign-in was not issued for this service. Please start again."),
    "oidc_wrong_issuer": (
        "想定していない認証サービスからの応答です。最初からやり直してください。",
        "The answer came from an unexpected sign-in service. Please start again."),
    "oidc_provider_unavailable": (
        "認証サービスに接続できません。しばらくしてからお試しください。",
        "The sign-in service cannot be reached. Please try again in a while."),
    "oidc_provider_error": (
        "認証サービスでエラーが発生しました。しばらくしてからお試しください。",
        "The sign-in service reported an error. Please try again in a while."),
    "oidc_denied": (
        "認証が中止されました。もう一度お試しいただくか、ほかの方法で申請してください。",
        "Sign-in was cancelled. You can try again or apply another way."),
    "oidc_token_refused": (
        "認証サービスがログインを受け付けませんでした。最初からやり直してください。",
        "The sign-in service did not accept this sign-in. Please start again."),
    "oidc_userinfo_mismatch": (
        "認証サービスから受け取った情報が一致しません。最初からやり直してください。",
        "The details from the sign-in service do not match. Please start again."),
    "oidc_misconfigured": (
        "このログイン方法は現在ご利用いただけません。窓口にお問い合わせください。",
        "This sign-in method is not available at the moment. Please contact the office."),
}


class OidcError(Exception):
    """One failure of the relying party. ``code`` is stable (routes, tests, audit); ``detail``
    is for operators' logs and never holds a claim value, a code, a token or a state."""

    def __init__(self, code: str, detail: str = "") -> None:
        if code not in MESSAGES:
            raise ValueError(f"unknown OIDC error code {code!r}")
        super().__init__(f"{code}: {detail}" if detail else code)
        self.code = code
        self.detail = detail

    def message(self, lang: str) -> str:
        """The resident's text in ``lang`` (ja or en; anything else gets Japanese)."""
        ja, en = MESSAGES[self.code]
        return en if lang == "en" else ja

    @property
    def http_status(self) -> int:
        """What a route answers: 502 when the provider failed us, 403 when the resident
        declined, else 400 (a bad or replayed response)."""
        if self.code in ("oidc_provider_unavailable", "oidc_provider_error"):
            return 502
        if self.code == "oidc_misconfigured":
            return 503
        return 403 if self.code == "oidc_denied" else 400


# --- claims -> profile ------------------------------------------------------------------------

@dataclass(frozen=True)
class ClaimMap:
    """Which claims fill which profile field: per field, claim paths tried in order, the first
    present wins; a dotted path reads inside an object claim (``address.postal_code``).

    The defaults follow OpenID Connect Core (``name``, the language-tagged
    ``name#ja-Kana-JP`` for furigana, the ``address`` object, ``birthdate``, ``email``).
    Providers built on the マイナンバーカード (JPKI) signing certificate return its "4 basic
    information" (name, address, date of birth, gender) under their own claim names; a ward sets
    them here (``ProviderConfig.from_mapping``'s ``claims`` table) instead of changing code.
    Gender is deliberately not mapped: no form field needs it to be prefilled."""

    name: tuple[str, ...] = ("name",)
    furigana: tuple[str, ...] = ("name#ja-Kana-JP", "name_kana")
    postal_code: tuple[str, ...] = ("address.postal_code",)
    address: tuple[str, ...] = ("address.formatted", "address")
    birth_date: tuple[str, ...] = ("birthdate",)
    email: tuple[str, ...] = ("email",)
    email_needs_verified: bool = True  # an unverified e-mail claim is not prefilled

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> ClaimMap:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown claim mapping fields: {sorted(unknown)}")
        values: dict[str, Any] = {}
        for key, value in data.items():
            if key == "email_needs_verified":
                values[key] = bool(value)
            elif isinstance(value, str):
                values[key] = (value,)
            elif isinstance(value, Sequence) and all(isinstance(v, str) for v in value):
                values[key] = tuple(value)
            else:
                raise ValueError(f"claim mapping {key!r}: a claim name or a list of them")
        return cls(**values)


@dataclass(frozen=True)
class Profile:
    """What a form may prefill. Printing it shows which fields are known, never their values,
    so an accidental log line or exception message leaks nothing."""

    name: str | None = None
    furigana: str | None = None
    postal_code: str | None = None
    address: str | None = None
    birth_date: date | None = None
    email: str | None = None

    def __repr__(self) -> str:
        known = [f.name for f in fields(self) if getattr(self, f.name) is not None]
        return f"Profile(known={known})"

    __str__ = __repr__


def _lookup(claims: Mapping[str, Any], path: str) -> Any:
    if path in claims:  # a literal key wins (claim names may hold dots or '#')
        return claims[path]
    head, _, rest = path.partition(".")
    inner = claims.get(head)
    if rest and isinstance(inner, Mapping):
        return _lookup(inner, rest)
    return None


def _text(value: Any) -> str | None:
    if isinstance(value, Mapping):  # an OIDC address object without "formatted"
        parts = [value.get(k) for k in ("region", "locality", "street_address")]
        value = "".join(p for p in parts if isinstance(p, str))
    if not isinstance(value, str):
        return None
    value = " ".join(unicodedata.normalize("NFC", value).replace("\u3000", " ").split())
    return value or None


def normalise_postal_code(value: str) -> str | None:
    """``1768501``, ``〒176-8501`` or full-width digits -> ``176-8501``; else None."""
    digits = re.sub(r"\D", "", unicodedata.normalize("NFKC", value))
    return f"{digits[:3]}-{digits[3:]}" if len(digits) == 7 else None


def parse_birth_date(value: str) -> date | None:
    """``1980-04-01`` (OIDC) or ``19800401`` (common in JPKI-based claims); else None. A year
    only (``0000`` month/day, allowed by OIDC) is no date to prefill."""
    digits = unicodedata.normalize("NFKC", value).strip().replace("-", "")
    if not re.fullmatch(r"\d{8}", digits):
        return None
    try:
        return date(int(digits[:4]), int(digits[4:6]), int(digits[6:]))
    except ValueError:
        return None


def map_claims(claims: Mapping[str, Any], mapping: ClaimMap) -> Profile:
    """The profile the claims give under ``mapping``; a claim of the wrong shape is left out
    (a resident then types it), never an error."""

    def first(paths: tuple[str, ...]) -> str | None:
        for path in paths:
            text = _text(_lookup(claims, path))
            if text is not None:
                return text
        return None

    postal = first(mapping.postal_code)
    birth = first(mapping.birth_date)
    email = first(mapping.email)
    if email is not None and mapping.email_needs_verified and claims.get("email_verified") \
            is not True:
        email = None
    return Profile(
        name=first(mapping.name), furigana=first(mapping.furigana),
        postal_code=normalise_postal_code(postal) if postal else None,
        address=first(mapping.address),
        birth_date=parse_birth_date(birth) if birth else None, email=email)


# --- ID token ---------------------------------------------------------------------------------

def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def pkce_challenge(verifier: str) -> str:
    """RFC 7636 S256: BASE64URL(SHA256(ASCII(verifier)))."""
    return b64url(hashlib.sha256(verifier.encode("ascii")).digest())


def left_hash(value: str, alg: str) -> str:
    """``at_hash``: the left half of the hash named by the token's algorithm (SHA-256 for both
    RS256 and ES256), base64url."""
    if alg not in _KEY_TYPE:
        raise OidcError("oidc_bad_signature", f"algorithm {alg!r} not accepted")
    digest = hashlib.sha256(value.encode("ascii")).digest()
    return b64url(digest[: len(digest) // 2])


def pick_key(header: Mapping[str, Any], jwks: Sequence[Mapping[str, Any]]) -> jwt.PyJWK | None:
    """The signing key for this header from a JWKS, or None if none fits (the caller then
    refetches the JWKS once: the provider may have rotated its keys). A key for encryption
    (``use: enc``), of another type or declaring another ``alg`` never fits."""
    alg = header.get("alg")
    if alg not in _KEY_TYPE:
        raise OidcError("oidc_bad_signature", f"algorithm {alg!r} not accepted")
    kty, crv = _KEY_TYPE[alg]
    kid = header.get("kid")
    fitting = [k for k in jwks
               if k.get("kty") == kty and (crv is None or k.get("crv") == crv)
               and k.get("use", "sig") == "sig" and k.get("alg", alg) == alg]
    chosen = [k for k in fitting if k.get("kid") == kid] if kid is not None else fitting
    if len(chosen) != 1:  # no kid and several keys is ambiguous: refuse rather than guess
        return None
    try:
        return jwt.PyJWK(dict(chosen[0]), algorithm=alg)
    except jwt.PyJWTError as exc:
        raise OidcError("oidc_bad_signature", f"unusable key: {type(exc).__name__}") from exc


def unverified_header(token: str) -> dict[str, Any]:
    try:
        return jwt.get_unverified_header(token)
    except jwt.PyJWTError as exc:
        raise OidcError("oidc_bad_token", "ID token is not a JWS") from exc


@dataclass(frozen=True)
class TokenRules:
    """What an ID token must satisfy, from the provider config and the pending login."""

    issuer: str
    client_id: str
    nonce: str
    leeway_s: float = 60.0
    max_age_s: float = 600.0  # an ID token issued longer ago than this is stale


def verify_id_token(token: str, key: jwt.PyJWK, rules: TokenRules, now: datetime,
                    access_token: str | None) -> dict[str, Any]:
    """The verified claims of ``token`` or an ``OidcError`` naming the first failed check."""
    alg = unverified_header(token).get("alg")
    if alg not in _KEY_TYPE:
        raise OidcError("oidc_bad_signature", f"algorithm {alg!r} not accepted")
    try:
        claims: dict[str, Any] = jwt.decode(
            token, key=key.key, algorithms=[alg], audience=rules.client_id,
            issuer=rules.issuer,
            options={"require": ["iss", "sub", "aud", "exp", "iat"], "verify_exp": False,
                     "verify_iat": False, "verify_nbf": False})
    except jwt.InvalidAudienceError as exc:
        raise OidcError("oidc_wrong_audience", "aud does not name this client") from exc
    except jwt.InvalidIssuerError as exc:
        raise OidcError("oidc_wrong_issuer", "iss differs from the configured issuer") from exc
    except (jwt.InvalidSignatureError, jwt.InvalidAlgorithmError) as exc:
        raise OidcError("oidc_bad_signature", type(exc).__name__) from exc
    except jwt.PyJWTError as exc:
        raise OidcError("oidc_bad_token", type(exc).__name__) from exc

    aud = claims["aud"]
    if isinstance(aud, list) and len(aud) > 1 and "azp" not in claims:
        raise OidcError("oidc_wrong_audience", "several audiences and no azp")
    if "azp" in claims and claims["azp"] != rules.client_id:
        raise OidcError("oidc_wrong_audience", "azp names another client")

    ts = now.timestamp()
    exp, iat = claims["exp"], claims["iat"]
    if not isinstance(exp, int | float) or not isinstance(iat, int | float):
        raise OidcError("oidc_bad_token", "exp/iat not numbers")
    if ts > exp + rules.leeway_s:
        raise OidcError("oidc_expired", "ID token past exp")
    if iat > ts + rules.leeway_s:
        raise OidcError("oidc_bad_token", "ID token issued in the future (clock skew?)")
    if iat < ts - rules.max_age_s - rules.leeway_s:
        raise OidcError("oidc_expired", "ID token too old")
    nbf = claims.get("nbf")
    if isinstance(nbf, int | float) and nbf > ts + rules.leeway_s:
        raise OidcError("oidc_bad_token", "ID token not yet valid")

    nonce = claims.get("nonce")
    if not isinstance(nonce, str) or not hmac.compare_digest(nonce.encode(),
                                                             rules.nonce.encode()):
        raise OidcError("oidc_nonce_mismatch", "nonce differs from the pending login")
    at_hash = claims.get("at_hash")
    if at_hash is not None and access_token is not None and (
            not isinstance(at_hash, str) or not hmac.compare_digest(
                at_hash.encode(), left_hash(access_token, alg).encode())):
        raise OidcError("oidc_bad_token", "at_hash does not match the access token")
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub:
        raise OidcError("oidc_bad_token", "sub missing")
    return claims
