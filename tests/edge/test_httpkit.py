"""The HTTP kit the edge and the hub share (``edge.httpkit``, issue 12 item 1): JSON errors,
the route pattern (never the concrete path) in fault logs, the storage map each side passes in,
the form guard, JSON bodies read into pydantic models, and one OpenAPI generator for both."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from aiohttp.typedefs import Middleware
from pydantic import BaseModel, ConfigDict, Field

from edge.httpkit import (
    ApiError,
    Param,
    RouteSpec,
    errors_as_json,
    json_response,
    openapi,
    read_json,
)
from edge.store.store import StoreError
from edge.web import api as edge_api
from edge.web.openapi import openapi as edge_openapi
from hub.web import api as hub_api

TOKEN = "SeCrEtToKeN-1234567890"  # a ticket's capability: must never reach a log


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    number: int = Field(ge=1, le=9999)


async def _boom(_request: web.Request) -> web.Response:
    raise RuntimeError("handler bug")


async def _store_down(_request: web.Request) -> web.Response:
    raise StoreError("disk full")


async def _echo(request: web.Request) -> web.Response:
    body = await read_json(request, Body)
    return json_response({"number": body.number, "text": "番号"})


async def _form(request: web.Request) -> web.Response:
    form = await request.post()
    return json_response({"name": str(form.get("name", ""))})


Client = Callable[[Middleware], Awaitable[TestClient[web.Request, web.Application]]]


@pytest.fixture
async def client() -> AsyncIterator[Client]:
    """A small app behind the given middleware, with routes that fail in each way."""
    async with AsyncExitStack() as stack:
        async def make(middleware: Middleware) -> TestClient[web.Request, web.Application]:
            app = web.Application(middlewares=[middleware], client_max_size=64 * 1024)
            app.router.add_get("/api/tickets/{token}", _boom)
            app.router.add_get("/api/store/{token}", _store_down)
            app.router.add_post("/api/echo", _echo)
            app.router.add_post("/form", _form)
            server = TestServer(app)
            await server.start_server(access_log=None)  # as the edge and the hub run
            return await stack.enter_async_context(TestClient(server))

        yield make


@pytest.mark.parametrize("side", ["edge", "hub"])
async def test_a_fault_logs_the_route_pattern_never_the_token(
        client: Client, caplog: pytest.LogCaptureFixture, side: str) -> None:
    caplog.set_level(logging.DEBUG)
    c = await client(edge_api.errors_as_json if side == "edge" else hub_api.errors_as_json)
    r = await c.get(f"/api/tickets/{TOKEN}")
    assert r.status == 500
    err = (await r.json())["error"]
    assert err["code"] == "internal"
    assert err["message"]
    assert err["message_ja"]
    logged = "\n".join(f"{rec.getMessage()} {rec.exc_text or ''}" for rec in caplog.records)
    assert "GET /api/tickets/{token}" in logged  # the fault is found by its route…
    assert TOKEN not in logged  # …and the capability in its path stays out of the log


async def test_the_edge_answers_storage_faults_with_503(
        client: Client, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    c = await client(edge_api.errors_as_json)
    r = await c.get(f"/api/store/{TOKEN}")
    assert r.status == 503
    body = await r.json()
    assert body == {"error": {"code": "storage_unavailable",
                              "message": "The local database cannot write now",
                              "message_ja": "ローカルデータベースに書き込めません"}}
    assert TOKEN not in caplog.text
    assert "/api/store/{token}" in caplog.text
    # the hub does not know the edge's store: the same exception is an internal error there
    hub = await client(hub_api.errors_as_json)
    assert (await (await hub.get("/api/store/x")).json())["error"]["code"] == "internal"


async def test_aiohttp_refusals_are_json_with_allow(client: Client) -> None:
    c = await client(errors_as_json(internal=ApiError(500, "internal", "x", "x")))
    r = await c.get("/nothing")
    assert (r.status, (await r.json())["error"]["code"]) == (404, "not_found")
    r = await c.get("/api/echo")
    assert r.status == 405
    assert r.headers["Allow"] == "POST"
    assert (await r.json())["error"]["message_ja"] == "このメソッドは使えません"
    r = await c.post("/api/echo", data=b"{" + b" " * 70_000 + b"}")
    assert (r.status, (await r.json())["error"]["code"]) == (413, "too_large")


@pytest.mark.parametrize(("data", "status", "code"), [
    (b"{", 400, "bad_json"), (b"[1]", 400, "bad_json"), (b"\xff", 400, "bad_json"),
    (b"[" * 5000, 400, "bad_json"), (b"", 422, "invalid_input"),
    (b'{"number": 0}', 422, "invalid_input"), (b'{"number": "1"}', 422, "invalid_input"),
    (b'{"number": 1, "x": 1}', 422, "invalid_input"),
])
async def test_json_bodies_are_refused_with_stable_codes(
        client: Client, data: bytes, status: int, code: str) -> None:
    c = await client(hub_api.errors_as_json)
    r = await c.post("/api/echo", data=data, headers={"Content-Type": "application/json"})
    assert (r.status, (await r.json())["error"]["code"]) == (status, code)


async def test_a_valid_json_body_and_utf8_answers(client: Client) -> None:
    c = await client(edge_api.errors_as_json)
    r = await c.post("/api/echo", json={"number": 7})
    assert r.status == 200
    assert "番号" in await r.text()  # UTF-8, not \\u escapes
    assert r.headers["Content-Type"].startswith("application/json")


async def test_the_form_guard_only_where_asked(client: Client) -> None:
    bad = {"Content-Type": "application/x-www-form-urlencoded; charset=no-such-charset"}
    hub = await client(hub_api.errors_as_json)  # forms=True
    r = await hub.post("/form", data=b"name=x", headers=bad)
    assert (r.status, (await r.json())["error"]["code"]) == (400, "bad_form")
    broken = {"Content-Type": "multipart/form-data; boundary=b0"}  # a part without headers
    r = await hub.post("/form", data=b"--b0\r\n[]--b0--\r\n", headers=broken)
    assert (r.status, (await r.json())["error"]["code"]) == (400, "bad_form")
    r = await hub.post("/form", data={"name": "窓口"})
    assert (await r.json()) == {"name": "窓口"}
    # the edge takes JSON only: no form is decoded ahead of its handlers
    edge = await client(edge_api.errors_as_json)
    r = await edge.post("/form", data=b"name=x", headers=bad)
    assert (await r.json())["error"]["code"] == "internal"


def test_one_generator_documents_both_kinds_of_body() -> None:
    routes = (
        RouteSpec("POST", "/api/items/{item}/call-next", "model body", access="staff",
                  body=Body, status=201),
        RouteSpec("POST", "/f/{token}", "form body", access="ticket_token",
                  body={"application/x-www-form-urlencoded": {"type": "object"}},
                  content_type="text/html", also={303: "back"},
                  query=(Param("limit", "at most", 1, 10, 5),)),
    )
    doc = openapi(routes, title="t", version="1")
    model_op = doc["paths"]["/api/items/{item}/call-next"]["post"]
    assert model_op["operationId"] == "post_api_items_item_call_next"
    assert model_op["x-access"] == "staff"
    assert model_op["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Body"}
    assert doc["components"]["schemas"]["Body"]["properties"]["number"]["minimum"] == 1
    assert set(model_op["responses"]) == {"201", "4XX", "5XX"}
    assert [p["name"] for p in model_op["parameters"]] == ["item"]
    form_op = doc["paths"]["/f/{token}"]["post"]
    assert form_op["x-access"] == "ticket_token"
    assert set(form_op["responses"]) == {"200", "303", "3XX", "4XX", "5XX"}
    assert "text/html" in form_op["responses"]["4XX"]["content"]
    assert [(p["name"], p["in"]) for p in form_op["parameters"]] == [
        ("token", "path"), ("limit", "query")]
    error = doc["components"]["schemas"]["Error"]
    assert error["properties"]["error"]["required"] == ["code", "message", "message_ja"]
    with pytest.raises(ValueError, match="two operations"):
        openapi((*routes, RouteSpec("POST", "/api/items/{item}/call_next", "clash",
                                    access="staff")), title="t", version="1")


def test_edge_and_hub_documents_come_from_the_same_generator() -> None:
    edge, hub = edge_openapi(), hub_api.openapi()
    assert edge["components"]["schemas"]["Error"] == hub["components"]["schemas"]["Error"]
    for doc, routes in ((edge, edge_api.ROUTES), (hub, hub_api.ROUTES)):
        for route in routes:
            assert doc["paths"][route.path][route.method.lower()]["x-access"] == route.access
        assert all("x-access" in op for item in doc["paths"].values() for op in item.values())
    created = edge["paths"]["/api/tickets"]["post"]
    assert "201" in created["responses"]
    assert created["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/IssueBody"}
