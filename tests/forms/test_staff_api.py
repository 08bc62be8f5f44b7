"""The JSON API for business systems: without the form's key (or with another form's) nothing
but a 401 in ja/en; with it, the submissions with answers, paged by ``after`` and filtered by
``since``; every call audited with a count, never content; the routes are in the OpenAPI."""

from __future__ import annotations

import json
from pathlib import Path

from forms_staff_support import PDF, add_form, add_submission, audits, csrf_of, staff_hub


async def _key(hub: object, form_id: str) -> str:
    client, cookie = hub.client, await hub.cookie()  # type: ignore[attr-defined]
    base = f"/admin/forms/{form_id}/submissions"
    csrf = csrf_of(await (await client.get(base, cookies=cookie)).text())
    html = await (await client.post(f"{base}/api-key", cookies=cookie,
                                    data={"csrf": csrf})).text()
    return str(html.split('<code class="secret">')[1].split("<")[0])


async def test_api_reads_with_the_forms_key_only(tmp_path: Path) -> None:
    async with staff_hub(tmp_path) as hub:
        form_id = await add_form(hub.ctx)
        other_id = await add_form(hub.ctx)
        sid1, ref1 = await add_submission(hub.ctx, form_id, files={"a.pdf": PDF})
        hub.clock.move(minutes=1)
        sid2, ref2 = await add_submission(hub.ctx, form_id)
        key = await _key(hub, form_id)
        other_key = await _key(hub, other_id)
        url = f"/api/forms/{form_id}/submissions"
        for headers in ({}, {"Authorization": "Bearer nope"},
                        {"Authorization": f"Bearer {other_key}"},
                        {"Authorization": f"Basic {key}"}):
            resp = await hub.client.get(url, headers=headers)
            assert resp.status == 401
            body = await resp.json()
            assert body["error"]["code"] == "api_key_invalid"
            assert body["error"]["message_ja"]
        resp = await hub.client.get("/api/forms/fnope/submissions",
                                    headers={"Authorization": f"Bearer {key}"})
        assert resp.status == 401  # an unknown form looks like a wrong key
        auth = {"Authorization": f"Bearer {key}"}
        page = await (await hub.client.get(f"{url}?limit=1", headers=auth)).json()
        (first,) = page["submissions"]
        assert first["reference"] == ref1
        assert first["answers"]["name"]["family"] == "山田"
        assert first["files"][0]["filename"] == "a.pdf"
        assert page["next_after"] == sid1
        page = await (await hub.client.get(f"{url}?after={sid1}", headers=auth)).json()
        assert [s["reference"] for s in page["submissions"]] == [ref2]
        page = await (await hub.client.get(f"{url}?since=2026-12-01T09:00:30Z",
                                           headers=auth)).json()
        assert [s["id"] for s in page["submissions"]] == [sid2]
        one = await (await hub.client.get(f"{url}/{sid2}", headers=auth)).json()
        assert one["reference"] == ref2
        resp = await hub.client.get(f"/api/forms/{other_id}/submissions/{sid2}",
                                    headers={"Authorization": f"Bearer {other_key}"})
        assert resp.status == 404
        reads = [json.loads(a.detail) for a in await audits(hub.ctx.store, "form_api_read")]
        assert [r["count"] for r in reads] == [1, 1, 1, 1]
        assert "山田" not in json.dumps(reads, ensure_ascii=False)
        spec = await (await hub.client.get("/api/openapi.json")).json()
        assert "/api/forms/{form_id}/submissions" in spec["paths"]
        assert "/api/forms/{form_id}/submissions/{sid}" in spec["paths"]
