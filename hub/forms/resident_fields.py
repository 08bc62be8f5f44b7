"""The fields of a resident's page as HTML (``forms/fields.html``'s ``field`` macro, called from
here instead of from ``resident_page.html``), each field nobody has answered yet rendered once
per form version and language.

Why: the macros were most of a page's rendering and rendering about 40 % of the hub's CPU per
page a resident opens (issue 17's forms bench: ~0.9 ms of ~2.3 ms, 113 macro calls a page).
A field without an answer and without an error comes out of the macro the same every time: it
depends only on the field, which a published version never changes (``service.version_of``),
and the language. Such a field's HTML is therefore kept; every field with an answer or an error
is rendered anew, so no resident's answer is ever kept in memory. The HTML is exactly what
``page_fields`` makes (each field after a line break), by construction: the same macro makes it.

A kept piece is used only for the very same ``Form`` object and the very same compiled
``fields.html`` (``Environment.get_template`` gives a new one when the file changed), so a form
version read again or an edited template is never answered from an older piece.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import jinja2
from markupsafe import Markup

from hub.forms.model import AnyField, Form

FIELDS_TEMPLATE = "forms/fields.html"
KEPT_MAX = 4096  # pieces per process (a few kB each); all dropped when full

Kept = dict[tuple[str, int, str, str], tuple[Form, jinja2.Template, Markup]]


def page_fields(env: jinja2.Environment, kept: Kept, form: Form, shown: Iterable[AnyField],
                lang: str, values: Mapping[str, list[Any]],
                errors: Mapping[str, Any]) -> Markup:
    """``fields.page_fields(page, lang, values, errors, shown)`` of ``forms/fields.html``.

    ``values``: input name -> values (``id`` or ``id.part``: field ids hold no dots);
    ``errors``: field id -> its error; ``kept``: the process's pieces (``Forms.fields_html``)."""
    template = env.get_template(FIELDS_TEMPLATE)
    field = template.module.field  # type: ignore[attr-defined]  # a macro of the template
    answered = {name.partition(".")[0] for name in values}
    out: list[Markup | str] = []
    for f in shown:
        if f.id in answered or f.id in errors:
            out += ("\n", field(f, lang, values, errors))
            continue
        key = (form.id, form.version, f.id, lang)
        got = kept.get(key)
        if got is None or got[0] is not form or got[1] is not template:
            if len(kept) >= KEPT_MAX:
                kept.clear()
            got = kept[key] = (form, template, field(f, lang, {}, {}))
        out += ("\n", got[2])
    return Markup("").join(out)  # the macro's pieces are Markup already: nothing escaped
