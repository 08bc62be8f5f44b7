"""``…/submissions/export.csv`` and ``export.zip``: the form's submissions streamed (see
``hub.forms.exports``), audited after the last byte with the counts (rows, files, characters
cp932 could not hold), never content."""

from __future__ import annotations

from typing import Literal

from aiohttp import web

from hub.auth.guard import ip_of
from hub.auth.service import audit
from hub.auth.texts import pick_lang
from hub.forms import exports, service
from hub.forms.staff import BASE, HEADERS, LANG, actor_of, ctx_of, form_of, missing
from hub.web.api import Param, Route


async def _export(request: web.Request, kind: Literal["csv", "zip"]) -> web.StreamResponse:
    row = await form_of(request)
    if row is None or row.published_version is None:
        return missing(request)
    ctx, lang = ctx_of(request), pick_lang(request)
    form = await service.version_of(ctx, str(row.id), int(row.published_version))
    if form is None:
        return missing(request)
    encoding: exports.Encoding = ("cp932" if request.query.get("encoding") == "cp932"
                                  else "utf-8-sig")
    tally = exports.Tally()
    if kind == "csv":
        charset = "shift_jis" if encoding == "cp932" else "utf-8"
        content_type = f"text/csv; charset={charset}"
        chunks = exports.csv_chunks(ctx, str(row.id), form, lang, encoding, tally)
    else:
        content_type = "application/zip"
        chunks = exports.zip_chunks(ctx, str(row.id), form, lang, encoding, tally)
    resp = web.StreamResponse(headers={
        **HEADERS, "Content-Type": content_type, "X-Content-Type-Options": "nosniff",
        "Content-Disposition": f'attachment; filename="submissions-{row.id}.{kind}"'})
    await resp.prepare(request)
    async for chunk in chunks:
        await resp.write(chunk)
    # audited before the end of the body: a client that has the whole file has its audit row
    await audit(ctx.store, ctx.hub, actor=actor_of(request), action="form_submissions_exported",
                target=str(row.id), ip=ip_of(request),
                detail={"format": kind, "encoding": encoding, "rows": tally.rows,
                        "files": tally.files, "replaced": tally.replaced})
    await resp.write_eof()
    return resp


async def export_csv(request: web.Request) -> web.StreamResponse:
    return await _export(request, "csv")


async def export_zip(request: web.Request) -> web.StreamResponse:
    return await _export(request, "zip")


_ENC = Param("encoding", "utf-8-sig (UTF-8 with BOM, default) or cp932 (characters it cannot "
             "hold become 〓, counted in the audit trail)",
             schema={"enum": ["utf-8-sig", "cp932"]})

ROUTES: tuple[Route, ...] = (
    Route("GET", f"{BASE}/export.csv", "The submissions as CSV (reference, status, channel, "
          "submitted_at, then each field of the published version; compound fields split; "
          "streamed); audited with counts", export_csv, access="forms",
          content_type="text/csv", query=(LANG, _ENC)),
    Route("GET", f"{BASE}/export.zip", "The CSV plus every attachment as "
          "<reference>/<filename> (streamed); audited with counts", export_zip,
          access="forms", content_type="application/zip", query=(LANG, _ENC)),
)
