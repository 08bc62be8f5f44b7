"""What the demo tells a newcomer first: every URL, the PINs, which counters are theirs.

Why: the screens, the operator PIN (only a TOML comment) and the counters the simulation
drives were nowhere on screen, so a newcomer could not tell where to click or which counter
was free to operate. Counter 1 of every office is left to the user; the simulation opens the
others except every fifth, which stays closed. The hub's staff pages need a sign-in (issue 12):
the banner gives the sign-in URL and the demo's own staff account, marked as a demo account.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from edge.app import Edge
from edge.demo_screen import cols
from edge.domain.model import SiteConfig
from edge.web.auth import check_pin

SAMPLE_PINS = ("1234",)  # the sample sites' PIN (see the comment in sites/nerima-main.toml)
USER_COUNTER = "1"


@dataclass
class DemoSite:
    edge: Edge
    url: str  # http://host:port/
    load: float  # share of a busy office's arrivals
    simulated: list[str] = field(default_factory=list)  # counters the simulation operates
    closed: list[str] = field(default_factory=list)  # counters nobody opens
    user: list[str] = field(default_factory=list)  # counters left to the user
    port: int = 0


def split_counters(config: SiteConfig) -> tuple[list[str], list[str], list[str]]:
    """(simulated, closed, user): counter 1 for the user; of the rest every fifth stays closed
    unless it is the last to serve some service (every queue must keep moving without the
    user, who may never open their counter)."""
    ids = list(config.counters)
    user = [c for c in ids if c == USER_COUNTER] or ids[:1]
    simulated = [c for c in ids if c not in user]
    closed: list[str] = []
    for cid in simulated[4::5]:
        left = [k for k in simulated if k != cid]
        if {s for k in left for s in config.counters[k].services} >= set(config.services):
            simulated, closed = left, [*closed, cid]
    return simulated, closed, user


def with_status_url(toml: str, url: str) -> str:
    """The site TOML with ``status_url`` set to ``url`` (what the hub pushes back to the site
    must carry the demo's own hub, or printed QRs would point elsewhere again)."""
    line = f'status_url = "{url}"'
    if re.search(r"(?m)^status_url\s*=.*$", toml):
        return re.sub(r"(?m)^status_url\s*=.*$", lambda _m: line, toml, count=1)
    return re.sub(r"(?m)^\[site\]\s*$", lambda _m: "[site]\n" + line, toml, count=1)


def known_pin(config: SiteConfig, counter: str) -> str | None:
    """"none" if the counter has no PIN, the sample PIN if its hash matches, else None."""
    stored = config.counters[counter].pin_hash
    if stored is None:
        return "none"
    return next((p for p in SAMPLE_PINS if check_pin(p, stored)), None)


def _pin_text(config: SiteConfig, counter: str) -> str:
    """How to sign in at the counter: the demo login ID always works where sign-in is needed
    (the hub pushes it to every site), the sample PIN where the counter has one."""
    pin = known_pin(config, counter)
    if pin == "none":
        return ("ログインID demo でログイン sign in with login ID demo" if config.access == "staff"
                else "PIN なし none")
    shown = f"PIN {pin}" if pin else "PIN: サイト設定の値 the one set in the site config"
    return f"{shown} または or login ID demo" if config.access == "staff" else shown


def _kiosk(config: SiteConfig) -> str:
    kiosks = [d.kiosk for d in config.devices if d.kind == "printer" and d.kiosk]
    return f"?kiosk={kiosks[0]}" if kiosks else ""


def _row(label: str, url: str) -> str:
    """``  label ........ url`` with the URLs aligned (CJK labels take two columns each)."""
    return f"  {label}{' ' * max(26 - cols(label), 1)}{url}"


DEMO_RESERVATION_IDS = ("DEMO0001", "DEMO0002", "DEMO0003")


def staff_lines(hub_url: str, staff: tuple[str, str] | None, *,
                history: bool = False) -> list[str]:
    """Where staff sign in on the hub and, in the demo, with which account; ``history``: the
    statistics hold the demo's made-up past weeks (``edge.demo_history``)."""
    lines = [_row("職員ログイン staff sign-in", f"{hub_url}/auth/login")]
    if staff is not None:
        login, password = staff
        lines.append(_row("デモ職員 demo staff", f"ID {login}  パスワード password {password}   "
                          "(デモ専用・起動ごとに変わります demo only, new on every run)"))
    lines.append(_row("職員 staff overview", f"{hub_url}/staff/sites   "
                      "(ログイン後 after signing in)"))
    lines.append(_row("統計 statistics", f"{hub_url}/admin/stats   " + (
        "(過去8週は架空のデモデータ the last 8 weeks are made-up demo data)"
        if history else "(ログイン後 after signing in)")))
    if staff is not None:  # the demo seeds reservation IDs and slots (edge/demo.py)
        lines.append(_row("来庁予約 reservations", f"{hub_url}/r   予約ID reservation ID "
                          f"{', '.join(DEMO_RESERVATION_IDS)}"))
    return lines


def notice_lines(hub_url: str, samples: str) -> list[str]:
    """Online notices (``edge.demo_notices``): the staff page, the sample files for a notice
    of one's own, and where the residents' mails (with the portal link) arrive."""
    return [
        _row("オンライン通知 notices", f"{hub_url}/admin/notices   (送信済み1件・下書き1件 "
             "one sent, one draft; ログイン後 after signing in)"),
        _row("通知の見本 notice samples", f"{samples}   (送付先CSV cp932・複数ページPDF "
             "recipient list and multi-page PDF)"),
        _row("住民のメール resident mail", f"{hub_url}/demo/mail   (リンクを開くとポータル "
             "open a link to try the portal)"),
    ]


def form_lines(hub_url: str, form_id: str, fee_form: str | None = None) -> list[str]:
    """Online forms (``edge.demo_forms``): the staff pages and the published forms, whose
    sign-in codes arrive in the demo's mail sink; the one with a fee is paid at the test
    payment provider."""
    lines = [
        _row("オンライン申請 forms", f"{hub_url}/admin/forms   (公開中{2 if fee_form else 1}件・"
             f"下書き1件 {'two' if fee_form else 'one'} published, one draft; ログイン後 after "
             "signing in)"),
        _row("申請してみる apply", f"{hub_url}/f/{form_id}   (確認コードは /demo/mail に"
             "届きます the sign-in code arrives at /demo/mail)"),
    ]
    if fee_form:
        lines.append(_row("手数料あり with a fee", f"{hub_url}/f/{fee_form}   (テスト用の決済画面"
                          "で支払い pay on a test payment page; no money moves)"))
    return lines


def banner(sites: Sequence[DemoSite], hub_url: str, broker_port: int,
           clock_lines: Sequence[str], tickets: str | None,
           staff: tuple[str, str] | None = None, *, notices: str | None = None,
           forms: str | None = None, fee_form: str | None = None) -> list[str]:
    """The lines printed once at the top (Japanese and English side by side); ``staff``: the
    demo's staff account (login, password); ``notices``: the folder of the notice samples
    (the demo seeded online notices)."""
    main = sites[0]
    cfg, url = main.edge.config, main.url
    web = next((s.code for s in cfg.services.values() if s.web is not None), None)
    lines = [
        "madoguchi demo — 3つの事務所・ハブ・ブローカーをこのPCで模擬 / three offices, a hub and "
        "a broker on this machine · Ctrl-C で終了 to stop",
        *clock_lines,
        f"ハブ hub {hub_url}/",
        _row("住民向け status page", f"{hub_url}/"),
    ]
    if web is not None:
        lines.append(_row("Web番号札 web ticket", f"{hub_url}/w/{cfg.site}/{web}"))
        lines.append(_row("デモ用メール mail sink", f"{hub_url}/demo/mail  (demo only)"))
    lines += [
        *staff_lines(hub_url, staff, history=staff is not None),
        *(notice_lines(hub_url, notices) if notices is not None else []),
        *(form_lines(hub_url, forms, fee_form) if forms is not None else []),
        f"{cfg.site} {cfg.name.get('ja')} / {cfg.name.get('en')}",
        _row("画面一覧 screens", f"{url}ui/"),
        _row("発券機 ticket machine", f"{url}ui/kiosk.html{_kiosk(cfg)}"),
        _row("案内表示 monitor", f"{url}ui/monitor.html"),
        _row("バックヤード backyard", f"{url}ui/backyard.html"),
    ]
    for cid in main.user:
        name = cfg.counters[cid].name
        lines.append(_row(f"操作 operator {cid}", f"{url}ui/operator.html?counter={cid}   "
                          f"← {name.get('ja')} あなたの窓口 yours, {_pin_text(cfg, cid)}"))
        lines.append(_row(f"窓口表示 counter display {cid}", f"{url}ui/counter.html?counter={cid}"))
    lines.append(f"  模擬 simulated counters: {' '.join(main.simulated)};  "
                 f"閉 closed: {' '.join(main.closed) or '—'}")
    for site in sites[1:]:
        c = site.edge.config
        users = ", ".join(f"{c.counters[k].name.get('ja')} {_pin_text(c, k)}" for k in site.user)
        lines.append(f"{c.site} {c.name.get('ja')}: {site.url}ui/   あなたの窓口 yours: {users}")
    if tickets:
        lines.append(f"印刷された番号札 printed tickets (PNG; QR → {hub_url}/t/…): {tickets}")
    lines.append(f"broker mqtt://127.0.0.1:{broker_port} (embedded amqtt)")
    return lines
