"""The ward's 18 sites (seed 002 §6.1.1–6.1.2) as config files in sites/ward/.

Why a test of data: the table 設置予定内訳 is what the ward buys and installs; if a site file
drifts from it (a display forgotten, a section renamed) the demo and the fleet view would show a
ward that does not exist. Counting rules (documented in sites/ward/README.md):

- 発券機 (kiosk): a printer device (one per ``kiosk`` id);
- 操作機 (operator device): a keypad or scanner device (the ward files use keypads only),
  whether it drives one counter or several (``counters = [...]``);
- 表示機 (display): a display head, i.e. a distinct bus address of a display device; a head
  shared by several counters counts once, a counter shown on two heads counts two;
- 案内用/バックヤードモニター: ``[[monitors]]`` of kind guide/backyard;
- 管理用パソコン: the section's ``admin_pcs``.
Each piece of hardware counts for the section it names (``section = "…"``).
"""

from __future__ import annotations

import subprocess
import sys
from collections import Counter as Tally
from pathlib import Path

import pytest

from edge.config import load_site_config
from edge.domain.model import SiteConfig

ROOT = Path(__file__).resolve().parents[2]
WARD = ROOT / "sites" / "ward"
FILES = sorted(WARD.glob("*.toml"))
COLUMNS = ("kiosks", "operator", "displays", "guide", "backyard", "admin_pcs")

# 表 設置予定内訳 (seed 002 §6.1.2), row by row: 発券機, 操作機, 表示機, 案内用モニター,
# バックヤードモニター, 管理用パソコン; then where each row lives: (site id, its section ids).
# The row "こくほ資格係 こくほ給付係" is two sections sharing one kiosk: their sum is compared.
SEED_TABLE: dict[str, tuple[tuple[int, int, int, int, int, int], str, tuple[str, ...]]] = {
    "庶務係": ((0, 0, 0, 0, 0, 1), "honcho-2f-koseki1", ("shomu",)),
    "おくやみコーナー": ((1, 1, 0, 0, 0, 0), "honcho-2f-koseki1", ("okuyami",)),
    "戸籍第一係": ((1, 3, 3, 4, 2, 0), "honcho-2f-koseki1", ("koseki1",)),
    "戸籍第二係": ((1, 2, 1, 0, 1, 0), "koseki2", ("koseki2",)),
    "練馬区民事務所": ((2, 15, 15, 5, 1, 1), "nerima-kuminjimusho", ("nerima-kumin",)),
    "練馬マイカード室": ((1, 3, 3, 1, 0, 0), "nerima-mycard", ("nerima-mycard",)),
    "早宮区民事務所": ((1, 4, 4, 2, 2, 1), "hayamiya", ("hayamiya-kumin",)),
    "早宮マイカードコーナー": ((0, 2, 2, 0, 0, 0), "hayamiya", ("hayamiya-mycard",)),
    "光が丘区民事務所": ((1, 14, 14, 2, 1, 1), "hikarigaoka-kumin", ("hikarigaoka-kumin",)),
    "光が丘マイカード室": ((1, 4, 4, 1, 1, 0), "hikarigaoka-mycard", ("hikarigaoka-mycard",)),
    "石神井区民事務所": ((1, 9, 9, 1, 3, 1), "shakujii", ("shakujii-kumin",)),
    "石神井マイカードコーナー": ((0, 5, 5, 0, 0, 0), "shakujii", ("shakujii-mycard",)),
    "大泉区民事務所": ((1, 7, 7, 1, 3, 1), "oizumi-kumin", ("oizumi-kumin",)),
    "大泉マイカードコーナー": ((0, 4, 4, 0, 0, 0), "oizumi-kumin", ("oizumi-mycard",)),
    "関区民事務所": ((1, 3, 3, 1, 2, 1), "seki", ("seki-kumin",)),
    "関マイカードコーナー": ((0, 2, 2, 1, 2, 0), "seki", ("seki-mycard",)),
    "税務課": ((1, 5, 3, 1, 3, 1), "zeimu", ("zeimu",)),
    "収納課": ((1, 1, 2, 1, 0, 0), "shuno", ("shuno",)),
    "こくほ資格係 こくほ給付係": ((1, 9, 9, 3, 2, 1), "kokuho", ("kokuho-shikaku", "kokuho-kyufu")),
    "こくほ石神井係": ((1, 4, 1, 1, 1, 1), "kokuho-shakujii", ("kokuho-shakujii",)),
    "後期高齢者保険料係": ((1, 4, 4, 1, 1, 1), "koki-korei", ("koki-korei",)),
    "国民年金係": ((1, 1, 4, 1, 1, 1), "kokumin-nenkin", ("kokumin-nenkin",)),
    "児童手当係": ((1, 5, 5, 2, 2, 2), "jido-teate", ("jido-teate",)),
    "入園相談係": ((1, 5, 5, 2, 3, 1), "nyuen-sodan", ("nyuen-sodan",)),
}
SPARES = (0, 3, 3, 0, 0, 0)  # 故障時の代替機: not installed at any site
TOTALS = (20, 115, 112, 31, 31, 15)  # 合計 row of the table, spares included

# 6.1.1 利用拠点 in the seed's order: site id -> Japanese site name as written there
SITES = {
    "nerima-kuminjimusho": "練馬区民事務所",
    "honcho-2f-koseki1": "戸籍第一係、庶務係、おくやみコーナー",
    "kokuho": "こくほ資格係、こくほ給付係",
    "kokumin-nenkin": "国民年金係",
    "zeimu": "税務課",
    "jido-teate": "児童手当係",
    "nyuen-sodan": "入園相談係",
    "nerima-mycard": "練馬区民事務所マイナンバーカード交付コーナー",
    "koki-korei": "後期高齢者保険料係",
    "shuno": "収納課",
    "hayamiya": "早宮区民事務所",
    "shakujii": "石神井区民事務所",
    "koseki2": "戸籍第二係",
    "kokuho-shakujii": "こくほ石神井係",
    "hikarigaoka-kumin": "光が丘区民事務所",
    "hikarigaoka-mycard": "光が丘区民事務所マイナンバーカード交付コーナー",
    "oizumi-kumin": "大泉区民事務所",
    "seki": "関区民事務所",
}


def hardware(config: SiteConfig) -> dict[str, Tally[str]]:
    """Per section: kiosks, operator devices, display heads, guide and backyard monitors,
    admin PCs, by the counting rules in this module's docstring."""
    out: dict[str, Tally[str]] = {sid: Tally() for sid in config.sections}
    for sid, sec in config.sections.items():
        out[sid]["admin_pcs"] = sec.admin_pcs
    for d in config.devices:
        assert d.section is not None, d.id
        if d.kind == "printer":
            out[d.section]["kiosks"] += 1
        elif d.kind in ("keypad", "scanner"):
            out[d.section]["operator"] += 1
        else:
            out[d.section]["displays"] += len({addr for _, addr in d.addresses})
    for m in config.monitors:
        assert m.section is not None, m.id
        out[m.section][m.kind] += 1
    return out


@pytest.fixture(scope="module")
def configs() -> dict[str, SiteConfig]:
    loaded = [load_site_config(p) for p in FILES]  # the same check as `madoguchi config check`
    return {c.site: c for c in loaded}


def test_exactly_the_18_sites_of_the_seed_with_their_japanese_names(
        configs: dict[str, SiteConfig]) -> None:
    assert len(FILES) == 18
    assert len(configs) == 18  # ids unique
    assert set(configs) == set(SITES)
    for sid, ja in SITES.items():
        assert configs[sid].name.values["ja"] == ja
        assert configs[sid].name.values["en"]
    samples = {load_site_config(p).site for p in (ROOT / "sites").glob("*.toml")}
    assert samples == {"nerima-main", "hikarigaoka", "oizumi"}
    assert not samples & set(configs)  # the demo's sample sites keep their own ids


def test_file_names_are_the_site_ids(configs: dict[str, SiteConfig]) -> None:
    assert {p.stem for p in FILES} == set(configs)


def test_per_section_counts_equal_the_seed_table(configs: dict[str, SiteConfig]) -> None:
    counted = {sid: hardware(c) for sid, c in configs.items()}
    placed: set[tuple[str, str]] = set()
    for row, (expected, site, sections) in SEED_TABLE.items():
        total: Tally[str] = Tally()
        for sec in sections:
            total.update(counted[site][sec])
            placed.add((site, sec))
        got = tuple(total[k] for k in COLUMNS)
        assert got == expected, f"{row} ({site}: {', '.join(sections)}): {got} != {expected}"
    every = {(site, sec) for site, per in counted.items() for sec in per}
    assert every == placed  # no section outside the table


def test_section_names_are_the_table_rows(configs: dict[str, SiteConfig]) -> None:
    names = {c.sections[s].name.values["ja"] for c in configs.values() for s in c.sections}
    rows = {r for r in SEED_TABLE if " " not in r} | {"こくほ資格係", "こくほ給付係"}
    assert names == rows


def test_column_totals_minus_spares() -> None:
    sums = [sum(row[0][k] for row in SEED_TABLE.values()) for k in range(len(COLUMNS))]
    assert sums == [t - s for t, s in zip(TOTALS, SPARES, strict=True)]
    assert sums == [20, 112, 109, 31, 31, 15]


def test_ward_totals_over_the_site_files(configs: dict[str, SiteConfig]) -> None:
    total: Tally[str] = Tally()
    for c in configs.values():
        for per in hardware(c).values():
            total.update(per)
    assert tuple(total[k] for k in COLUMNS) == (20, 112, 109, 31, 31, 15)


def test_hours_weekdays_and_only_nerima_on_saturday(configs: dict[str, SiteConfig]) -> None:
    week = {d: ("08:30", "19:00") for d in range(5)}
    for sid, c in configs.items():
        expected = {**week, 5: ("09:00", "17:00")} if sid == "nerima-kuminjimusho" else week
        assert c.hours == expected, sid
        assert c.calendar.national_holidays
        assert c.calendar.year_end == ((12, 29), (1, 3))


def test_layouts_the_old_model_did_not_fit(configs: dict[str, SiteConfig]) -> None:
    # one kiosk offers both こくほ sections' services
    kokuho = configs["kokuho"]
    (menu,) = kokuho.menus.values()
    sections = {kokuho.counters[k].section for k in kokuho.counters
                if set(kokuho.counters[k].services) & set(menu.services)}
    assert sections == {"kokuho-shikaku", "kokuho-kyufu"}
    # 国民年金係: one keypad drives the four counters
    (keypad,) = [d for d in configs["kokumin-nenkin"].devices if d.kind == "keypad"]
    assert keypad.operated == ("1", "2", "3", "4")
    # おくやみコーナー: a counter without any display
    honcho = configs["honcho-2f-koseki1"]
    shown = {cid for d in honcho.devices for cid, _ in d.addresses}
    assert "4" not in shown
    assert honcho.counters["4"].section == "okuyami"
    # and its kiosk has a menu of its own
    assert {m.id: m.kiosks for m in honcho.menus.values()} == {
        "koseki1": ("k1",), "okuyami": ("k2",)}
    # 収納課: one counter on two heads; 戸籍第二係: two counters on one head
    (led,) = [d for d in configs["shuno"].devices if d.kind == "display"]
    assert led.addresses == (("1", 1), ("1", 2))
    (led,) = [d for d in configs["koseki2"].devices if d.kind == "display"]
    assert led.addresses == (("1", 1), ("2", 1))


def test_sim_device_names_are_unique_across_the_ward(configs: dict[str, SiteConfig]) -> None:
    """All 18 sites may run in one process (the ward demo): a shared ``sim://`` name would
    join two sites' devices."""
    urls = [d.url for c in configs.values() for d in c.devices]
    assert all(u.startswith("sim://") for u in urls)
    assert len(urls) == len(set(urls))


def test_services_are_named_in_four_languages(
        configs: dict[str, SiteConfig]) -> None:
    for c in configs.values():
        for s in c.services.values():
            assert set(s.name.values) >= {"ja", "en", "zh", "ko"}, (c.site, s.code)


def test_the_cli_passes_the_folder() -> None:
    cli = Path(sys.executable).parent / "madoguchi"
    done = subprocess.run([str(cli), "config", "check", *map(str, FILES)],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count(": ok") == 18


def test_every_section_can_take_numbers_at_some_kiosk(configs: dict[str, SiteConfig]) -> None:
    """Sections without a kiosk (the マイカードコーナー, こくほ給付係) take numbers at their
    office's kiosk: every kiosk service of a site is on some menu of one of its kiosks."""
    for c in configs.values():
        kiosks = [d.kiosk for d in c.devices if d.kind == "printer" and d.kiosk]
        offered = {code for k in kiosks for m in c.menus_for(k).values() for code in m.services}
        assert offered == {s.code for s in c.services.values() if s.kiosk}, c.site
        for sid in c.sections:
            mine = {code for k in c.counters.values() if k.section == sid for code in k.services}
            assert not mine or mine & offered, (c.site, sid)
