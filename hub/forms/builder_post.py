"""Reading the builder's posted inputs into model data (pure; no aiohttp).

Why separate from ``builder_edit``: these functions know the HTML inputs (``label_ja``,
``options`` as lines ``value|ラベル|Label``, ``max_mb``…) and turn them into the dicts the model
takes; a typo in a number is refused here with the input's name, everything else is refused by
the model itself. ``values_of`` is the other direction: a field's settings as the inputs show
them, so a refused change comes back with what staff typed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from hub.forms.builder_edit import EditRefused, Issue, refuse
from hub.forms.model import AllOf, AnyField, AnyOf, Condition, Rule

Posted = Mapping[str, Sequence[str]]
MIME = {"pdf": "application/pdf", "jpeg": "image/jpeg", "png": "image/png"}
OPS = ("equals", "not_equals", "in", "checked", "not_empty")
PREFILLS = ("name", "address", "birth_date", "email", "phone")


def one(posted: Posted, name: str, limit: int = 10000) -> str:
    got = posted.get(name) or [""]
    return str(got[0]).strip()[:limit]


def text_of(posted: Posted, base: str, required: bool = True) -> dict[str, str] | None:
    """``{ja, en}`` from ``<base>_ja`` / ``<base>_en``; None when optional and both empty."""
    ja, en = one(posted, f"{base}_ja"), one(posted, f"{base}_en")
    if not ja and not en and not required:
        return None
    if not ja:
        raise refuse("missing_ja", f"{base}_ja", "日本語を入力してください",
                     "Enter the Japanese text")
    return {"ja": ja, "en": en}


def _number(posted: Posted, name: str, whole: bool = False) -> int | float | None:
    raw = one(posted, name, 40).replace(",", "")
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if value != value or abs(value) > 1e15 or (whole and value != int(value)):
        raise refuse("bad_number", name, "数値で入力してください", "Enter a number")
    return int(value) if value == int(value) else value


def options_of(text: str) -> list[dict[str, Any]]:
    """One option per line: ``value|ラベル|Label`` (``value|ラベル`` or ``ラベル`` also work:
    the label is then the value)."""
    out: list[dict[str, Any]] = []
    for n, line in enumerate(text.splitlines(), 1):
        parts = [p.strip() for p in line.split("|")]
        if not any(parts):
            continue
        if len(parts) > 3 or not parts[0]:
            raise refuse("bad_option", "options",
                         f"選択肢の{n}行目は「値|ラベル|Label」の形で入力してください",
                         f"Option line {n}: write value|ラベル|Label")
        value = parts[0]
        ja = parts[1] if len(parts) > 1 and parts[1] else value
        en = parts[2] if len(parts) > 2 else ""
        out.append({"value": value[:100], "label": {"ja": ja, "en": en}})
    return out


COND_ROWS = ("", "_2", "_3")  # the suffixes of the builder's rule inputs (cond_field_2 …)


def _rule_of(posted: Posted, sfx: str) -> dict[str, Any] | None:
    """One rule from ``cond_field{sfx}``/``cond_op{sfx}``/``cond_value{sfx}`` (values of ``in``
    one per line or comma-separated); None when no field is chosen in that row."""
    target = one(posted, f"cond_field{sfx}", 48)
    if not target:
        return None
    op = one(posted, f"cond_op{sfx}", 20)
    if op not in OPS:
        raise refuse("bad_op", f"cond_op{sfx}", "条件の種類を選んでください",
                     "Choose a kind of condition")
    raw = one(posted, f"cond_value{sfx}", 2000)
    value: str | list[str] | None
    if op == "in":
        value = [v.strip() for v in raw.replace("、", ",").replace("\n", ",").split(",")
                 if v.strip()]
    elif op in ("equals", "not_equals") or (op == "checked" and raw):
        value = raw
    else:
        value = None
    rule: dict[str, Any] = {"field": target, "op": op}
    if value is not None:
        rule["value"] = value
    return rule


def condition_of(posted: Posted, keep: Condition | None) -> dict[str, Any] | None:
    """The condition of the builder's rows: none, one rule, or up to three joined by
    ``cond_join`` (all / any). No row filled keeps a deeper nested (imported) condition when
    ``cond_keep`` is ticked: the builder edits one level, the model and import take any."""
    rules = [r for r in (_rule_of(posted, sfx) for sfx in COND_ROWS) if r is not None]
    if not rules:
        if keep is not None and one(posted, "cond_keep") == "1" and not flat_rules(keep):
            return keep.model_dump(mode="json", exclude_none=True)
        return None
    if len(rules) == 1:
        return rules[0]
    return {"any": rules} if one(posted, "cond_join", 3) == "any" else {"all": rules}


def flat_rules(cond: Condition | None) -> list[Rule]:
    """The rules of a condition the builder's rows can show (one rule, or all/any of at most
    three rules); empty for none or a deeper one."""
    if isinstance(cond, Rule):
        return [cond]
    if cond is None:
        return []
    parts = cond.all if isinstance(cond, AllOf) else cond.any
    if len(parts) <= len(COND_ROWS) and all(isinstance(p, Rule) for p in parts):
        return [p for p in parts if isinstance(p, Rule)]
    return []


def cond_values(cond: Condition | None) -> dict[str, str]:
    """What the condition rows show for a stored condition."""
    rules = flat_rules(cond)
    out = {"cond_join": "any" if isinstance(cond, AnyOf) else "all",
           "cond_keep": "1" if cond is not None and not rules else ""}
    for i, sfx in enumerate(COND_ROWS):
        rule = rules[i] if i < len(rules) else None
        value = rule.value if rule is not None else None
        out[f"cond_field{sfx}"] = rule.field if rule is not None else ""
        out[f"cond_op{sfx}"] = rule.op if rule is not None else "equals"
        out[f"cond_value{sfx}"] = (", ".join(value) if isinstance(value, tuple)
                                   else (value or ""))
    return out


def field_data(fld: AnyField, posted: Posted) -> dict[str, Any]:
    """The settings of ``fld`` from the posted inputs (all of its type's settings)."""
    kind = fld.type
    issues: list[Issue] = []
    data: dict[str, Any] = {}

    def take(key: str, make: Any) -> None:
        try:
            value = make()
        except EditRefused as exc:
            issues.extend(exc.issues)
            return
        if value is not None:
            data[key] = value

    take("condition", lambda: condition_of(posted, fld.condition))
    if kind == "fixed_text":
        take("text", lambda: text_of(posted, "text"))
        if issues:
            raise EditRefused(issues)
        return data
    take("label", lambda: text_of(posted, "label"))
    take("help", lambda: text_of(posted, "help", required=False))
    data["required"] = one(posted, "required") == "1"
    prefill = one(posted, "prefill", 20)
    if prefill in PREFILLS:
        data["prefill"] = prefill
    if kind in ("choice", "checkboxes", "dropdown"):
        take("options", lambda: options_of(one(posted, "options", 100000)))
    if kind in ("text", "long_text"):
        take("min_length", lambda: _number(posted, "min_length", whole=True))
        take("max_length", lambda: _number(posted, "max_length", whole=True))
    if kind == "number":
        take("min", lambda: _number(posted, "min"))
        take("max", lambda: _number(posted, "max"))
        data["integer"] = one(posted, "integer") == "1"
    if kind == "date":
        data["display"] = one(posted, "display", 10) or "seireki"
        for key in ("min", "max"):
            if one(posted, key, 10):
                data[key] = one(posted, key, 10)
    if kind == "checkboxes":
        take("min_selected", lambda: _number(posted, "min_selected", whole=True))
        take("max_selected", lambda: _number(posted, "max_selected", whole=True))
    if kind == "name":
        data["furigana"] = one(posted, "furigana", 10) or "katakana"
    if kind == "file":
        take("max_bytes", lambda: _mb(posted))
        data["allowed_types"] = [MIME[k] for k in MIME if k in posted.get("allowed", ())]
        take("max_files", lambda: _number(posted, "max_files", whole=True))
        if not data["allowed_types"]:
            issues.append(Issue("no_types", "allowed", "受け付けるファイルの種類を選んでください",
                                "Choose the file types to accept"))
    if kind == "consent":
        take("text", lambda: text_of(posted, "text"))
    if issues:
        raise EditRefused(issues)
    return data


def _mb(posted: Posted) -> int | None:
    got = _number(posted, "max_mb")
    return None if got is None else int(got * 1_000_000)


def values_of(fld: AnyField) -> dict[str, Any]:
    """What the field's edit page shows in its inputs."""
    d = fld.model_dump(mode="json")
    out: dict[str, Any] = {**cond_values(fld.condition)}
    for base in ("label", "help", "text"):
        got = d.get(base) or {}
        out[f"{base}_ja"], out[f"{base}_en"] = got.get("ja", ""), got.get("en", "")
    out["required"] = "1" if d.get("required", True) else ""
    out["prefill"] = d.get("prefill") or ""
    out["options"] = "\n".join(f"{o['value']}|{o['label']['ja']}|{o['label']['en']}"
                               for o in d.get("options", ()))
    for key in ("min_length", "max_length", "min", "max", "min_selected", "max_selected",
                "max_files"):
        out[key] = "" if d.get(key) is None else str(d[key])
    out["integer"] = "1" if d.get("integer") else ""
    out["display"] = d.get("display", "seireki")
    out["furigana"] = d.get("furigana", "katakana")
    out["max_mb"] = "" if d.get("max_bytes") is None else f"{d['max_bytes'] / 1_000_000:g}"
    out["allowed"] = [k for k, m in MIME.items() if m in d.get("allowed_types", ())]
    return out


def posted_values(posted: Posted) -> dict[str, Any]:
    """What staff typed, shown again after a refusal."""
    out: dict[str, Any] = {k: one(posted, k, 100000) for k in posted if k != "csrf"}
    out["allowed"] = [str(v) for v in posted.get("allowed", ())]
    return out
