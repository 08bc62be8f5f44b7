"""Signing in with OpenID Connect (マイナンバーカード via a JPKI-based provider) for forms whose
identity is ``oidc``: ``/f/{form}/oidc`` starts, ``/forms/oidc/callback`` finishes
(``hub.forms.oidc.OidcClient``), then a draft is created with name, address and birth date
prefilled where the form's fields ask for it (``prefill``).

Settings (environment, one provider for the hub):

- ``MADOGUCHI_FORMS_OIDC_ISSUER``: the provider's issuer exactly as in its discovery document;
  without it, ``oidc`` forms say sign-in is not available.
- ``MADOGUCHI_FORMS_OIDC_CLIENT_ID``, ``MADOGUCHI_FORMS_OIDC_CLIENT_SECRET``.
- ``MADOGUCHI_FORMS_OIDC_REDIRECT_URI`` (default ``<public_url>/forms/oidc/callback``).
- ``MADOGUCHI_FORMS_OIDC_SCOPES`` (space-separated; default ``openid profile email address``).
- ``MADOGUCHI_FORMS_OIDC_CLAIMS``: JSON, the provider's claim names (``ClaimMap``).

Why the pending login is a sealed cookie: it holds the PKCE verifier and the nonce, which must
come back with this browser only; sealed (AES-GCM) it can be neither read nor forged, and no
table is needed. Only the pseudonym of (issuer, subject) is kept with the draft.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

import aiohttp
from aiohttp import web

from hub.auth.service import audit_in
from hub.forms import jp, service
from hub.forms.context import Forms
from hub.forms.model import Form
from hub.forms.oidc import OidcClient, Pending, ProviderConfig
from hub.forms.oidc_tokens import OidcError, Profile
from hub.forms.records import open_field, seal_field
from hub.forms.resident_http import ctx_of, ip_of, lang_of, message
from hub.webticket.pow import derive_key

COOKIE = "madoguchi_forms_oidc"
CALLBACK = "/forms/oidc/callback"


def provider(ctx: Forms, env: Mapping[str, str] | None = None) -> ProviderConfig | None:
    """The configured provider, or None (not configured, or configured wrongly)."""
    env = os.environ if env is None else env
    issuer = env.get("MADOGUCHI_FORMS_OIDC_ISSUER", "")
    if not issuer:
        return None
    data: dict[str, Any] = {
        "issuer": issuer, "client_id": env.get("MADOGUCHI_FORMS_OIDC_CLIENT_ID", ""),
        "client_secret": env.get("MADOGUCHI_FORMS_OIDC_CLIENT_SECRET", ""),
        "redirect_uri": env.get("MADOGUCHI_FORMS_OIDC_REDIRECT_URI")
        or f"{ctx.hub.public_url.rstrip('/')}{CALLBACK}"}
    if env.get("MADOGUCHI_FORMS_OIDC_SCOPES"):
        data["scopes"] = env["MADOGUCHI_FORMS_OIDC_SCOPES"]
    try:
        if env.get("MADOGUCHI_FORMS_OIDC_CLAIMS"):
            data["claims"] = json.loads(env["MADOGUCHI_FORMS_OIDC_CLAIMS"])
        return ProviderConfig.from_mapping(data)
    except (OidcError, ValueError, TypeError):
        return None


def _client(ctx: Forms, config: ProviderConfig, http: aiohttp.ClientSession) -> OidcClient:
    return OidcClient(config, http, derive_key(ctx.hub.key, "forms-oidc"))


def prefill(form: Form, profile: Profile) -> dict[str, Any]:
    """Answers the form's ``prefill`` fields get from the provider's profile."""
    out: dict[str, Any] = {}
    for _, fld in form.fields():
        kind = getattr(fld, "prefill", None)
        if kind == "name" and profile.name:
            family, _, given = profile.name.replace("\u3000", " ").strip().partition(" ")
            value = {"family": family, "given": given.strip()}
            if profile.furigana:
                kf, _, kg = profile.furigana.replace("\u3000", " ").strip().partition(" ")
                value |= {"family_kana": kf, "given_kana": kg.strip()}
            out[fld.id] = value
        elif kind == "address" and profile.address:
            rest = profile.address.strip()
            pref = next((p for p in jp.PREFECTURES if rest.startswith(p)), "")
            out[fld.id] = {"postal": jp.normalize_postal(profile.postal_code or "") or "",
                           "prefecture": pref, "city": rest[len(pref):].strip()}
        elif kind == "birth_date" and profile.birth_date:
            out[fld.id] = profile.birth_date.isoformat()
        elif kind == "email" and profile.email:
            out[fld.id] = profile.email
    return out


async def begin(request: web.Request, form: Form) -> web.Response:
    ctx = ctx_of(request)
    config = provider(ctx)
    if config is None:
        return message(request, 503, "oidc_unavailable", back=f"/f/{form.id}")
    try:
        async with aiohttp.ClientSession() as http:
            url, pending = await _client(ctx, config, http).begin(
                form.id, f"/f/{form.id}/page/1", ctx.clock(), lang_of(request))
    except OidcError:
        return message(request, 503, "oidc_unavailable", back=f"/f/{form.id}")
    response = web.Response(status=303, headers={"Location": url, "Cache-Control": "no-store"})
    response.set_cookie(COOKIE, seal_field(ctx, "oidc", "pending",
                                           json.dumps(pending.to_dict())),
                        httponly=True, samesite="Lax", path=CALLBACK,
                        secure=ctx.hub.secure_cookies, max_age=600)
    return response


async def callback(request: web.Request) -> web.Response:
    """The provider sends the resident back here: check, then a draft (``resident._begin``)."""
    from hub.forms.resident import start_draft_response  # the draft cookie and redirect

    ctx = ctx_of(request)
    config = provider(ctx)
    sealed = request.cookies.get(COOKIE, "")
    if config is None or not sealed:
        return message(request, 400, "oidc_failed")
    try:
        pending = Pending.from_dict(json.loads(open_field(ctx, "oidc", "pending", sealed)))
        async with aiohttp.ClientSession() as http:
            who = await _client(ctx, config, http).finish(pending, request.query, ctx.clock())
    except (OidcError, ValueError):
        return message(request, 400, "oidc_failed")
    got = await service.published(ctx, who.form_id)
    if got is None:
        return message(request, 404, "not_found")
    row, form = got
    async with ctx.store.begin() as tx:
        await audit_in(tx, ctx.hub, actor="resident", action="form_resident_login",
                       target=str(row.id), ip=ip_of(request), detail={"method": "oidc"})
    response = await start_draft_response(
        request, row, form, {"method": "oidc", "key": who.key, "email": who.profile.email or ""},
        prefill(form, who.profile))
    response.del_cookie(COOKIE, path=CALLBACK)
    return response
