"""The OpenID Connect relying party (hub/forms/oidc.py) against a local provider over real HTTP:
discovery -> begin -> the provider's /authorize redirect followed with aiohttp -> finish. Every
way the provider can misbehave must be refused with its stable code, key rotation must work,
and the provider must see (and check) the PKCE verifier."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from urllib.parse import parse_qs, parse_qsl, urlsplit

import aiohttp
import pytest
from conftest import free_port
from hypothesis import given
from hypothesis import strategies as st
from oidc_support import CLIENT_ID, CLIENT_SECRET, REDIRECT_URI, LocalProvider

from hub.forms.oidc import (
    ClaimMap,
    Identity,
    OidcClient,
    OidcError,
    Pending,
    ProviderConfig,
    pseudonym,
    safe_return_path,
)
from hub.forms.oidc_tokens import normalise_postal_code, parse_birth_date, pkce_challenge

SECRET = b"k" * 32
PERSONAL = ("練馬", "ネリマ", "豊玉", "1980", "taro@", "jpki-0001")


def now() -> datetime:
    return datetime.now(UTC)


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture(params=["RS256", "ES256"])
async def provider(request: pytest.FixtureRequest) -> AsyncIterator[LocalProvider]:
    p = LocalProvider(alg=request.param)
    await p.start()
    yield p
    await p.stop()


def config_for(p: LocalProvider, **extra: object) -> ProviderConfig:
    return ProviderConfig.from_mapping({
        "issuer": p.issuer, "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
        "redirect_uri": REDIRECT_URI, "scopes": "openid profile address email", **extra})


async def authorize(rp: OidcClient, http: aiohttp.ClientSession
                    ) -> tuple[Pending, dict[str, str], str]:
    """Start a login and follow the provider's consent redirect back to our redirect_uri."""
    url, pending = await rp.begin("form-7", "/forms/form-7/pages/1", now(), lang="ja")
    async with http.get(url, allow_redirects=False) as resp:
        assert resp.status == 302, await resp.text()
        location = resp.headers["Location"]
    assert location.startswith(REDIRECT_URI + "?")
    return pending, dict(parse_qsl(urlsplit(location).query)), url


async def login(rp: OidcClient, http: aiohttp.ClientSession) -> Identity:
    pending, query, _url = await authorize(rp, http)
    return await rp.finish(pending, query, now())


async def test_happy_path_maps_japanese_claims(provider: LocalProvider,
                                               http: aiohttp.ClientSession,
                                               caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    rp = OidcClient(config_for(provider), http, SECRET)
    pending, query, url = await authorize(rp, http)
    sent = parse_qs(urlsplit(url).query)
    assert sent["code_challenge_method"] == ["S256"]
    assert sent["code_challenge"] == [pkce_challenge(pending.code_verifier)]
    assert pending.code_verifier not in url  # only the challenge travels the front channel
    assert sent["state"] == [pending.state]
    assert sent["nonce"] == [pending.nonce]

    identity = await rp.finish(pending, query, now())
    p = identity.profile
    assert p.name == "練馬 太郎"  # the ideographic space from the card normalised
    assert p.furigana == "ネリマ タロウ"
    assert p.address == "東京都練馬区豊玉北6-12-1"
    assert p.postal_code == "176-8501"
    assert p.birth_date == date(1980, 4, 1)
    assert p.email == "taro@example.jp"
    assert identity.issuer == provider.issuer
    assert identity.subject == "jpki-0001"
    assert identity.key == pseudonym(SECRET, provider.issuer, "jpki-0001")
    assert identity.acr == "urn:example:jpki:signing-certificate"
    assert (identity.form_id, identity.return_path) == ("form-7", "/forms/form-7/pages/1")
    assert provider.refusals == []
    for text in (repr(identity), str(identity.profile), caplog.text):
        assert not any(word in text for word in PERSONAL), text


MISBEHAVIOUR = [
    ("wrong_nonce", "oidc_nonce_mismatch"),
    ("wrong_aud", "oidc_wrong_audience"),
    ("multi_aud_no_azp", "oidc_wrong_audience"),
    ("expired", "oidc_expired"),
    ("foreign_key", "oidc_bad_signature"),
    ("alg_none", "oidc_bad_signature"),
    ("alg_hs256", "oidc_bad_signature"),
    ("wrong_at_hash", "oidc_bad_token"),
    ("wrong_iss", "oidc_wrong_issuer"),
    ("userinfo_other_sub", "oidc_userinfo_mismatch"),
    ("deny", "oidc_denied"),
    ("token_500", "oidc_provider_unavailable"),
]


@pytest.mark.parametrize(("switch", "code"), MISBEHAVIOUR)
async def test_misbehaving_provider_is_refused(provider: LocalProvider,
                                               http: aiohttp.ClientSession,
                                               caplog: pytest.LogCaptureFixture,
                                               switch: str, code: str) -> None:
    caplog.set_level(logging.DEBUG)
    rp = OidcClient(config_for(provider), http, SECRET)
    provider.misbehave.add(switch)
    pending, query, _url = await authorize(rp, http)
    with pytest.raises(OidcError) as caught:
        await rp.finish(pending, query, now())
    err = caught.value
    assert err.code == code
    ja, en = err.message("ja"), err.message("en")
    assert ja != en
    assert "Traceback" not in ja + en
    assert "oidc_" not in ja + en
    assert err.http_status in (400, 403, 502)
    assert not any(word in caplog.text + str(err) for word in PERSONAL)


async def test_discovery_issuer_must_match(provider: LocalProvider,
                                           http: aiohttp.ClientSession) -> None:
    provider.misbehave.add("discovery_other_issuer")
    rp = OidcClient(config_for(provider), http, SECRET)
    with pytest.raises(OidcError) as caught:
        await rp.begin("form-7", "/forms/form-7", now())
    assert caught.value.code == "oidc_wrong_issuer"


async def test_state_mismatch_stops_before_the_token_endpoint(provider: LocalProvider,
                                                              http: aiohttp.ClientSession
                                                              ) -> None:
    rp = OidcClient(config_for(provider), http, SECRET)
    pending, query, _url = await authorize(rp, http)
    for bad in ({**query, "state": "forged"}, {k: v for k, v in query.items() if k != "state"}):
        with pytest.raises(OidcError) as caught:
            await rp.finish(pending, bad, now())
        assert caught.value.code == "oidc_state_mismatch"
    # an answer meant for another resident's login (their state) is refused too
    _other, other_query, _ = await authorize(rp, http)
    with pytest.raises(OidcError) as caught:
        await rp.finish(pending, other_query, now())
    assert caught.value.code == "oidc_state_mismatch"
    assert provider.token_requests == 0


async def test_pkce_verifier_is_checked_by_the_provider(provider: LocalProvider,
                                                        http: aiohttp.ClientSession) -> None:
    rp = OidcClient(config_for(provider), http, SECRET)
    pending, query, _url = await authorize(rp, http)
    wrong = replace(pending, code_verifier=pending.code_verifier[::-1])
    with pytest.raises(OidcError) as caught:
        await rp.finish(wrong, query, now())
    assert caught.value.code == "oidc_token_refused"
    assert provider.refusals == ["pkce"]
    # the same flow with the right verifier goes through (the refusal was the verifier)
    assert (await login(rp, http)).subject == provider.subject


async def test_code_is_single_use(provider: LocalProvider, http: aiohttp.ClientSession) -> None:
    rp = OidcClient(config_for(provider), http, SECRET)
    pending, query, _url = await authorize(rp, http)
    await rp.finish(pending, query, now())
    with pytest.raises(OidcError) as caught:
        await rp.finish(pending, query, now())
    assert caught.value.code == "oidc_token_refused"
    assert provider.refusals == ["code"]


async def test_key_rotation_refetches_jwks_once(provider: LocalProvider,
                                                http: aiohttp.ClientSession) -> None:
    rp = OidcClient(config_for(provider), http, SECRET)
    first = await login(rp, http)
    assert provider.jwks_fetches == 1
    assert provider.discovery_fetches == 1
    provider.rotate()
    second = await login(rp, http)
    assert provider.jwks_fetches == 2  # unknown kid -> one refetch
    assert second.key == first.key  # same resident recognised across the rotation
    await login(rp, http)
    assert provider.jwks_fetches == 2
    assert provider.discovery_fetches == 1


async def test_late_return_expires(provider: LocalProvider, http: aiohttp.ClientSession) -> None:
    rp = OidcClient(config_for(provider), http, SECRET)
    pending, query, _url = await authorize(rp, http)
    with pytest.raises(OidcError) as caught:
        await rp.finish(pending, query, now() + timedelta(minutes=11))
    assert caught.value.code == "oidc_session_expired"


async def test_unreachable_provider(http: aiohttp.ClientSession) -> None:
    config = ProviderConfig(issuer=f"http://127.0.0.1:{free_port()}", client_id=CLIENT_ID,
                            client_secret=CLIENT_SECRET, redirect_uri=REDIRECT_URI)
    with pytest.raises(OidcError) as caught:
        await OidcClient(config, http, SECRET).begin("f", "/forms/f", now())
    assert caught.value.code == "oidc_provider_unavailable"
    assert caught.value.http_status == 502


async def test_claim_mapping_is_a_setting(http: aiohttp.ClientSession) -> None:
    """A JPKI-based provider with its own flat claim names for the card's basic information."""
    provider = LocalProvider(claims={
        "jpki_name": "練馬 花子", "jpki_name_kana": "ネリマ ハナコ",
        "jpki_address": "東京都練馬区豊玉北６丁目１２番１号", "jpki_postal": "〒１７６－８５０１",
        "jpki_birthdate": "19850715", "jpki_gender": "2", "email": "hanako@example.jp"})
    await provider.start()
    try:
        rp = OidcClient(config_for(provider, claims={
            "name": "jpki_name", "furigana": ["missing", "jpki_name_kana"],
            "address": "jpki_address", "postal_code": "jpki_postal",
            "birth_date": "jpki_birthdate"}), http, SECRET)
        p = (await login(rp, http)).profile
    finally:
        await provider.stop()
    assert (p.name, p.furigana, p.postal_code) == ("練馬 花子", "ネリマ ハナコ", "176-8501")
    assert p.address == "東京都練馬区豊玉北６丁目１２番１号"
    assert p.birth_date == date(1985, 7, 15)
    assert p.email is None  # not marked email_verified: not prefilled


def test_config_refuses_unsafe_settings() -> None:
    base = {"issuer": "https://id.example.jp", "client_id": "c", "client_secret": "hunter2-secret",
            "redirect_uri": "https://hub.example.jp/cb"}
    ProviderConfig.from_mapping(base)
    for bad in ({"issuer": "http://id.example.jp"}, {"redirect_uri": "http://hub.example.jp/"},
                {"scopes": "profile"}, {"client_secret": ""}):
        with pytest.raises(OidcError) as caught:
            ProviderConfig.from_mapping({**base, **bad})
        assert caught.value.code == "oidc_misconfigured"
    with pytest.raises(ValueError, match="unknown claim"):
        ProviderConfig.from_mapping({**base, "claims": {"gender": "g"}})
    assert "hunter2" not in repr(ProviderConfig.from_mapping(base))


@pytest.mark.parametrize("path", ["//evil.example/x", "https://evil.example/", "forms/1",
                                  "/\\evil.example", "/forms\r\nSet-Cookie: x"])
def test_return_path_cannot_redirect_off_site(path: str) -> None:
    with pytest.raises(ValueError, match="local absolute path"):
        safe_return_path(path)


def test_pending_round_trips_and_garbage_is_a_state_mismatch() -> None:
    p = Pending("s", "n", "the-verifier", "form-1", "/forms/form-1", now())
    assert Pending.from_dict(p.to_dict()) == p
    assert "the-verifier" not in repr(p)
    with pytest.raises(OidcError) as caught:
        Pending.from_dict({"state": "s"})
    assert caught.value.code == "oidc_state_mismatch"


@given(st.text(), st.text(), st.text(), st.text())
def test_pseudonym_separates_issuer_and_subject(i1: str, s1: str, i2: str, s2: str) -> None:
    same = pseudonym(SECRET, i1, s1) == pseudonym(SECRET, i2, s2)
    assert same == ((i1, s1) == (i2, s2))
    assert pseudonym(SECRET, i1 + "a", s1) != pseudonym(SECRET, i1, "a" + s1)
    assert pseudonym(b"other", i1, s1) != pseudonym(SECRET, i1, s1)


@given(st.dates(min_value=date(1900, 1, 1), max_value=date(2100, 12, 31)))
def test_birth_date_formats(d: date) -> None:
    assert parse_birth_date(d.isoformat()) == d
    assert parse_birth_date(d.strftime("%Y%m%d")) == d
    assert parse_birth_date(f"{d.year}-00-00") is None


@given(st.text(alphabet="0123456789", min_size=0, max_size=10))
def test_postal_code_needs_seven_digits(digits: str) -> None:
    expected = f"{digits[:3]}-{digits[3:]}" if len(digits) == 7 else None
    assert normalise_postal_code(digits) == expected
    assert normalise_postal_code("〒" + digits.translate(str.maketrans(
        "0123456789", "０１２３４５６７８９"))) == expected


def test_default_mapping_ignores_wrong_shapes() -> None:
    from hub.forms.oidc_tokens import map_claims
    p = map_claims({"name": 42, "address": ["x"], "birthdate": "soon", "email": "a@b.jp",
                    "email_verified": "true"}, ClaimMap())
    assert p == type(p)()  # nothing usable, nothing invented, no error


async def test_without_userinfo_only_id_token_claims(provider: LocalProvider,
                                                     http: aiohttp.ClientSession) -> None:
    rp = OidcClient(config_for(provider, use_userinfo=False), http, SECRET)
    p = (await login(rp, http)).profile
    assert p.name == "練馬 太郎"  # the provider puts only the name in its ID token
    assert (p.address, p.birth_date, p.email) == (None, None, None)
