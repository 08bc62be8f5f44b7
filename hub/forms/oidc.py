"""OpenID Connect relying party for forms that need a verified identity (F2): the way a ward
connects a マイナンバーカード (JPKI) based identity provider, or any other OIDC provider.

Shape for the routes (a later step): ``begin`` gives the URL to redirect the resident to and a
``Pending`` the route keeps server-side (or in a signed session cookie: ``to_dict`` /
``from_dict``); the provider sends the resident back to ``redirect_uri`` and the route calls
``finish(pending, request.query, now)``, which returns an ``Identity`` or raises ``OidcError``
whose ``message(lang)`` the route shows. The route stores ``Identity.key`` (an HMAC of issuer
and subject), never the raw subject, to recognise a returning resident.

Why each part:
- Authorization code flow with PKCE (S256), ``state`` and ``nonce``: the code is useless to
  whoever intercepts it without the verifier; ``state`` ties the answer to the browser that
  started (login CSRF); ``nonce`` ties the ID token to this login (replay).
- Discovery is checked (its ``issuer`` must equal the configured one, endpoints must be https)
  and cached; the JWKS is cached too and refetched once when a token names an unknown ``kid``
  (the provider rotated its keys). ID tokens arrive over the back channel from the token
  endpoint, so an attacker cannot make the hub refetch at will.
- The client authenticates with ``client_secret_basic``. ``private_key_jwt`` is left out for
  now: no provider in the seeds requires it; it would be another branch of ``_token``.
- Claims are mapped by a setting (``ClaimMap``) into a ``Profile``; nothing personal is
  logged: log lines carry error codes and endpoint names only.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import aiohttp

from hub.forms.oidc_tokens import (
    ClaimMap,
    OidcError,
    Profile,
    TokenRules,
    map_claims,
    pick_key,
    pkce_challenge,
    unverified_header,
    verify_id_token,
)

__all__ = ["ClaimMap", "Identity", "OidcClient", "OidcError", "Pending", "Profile",
           "ProviderConfig", "pseudonym"]

_LOGGER = logging.getLogger(__name__)
MAX_BODY = 512 * 1024  # no provider document or token response is anywhere near this
_LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}


def _check_url(url: str, what: str) -> None:
    """https only; plain http is allowed for a provider on this machine (tests, a local
    development provider), never across a network."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return
    if parts.scheme == "http" and parts.hostname in _LOCAL_HOSTS:
        return
    raise OidcError("oidc_misconfigured", f"{what} must be an https URL")


@dataclass(frozen=True)
class ProviderConfig:
    """One provider as a ward registers it. ``client_secret`` is not printed by ``repr``."""

    issuer: str
    client_id: str
    client_secret: str = field(repr=False)
    redirect_uri: str
    scopes: tuple[str, ...] = ("openid", "profile", "email", "address")
    claims: ClaimMap = field(default_factory=ClaimMap)
    use_userinfo: bool = True
    extra_params: tuple[tuple[str, str], ...] = ()  # e.g. (("acr_values", "…"),)
    leeway_s: float = 60.0
    pending_ttl: timedelta = timedelta(minutes=10)
    cache_ttl: timedelta = timedelta(hours=1)
    timeout_s: float = 10.0

    def __post_init__(self) -> None:
        _check_url(self.issuer, "issuer")
        _check_url(self.redirect_uri, "redirect_uri")
        if "openid" not in self.scopes:
            raise OidcError("oidc_misconfigured", "scopes must include openid")
        if not self.client_id or not self.client_secret:
            raise OidcError("oidc_misconfigured", "client_id and client_secret are required")

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> ProviderConfig:
        """From a form's identity settings (JSON/TOML table): issuer, client_id,
        client_secret, redirect_uri, and optionally scopes (list or space-separated),
        claims (field -> claim name or list), use_userinfo, extra_params, leeway_s."""
        scopes = data.get("scopes", cls.scopes)
        if isinstance(scopes, str):
            scopes = scopes.split()
        extra = data.get("extra_params", {})
        return cls(
            issuer=str(data["issuer"]), client_id=str(data["client_id"]),
            client_secret=str(data["client_secret"]), redirect_uri=str(data["redirect_uri"]),
            scopes=tuple(str(s) for s in scopes),
            claims=ClaimMap.from_mapping(data.get("claims", {})),
            use_userinfo=bool(data.get("use_userinfo", True)),
            extra_params=tuple((str(k), str(v)) for k, v in dict(extra).items()),
            leeway_s=float(data.get("leeway_s", 60.0)))


@dataclass(frozen=True)
class ProviderMetadata:
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    userinfo_endpoint: str | None


@dataclass(frozen=True)
class Pending:
    """One started login: what the route keeps until the resident comes back. It holds
    secrets (verifier, nonce), so it lives server-side or in an encrypted/signed session."""

    state: str
    nonce: str
    code_verifier: str = field(repr=False)
    form_id: str
    return_path: str
    created_at: datetime

    def to_dict(self) -> dict[str, str]:
        return {"state": self.state, "nonce": self.nonce, "code_verifier": self.code_verifier,
                "form_id": self.form_id, "return_path": self.return_path,
                "created_at": self.created_at.isoformat()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Pending:
        try:
            return cls(state=str(data["state"]), nonce=str(data["nonce"]),
                       code_verifier=str(data["code_verifier"]), form_id=str(data["form_id"]),
                       return_path=str(data["return_path"]),
                       created_at=datetime.fromisoformat(str(data["created_at"])))
        except (KeyError, ValueError) as exc:
            raise OidcError("oidc_state_mismatch", "pending login unreadable") from exc


@dataclass(frozen=True)
class Identity:
    """A verified resident. Store ``key``; ``subject`` is kept for this request only."""

    issuer: str
    subject: str = field(repr=False)
    key: str
    profile: Profile
    form_id: str
    return_path: str
    auth_time: datetime | None = None
    acr: str | None = None


def pseudonym(secret: bytes, issuer: str, subject: str) -> str:
    """HMAC-SHA256 of (issuer, subject), hex: the same resident at the same provider gives the
    same key, the database alone cannot tell who it is, and two pairs never collide by
    concatenation (both parts are length-prefixed)."""
    message = json.dumps([issuer, subject], ensure_ascii=False, separators=(",", ":"))
    return hmac.new(secret, message.encode(), hashlib.sha256).hexdigest()


def safe_return_path(path: str) -> str:
    """Only a path on this hub (``/forms/…``): never ``//host`` or a full URL, so the login
    cannot be turned into an open redirect."""
    if not path.startswith("/") or path.startswith("//") or "\\" in path \
            or any(ord(c) < 0x20 for c in path):
        raise ValueError("return path must be a local absolute path")
    return path


class OidcClient:
    """The relying party for one provider. ``http`` is the app's shared client session;
    ``pseudonym_secret`` a key derived for this purpose only (not the hub's master key)."""

    def __init__(self, config: ProviderConfig, http: aiohttp.ClientSession,
                 pseudonym_secret: bytes) -> None:
        self.config = config
        self._http = http
        self._secret = pseudonym_secret
        self._timeout = aiohttp.ClientTimeout(total=config.timeout_s)
        self._metadata: tuple[ProviderMetadata, datetime] | None = None
        self._jwks: tuple[list[dict[str, Any]], datetime] | None = None
        self._jwks_generation = 0
        self._lock = asyncio.Lock()

    # --- HTTP -------------------------------------------------------------------------------

    async def _read_json(self, resp: aiohttp.ClientResponse, what: str) -> dict[str, Any]:
        body = await resp.content.read(MAX_BODY + 1)
        if len(body) > MAX_BODY:
            raise OidcError("oidc_provider_error", f"{what}: answer too large")
        try:
            data = json.loads(body)
        except ValueError as exc:
            raise OidcError("oidc_provider_error", f"{what}: answer not JSON") from exc
        if not isinstance(data, dict):
            raise OidcError("oidc_provider_error", f"{what}: answer not a JSON object")
        return data

    async def _get_json(self, url: str, what: str,
                        headers: Mapping[str, str] | None = None) -> dict[str, Any]:
        try:
            async with self._http.get(url, headers=headers, timeout=self._timeout,
                                      allow_redirects=False) as resp:
                if resp.status >= 500:
                    raise OidcError("oidc_provider_unavailable", f"{what}: HTTP {resp.status}")
                if resp.status != 200:
                    raise OidcError("oidc_provider_error", f"{what}: HTTP {resp.status}")
                return await self._read_json(resp, what)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise OidcError("oidc_provider_unavailable",
                            f"{what}: {type(exc).__name__}") from exc

    # --- discovery and keys -----------------------------------------------------------------

    async def metadata(self, now: datetime) -> ProviderMetadata:
        """The provider's discovery document, fetched once per ``cache_ttl``."""
        async with self._lock:
            if self._metadata and now - self._metadata[1] < self.config.cache_ttl:
                return self._metadata[0]
            url = self.config.issuer.rstrip("/") + "/.well-known/openid-configuration"
            doc = await self._get_json(url, "discovery")
            if doc.get("issuer") != self.config.issuer:
                raise OidcError("oidc_wrong_issuer", "discovery issuer differs from config")
            urls: dict[str, str | None] = {}
            for name in ("authorization_endpoint", "token_endpoint", "jwks_uri",
                         "userinfo_endpoint"):
                value = doc.get(name)
                if value is None and name == "userinfo_endpoint":
                    urls[name] = None
                    continue
                if not isinstance(value, str):
                    raise OidcError("oidc_provider_error", f"discovery lacks {name}")
                _check_url(value, name)
                urls[name] = value
            methods = doc.get("code_challenge_methods_supported")
            if isinstance(methods, list) and "S256" not in methods:
                raise OidcError("oidc_misconfigured", "provider does not support PKCE S256")
            meta = ProviderMetadata(
                issuer=self.config.issuer,
                authorization_endpoint=str(urls["authorization_endpoint"]),
                token_endpoint=str(urls["token_endpoint"]), jwks_uri=str(urls["jwks_uri"]),
                userinfo_endpoint=urls["userinfo_endpoint"])
            self._metadata = (meta, now)
            return meta

    async def _keys(self, now: datetime, refresh_from: int | None = None
                    ) -> tuple[list[dict[str, Any]], int]:
        """The cached JWKS and its generation; with ``refresh_from``, a fresh copy unless
        another task already refreshed it since that generation (one refetch per rotation)."""
        meta = await self.metadata(now)
        async with self._lock:
            fresh = self._jwks is not None and now - self._jwks[1] < self.config.cache_ttl
            if fresh and (refresh_from is None or refresh_from != self._jwks_generation):
                assert self._jwks is not None
                return self._jwks[0], self._jwks_generation
            doc = await self._get_json(meta.jwks_uri, "jwks")
            keys = doc.get("keys")
            if not isinstance(keys, list):
                raise OidcError("oidc_provider_error", "jwks has no keys list")
            self._jwks = ([k for k in keys if isinstance(k, dict)], now)
            self._jwks_generation += 1
            return self._jwks[0], self._jwks_generation

    # --- the flow ---------------------------------------------------------------------------

    async def begin(self, form_id: str, return_path: str, now: datetime,
                    lang: str | None = None) -> tuple[str, Pending]:
        """The provider URL to redirect the resident to, and what to keep until they return."""
        meta = await self.metadata(now)
        pending = Pending(state=secrets.token_urlsafe(32), nonce=secrets.token_urlsafe(32),
                          code_verifier=secrets.token_urlsafe(64), form_id=form_id,
                          return_path=safe_return_path(return_path), created_at=now)
        params = [("response_type", "code"), ("client_id", self.config.client_id),
                  ("redirect_uri", self.config.redirect_uri),
                  ("scope", " ".join(self.config.scopes)), ("state", pending.state),
                  ("nonce", pending.nonce),
                  ("code_challenge", pkce_challenge(pending.code_verifier)),
                  ("code_challenge_method", "S256"), *self.config.extra_params]
        if lang:
            params.append(("ui_locales", lang))
        sep = "&" if urlsplit(meta.authorization_endpoint).query else "?"
        return meta.authorization_endpoint + sep + urlencode(params, quote_via=quote), pending

    async def finish(self, pending: Pending, query: Mapping[str, str],
                     now: datetime) -> Identity:
        """Check the provider's answer (``query``: the callback's parameters), exchange the
        code, verify the ID token, read userinfo and map the claims."""
        state = query.get("state", "")
        if not hmac.compare_digest(state.encode(), pending.state.encode()):
            raise OidcError("oidc_state_mismatch", "state differs from the pending login")
        if now - pending.created_at > self.config.pending_ttl:
            raise OidcError("oidc_session_expired", "pending login too old")
        if "iss" in query and query["iss"] != self.config.issuer:  # RFC 9207 mix-up defence
            raise OidcError("oidc_wrong_issuer", "authorization response iss differs")
        error = query.get("error")
        if error is not None:
            code = "oidc_denied" if error == "access_denied" else "oidc_provider_error"
            _LOGGER.info("oidc: provider answered error %.40s", error)
            raise OidcError(code, f"authorization error {error[:40]}")
        code_value = query.get("code")
        if not code_value:
            raise OidcError("oidc_provider_error", "authorization response has no code")

        meta = await self.metadata(now)
        tokens = await self._token(meta, code_value, pending)
        id_token, access_token = tokens["id_token"], tokens.get("access_token")
        header = unverified_header(id_token)
        keys, generation = await self._keys(now)
        key = pick_key(header, keys)
        if key is None:  # unknown kid: the provider may have rotated its keys; look once more
            keys, _ = await self._keys(now, refresh_from=generation)
            key = pick_key(header, keys)
            if key is None:
                raise OidcError("oidc_bad_signature", "no JWKS key fits the ID token")
        rules = TokenRules(issuer=self.config.issuer, client_id=self.config.client_id,
                           nonce=pending.nonce, leeway_s=self.config.leeway_s)
        claims = verify_id_token(id_token, key, rules, now,
                                 access_token if isinstance(access_token, str) else None)
        if self.config.use_userinfo and meta.userinfo_endpoint and isinstance(access_token, str):
            info = await self._get_json(meta.userinfo_endpoint, "userinfo",
                                        {"Authorization": f"Bearer {access_token}"})
            if info.get("sub") != claims["sub"]:
                raise OidcError("oidc_userinfo_mismatch", "userinfo sub differs from ID token")
            claims = {**claims, **info, "iss": claims["iss"], "aud": claims["aud"]}
        auth_time = claims.get("auth_time")
        acr = claims.get("acr")
        return Identity(
            issuer=self.config.issuer, subject=claims["sub"],
            key=pseudonym(self._secret, self.config.issuer, claims["sub"]),
            profile=map_claims(claims, self.config.claims), form_id=pending.form_id,
            return_path=pending.return_path,
            auth_time=datetime.fromtimestamp(auth_time, now.tzinfo)
            if isinstance(auth_time, int | float) else None,
            acr=acr if isinstance(acr, str) else None)

    async def _token(self, meta: ProviderMetadata, code: str,
                     pending: Pending) -> dict[str, Any]:
        """The token request (client_secret_basic: id and secret form-encoded, RFC 6749
        §2.3.1). A 400 means the provider refused this code (used, expired or a wrong PKCE
        verifier); its ``error`` code is logged, never the request."""
        pair = quote(self.config.client_id, safe="") + ":" + quote(self.config.client_secret,
                                                                   safe="")
        auth = "Basic " + base64.b64encode(pair.encode()).decode("ascii")
        form = {"grant_type": "authorization_code", "code": code,
                "redirect_uri": self.config.redirect_uri,
                "code_verifier": pending.code_verifier}
        try:
            async with self._http.post(meta.token_endpoint, data=form, timeout=self._timeout,
                                       allow_redirects=False,
                                       headers={"Accept": "application/json",
                                                "Authorization": auth}) as resp:
                if resp.status >= 500:
                    raise OidcError("oidc_provider_unavailable", f"token: HTTP {resp.status}")
                data = await self._read_json(resp, "token")
                if resp.status != 200:
                    err = str(data.get("error", ""))[:40]
                    _LOGGER.info("oidc: token endpoint refused: %s", err)
                    if resp.status in (400, 401):
                        raise OidcError("oidc_token_refused", f"token endpoint: {err}")
                    raise OidcError("oidc_provider_error", f"token: HTTP {resp.status}")
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise OidcError("oidc_provider_unavailable", f"token: {type(exc).__name__}") from exc
        if not isinstance(data.get("id_token"), str):
            raise OidcError("oidc_bad_token", "token response has no id_token")
        if str(data.get("token_type", "")).lower() != "bearer":
            raise OidcError("oidc_provider_error", "token_type is not Bearer")
        return data

