"""What the editor page shows, built without aiohttp: the fields of one part with their values
and problems, the draft carried by the form, the diff against the live version, the preview.

Problems come from the edge's own checker (``edge.config``): each is placed at the field whose
name is the longest prefix of the problem's key (``services[2].range[1]`` -> the range field of
row 2), else at its row, else in the summary, so no problem is ever hidden.
"""

from __future__ import annotations

import base64
import difflib
import re
import tomllib
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from edge.config import Problem
from hub.siteconfig.form import LANGS, PARTS, Part, Spec, get, join, show, split

MAX_DRAFT = 512 * 1024  # a site TOML is ~15 kB; more is not a draft this page made


# --- the draft travels in the form (compressed), so the server keeps no per-user state ----------

def encode_draft(text: str) -> str:
    return base64.urlsafe_b64encode(zlib.compress(text.encode("utf-8"), 9)).decode("ascii")


def decode_draft(blob: str) -> str | None:
    """The draft text, or None when the field was not made by this page (bad base64, not
    zlib, too large when inflated, not UTF-8)."""
    try:
        raw = base64.urlsafe_b64decode(blob.encode("ascii"))
        inflater = zlib.decompressobj()
        data = inflater.decompress(raw, MAX_DRAFT)
        if inflater.unconsumed_tail or not inflater.eof:
            return None
        return data.decode("utf-8")
    except (ValueError, zlib.error, UnicodeError):
        return None


# --- problems at their fields -------------------------------------------------------------------

_QUOTED = r"'([^']*)'"
_JA: tuple[tuple[re.Pattern[str], str], ...] = tuple((re.compile(p), ja) for p, ja in (
    (r"^(\d+)-(\d+) overlaps services\[(\d+)\] " + _QUOTED + r" \((\d+)-(\d+)\)",
     r"番号の範囲 \1〜\2 が業務「\4」の範囲 \5〜\6 と重なっています。"
     "番号は拠点内で1枚の券を指すため、重ならない範囲にしてください。"),
    (r"^unknown service " + _QUOTED,
     r"業務コード「\1」はありません。業務の一覧にあるコードを入れてください。"),
    (r"^unknown counter " + _QUOTED, r"窓口「\1」はありません。"),
    (r"^duplicate (.+?) " + _QUOTED, r"「\2」が重複しています。"),
    (r"^(.+) " + _QUOTED + r" is already used", r"「\2」は既に使われています。"),
    (r"^no counter serves " + _QUOTED,
     r"業務「\1」を受け持つ窓口がありません。窓口の「受け持つ業務」に加えてください。"),
    (r"^missing en \(need at least", "英語の文も入力してください（日本語と英語は必須です）。"),
    (r"^missing ja \(need at least", "日本語の文も入力してください（日本語と英語は必須です）。"),
    (r"^required", "入力してください。"),
    (r"^Field required", "入力してください。"),
    (r"^missing", "入力してください。"),
    (r"^must be an integer|^Input should be a valid integer", "整数で入力してください。"),
    (r"^must be a number|^Input should be a valid number", "数値で入力してください。"),
    (r"^Input should be greater than or equal to (\S+)", r"\1 以上にしてください。"),
    (r"^Input should be less than or equal to (\S+)", r"\1 以下にしてください。"),
    (r"^Input should be greater than (\S+)", r"\1 より大きくしてください。"),
    (r"^Input should be a valid date", "日付は 2027-01-04 の形で入力してください。"),
    (r"^Input should be a valid dictionary", "「mon-fri 08:30-12:00」の形で入力してください。"),
    (r"must be HH:MM|^String should match pattern '\^\(\[01\]",
     "時刻は 08:30 の形で入力してください。"),
    (r"^String should match pattern", "使えない文字か形式です。説明のとおりに入力してください。"),
    (r"^first must be <= last|first .* last", "範囲の始めは終わり以下にしてください。"),
    (r"names need|needs at least", "日本語と英語の名前は必須です。"),
    (r"is already the default menu", "既定のメニューは1つだけにしてください。"),
    (r"menus and none is the default",
     "メニューが複数あるときは、1つを既定にしてください（時間外・閉庁日に表示）。"),
    (r"overlap", "ほかの設定と重なっています。"),
))


def message_ja(message: str) -> str:
    """The checker's English message in Japanese where a rule is known (the English follows
    on the page for the rest, so nothing is lost in translation)."""
    for pattern, ja in _JA:
        m = pattern.search(message)
        if m:
            return m.expand(ja)
    return ""


@dataclass
class Placed:
    """Problems by field name, by row (``services[2]``) and for the whole file."""

    fields: dict[str, list[Problem]] = field(default_factory=dict)
    rows: dict[str, list[Problem]] = field(default_factory=dict)
    general: list[Problem] = field(default_factory=list)
    anchors: dict[int, str] = field(default_factory=dict)  # id(problem) -> element id

    def count(self) -> int:
        return sum(map(len, self.fields.values())) + sum(map(len, self.rows.values())) + \
            len(self.general)


def place(problems: Iterable[Problem], field_names: Iterable[str],
          row_names: Iterable[str]) -> Placed:
    names = sorted(set(field_names), key=len, reverse=True)
    rows = sorted(set(row_names), key=len, reverse=True)
    out = Placed()

    def under(key: str, name: str) -> bool:
        return key == name or key.startswith(name + ".") or key.startswith(name + "[")

    for p in problems:
        key = join(p.loc) if p.loc else p.key
        hit = next((n for n in names if under(key, n)), None)
        if hit is not None:
            out.fields.setdefault(hit, []).append(p)
            out.anchors[id(p)] = field_id(hit)
            continue
        row = next((r for r in rows if under(key, r)), None)
        if row is not None:
            out.rows.setdefault(row, []).append(p)
            out.anchors[id(p)] = field_id(row)
        else:
            out.general.append(p)
    return out


def field_id(name: str) -> str:
    """An element id for a field name (``services[2].name.ja`` -> ``f-services-2-name-ja``)."""
    return "f-" + re.sub(r"[^A-Za-z0-9_-]+", "-", name).strip("-")


# --- fields of one part ------------------------------------------------------------------------

@dataclass
class FieldView:
    name: str
    id: str
    spec: Spec
    value: str | list[str] | bool
    problems: list[Problem]


@dataclass
class RowView:
    prefix: str  # "services[2]" or "site"
    origin: str  # the row's index in the draft, or "new"
    title: str
    fields: list[FieldView]
    problems: list[Problem]
    removable: bool


def field_names(doc: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """Every field name and row name the whole draft has (problems of any part are placed,
    even those of parts not on screen)."""
    names: list[str] = []
    rows: list[str] = []
    for part in PARTS:
        for prefix, _row in _rows(part, doc):
            rows.append(prefix)
            names.extend(f"{prefix}.{s.key}" for s in part.specs)
    return names, rows


def _rows(part: Part, doc: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any]]]:
    value = doc.get(part.name)
    if part.array:
        items = value if isinstance(value, list) else []
        return [(f"{part.name}[{i}]", r if isinstance(r, Mapping) else {})
                for i, r in enumerate(items)]
    if value is None and part.optional:
        return []
    return [(part.name, value if isinstance(value, Mapping) else {})]


def _title(part: Part, row: Mapping[str, Any], index: int) -> str:
    name = row.get("name") if part.name != "notices" else row.get("text")
    label = name.get("ja") if isinstance(name, Mapping) else None
    ident = row.get("code") or row.get("id")
    if part.name == "devices":
        return f"{row.get('id', index + 1)} ({row.get('kind', '')})"
    bits = [str(x) for x in (ident, label) if x]
    return " ".join(bits) if bits else f"#{index + 1}"


def part_rows(part: Part, doc: Mapping[str, Any], placed: Placed, *, add: bool) -> list[RowView]:
    out: list[RowView] = []
    rows = _rows(part, doc)
    for i, (prefix, row) in enumerate(rows):
        fields = [FieldView(f"{prefix}.{s.key}", field_id(f"{prefix}.{s.key}"), s,
                            show(s, get(row, split(s.key))),
                            placed.fields.get(f"{prefix}.{s.key}", [])) for s in part.specs]
        out.append(RowView(prefix, str(i) if part.array else "0", _title(part, row, i), fields,
                           placed.rows.get(prefix, []), part.rows))
    if add and part.rows:
        prefix = f"{part.name}[{len(rows)}]"
        fields = [FieldView(f"{prefix}.{s.key}", field_id(f"{prefix}.{s.key}"), s,
                            show(s, None), []) for s in part.specs]
        out.append(RowView(prefix, "new", "", fields, [], True))
    return out


def load(text: str) -> dict[str, Any]:
    """The draft as plain data (the editor only writes TOML tomlkit made, so it parses)."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return {}


# --- diff and preview ---------------------------------------------------------------------------

@dataclass(frozen=True)
class DiffLine:
    kind: str  # "add" | "del" | "ctx" | "hunk"
    text: str


def diff(old: str, new: str, context: int = 2) -> list[DiffLine]:
    out: list[DiffLine] = []
    for line in difflib.unified_diff(old.splitlines(), new.splitlines(), lineterm="", n=context):
        if line.startswith(("---", "+++")):
            continue
        kind = {"@": "hunk", "+": "add", "-": "del"}.get(line[:1], "ctx")
        out.append(DiffLine(kind, line[1:] if kind != "hunk" else line))
    return out


def _text(names: Any, lang: str) -> str:
    if not isinstance(names, Mapping):
        return ""
    return str(names.get(lang) or names.get("ja") or names.get("en") or "")


def preview(doc: Mapping[str, Any], lang: str = "ja") -> dict[str, Any]:
    """The kiosk's first screen and the guide monitor's frame as the draft makes them: the
    guidance and buttons of the default menu (else of every kiosk service, as the kiosk does),
    and the counters and ticker of the monitor."""
    top = doc.get("site")
    site: Mapping[str, Any] = top if isinstance(top, Mapping) else {}
    services = [s for s in doc.get("services", []) if isinstance(s, Mapping)]
    by_code = {s.get("code"): s for s in services}
    menus = [m for m in doc.get("menus", []) if isinstance(m, Mapping)]
    menu = next((m for m in menus if m.get("default") is True), menus[0] if menus else None)
    if menu is not None:
        codes = [c for c in menu.get("services", []) if c in by_code]
        guidance = _text(menu.get("guidance"), lang) or _text(site.get("guidance"), lang)
    else:
        codes = [s.get("code") for s in services if s.get("kiosk", True) is not False]
        guidance = _text(site.get("guidance"), lang)
    return {
        "site": _text(site.get("name"), lang),
        "guidance": guidance,
        "menu": _text(menu.get("name"), lang) if menu is not None else "",
        "buttons": [{"code": c, "name": _text(by_code[c].get("name"), lang)} for c in codes],
        "counters": [_text(c.get("name"), lang) for c in doc.get("counters", [])
                     if isinstance(c, Mapping)][:12],
        "ticker": [_text(n.get("text"), lang) for n in doc.get("notices", [])
                   if isinstance(n, Mapping)],
        "langs": [lang for lang in LANGS if _text(site.get("name"), lang)],
    }
