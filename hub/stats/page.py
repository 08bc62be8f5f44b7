"""What ``/admin/stats`` shows, as plain values for its template: the report table, the totals
beside the same period last year, the four charts (``charts``), web page views and the column
editor's links. Numbers are formatted for Japanese readers (thousands separated by commas,
minutes and hours to one decimal; the unit is in the column header).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import replace
from datetime import date
from typing import Any
from urllib.parse import urlencode

from markupsafe import Markup

from hub.stats import charts, columns, forms, periods
from hub.stats.columns import CATALOGUE
from hub.stats.figures import FIGURES, Acc, figures
from hub.stats.report import Row, Scope, collect, report
from hub.store import HubStore

PATH = "/admin/stats"
MAX_ROWS = 500  # on the page; the CSV has them all


def url(form: forms.Form, lang: str, path: str = PATH, **extra: str) -> str:
    params = [*form.params(), ("set", form.set), ("cols", form.cols), ("lang", lang),
              *extra.items()]
    return f"{path}?{urlencode([(k, v) for k, v in params if v])}"


def number(kind: str, value: float | int | None, signed: bool = False) -> str:
    """A figure for the page: ``1,234``, ``12.3``; ``—`` where there is none."""
    got = columns.number(kind, value)  # type: ignore[arg-type]
    if got is None:
        return "—"
    sign = "+" if signed else ""
    if isinstance(got, int):
        return f"{got:{sign},}"
    return f"{got:{sign},.1f}"


def key_label(dim: str, value: str, lang: str, s: dict[str, Any],
              site_names: dict[str, str]) -> str:
    if dim == "site":  # "": web pages of no one site, the ward's
        return site_names.get(value, value) if value else str(s["ward"])
    if dim in ("counter", "staff", "service") and not value:
        return str(s["none"])
    if dim == "hour":
        return str(s["hour_label"]).format(h=value)
    if dim == "day":
        return periods.day_label(date.fromisoformat(value), lang)
    return columns.key_text(dim, value, lang)


def _summary(total: Row, lang: str) -> list[dict[str, str]]:
    out = []
    for f in FIGURES:
        col = CATALOGUE[f]
        now = total.figures.get(f)
        last = None if total.last is None else total.last.get(f)
        change = None if now is None or last is None else now - last
        out.append({"key": f, "label": col.header(lang), "now": number(col.kind, now),
                    "last": number(col.kind, last),
                    "change": number(col.kind, change, signed=True) if change else "±0"
                    if change == 0 else "—"})
    return out


def _trend_dim(scope: Scope) -> str:
    days = scope.period.days
    return "day" if days <= 62 else "week" if days <= 190 else "month"


async def _charts(store: HubStore, scope: Scope, lang: str, s: dict[str, Any]) -> list[Markup]:
    c = s["charts"]
    grid, ok = await collect(store, replace(scope, group=("weekday", "hour")),
                             ("weekday", "hour"))
    hours = sorted({int(k[1]) for k, a in grid.items() if a.n.get("issued")}) or list(range(8, 19))
    span = list(range(min(hours), max(hours) + 1))
    names = periods.WEEKDAYS_JA if lang == "ja" else periods.WEEKDAYS_EN
    heat = charts.heatmap(
        c["arrivals"], list(names), [s["hour_short"].format(h=h) for h in span],
        [[grid[(str(w), str(h))].n.get("issued", 0) if (str(w), str(h)) in grid else 0
          for h in span] for w in range(7)], unit=c["tickets"], lang=lang)
    by_hour: dict[str, Acc] = defaultdict(Acc)
    for (_w, h), a in grid.items():
        by_hour[h].merge(a)
    waits = {h: figures(a, ok) for h, a in by_hour.items()}
    day_line = charts.line(
        c["waits"], [s["hour_short"].format(h=h) for h in span],
        [(c[f"{w}_mean"], [_minutes(waits.get(str(h), {}).get(f"{w}_mean")) for h in span])
         for w in ("wait1", "wait2")], unit=c["minutes"], lang=lang)
    # counters are numbered per site: with several sites, "nerima-main 1", not one summed "1"
    per = ("counter",) if scope.sites is not None and len(scope.sites) == 1 else (
        "site", "counter")
    by_counter, ok_c = await collect(store, replace(scope, group=per), per)
    counters = sorted(by_counter, key=lambda k: (*k[:-1], len(k[-1]), k[-1]))
    served = charts.bars(
        c["counters"], [" ".join((*k[:-1], k[-1] or str(s["none"]))) for k in counters],
        [(c["served"], [float(figures(by_counter[k], ok_c)["served"] or 0) for k in counters])],
        unit=c["tickets"], lang=lang)
    dim = _trend_dim(scope)
    trend, ok_t = await collect(store, replace(scope, group=(dim,)), (dim,))
    keys = sorted(trend)
    second = charts.line(
        c["second_" + dim], [columns.key_text(dim, k[0], lang) for k in keys],
        [(c["wait2_mean"], [_minutes(figures(trend[k], ok_t)["wait2_mean"]) for k in keys])],
        unit=c["minutes"], lang=lang)
    return [heat, day_line, served, second]


def _cell(col: columns.Column, row: Row) -> str:
    source = row.last if col.last_year else row.figures
    return number(col.kind, None if source is None else source.get(col.figure))


def _minutes(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds / 60.0, 1)


async def report_values(store: HubStore, scope: Scope, draft: Sequence[str], lang: str,
                        s: dict[str, Any], site_names: dict[str, str]) -> dict[str, Any]:
    """The template's values for one report: ``report`` (heads, rows, total), ``summary``,
    ``charts``, ``web``."""
    rep = await report(store, scope)
    figs = [CATALOGUE[k] for k in draft if CATALOGUE[k].kind != "key"]
    heads = [s["groups"][d] for d in scope.group] + [c.header(lang) for c in figs]
    rows = [{"keys": [key_label(d, v, lang, s, site_names) for d, v in
                      zip(scope.group, r.key, strict=True)],
             "cells": [_cell(c, r) for c in figs]} for r in rep.rows[:MAX_ROWS]]
    total = [_cell(c, rep.total) for c in figs]
    return {
        "report": {"heads": heads, "keys": len(scope.group), "rows": rows, "total": total,
                   "cut": len(rep.rows) > MAX_ROWS, "count": len(rep.rows),
                   "title": periods.label(scope.period, lang),
                   "last_title": periods.label(rep.last_period, lang)
                   if rep.last_period else ""},
        "summary": _summary(rep.total, lang),
        "charts": await _charts(store, scope, lang, s),
        "web": [{"page": p, "site": site_names.get(site, site) if site else str(s["ward"]),
                 "views": f"{n:,}"} for p, site, n in rep.web_pages],
    }


def editor(draft: Sequence[str], form: forms.Form, lang: str) -> dict[str, Any]:
    """The column editor: each column with its move/remove links, and the columns to add."""
    def link(op: str) -> str:
        moved = forms.Form(**{**form.__dict__, "cols": ",".join(forms.moved(draft, op))})
        return url(moved, lang) + "#columns"

    items = [{"key": k, "label": CATALOGUE[k].header(lang), "n": i + 1,
              "up": link(f"up:{k}") if i > 0 else "",
              "down": link(f"down:{k}") if i < len(draft) - 1 else "",
              "remove": link(f"remove:{k}") if len(draft) > 1 else ""}
             for i, k in enumerate(draft)]
    return {"items": items, "cols": ",".join(draft),
            "addable": [(k, c.header(lang)) for k, c in CATALOGUE.items() if k not in draft]}
