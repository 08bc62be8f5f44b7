"""Staff read refusals as sentences built from the site's own names (issue 11), and zh/ko
readers get English before Japanese wherever a text lacks their language."""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from support import morning, small_site, text

from edge.domain.commands import (
    CallNext,
    CallNumber,
    CloseCounter,
    Command,
    Context,
    Finish,
    Issue,
    OpenCounter,
    Refused,
    decide,
    rollover,
)
from edge.domain.model import Counter, SiteConfig, Text
from edge.domain.state import State, apply
from edge.protocol import ENVELOPE_VERSION, Envelope

ROOT = Path(__file__).resolve().parents[2]


def named_site() -> SiteConfig:
    """The small test site with counters named the way wards name them."""
    base = small_site()
    counters = {cid: dataclasses.replace(
        ctr, name=text(f"{cid}番窓口", f"Counter {cid}")) for cid, ctr in base.counters.items()}
    return dataclasses.replace(base, counters=counters)


class Site:
    """State + decide + apply, enough to provoke refusals."""

    def __init__(self, config: SiteConfig) -> None:
        self.state, self.n = State(config), 0
        self.now = morning()
        for kind, data in rollover(self.state, self.now):
            self._apply(kind, data)

    def _apply(self, kind: str, data: dict[str, object]) -> None:
        day = data["day"] if kind == "DayOpened" else self.state.day
        self.n += 1
        apply(self.state, Envelope(ENVELOPE_VERSION, self.state.config.site, self.state.seq + 1,
                                   f"e{self.n}", self.now.isoformat(), str(day), kind, data))

    def _fresh(self) -> str:
        self.n += 1
        return f"id{self.n}"

    def run(self, cmd: Command) -> None:
        for kind, data in decide(self.state, cmd, Context(self.now, self._fresh, self._fresh)):
            self._apply(kind, data)

    def refuse(self, cmd: Command) -> Refused:
        with pytest.raises(Refused) as info:
            self.run(cmd)
        return info.value


def test_being_called_elsewhere_names_the_counter_naturally() -> None:
    s = Site(named_site())
    s.run(OpenCounter("1"))
    s.run(OpenCounter("2"))
    s.run(Issue("A"))
    s.run(CallNext("1"))
    r = s.refuse(CallNumber("2", 1))
    assert r.message_ja == "1番は1番窓口で呼び出し中です"
    assert r.message == "Number 1 is being called at Counter 1"
    r = s.refuse(CallNumber("1", 1))
    assert r.message_ja == "1番はこの窓口で呼び出し中です"
    r = s.refuse(CloseCounter("1"))
    assert r.message_ja == "1番窓口は1番を対応中です。先に完了してください"
    s.run(Finish("1"))
    r = s.refuse(CallNext("1"))
    assert (r.code, r.message_ja) == ("queue_empty", "1番窓口で待っている人はいません")
    r = s.refuse(CallNext("3"))
    assert r.message_ja == "3番窓口は休止中です。先に窓口を開始してください"


@given(st.text(alphabet="第一二三四五六七八九十番窓口相談ABC", min_size=1, max_size=8))
def test_refusals_use_the_configured_counter_name(name: str) -> None:
    base = named_site()
    one = base.counters["1"]
    config = dataclasses.replace(base, counters={
        **base.counters, "1": Counter("1", Text({"ja": name, "en": f"Desk {name}"}),
                                      one.services)})
    s = Site(config)
    r = s.refuse(CallNext("1"))  # closed
    assert r.message_ja.startswith(f"{name}は"), r.message_ja
    assert r.message.startswith(f"Desk {name} "), r.message


def _ja_refusals() -> list[tuple[int, str]]:
    out = []
    for rel in ("edge/domain/commands.py", "edge/domain/web.py"):
        tree = ast.parse((ROOT / rel).read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                    and node.func.id in {"Refused", "WebRefusal"} and len(node.args) >= 3):
                arg = node.args[2]
                if isinstance(arg, ast.JoinedStr):
                    parts = [str(v.value) if isinstance(v, ast.Constant) else "{}"
                             for v in arg.values]
                    out.append((node.lineno, "".join(parts)))
                elif isinstance(arg, ast.Constant):
                    out.append((node.lineno, str(arg.value)))
    return out


def test_japanese_refusals_read_as_sentences() -> None:
    """No machine spacing (「77 番」「窓口 1 で」) and no raw ids where a name exists."""
    found = _ja_refusals()
    assert len(found) > 20
    machine = [(line, t) for line, t in found
               if "} 番" in t or "窓口 {" in t or "{} は" in t or "{} の" in t or "{} を" in t]
    assert not machine, machine


@pytest.mark.parametrize(("values", "lang", "want"), [
    ({"ja": "1番窓口", "en": "Counter 1"}, "zh", "Counter 1"),
    ({"ja": "1番窓口", "en": "Counter 1"}, "ko", "Counter 1"),
    ({"ja": "1番窓口", "en": "Counter 1", "ko": "1번 창구"}, "ko", "1번 창구"),
    ({"ja": "1番窓口"}, "zh", "1番窓口"),
    ({"ja": "1番窓口", "en": "Counter 1"}, "ja", "1番窓口"),
    ({"en": "Counter 1"}, "ja", "Counter 1"),
    ({"ja": "1番窓口", "en": ""}, "ko", "1番窓口"),
])
def test_text_falls_back_to_english_before_japanese(
        values: dict[str, str], lang: str, want: str) -> None:
    assert Text(values).get(lang) == want


@given(st.dictionaries(st.sampled_from(["ja", "en", "zh", "ko"]), st.text(min_size=1),
                       min_size=1), st.sampled_from(["ja", "en", "zh", "ko", "fr"]))
def test_text_fallback_order(values: dict[str, str], lang: str) -> None:
    order = [lang, "ja", "en"] if lang == "ja" else [lang, "en", "ja"]
    want = next((values[c] for c in order if values.get(c)), next(iter(values.values())))
    assert Text(values).get(lang) == want
