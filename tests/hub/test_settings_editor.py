"""The settings editor (issue 13 item 1) below the browser: the form <-> TOML rules, and the
pages over real HTTP against a hub on SQLite.

- An untouched form changes nothing, byte for byte (comments, layout and hidden keys such as
  PIN hashes survive); an edited field changes its own line only.
- A problem of ``madoguchi config check`` (the same parser) is shown at its field, in Japanese
  where the rule is known; every problem is placed somewhere, none is lost.
- Publish stores version base+1 and its audit row together; a draft based on an older version
  is refused (409) with the draft still on the page and nothing stored; an invalid draft is
  refused (422); rollback publishes an earlier version's text as the next version.
- Only ward staff and administrators of the site may open it.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path

import aiohttp
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from settings_support import editor_fields, with_values
from sqlalchemy import select
from staff_support import staff_cookie

from edge.config import ConfigError, parse_site_config
from hub.app import Hub, start_hub
from hub.audit.tables import audit_log
from hub.settings import HubSettings
from hub.siteconfig.form import PART, PARTS, Spec, Submitted, apply, parse, read_form
from hub.siteconfig.service import problems
from hub.siteconfig.view import (
    decode_draft,
    encode_draft,
    field_names,
    load,
    message_ja,
    part_rows,
    place,
)
from hub.siteconfig.ward import automatic, parse_days, with_closed

REPO = Path(__file__).resolve().parents[2]
SAMPLES = sorted((REPO / "sites").glob("*.toml"))
MAIN = (REPO / "sites" / "nerima-main.toml").read_text("utf-8")
SETTINGS = HubSettings(keys={"t1": bytes(range(32))}, key_id="t1")


def posted(text: str, part: str, **changes: str | list[str]) -> dict[str, list[str]]:
    """What the page of ``part`` posts for ``text`` (built from the same rows the template
    renders), with some values changed."""
    doc = load(text)
    names, rows = field_names(doc)
    form: dict[str, list[str]] = {}
    p = PART[part]
    views = part_rows(p, doc, place([], names, rows), add=False)
    if p.array:
        form[f"{part}._count"] = [str(len(views))]
    for row in views:
        form[f"{row.prefix}._from" if p.array else f"{row.prefix}._shown"] = \
            [row.origin if p.array else "1"]
        for f in row.fields:
            value = changes.pop(f.name, f.value)
            if f.spec.kind == "pair":
                pair = value if isinstance(value, list) else ["", ""]
                form[f"{f.name}[0]"], form[f"{f.name}[1]"] = [pair[0]], [pair[1]]
            elif f.spec.kind in ("bool", "toggle"):
                form[f.name] = ["0", "1"] if value in (True, "1") else ["0"]
            else:
                form[f.name] = [str(value)]
    assert not changes, f"not on the {part} page: {sorted(changes)}"
    return form


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.stem)
def test_an_untouched_form_changes_nothing(path: Path) -> None:
    text = path.read_text("utf-8")
    for part in PARTS:
        assert apply(text, read_form(posted(text, part.name))) == text, part.name


def test_an_edit_changes_its_own_line_only() -> None:
    new = apply(MAIN, read_form(posted(MAIN, "site", **{
        "site.guidance.ja": "本日は大変混み合っています。ご用件のボタンを押してください。"})))
    changed = [(a, b) for a, b in zip(MAIN.splitlines(), new.splitlines(), strict=True)
               if a != b]
    assert len(changed) == 1
    assert changed[0][0].startswith("guidance = "), changed
    assert tomllib.loads(new)["site"]["guidance"]["ja"].startswith("本日は大変")
    assert "scrypt$" in new  # the counter PIN hash, never on the page, is kept


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(st.characters(codec="utf-8", exclude_categories=("Cc", "Cs", "Zl", "Zp")),
               min_size=1, max_size=80).filter(lambda s: s.strip() != ""))
def test_any_guidance_text_is_written_as_typed(text: str) -> None:
    new = apply(MAIN, read_form(posted(MAIN, "site", **{"site.guidance.en": text})))
    assert tomllib.loads(new)["site"]["guidance"]["en"] == text.strip()
    assert len(new.splitlines()) == len(MAIN.splitlines())


def test_rows_are_added_removed_and_reordered_by_the_form() -> None:
    form = posted(MAIN, "notices")
    form["notices._count"] = [str(int(form["notices._count"][0]) + 1)]
    n = int(form["notices._count"][0]) - 1
    form[f"notices[{n}]._from"] = ["new"]
    form[f"notices[{n}].text.ja"] = ["年末年始は12月29日から1月3日まで休みます。"]
    form[f"notices[{n}].text.en"] = ["Closed from 29 December to 3 January."]
    form["notices[0]._remove"] = ["1"]
    new = apply(MAIN, read_form(form))
    before, after = tomllib.loads(MAIN)["notices"], tomllib.loads(new)["notices"]
    assert after[:-1] == before[1:]
    assert after[-1]["text"]["en"] == "Closed from 29 December to 3 January."
    parse_site_config(new)  # still a valid site


def test_overlapping_ranges_are_shown_at_the_range_field_in_japanese() -> None:
    new = apply(MAIN, read_form(posted(MAIN, "services", **{"services[2].range": ["1500",
                                                                                 "2100"]})))
    found = problems("nerima-main", new)
    doc = load(new)
    names, rows = field_names(doc)
    placed = place(found, names, rows)
    at = placed.fields.get("services[2].range") or placed.fields.get("services[1].range")
    assert at, found
    assert "重なっています" in message_ja(at[0].message)
    assert not placed.general


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(["site.guidance.ja", "services[0].range", "services[9].code",
                                 "counters[3].services[1]", "menus[0].schedule[2]",
                                 "menus[1]", "voice.volume", "", "bogus[2].x", "notices"]),
                max_size=8))
def test_every_problem_is_placed_somewhere(keys: list[str]) -> None:
    from edge.config import Problem

    found = [Problem(None, k, "required") for k in keys]
    names, rows = field_names(load(MAIN))
    placed = place(found, names, rows)
    assert placed.count() == len(found)


@pytest.mark.parametrize(("spec", "raw", "value"), [
    (Spec("schedule", "schedule", "x"), "mon-fri 08:30-12:00\nsat 9:00〜12:00",
     [{"days": ["mon", "tue", "wed", "thu", "fri"], "from": "08:30", "to": "12:00"},
      {"days": ["sat"], "from": "09:00", "to": "12:00"}]),
    (Spec("schedule", "schedule", "x"), "lunchtime", ["lunchtime"]),  # the checker says why
    (Spec("range", "pair", "x"), ["１", "２９９"], [1, 299]),  # full-width digits
    (Spec("volume", "float", "x"), "0.6", 0.6),
    (Spec("handling_minutes", "float", "x"), "8", 8),  # stays an integer: no "8.0" diff
    (Spec("daily_limit", "int", "x"), "many", "many"),
    (Spec("services", "codes", "x"), "A、B, C", ["A", "B", "C"]),
])
def test_values_are_read_as_typed(spec: Spec, raw: str | list[str], value: object) -> None:
    assert parse(spec, raw) == value


def test_the_draft_survives_the_form_and_garbage_is_refused() -> None:
    assert decode_draft(encode_draft(MAIN)) == MAIN
    assert decode_draft("not base64 !!") is None
    assert decode_draft(encode_draft("x" * 600_000)) is None  # larger than any site file


def test_an_empty_submission_changes_nothing() -> None:
    assert apply(MAIN, Submitted()) == MAIN


# --- over HTTP -------------------------------------------------------------------------------

@pytest.fixture
async def hub(tmp_path: Path) -> AsyncIterator[Hub]:
    h = await start_hub(f"sqlite:///{tmp_path}/hub.db", None, port=0, settings=SETTINGS)
    await h.set_config("nerima-main", MAIN)
    yield h
    await h.stop()


async def _page(http: aiohttp.ClientSession, url: str) -> str:
    async with http.get(url) as r:
        assert r.status == 200, (r.status, await r.text())
        return await r.text()


async def _post(http: aiohttp.ClientSession, url: str,
                fields: list[tuple[str, str]]) -> tuple[int, str, str]:
    async with http.post(url, data=fields, allow_redirects=False) as r:
        return r.status, await r.text(), r.headers.get("Location", "")


async def _actions(hub: Hub, site: str) -> list[tuple[str, str]]:
    async with hub.store.read() as tx:
        rows = (await tx.conn.execute(select(audit_log.c.action, audit_log.c.detail)
                                      .where(audit_log.c.target == site)
                                      .order_by(audit_log.c.id))).all()
    return [(str(a), str(d)) for a, d in rows]


async def test_publish_conflict_invalid_and_rollback(hub: Hub) -> None:
    url = f"{hub.url}/admin/settings/nerima-main?lang=ja"
    one = await staff_cookie(hub.store, SETTINGS, site="nerima-main")
    two = await staff_cookie(hub.store, SETTINGS, site="nerima-main")
    async with aiohttp.ClientSession(cookies=one) as a, aiohttp.ClientSession(cookies=two) as b:
        form_a, form_b = editor_fields(await _page(a, url)), editor_fields(await _page(b, url))

        # an invalid edit: shown at its field, nothing stored
        services = editor_fields((await _post(a, url, with_values(
            form_a, "part:services")))[1])
        status, page, _ = await _post(a, url, with_values(
            services, "publish", **{"services[2].range[0]": "1500"}))
        assert status == 422
        assert 'id="f-services-2-range-field"' in page
        assert re.search(r'field--error[^"]*" id="f-services-2-range-field"', page)
        assert (await hub.store.config("nerima-main") or (0, ""))[0] == 1

        # A publishes v2
        status, _, where = await _post(a, url, with_values(
            form_a, "publish", **{"site.guidance.ja": "Aさんの案内文です。"}))
        assert status == 303
        assert "published=2" in where

        # B, still on v1, is refused: told, the draft kept, nothing stored
        status, page, _ = await _post(b, url, with_values(
            form_b, "publish", **{"site.guidance.en": "B's guidance."}))
        assert status == 409
        assert "ほかの職員が先に公開しました" in page
        assert "B&#39;s guidance." in page or "B's guidance." in page
        assert "Aさんの案内文です。" in page  # the other's change is shown
        live = await hub.store.config("nerima-main")
        assert live is not None
        assert live[0] == 2
        assert "B's guidance." not in live[1]

        # the refused page carries base 2 and B's draft; B makes A's edit too, as the page
        # advises, and publishes: v3 has both edits
        again = editor_fields(page)
        status, _, where = await _post(b, url, with_values(
            again, "publish", **{"site.guidance.ja": "Aさんの案内文です。"}))
        assert status == 303
        assert "published=3" in where
        v3 = await hub.store.config("nerima-main")
        assert v3 is not None
        assert "B's guidance." in v3[1]
        assert "Aさんの案内文です。" in v3[1]

        # rollback to v1: v4 has v1's text
        versions = await _page(a, f"{hub.url}/admin/settings/nerima-main/versions?lang=ja")
        assert "この版に戻す" in versions
        csrf = dict(editor_fields(await _page(a, url)))["csrf"]
        status, _, where = await _post(a, f"{hub.url}/admin/settings/nerima-main/rollback",
                                       [("csrf", csrf), ("version", "1"),
                                        ("base_version", "3")])
        assert status == 303
        assert "rolled_back" in where
        v4, v1 = await hub.store.config("nerima-main"), await hub.store.config("nerima-main", 1)
        assert v4 is not None
        assert v1 is not None
        assert v4[0] == 4
        strip = re.compile(r"^version = \d+\n", re.M)
        assert strip.sub("", v4[1]) == strip.sub("", v1[1])

    actions = [a for a, _ in await _actions(hub, "nerima-main")]
    assert actions == ["config_published", "config_conflict", "config_published",
                       "config_rolled_back"], actions


async def test_only_ward_staff_of_the_site_may_edit(hub: Hub) -> None:
    url = f"{hub.url}/admin/settings/nerima-main"
    elsewhere = await staff_cookie(hub.store, SETTINGS, site="oizumi")
    counter = await staff_cookie(hub.store, SETTINGS, role="counter_staff", site="nerima-main")
    for cookie in (elsewhere, counter):
        async with aiohttp.ClientSession(cookies=cookie) as http, http.get(url) as r:
            assert r.status == 403
    async with aiohttp.ClientSession() as anon, anon.get(
            url, allow_redirects=False, headers={"Accept": "text/html"}) as r:
        assert r.status in (302, 303)
        assert "/auth/login" in r.headers["Location"]
    async with aiohttp.ClientSession(cookies=elsewhere) as http:
        page = await _page(http, f"{hub.url}/admin/settings?lang=ja")
        assert "nerima-main" not in page  # the list shows only the sites one may edit


async def test_a_forged_draft_is_refused_without_a_500(hub: Hub) -> None:
    url = f"{hub.url}/admin/settings/nerima-main?lang=ja"
    cookie = await staff_cookie(hub.store, SETTINGS, site="nerima-main")
    async with aiohttp.ClientSession(cookies=cookie) as http:
        fields = editor_fields(await _page(http, url))
        status, _, where = await _post(http, url, with_values(fields, "check",
                                                              draft="AAAA"))
        assert status == 303
        assert "stale=1" in where
        # another site's file in a draft is refused by the checker, not stored
        other = (REPO / "sites" / "oizumi.toml").read_text("utf-8")
        status, page, _ = await _post(http, url, with_values(
            fields, "publish", draft=encode_draft(other)))
        assert status == 422
        assert "site.id" in page
    assert (await hub.store.config("nerima-main") or (0, ""))[0] == 1
    with pytest.raises(ConfigError):
        parse_site_config(other.replace('id = "oizumi"', 'id = "-"'))


# --- the ward's closed days, once for every site ------------------------------------------------

@settings(max_examples=30, deadline=None)
@given(st.sets(st.dates(min_value=date(2027, 1, 1), max_value=date(2030, 12, 31)), max_size=6))
def test_closed_days_are_written_into_each_site_and_nothing_else(days: set[date]) -> None:
    new = with_closed(MAIN, days)
    cal = tomllib.loads(new).get("calendar", {})
    assert cal.get("closed", []) == sorted(days)
    # the sample has no [calendar] table: the days are appended, every line before stays
    assert new.startswith(MAIN) if days else new == MAIN
    assert with_closed(new, days) == new  # idempotent
    parse_site_config(new)


def test_closed_day_lines_are_read_and_past_or_bad_ones_named() -> None:
    days, bad = parse_days("2027-01-04\n２０２７／２／８\n\nelection day\n2026-01-05",
                           date(2026, 12, 5))
    assert days == [date(2027, 1, 4), date(2027, 2, 8)]
    assert bad == ["election day", "2026-01-05"]
    auto = dict(automatic(date(2026, 12, 5)))
    assert auto[date(2027, 1, 1)] == "元日"
    assert auto[date(2026, 12, 29)] == "年末年始"


async def test_ward_closed_days_are_published_to_every_site(hub: Hub) -> None:
    await hub.set_config("oizumi", (REPO / "sites" / "oizumi.toml").read_text("utf-8"))
    url = f"{hub.url}/admin/ward-calendar?lang=ja"
    scoped = await staff_cookie(hub.store, SETTINGS, site="oizumi")
    async with aiohttp.ClientSession(cookies=scoped) as http, http.get(url) as r:
        assert r.status == 403  # a closed day for every site needs a role at every site
    ward_wide = await staff_cookie(hub.store, SETTINGS, site="*")
    async with aiohttp.ClientSession(cookies=ward_wide) as http:
        page = await _page(http, url)
        csrf = dict(editor_fields(page.replace('class="ward-form"', 'class="editor"')))["csrf"]
        status, page, _ = await _post(http, url, [("csrf", csrf), ("days", "2027-13-01")])
        assert status == 422
        assert "2027-13-01" in page
        assert (await hub.store.config("oizumi") or (0, ""))[0] == 1
        status, page, _ = await _post(http, url, [("csrf", csrf),
                                                  ("days", "2027-02-08\n2027-01-04")])
        assert status == 200
        assert page.count("を公開しました") == 2
    for site in ("nerima-main", "oizumi"):
        live = await hub.store.config(site)
        assert live is not None
        assert live[0] == 2
        closed = tomllib.loads(live[1])["calendar"]["closed"]
        assert closed == [date(2027, 1, 4), date(2027, 2, 8)]
    assert [a for a, _ in await _actions(hub, "oizumi")] == ["config_published"]
