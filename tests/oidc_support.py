"""A small local OpenID provider for the relying party's tests (hub/forms/oidc.py): a real
aiohttp server on a free port with discovery, JWKS, /authorize (which consents at once and
redirects back with a code, as if the resident had held their マイナンバーカード to the phone),
/token (client_secret_basic, single-use codes, PKCE S256 checked) and /userinfo.

Switches in ``misbehave`` make it answer wrongly the way a broken or hostile provider might:
``wrong_nonce``, ``wrong_aud``, ``multi_aud_no_azp``, ``expired``, ``foreign_key`` (signed by a
key not in the JWKS but naming the published kid), ``alg_none``, ``alg_hs256`` (HMAC keyed with
the public key: the classic confusion attack), ``wrong_at_hash``, ``wrong_iss``,
``userinfo_other_sub``, ``discovery_other_issuer``, ``token_500``, ``deny`` (the resident
declined: ``error=access_denied``). ``rotate()`` replaces the signing key with a new kid.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlencode

import jwt
from aiohttp import web
from conftest import free_port
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

CLIENT_ID = "madoguchi-forms"
CLIENT_SECRET = "s3cret:with/odd&chars"  # odd characters: checks RFC 6749 form-encoding
REDIRECT_URI = "https://hub.example.jp/forms/oidc/callback"

# claims the way a JPKI-based provider returns the card's basic information
RESIDENT: dict[str, Any] = {
    "name": "練馬　太郎",
    "name#ja-Kana-JP": "ネリマ タロウ",
    "address": {"formatted": "東京都練馬区豊玉北6-12-1", "postal_code": "1768501"},
    "birthdate": "1980-04-01",
    "gender": "male",
    "email": "taro@example.jp",
    "email_verified": True,
}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass
class SigningKey:
    kid: str
    alg: str
    private: Any
    jwk: dict[str, Any]

    @classmethod
    def make(cls, kid: str, alg: str = "RS256") -> SigningKey:
        if alg == "ES256":
            private: Any = ec.generate_private_key(ec.SECP256R1())
            jwk = json.loads(ECAlgorithm.to_jwk(private.public_key()))
        else:
            private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            jwk = json.loads(RSAAlgorithm.to_jwk(private.public_key()))
        jwk.update({"kid": kid, "use": "sig", "alg": alg})
        return cls(kid, alg, private, jwk)

    def public_pem(self) -> bytes:
        pem: bytes = self.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        return pem


@dataclass
class Grant:
    client_id: str
    redirect_uri: str
    nonce: str
    challenge: str
    scope: str


@dataclass
class LocalProvider:
    alg: str = "RS256"
    subject: str = "jpki-0001"
    claims: dict[str, Any] = field(default_factory=lambda: dict(RESIDENT))
    misbehave: set[str] = field(default_factory=set)
    port: int = field(default_factory=free_port)
    refusals: list[str] = field(default_factory=list)  # why /token said no
    jwks_fetches: int = 0
    discovery_fetches: int = 0
    token_requests: int = 0

    def __post_init__(self) -> None:
        self.key = SigningKey.make("key-1", self.alg)
        self.grants: dict[str, Grant] = {}
        self.access: dict[str, str] = {}  # access token -> subject
        self.runner: web.AppRunner | None = None

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def rotate(self) -> None:
        """A new key with a new kid; the old one leaves the JWKS (as after a rotation)."""
        number = int(self.key.kid.rsplit("-", 1)[1]) + 1
        self.key = SigningKey.make(f"key-{number}", self.alg)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/.well-known/openid-configuration", self.discovery)
        app.router.add_get("/jwks", self.jwks)
        app.router.add_get("/authorize", self.authorize)
        app.router.add_post("/token", self.token)
        app.router.add_get("/userinfo", self.userinfo)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()

    # --- endpoints ------------------------------------------------------------------------

    async def discovery(self, _request: web.Request) -> web.Response:
        self.discovery_fetches += 1
        issuer = "https://evil.example" if "discovery_other_issuer" in self.misbehave \
            else self.issuer
        return web.json_response({
            "issuer": issuer, "authorization_endpoint": f"{self.issuer}/authorize",
            "token_endpoint": f"{self.issuer}/token", "jwks_uri": f"{self.issuer}/jwks",
            "userinfo_endpoint": f"{self.issuer}/userinfo",
            "response_types_supported": ["code"], "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": [self.alg],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic"],
            "claims_supported": sorted(["sub", *self.claims])})

    async def jwks(self, _request: web.Request) -> web.Response:
        self.jwks_fetches += 1
        return web.json_response({"keys": [self.key.jwk]})

    async def authorize(self, request: web.Request) -> web.Response:
        q = request.query
        if q.get("client_id") != CLIENT_ID or q.get("redirect_uri") != REDIRECT_URI:
            return web.Response(status=400, text="unknown client or redirect_uri")  # no redirect
        if q.get("response_type") != "code" or q.get("code_challenge_method") != "S256" \
                or not q.get("code_challenge") or "openid" not in q.get("scope", "").split():
            params = {"error": "invalid_request", "state": q.get("state", "")}
        elif "deny" in self.misbehave:
            params = {"error": "access_denied", "state": q.get("state", ""),
                      "iss": self.issuer}
        else:
            code = secrets.token_urlsafe(24)
            self.grants[code] = Grant(CLIENT_ID, REDIRECT_URI, q.get("nonce", ""),
                                      q["code_challenge"], q["scope"])
            params = {"code": code, "state": q.get("state", ""), "iss": self.issuer}
        raise web.HTTPFound(f"{REDIRECT_URI}?{urlencode(params)}")

    def _refuse(self, why: str, error: str = "invalid_grant", status: int = 400
                ) -> web.Response:
        self.refusals.append(why)
        return web.json_response({"error": error}, status=status)

    async def token(self, request: web.Request) -> web.Response:
        self.token_requests += 1
        if "token_500" in self.misbehave:
            return web.Response(status=500, text="internal error")
        basic = request.headers.get("Authorization", "").removeprefix("Basic ")
        login, _, password = base64.b64decode(basic).decode().partition(":")
        if (unquote(login), unquote(password)) != (CLIENT_ID, CLIENT_SECRET):
            return self._refuse("client", "invalid_client", 401)
        form = await request.post()
        grant = self.grants.pop(str(form.get("code", "")), None)  # single use
        if form.get("grant_type") != "authorization_code" or grant is None:
            return self._refuse("code")
        if form.get("redirect_uri") != grant.redirect_uri:
            return self._refuse("redirect_uri")
        verifier = str(form.get("code_verifier", ""))
        challenge = _b64(hashlib.sha256(verifier.encode()).digest())
        if challenge != grant.challenge:
            return self._refuse("pkce")
        access = secrets.token_urlsafe(32)
        self.access[access] = self.subject
        return web.json_response({"access_token": access, "token_type": "Bearer",
                                  "expires_in": 300, "id_token": self.id_token(grant, access)},
                                 headers={"Cache-Control": "no-store"})

    async def userinfo(self, request: web.Request) -> web.Response:
        bearer = request.headers.get("Authorization", "")
        subject = self.access.get(bearer.removeprefix("Bearer "))
        if not bearer.startswith("Bearer ") or subject is None:
            return web.json_response({"error": "invalid_token"}, status=401)
        if "userinfo_other_sub" in self.misbehave:
            subject = "someone-else"
        return web.json_response({"sub": subject, **self.claims})

    # --- the ID token ---------------------------------------------------------------------

    def id_token(self, grant: Grant, access: str) -> str:
        now = int(time.time())
        m = self.misbehave
        digest = hashlib.sha256(access.encode()).digest()
        claims: dict[str, Any] = {
            "iss": "https://evil.example" if "wrong_iss" in m else self.issuer,
            "sub": self.subject,
            "aud": "another-client" if "wrong_aud" in m else grant.client_id,
            "iat": now - 3600 if "expired" in m else now,
            "exp": now - 3000 if "expired" in m else now + 300,
            "auth_time": now,
            "nonce": "replayed-nonce" if "wrong_nonce" in m else grant.nonce,
            "at_hash": _b64(b"x" * 16) if "wrong_at_hash" in m else _b64(digest[:16]),
            "acr": "urn:example:jpki:signing-certificate",
            "name": self.claims.get("name"),  # the rest comes from /userinfo
        }
        if "multi_aud_no_azp" in m:
            claims["aud"] = [grant.client_id, "another-client"]
        if "alg_none" in m:
            return jwt.encode(claims, "", algorithm="none", headers={"kid": self.key.kid})
        if "alg_hs256" in m:  # the public key's PEM as an HMAC secret (PyJWT refuses it)
            header = _b64(json.dumps({"alg": "HS256", "typ": "JWT",
                                      "kid": self.key.kid}).encode())
            body = _b64(json.dumps(claims).encode())
            sig = hmac.new(self.key.public_pem(), f"{header}.{body}".encode(),
                           hashlib.sha256).digest()
            return f"{header}.{body}.{_b64(sig)}"
        signer = SigningKey.make(self.key.kid, self.alg) if "foreign_key" in m else self.key
        return jwt.encode(claims, signer.private, algorithm=self.alg,
                          headers={"kid": self.key.kid})
