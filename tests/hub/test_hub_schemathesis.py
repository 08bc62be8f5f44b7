"""Schemathesis against the hub's own OpenAPI document, over real HTTP (issue 12).

Why: the route table is the contract; every operation it lists is fuzzed from its declared
parameters and bodies, valid and invalid, once as an administrator (a session that passes every
access level, with its CSRF header on POSTs) and once anonymously. No answer may be a 5xx, and
every answer must match what the document says (status, media type, body schema).

The hub is the residents' test ward (real mosquitto, an edge syncing ``oizumi`` with tickets
issued), so ``{site}``, ``{service}``, ``{token}`` and ``{staff_id}`` are tried with real ids as
well as generated ones. Bounded: a fixed number of seeded (derandomized) examples per operation;
failures are collected, not shrunk, so one run lists all of them.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from residents_support import ward
from schemathesis import GenerationMode
from schemathesis.checks import CheckFunction, not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.core.result import Err
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from staff_support import staff_cookie

from hub.app import Hub, start_hub
from hub.auth import service
from hub.auth.guard import COOKIE
from hub.notify.senders import MemorySink
from hub.settings import HubSettings
from hub.web.api import SETTINGS
from hub.webticket import WEBTICKETS
from hub.webticket.pow import ProofOfWork, solve

Operation = schemathesis.APIOperation[Any, Any, Any, Any]
Case = schemathesis.Case[Any]
SITE, SERVICE = "oizumi", "B"
EXAMPLES = 50  # per operation and generation mode
STREAM_EXAMPLES = 4  # event streams hold the connection until the read timeout
STREAM_TIMEOUT_S = 0.5
CHECKS: list[CheckFunction] = [not_a_server_error, status_code_conformance,
                               content_type_conformance, response_schema_conformance]


@dataclass
class Run:
    """What one pass over the document did: examples sent, statuses met per operation, and
    the failures, one text per distinct (operation, checks failed, status) with its count."""

    operations: int = 0
    examples: int = 0
    statuses: dict[str, dict[int, int]] = field(default_factory=dict)
    failures: dict[tuple[str, str, int], tuple[int, str]] = field(default_factory=dict)

    def saw(self, label: str, status: int) -> None:
        per = self.statuses.setdefault(label, {})
        per[status] = per.get(status, 0) + 1

    def failed(self, label: str, kinds: str, status: int, text: str) -> None:
        count, first = self.failures.get((label, kinds, status), (0, text))
        self.failures[(label, kinds, status)] = (count + 1, first)

    def report(self, what: str, detail: bool = True) -> str:
        lines = [f"{what}: {self.operations} operations, {self.examples} examples, "
                 f"{sum(n for n, _ in self.failures.values())} failures "
                 f"({len(self.failures)} distinct)"]
        lines += [f"  {label}: {dict(sorted(s.items()))}" for label, s in self.statuses.items()]
        for (label, kinds, status), (count, text) in self.failures.items():
            lines.append(f"-- {label} [{status}] {kinds} x{count}")
            if detail:
                lines.append(text[:1500])
        return "\n".join(lines)


def _strategies(op: Operation, known: dict[str, tuple[str, ...]]) -> Any:
    """Generated examples, the same with real values in the path, and invalid ones."""
    names = {p.name for p in op.path_parameters}
    fixed = {k: v for k, v in known.items() if k in names}
    options = [op.as_strategy()]
    combos: list[dict[str, str]] = [{}]
    for name, values in fixed.items():
        combos = [{**c, name: v} for c in combos for v in values]
    options += [op.as_strategy(path_parameters=c) for c in combos if c]
    if op.query or op.body or op.path_parameters:
        options.append(op.as_strategy(generation_mode=GenerationMode.NEGATIVE))
    return st.one_of(options)


Prepare = Callable[[Case, int], None]


def run_all(base: str, cookies: dict[str, str], csrf: str | None,
            known: dict[str, tuple[str, ...]], prepare: Prepare,
            last: tuple[str, ...] = ()) -> Run:
    """Every operation of the served document, blocking (run it in a thread). ``prepare``
    may complete a case before it is sent; ``last``: labels run after the others (sign-out,
    which ends the session)."""
    schema = schemathesis.openapi.from_url(f"{base}/api/openapi.json")
    ops = []
    for found in schema.get_all_operations():
        if isinstance(found, Err):  # a document schemathesis cannot read is a failure too
            raise found.err()
        ops.append(found.ok())
    ops.sort(key=lambda o: o.label in last)
    run = Run(operations=len(ops))
    http = requests.Session()
    for op in ops:
        stream = "text/event-stream" in str(op.definition.raw.get("responses", {}))
        headers = {"X-CSRF-Token": csrf} if csrf and op.method.upper() == "POST" else {}
        _run_one(op, base, http, cookies, headers, known, prepare, run,
                 STREAM_EXAMPLES if stream else EXAMPLES, STREAM_TIMEOUT_S if stream else 10.0)
    return run


def _run_one(op: Operation, base: str, http: requests.Session,
             cookies: dict[str, str], headers: dict[str, str],
             known: dict[str, tuple[str, ...]], prepare: Prepare, run: Run, examples: int,
             timeout: float) -> None:
    page = "text/html" in str(op.definition.raw.get("responses", {}).get("200", {}))

    @settings(max_examples=examples, derandomize=True, database=None, deadline=None,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
    @given(case=_strategies(op, known))
    def one(case: Case) -> None:
        run.examples += 1
        prepare(case, run.examples)
        # each example from its own address (the hub trusts X-Forwarded-For here), so the
        # per-address limits of the resident routes do not answer 429 in place of the handler
        sent = {**headers, "X-Forwarded-For": f"10.{run.examples >> 16 & 255}."
                f"{run.examples >> 8 & 255}.{run.examples & 255}"}
        if run.examples % 2 and page:  # a browser: refusals as pages, sign-in as a redirect
            sent["Accept"] = "text/html,application/xhtml+xml;q=0.9,*/*;q=0.8"
        try:
            response = case.call(base_url=base, session=http, headers=sent, cookies=cookies,
                                 timeout=timeout, allow_redirects=False)
        except requests.RequestException as exc:
            run.failed(op.label, type(exc).__name__, 0, f"{exc}\n{case.as_curl_command()}")
            return
        run.saw(op.label, response.status_code)
        try:
            case.validate_response(response, checks=CHECKS, headers=sent)
        except FailureGroup as exc:  # its text holds the curl command that reproduces it
            kinds = ", ".join(sorted({type(f).__name__ for f in exc.exceptions}))
            run.failed(op.label, kinds, response.status_code, str(exc))

    one()


def solver(pow_: ProofOfWork) -> Prepare:
    """Every other web-ticket body gets a solved challenge, so the fields behind the proof of
    work (contact, lang) are fuzzed too; half of those name the real site and service, so they
    go as far as the office's answer."""

    def prepare(case: Case, n: int) -> None:
        if case.operation.label == "POST /api/web-tickets" and isinstance(case.body, dict) \
                and n % 2:
            issued = pow_.issue()
            real = {"site": SITE, "service": SERVICE} if n % 4 == 1 else {}
            case.body = {**case.body, **real, "challenge": issued["challenge"],
                         "nonce": solve(issued["challenge"], int(issued["difficulty"]))}

    return prepare


async def _in_thread(fn: Callable[[], Run]) -> Run:
    return await asyncio.to_thread(fn)


@pytest.mark.slow
async def test_every_operation_as_admin_and_anonymous(mqtt_broker_url: str,
                                                      tmp_path: Path) -> None:
    async with ward(mqtt_broker_url, tmp_path, sites=(SITE,),
                    open_counters={SITE: ("1",)}) as w:
        tickets = await w.issue(SITE, SERVICE, 3)
        await w.synced(SITE)
        store, hub_settings = w.hub.store, w.hub.runner.app[SETTINGS]
        cookie = await staff_cookie(store, hub_settings, role="admin", site="*")
        current = await service.session(store, hub_settings, cookie[COOKIE])
        assert current is not None
        assert current.stage == "ok"
        notifier = w.hub.notifier
        assert notifier is not None  # registrations go as far as storing the contact
        notifier.senders.update({ch: MemorySink(ch, deque(maxlen=100)) for ch in ("email", "sms")})
        other = await service.create_staff(store, "counter-target", "correct horse battery",
                                           grants=[(SITE, "counter_staff")])
        known = {"site": (SITE,), "service": (SERVICE,), "staff_id": (other,),
                 "action": ("roles", "disable", "enable", "reset-mfa"),
                 "token": tuple(w.token(SITE, int(t["number"])) for t in tickets[:2])}

        prepare = solver(w.hub.runner.app[WEBTICKETS].pow)
        admin = await _in_thread(lambda: run_all(w.url, cookie, current.csrf, known, prepare,
                                                  last=("POST /auth/logout",)))
        anonymous = await _in_thread(lambda: run_all(w.url, {}, None, known, prepare))

    print(admin.report("admin"))
    print(anonymous.report("anonymous"))
    assert admin.operations == anonymous.operations > 20
    assert not admin.failures, admin.report("admin")
    assert not anonymous.failures, anonymous.report("anonymous")


# --- what schemathesis does not send: bodies no form encoder makes ---------------------------

BAD_FORMS: tuple[tuple[str, bytes], ...] = (
    ("multipart/form-data", b"no boundary"),
    ("multipart/form-data; boundary=xx",
     b'--xx\r\nContent-Disposition: form-data; name="csrf"\r\n\r\n\xff\xfe\r\n--xx--\r\n'),
    ("application/x-www-form-urlencoded", b"login=a&password=\xff&csrf=\xfe"),
    ("application/x-www-form-urlencoded; charset=no-such-charset", b"login=a"),
)
KEY = bytes(range(32))


@pytest.fixture
async def plain_hub(tmp_path: Path) -> AsyncIterator[Hub]:
    h = await start_hub(f"sqlite:///{tmp_path}/hub.db", None, port=0,
                        settings=HubSettings(keys={"k": KEY}, key_id="k"))
    yield h
    await h.stop()


async def test_undecodable_forms_are_400_on_every_post(plain_hub: Hub) -> None:
    """A form the hub cannot decode (unknown charset, bytes that are not UTF-8, multipart
    without its boundary) is the client's error on every POST the document lists, signed in
    or not: 400 ``bad_form`` with a session, never a 500 from the first ``request.post()``."""
    store, hub_settings = plain_hub.store, plain_hub.runner.app[SETTINGS]
    cookie = await staff_cookie(store, hub_settings, role="admin", site="*")
    current = await service.session(store, hub_settings, cookie[COOKIE])
    assert current is not None
    async with aiohttp.ClientSession() as http:
        async with http.get(plain_hub.url + "/api/openapi.json") as r:
            paths = (await r.json())["paths"]
        posts = [p.replace("{site}", SITE).replace("{token}", "A" * 22)
                 .replace("{staff_id}", current.staff_id).replace("{action}", "roles")
                 .replace("{service}", SERVICE).replace("{ctx}", "x" * 24)
                 .replace("{mine}", "x" * 24).replace("{slot}", "1")
                 .replace("{notice_id}", "n" * 22).replace("{form_id}", "f0123456789abcdef")
                 .replace("{page_id}", "p1").replace("{field_id}", "name").replace("{sid}", "1")
                 .replace("{reference}", "F-2026-000001").replace("{n}", "1")
                 for p, ops in paths.items() if "post" in ops]
        assert len(posts) >= 8
        seen: dict[tuple[str, str, bool], int] = {}
        for path in posts:
            for content_type, body in BAD_FORMS:
                for signed_in in (True, False):
                    headers = {"Content-Type": content_type}
                    if signed_in:
                        headers["X-CSRF-Token"] = current.csrf
                    async with http.post(plain_hub.url + path, data=body, headers=headers,
                                         cookies=cookie if signed_in else {},
                                         allow_redirects=False) as r:
                        seen[(path, content_type, signed_in)] = r.status
                        if signed_in:
                            assert r.status == 400, (path, content_type, await r.text())
                            assert (await r.json())["error"]["code"] == "bad_form"
    assert all(status < 500 for status in seen.values()), seen


async def test_non_ascii_csrf_tokens_are_refused_not_500(plain_hub: Hub) -> None:
    store, hub_settings = plain_hub.store, plain_hub.runner.app[SETTINGS]
    cookie = await staff_cookie(store, hub_settings, role="ward_staff", site="*")
    statuses = []
    async with aiohttp.ClientSession() as http:
        for kw in ({"headers": {"X-CSRF-Token": "\xff"}},  # the guard, header
                   {"data": {"csrf": "é"}}):  # the guard, form field
            async with http.post(plain_hub.url + "/auth/logout", cookies=cookie,
                                 allow_redirects=False, **kw) as r:  # type: ignore[arg-type]
                statuses.append(r.status)
        async with http.post(plain_hub.url + "/auth/login", cookies={"madoguchi_login": "abc"},
                             data={"csrf": "é", "login": "x", "password": "y"},
                             allow_redirects=False) as r:  # the sign-in form's double submit
            statuses.append(r.status)
    assert statuses == [403, 403, 403], statuses
