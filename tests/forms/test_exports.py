"""The submissions export read back as Excel reads it: UTF-8 with BOM or cp932 (characters it
cannot hold become 〓 and are counted), columns by label with compound fields split and 和暦 as
the field shows it, formulas defused; the zip holds the CSV and each attachment's exact bytes as
<reference>/<filename>; every export is audited with counts only."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from pathlib import Path

import pytest
from forms_staff_support import PDF, add_form, add_submission, audits, staff_hub


def read_csv(data: bytes, encoding: str) -> list[list[str]]:
    """As Excel opens it: the BOM says UTF-8; without one, the Japanese Windows code page."""
    if encoding == "utf-8-sig":
        assert data.startswith(b"\xef\xbb\xbf")
    else:
        assert not data.startswith(b"\xef\xbb\xbf")
    return list(csv.reader(io.StringIO(data.decode(encoding), newline="")))


HEADER = ["受付番号", "状態", "経路", "受付日時", "氏名（姓）", "氏名（名）", "氏名（セイ）",
          "氏名（メイ）", "生年月日", "種別", "備考", "就労証明書"]


@pytest.mark.parametrize("encoding", ["utf-8-sig", "cp932"])
async def test_csv_read_back(tmp_path: Path, encoding: str) -> None:
    async with staff_hub(tmp_path) as hub:
        form_id = await add_form(hub.ctx)
        _sid, ref = await add_submission(hub.ctx, form_id, files={"a.pdf": PDF})
        hub.clock.move(minutes=5)
        evil = {"name": {"family": "=HYPERLINK(\"x\")", "given": "太郎"}, "birth": "1989-01-08",
                "kind": "move"}
        _sid2, ref2 = await add_submission(hub.ctx, form_id, answers=evil)
        cookie = await hub.cookie()
        resp = await hub.client.get(f"/admin/forms/{form_id}/submissions/export.csv"
                                    f"?encoding={encoding}&lang=ja", cookies=cookie)
        assert resp.status == 200
        assert resp.headers["Content-Disposition"].startswith("attachment;")
        rows = read_csv(await resp.read(), encoding)
        assert rows[0] == HEADER
        first, second = rows[1], rows[2]
        assert first[:4] == [ref, "受付", "オンライン", "2026-12-01 18:00"]
        assert first[4:10] == ["山田", "花子", "ヤマダ", "ハナコ", "令和2年4月1日", "新規"]
        assert first[11] == "a.pdf"
        if encoding == "cp932":  # 髙 is in cp932, 𠮷 is not
            assert first[10] == "髙橋さんと同じ園を希望 ― 〓"  # U+2015: cp932's dash
        else:
            assert first[10] == "髙橋さんと同じ園を希望 — 𠮷"
        assert second[0] == ref2
        assert second[4] == "'=HYPERLINK(\"x\")"
        assert second[8] == "平成元年1月8日"
        (a,) = await audits(hub.ctx.store, "form_submissions_exported")
        detail = json.loads(a.detail)
        assert detail == {"format": "csv", "encoding": encoding, "rows": 2, "files": 0,
                          "replaced": 1 if encoding == "cp932" else 0}


async def test_zip_holds_csv_and_exact_files(tmp_path: Path) -> None:
    async with staff_hub(tmp_path) as hub:
        form_id = await add_form(hub.ctx)
        png = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40
        _sid, ref = await add_submission(hub.ctx, form_id,
                                         files={"証明書.pdf": PDF, "写真.png": png})
        cookie = await hub.cookie()
        resp = await hub.client.get(f"/admin/forms/{form_id}/submissions/export.zip",
                                    cookies=cookie)
        assert resp.status == 200
        assert resp.headers["Content-Type"] == "application/zip"
        with zipfile.ZipFile(io.BytesIO(await resp.read())) as zf:
            assert zf.testzip() is None
            names = set(zf.namelist())
            assert names == {"submissions.csv", f"{ref}/証明書.pdf", f"{ref}/写真.png"}
            assert zf.read(f"{ref}/証明書.pdf") == PDF
            assert zf.read(f"{ref}/写真.png") == png
            rows = read_csv(zf.read("submissions.csv"), "utf-8-sig")
        assert rows[1][0] == ref
        (a,) = await audits(hub.ctx.store, "form_submissions_exported")
        assert json.loads(a.detail)["files"] == 2
        outsider = await hub.cookie(department="kankyo")
        resp = await hub.client.get(f"/admin/forms/{form_id}/submissions/export.zip",
                                    cookies=outsider)
        assert resp.status == 404
