"""Conditions in the builder: up to three rules joined by all / any, over HTTP and as a rule
of the inputs (hypothesis: what the rows post is what they show again); a deeper imported
condition is kept only on request."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from forms_builder_support import DEPT, BuilderHub, builder_hub, form_id_of
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.forms.builder_post import COND_ROWS, OPS, cond_values, condition_of, flat_rules
from hub.forms.model import AllOf, AnyOf, FormInvalid, Rule
from hub.forms.versions import parse_form


async def _form_with_two_questions(hub: BuilderHub) -> tuple[str, str, str]:
    got = await hub.post("/admin/forms/new?lang=ja", {"department": DEPT, "title_ja": "条件",
                                                      "title_en": "Conditions"})
    fid = form_id_of(got.headers["Location"])
    ids = []
    for kind, options in (("choice", "new|新規|New\nmove|転園|Move"),
                          ("checkboxes", "a|書類A|Paper A\nb|書類B|Paper B")):
        got = await hub.post(f"/admin/forms/{fid}/pages/p1/fields?lang=ja", {"type": kind})
        fld = got.headers["Location"].rsplit("#field-", 1)[1]
        got = await hub.post(f"/admin/forms/{fid}/fields/{fld}?lang=ja", {
            "label_ja": kind, "options": options})
        assert got.status == 303, await got.text()
        ids.append(fld)
    assert (await hub.post(f"/admin/forms/{fid}/pages?lang=ja", {})).status == 303
    return fid, ids[0], ids[1]


async def test_two_rules_joined_by_any_on_a_page(tmp_path: Path) -> None:
    async with builder_hub(tmp_path) as hub:
        await hub.sign_in()
        fid, kind, papers = await _form_with_two_questions(hub)
        got = await hub.post(f"/admin/forms/{fid}/pages/p2?lang=ja", {
            "title_ja": "追加", "cond_field": kind, "cond_op": "equals", "cond_value": "move",
            "cond_field_2": papers, "cond_op_2": "checked", "cond_value_2": "b",
            "cond_join": "any"})
        assert got.status == 303, await got.text()
        cond = (await hub.draft(fid)).pages[1].condition
        assert cond == AnyOf(any=(Rule(field=kind, op="equals", value="move"),
                                  Rule(field=papers, op="checked", value="b")))
        page = await (await hub.get(f"/admin/forms/{fid}?lang=ja")).text()
        assert "または" in page  # the condition in words
        assert '<option value="any" selected>' in page
        assert 'id="p2-cond_field_2" name="cond_field_2"><option value="">' in page

        # all three rows, joined by all; then only the second row: one plain rule
        got = await hub.post(f"/admin/forms/{fid}/pages/p2?lang=ja", {
            "title_ja": "追加", "cond_field": kind, "cond_op": "not_empty",
            "cond_field_2": papers, "cond_op_2": "checked", "cond_value_2": "a",
            "cond_field_3": kind, "cond_op_3": "in", "cond_value_3": "new、move",
            "cond_join": "all"})
        assert got.status == 303, await got.text()
        cond = (await hub.draft(fid)).pages[1].condition
        assert isinstance(cond, AllOf)
        assert [r.op for r in flat_rules(cond)] == ["not_empty", "checked", "in"]
        got = await hub.post(f"/admin/forms/{fid}/pages/p2?lang=ja", {
            "title_ja": "追加", "cond_field_2": papers, "cond_op_2": "checked",
            "cond_value_2": "a", "cond_join": "any"})
        assert got.status == 303
        assert (await hub.draft(fid)).pages[1].condition == Rule(field=papers, op="checked",
                                                                 value="a")


async def test_a_bad_second_rule_is_refused_and_nothing_saved(tmp_path: Path) -> None:
    async with builder_hub(tmp_path) as hub:
        await hub.sign_in()
        fid, kind, _papers = await _form_with_two_questions(hub)
        before = (await hub.row(fid)).draft
        got = await hub.post(f"/admin/forms/{fid}/pages/p2?lang=en", {
            "title_ja": "追加", "cond_field": kind, "cond_op": "equals", "cond_value": "move",
            "cond_field_2": kind, "cond_op_2": "bigger", "cond_join": "all"})
        assert got.status == 400
        text = await got.text()
        assert 'data-code="bad_op"' in text
        assert (await hub.row(fid)).draft == before


async def test_a_deeper_imported_condition_is_kept_only_on_request(tmp_path: Path) -> None:
    async with builder_hub(tmp_path) as hub:
        await hub.sign_in()
        fid, kind, papers = await _form_with_two_questions(hub)
        nested = {"all": [{"field": kind, "op": "equals", "value": "move"},
                          {"any": [{"field": papers, "op": "checked", "value": "a"},
                                   {"field": papers, "op": "checked", "value": "b"}]}]}
        from hub.forms import builder_store
        from hub.forms.builder_edit import update_page

        await builder_store.change(hub.ctx, fid, "test", lambda d: update_page(
            d, "p2", d.pages[1].title, nested), "tester", None)
        page = await (await hub.get(f"/admin/forms/{fid}?lang=ja")).text()
        assert 'name="cond_keep" value="1" checked' in page
        got = await hub.post(f"/admin/forms/{fid}/pages/p2?lang=ja", {
            "title_ja": "追加", "cond_keep": "1"})
        assert got.status == 303
        assert (await hub.draft(fid)).pages[1].condition is not None
        got = await hub.post(f"/admin/forms/{fid}/pages/p2?lang=ja", {"title_ja": "追加"})
        assert got.status == 303
        assert (await hub.draft(fid)).pages[1].condition is None


_ROW = st.one_of(st.none(), st.tuples(st.sampled_from(("q1", "q2")), st.sampled_from(OPS),
                                      st.sampled_from(("", "a", "a, b", "x"))))


@settings(max_examples=300, deadline=None)
@given(st.lists(_ROW, min_size=3, max_size=3), st.sampled_from(("all", "any")))
def test_what_the_rows_post_is_what_they_show(rows: list[Any], join: str) -> None:
    posted: dict[str, list[str]] = {"cond_join": [join]}
    for sfx, row in zip(COND_ROWS, rows, strict=True):
        if row is not None:
            posted[f"cond_field{sfx}"] = [row[0]]
            posted[f"cond_op{sfx}"] = [row[1]]
            posted[f"cond_value{sfx}"] = [row[2]]
    made = condition_of(posted, None)
    used = [r for r in rows if r is not None]
    if not used:
        assert made is None
        return
    assert made is not None
    try:
        form = _form_with(made) if _valid(used) else None
    except FormInvalid:  # a rule the model refuses for its field (e.g. "checked" on a choice)
        return
    if form is None:
        return
    shown = cond_values(form.pages[1].condition)
    assert shown["cond_keep"] == ""
    for i, (field, op, _value) in enumerate(used):  # compacted, in order
        assert shown[f"cond_field{COND_ROWS[i]}"] == field
        assert shown[f"cond_op{COND_ROWS[i]}"] == op
    for sfx in COND_ROWS[len(used):]:
        assert shown[f"cond_field{sfx}"] == ""
    if len(used) > 1:
        assert shown["cond_join"] == join


def _valid(used: list[Any]) -> bool:
    """Rows the model takes: a value where the op needs one, none where it takes none."""
    for _field, op, value in used:
        if op in ("equals", "not_equals", "in") and not value.strip(" ,"):
            return False
    return True


def _form_with(made: dict[str, Any]) -> Any:
    return parse_form({"id": "fx", "title": {"ja": "t"}, "retention_days": 365, "pages": [
        {"id": "p1", "title": {"ja": "a"}, "fields": [
            {"type": "choice", "id": "q1", "label": {"ja": "1"},
             "options": [{"value": v, "label": {"ja": v}} for v in ("a", "b", "x")]},
            {"type": "checkboxes", "id": "q2", "label": {"ja": "2"},
             "options": [{"value": v, "label": {"ja": v}} for v in ("a", "b", "x")]}]},
        {"id": "p2", "title": {"ja": "b"}, "condition": made, "fields": []}]})
