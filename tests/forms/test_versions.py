"""Publishing, copying, export and import (hub/forms/versions.py)."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from hub.forms.model import Form, FormInvalid
from hub.forms.versions import (
    EXPORT_FORMAT,
    NotEditable,
    copy_form,
    digest,
    edit,
    export_form,
    import_form,
    next_draft,
    parse_form,
    publish,
    submission_ref,
)

words = st.text(alphabet=st.characters(codec="utf-8", categories=("L", "N", "P", "S", "Zs")),
                min_size=1, max_size=12)
texts = st.builds(lambda ja, en: {"ja": ja, "en": en}, words, st.one_of(st.just(""), words))
OPTION_VALUES = ["a", "b", "c", "d"]
options = st.lists(st.sampled_from(OPTION_VALUES), min_size=1, max_size=4, unique=True).map(
    lambda vs: [{"value": v, "label": {"ja": v.upper()}} for v in vs])
days = st.dates(min_value=date(1900, 1, 1), max_value=date(2100, 1, 1))


@st.composite
def field_settings(draw: st.DrawFn, kind: str) -> dict[str, Any]:
    """The type-specific settings of a field of ``kind``, always valid (min ≤ max)."""
    if kind in ("choice", "dropdown"):
        return {"options": draw(options)}
    if kind == "checkboxes":
        opts = draw(options)
        low = draw(st.integers(0, len(opts)))
        return {"options": opts, "min_selected": low,
                "max_selected": draw(st.none() | st.integers(max(low, 1), 10))}
    if kind == "number":
        bound = st.none() | st.integers(-1000, 1000) | st.floats(-1e6, 1e6)
        small: int | float | None = draw(bound)
        big: int | float | None = draw(bound)
        if small is not None and big is not None and small > big:
            small, big = big, small
        return {"min": small, "max": big, "integer": draw(st.booleans())}
    if kind == "date":
        first, last = sorted(draw(st.lists(days, min_size=2, max_size=2)))
        return {"min": first.isoformat(), "max": last.isoformat(),
                "display": draw(st.sampled_from(["seireki", "wareki"]))}
    if kind in ("text", "long_text"):
        top = 1000 if kind == "text" else 10000
        high = draw(st.integers(1, top))
        return {"max_length": high, "min_length": draw(st.integers(0, high))}
    if kind == "name":
        return {"furigana": draw(st.sampled_from(["katakana", "hiragana", "none"]))}
    if kind == "file":
        return {"max_bytes": draw(st.integers(1, 100_000_000)),
                "max_files": draw(st.integers(1, 20)),
                "allowed_types": draw(st.lists(st.sampled_from(
                    ["application/pdf", "image/jpeg", "image/png"]), unique=True))}
    if kind == "consent":
        return {"text": draw(texts)}
    return {}


KINDS = ["text", "long_text", "number", "email", "phone", "date", "choice", "dropdown",
         "checkboxes", "name", "address", "file", "consent", "fixed_text"]


@st.composite
def forms(draw: st.DrawFn) -> Form:
    """Random valid forms: 1–4 pages of random fields; conditions point at earlier answers."""
    made: list[dict[str, Any]] = []
    pages = []
    for p in range(draw(st.integers(1, 4))):
        page: dict[str, Any] = {"id": f"page{p}", "title": draw(texts), "fields": []}
        answered = [f["id"] for f in made if f["type"] != "fixed_text"]
        if draw(st.booleans()) and answered:
            page["condition"] = {"field": draw(st.sampled_from(answered)), "op": "not_empty"}
        for _ in range(draw(st.integers(0, 4))):
            kind = draw(st.sampled_from(KINDS))
            fid = f"f{len(made)}"
            fld: dict[str, Any] = {"type": kind, "id": fid} | draw(field_settings(kind))
            if kind == "fixed_text":
                fld["text"] = draw(texts)
            else:
                fld |= {"label": draw(texts), "required": draw(st.booleans()),
                        "help": draw(st.none() | texts)}
            answerable = [f for f in made if f["type"] != "fixed_text"]
            if draw(st.booleans()) and answerable:
                target = draw(st.sampled_from(answerable))
                rule: dict[str, Any] = {"field": target["id"], "op": "not_empty"}
                if "options" in target:
                    rule = {"field": target["id"], "op": "in",
                            "value": [o["value"] for o in target["options"]][:1]}
                fld["condition"] = draw(st.sampled_from([rule, {"any": [rule]}, {"all": [rule]}]))
            page["fields"].append(fld)
            made.append(fld)
        pages.append(page)
    return parse_form({"id": draw(st.from_regex(r"[a-z][a-z0-9_]{0,20}", fullmatch=True)),
                       "title": draw(texts), "description": draw(st.none() | texts),
                       "retention_days": draw(st.integers(1, 1826)),
                       "identity": draw(st.sampled_from(["anonymous", "email_code", "oidc"])),
                       "pages": pages})


@settings(max_examples=150)
@given(forms())
def test_export_import_round_trip(form: Form) -> None:
    exported = export_form(form)
    text = json.dumps(exported, ensure_ascii=False)  # really JSON, not Python objects
    assert import_form(text) == form
    assert import_form(json.loads(text)) == form
    assert exported["format"] == EXPORT_FORMAT


@settings(max_examples=50)
@given(forms())
def test_publish_freezes_and_versions(form: Form) -> None:
    published = publish(form, 3)
    assert (published.status, published.version) == ("published", 3)
    assert published.pages == form.pages
    with pytest.raises(ValidationError):
        published.version = 4  # type: ignore[misc]
    with pytest.raises(NotEditable):
        publish(published, 4)
    with pytest.raises(NotEditable):
        edit(published, title={"ja": "変更"})
    draft = next_draft(published)
    assert (draft.status, draft.version) == ("draft", 4)
    changed = publish(edit(draft, title={"ja": "変更後"}), 4)
    assert digest(changed) != digest(published)
    assert submission_ref(published) == {"form": form.id, "version": 3,
                                         "digest": digest(published)}
    # importing what was published gives a draft: the new system publishes it itself
    assert import_form(export_form(published)).status == "draft"


def test_digest_is_stable_and_sensitive() -> None:
    form = parse_form({"id": "f", "title": {"ja": "届"}, "retention_days": 30,
                       "pages": [{"id": "p", "title": {"ja": "1"}}]})
    assert digest(form) == digest(parse_form(form.model_dump(mode="json")))
    assert digest(form) != digest(edit(form, retention_days=31))
    with pytest.raises(NotEditable):
        submission_ref(form)  # a draft takes no submissions


def test_copy_form() -> None:
    form = publish(parse_form({"id": "f", "title": {"ja": "届"}, "retention_days": 30,
                               "pages": [{"id": "p", "title": {"ja": "1"}}]}), 7)
    copied = copy_form(form, "f_copy")
    assert (copied.id, copied.version, copied.status) == ("f_copy", 1, "draft")
    assert copied.pages == form.pages
    with pytest.raises(FormInvalid) as info:
        copy_form(form, "Bad Id")
    assert [p.code for p in info.value.problems] == ["bad_id"]


def test_edit_checks_again() -> None:
    form = parse_form({"id": "f", "title": {"ja": "届"}, "retention_days": 30,
                       "pages": [{"id": "p", "title": {"ja": "1"}}]})
    with pytest.raises(FormInvalid):
        edit(form, retention_days=5000)
    with pytest.raises(NotEditable):
        edit(form, version=9)


@pytest.mark.parametrize(("data", "code"), [
    ("{not json", "not_json"),
    (b"\xff\xfe", "not_json"),
    ("[1, 2]", "not_export"),
    ({"format": "formsg", "form": {}}, "not_export"),
    ({"format": EXPORT_FORMAT, "format_version": 99, "form": {}}, "export_version"),
    ({"format": EXPORT_FORMAT, "format_version": 1}, "missing"),
    ({"format": EXPORT_FORMAT, "format_version": 1, "form": {"id": "f"}}, "missing"),
    ({"format": EXPORT_FORMAT, "format_version": 1,
      "form": {"id": "f", "title": {"ja": "届"}, "retention_days": 30, "pages": [
          {"id": "p", "title": {"ja": "1"}, "fields": [{"type": "signature", "id": "s"}]}]}},
     "unknown_type"),
    ("[" * 100000, "not_json"),
])
def test_import_refuses_foreign_data_clearly(data: Any, code: str) -> None:
    with pytest.raises(FormInvalid) as info:
        import_form(data)
    problems = info.value.problems
    assert code in [p.code for p in problems]
    for problem in problems:
        assert problem.ja
        assert problem.en
        assert "Traceback" not in problem.en
