"""Made-up notice batches: Japanese PDFs and recipient lists, for the demo, ``madoguchi bench
notices`` and the tests (one copy). Needs the dev extra (reportlab draws the PDFs; the demo and
the bench install it, a production hub never imports this module).

The PDFs use reportlab's built-in CID font HeiseiMin-W3 (not embedded, so files stay small);
pypdf reads its Japanese text back, which is what the key split relies on. ``text_layer=False``
draws each page as a picture only, like a scanner's output.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence

from PIL import Image, ImageDraw
from reportlab.lib.pagesizes import A4  # type: ignore[import-untyped]
from reportlab.lib.utils import ImageReader  # type: ignore[import-untyped]
from reportlab.pdfbase import pdfmetrics  # type: ignore[import-untyped]
from reportlab.pdfbase.cidfonts import UnicodeCIDFont  # type: ignore[import-untyped]
from reportlab.pdfgen import canvas  # type: ignore[import-untyped]

FONT = "HeiseiMin-W3"
pdfmetrics.registerFont(UnicodeCIDFont(FONT))  # reportlab's own CID font: nothing to embed


def _scan_image(label: str) -> ImageReader:
    """A grey page picture with some marks (no text layer, like a scan)."""
    img = Image.new("L", (200, 280), 235)
    draw = ImageDraw.Draw(img)
    draw.rectangle((20, 20, 180, 40), fill=40)
    draw.text((20, 60), label, fill=0)  # ASCII pixels only: it is an image, not text
    return ImageReader(img)


def make_notice_pdf(keys: Sequence[str], pages_each: int = 2, text_layer: bool = True, *,
                    lead_pages: int = 0) -> bytes:
    """One resident per key, ``pages_each`` pages each; the first page says
    ``練馬区 通知書 通知番号: {key}``. ``lead_pages``: cover pages before the first notice."""
    buf = io.BytesIO()
    c = canvas.Canvas(buf, pagesize=A4, invariant=True)
    c.setTitle("課税通知 一括出力")  # metadata that must not reach the parts
    c.setAuthor("練馬 太郎1")
    width, height = A4
    pages: list[tuple[str | None, int]] = [(None, n + 1) for n in range(lead_pages)]
    for key in keys:
        pages += [(key if n == 0 else None, n + 1) for n in range(pages_each)]
    for first_key, n in pages:
        if text_layer:
            c.setFont(FONT, 12)
            if first_key is not None:
                c.drawString(72, height - 72, f"練馬区 通知書 通知番号: {first_key}")
            else:
                c.drawString(72, height - 72, "練馬区 通知書")
            c.drawString(72, height - 96, f"（{n}ページ目）")
            c.drawString(72, height - 120, "住民税の決定についてお知らせします。")
        else:
            c.drawImage(_scan_image(f"page {n}"), 0, 0, width, height)
        c.showPage()
    c.save()
    return buf.getvalue()


def recipients_rows(n: int, keys: Sequence[str] | None = None) -> list[list[str]]:
    """The header and ``n`` rows of :func:`make_recipients_csv`."""
    wanted = list(keys) if keys is not None else [f"A{i:04d}" for i in range(1, n + 1)]
    rows = [["通知番号", "氏名", "メールアドレス", "税額", "メッセージ"]]
    for i in range(1, n + 1):
        rows.append([wanted[i - 1], f"練馬 太郎{i}", f"resident{i}@example.jp", f"{i * 1000}",
                     f"{i}様へのお知らせです。"])
    return rows


def _csv(rows: Sequence[Sequence[str]], encoding: str) -> bytes:
    out = io.StringIO(newline="")
    csv.writer(out, lineterminator="\r\n").writerows(rows)
    return out.getvalue().encode(encoding)


def make_recipients_csv(n: int, encoding: str = "cp932",
                        keys: Sequence[str] | None = None) -> bytes:
    """A header and ``n`` residents (``練馬 太郎{i}``, ``resident{i}@example.jp``, key
    ``A{i:04d}`` unless ``keys``); ``encoding="utf-8-sig"`` writes Excel's BOM."""
    return _csv(recipients_rows(n, keys), encoding)


def csv_bytes(rows: Sequence[Sequence[str]], encoding: str = "cp932") -> bytes:
    """Rows as Excel writes a CSV (CRLF; cp932 unless told)."""
    return _csv(rows, encoding)


def xlsx_bytes(rows: Sequence[Sequence[object]]) -> bytes:
    """Rows as one xlsx sheet."""
    from openpyxl import Workbook  # type: ignore[import-untyped]

    wb = Workbook()
    ws = wb.active
    assert ws is not None
    for row in rows:
        ws.append(list(row))
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def make_recipients_xlsx(n: int, keys: Sequence[str] | None = None) -> bytes:
    """:func:`make_recipients_csv` as an xlsx workbook."""
    return xlsx_bytes(recipients_rows(n, keys))
