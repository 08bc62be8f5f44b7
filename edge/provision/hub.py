"""``madoguchi provision hub``: nginx (TLS 1.2+), systemd units and settings for the hub.

Why generated, not hand-written: the staff-only paths, the live-stream paths and the upstream
ports must match the hub's routes and units exactly, and a copy edited by hand drifts with every
release. Everything here is pure text from a ``HubDeploy`` (tested against the hub's route table
and a real nginx); ``write_hub`` only moves the texts into a folder, all or nothing.
See provisioning/hub/README.md.
"""

from __future__ import annotations

import getpass
import ipaddress
import re
from dataclasses import dataclass
from pathlib import Path

from edge.provision import backup_units
from edge.provision.files import Batch
from edge.provision.sites import ProvisionError

__all__ = ["CIPHERS", "SSE_EXACT", "STAFF_PREFIXES", "HubDeploy", "check", "render", "write_hub"]

# Mozilla "intermediate" (server side TLS guidelines 5.7): TLS 1.2 suites; TLS 1.3 has its own.
# The DHE suites are only used with an ``ssl_dhparam`` (RFC 7919 ffdhe2048) - none by default.
CIPHERS = ":".join((
    "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-RSA-AES256-GCM-SHA384",
    "ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-RSA-CHACHA20-POLY1305",
    "DHE-RSA-AES128-GCM-SHA256", "DHE-RSA-AES256-GCM-SHA384", "DHE-RSA-CHACHA20-POLY1305"))
# Paths only staff use (hub/*/routes.py: every route whose access is a staff role, plus the
# sign-in pages and metrics). Residents never need them, so a ward may close them to its own
# network. tests/provision/test_hub_deploy.py checks this list against the hub's route table.
STAFF_PREFIXES = ("/admin", "/auth/", "/staff/", "/api/sites", "/api/stats/", "/api/admin/",
                  "/metrics")
# Server-Sent Events (text/event-stream): never buffered by the proxy. The hub also sends
# ``X-Accel-Buffering: no`` on every stream, which nginx honours on any other path.
SSE_EXACT = ("/api/status/stream", "/api/live")
_SSE_TICKET = "~ ^/t/[^/]+/stream$"  # nested in /t/
_SSE_NOTICES = "~ ^/admin/notices/[^/]+/live$"  # nested in /admin/notices/ (staff)
UPLOAD_MAX = "200m"  # notice PDFs (/admin/notices/)
FORM_UPLOAD_MAX = "25m"  # a form page's attachments (10 MB a field by default)
_NAME = re.compile(r"^[A-Za-z0-9*]([A-Za-z0-9.*-]{0,252})$")
_PATH = re.compile(r"^/[A-Za-z0-9._/@+-]*$")


@dataclass(frozen=True)
class HubDeploy:
    """Everything the generated files depend on; ``check`` validates it."""

    server_name: str
    ports: tuple[int, ...] = (8091, 8092)
    cert: str = "/etc/madoguchi/tls/hub.crt"  # full chain, PEM
    key: str = "/etc/madoguchi/tls/hub.key"
    https_port: int = 443
    http_port: int = 80
    listen: tuple[str, ...] = ("", "[::]")  # "" = every IPv4 address
    staff_networks: tuple[str, ...] = ()
    waf: bool = False
    waf_rules: str = "/etc/nginx/modsecurity/madoguchi.conf"
    expose_upstream: bool = False  # X-Upstream header: tests and diagnosis only
    install_dir: str = "/opt/madoguchi"  # holds .venv/bin/madoguchi
    data_dir: str = "/var/lib/madoguchi"
    user: str = "madoguchi"
    acme_webroot: str = ""  # serve /.well-known/acme-challenge/ from here on port 80


def check(d: HubDeploy) -> HubDeploy:
    """``d`` with normalised networks, or ProvisionError naming the bad value (ja/en)."""
    if not _NAME.match(d.server_name):
        raise ProvisionError(f"not a host name: {d.server_name!r}",
                             f"ホスト名として使えません: {d.server_name!r}")
    if not d.ports or len(set(d.ports)) != len(d.ports):
        raise ProvisionError("give each hub port once (--port)",
                             "ハブのポートを重複なく指定してください")
    for port in (*d.ports, d.https_port, d.http_port):
        if not 0 < port < 65536:
            raise ProvisionError(f"not a port: {port}", f"ポート番号ではありません: {port}")
    for path in (d.cert, d.key, d.waf_rules, d.install_dir, d.data_dir,
                 *((d.acme_webroot,) if d.acme_webroot else ())):
        if not _PATH.match(path):
            raise ProvisionError(f"not an absolute path without spaces: {path!r}",
                                 f"空白を含まない絶対パスを指定してください: {path!r}")
    if not re.match(r"^[a-z_][a-z0-9_-]{0,31}$", d.user):
        raise ProvisionError(f"not a user name: {d.user!r}",
                             f"ユーザー名ではありません: {d.user!r}")
    nets = []
    for raw in d.staff_networks:
        try:
            nets.append(str(ipaddress.ip_network(raw.strip(), strict=True)))
        except ValueError:
            raise ProvisionError(
                f"not a network in CIDR form (host bits must be zero): {raw!r}",
                f"CIDR 形式のネットワークではありません（ホスト部は 0）: {raw!r}") from None
    for addr in d.listen:
        if addr and addr != "[::]":
            try:
                ipaddress.ip_address(addr.strip("[]"))
            except ValueError:
                raise ProvisionError(f"not an address to listen on: {addr!r}",
                                     f"待ち受けアドレスではありません: {addr!r}") from None
    return HubDeploy(**{**d.__dict__, "staff_networks": tuple(nets)})


# --- nginx ----------------------------------------------------------------------------------------

def _listen(d: HubDeploy, port: int, extra: str = "") -> str:
    return "".join(f"    listen {a + ':' if a else ''}{port}{extra};\n" for a in d.listen)


def _sse(indent: str) -> str:
    return (f"{indent}proxy_pass http://madoguchi_hub;\n{indent}proxy_buffering off;\n"
            f"{indent}proxy_cache off;\n{indent}proxy_read_timeout 1h;\n")


def _acl(d: HubDeploy) -> str:
    if not d.staff_networks:
        return "        # open to every address: give --staff-network to restrict\n"
    return "".join(f"        allow {n};\n" for n in d.staff_networks) + "        deny all;\n"


def nginx_site(d: HubDeploy) -> str:
    """The site file (http context): upstream, the HTTP->HTTPS redirect and the TLS server."""
    target = "https://$host" + ("" if d.https_port == 443 else f":{d.https_port}")
    ups = "".join(f"    server 127.0.0.1:{p} max_fails=2 fail_timeout=5s;\n" for p in d.ports)
    waf = (f"    modsecurity on;\n    modsecurity_rules_file {d.waf_rules};\n" if d.waf else
           "    # WAF: re-run with --waf (needs libnginx-mod-http-modsecurity, modsecurity-crs)\n")
    acme = (f"    location ^~ /.well-known/acme-challenge/ {{\n        root {d.acme_webroot};\n"
            f"    }}\n" if d.acme_webroot else "")
    sse = "".join(f"    location = {p} {{\n{_sse('        ')}    }}\n" for p in SSE_EXACT)
    staff = "".join(
        f"    location ^~ {p} {{\n{_acl(d)}        proxy_pass http://madoguchi_hub;\n"
        + (f"        location ^~ /admin/notices/ {{\n"
           f"            client_max_body_size {UPLOAD_MAX};  # notice PDFs\n"
           f"            proxy_read_timeout 600s;\n"
           f"            proxy_pass http://madoguchi_hub;\n"
           f"            location {_SSE_NOTICES} {{\n{_sse('                ')}            }}\n"
           f"        }}\n"
           f"        location ^~ /admin/forms/ {{\n"
           f"            client_max_body_size {FORM_UPLOAD_MAX};  # staff-entered files, imports\n"
           f"            proxy_pass http://madoguchi_hub;\n"
           f"        }}\n" if p == "/admin" else "")
        + "    }\n" for p in STAFF_PREFIXES)
    return f"""\
# madoguchi hub behind nginx - generated by `madoguchi provision hub`; re-run it to change.
# Staff-only paths, live streams and ports follow the hub's routes (edge/provision/hub.py).
# No WebSocket: the hub's live pages use Server-Sent Events only.

upstream madoguchi_hub {{
{ups}    keepalive 32;
}}

# plain HTTP answers only with a redirect to HTTPS
server {{
{_listen(d, d.http_port)}    server_name {d.server_name};
    server_tokens off;
{acme}    location / {{
        return 301 {target}$request_uri;
    }}
}}

server {{
{_listen(d, d.https_port, " ssl http2")}    server_name {d.server_name};
    server_tokens off;

    ssl_certificate {d.cert};
    ssl_certificate_key {d.key};
    ssl_protocols TLSv1.2 TLSv1.3;  # A4, 000 7(3)ア: TLS 1.2 or newer only
    ssl_ciphers {CIPHERS};
    ssl_prefer_server_ciphers off;
    ssl_session_timeout 1d;
    ssl_session_cache shared:MadoguchiTLS:10m;
    ssl_session_tickets off;

    # the only add_header lines: a location with its own add_header would drop these
    add_header Strict-Transport-Security "max-age=63072000" always;
{"    add_header X-Upstream $upstream_addr always;  # --expose-upstream (tests)" + chr(10)
 if d.expose_upstream else ""}
{waf}
    client_max_body_size 1m;
    proxy_http_version 1.1;
    # set, never appended: the hub (MADOGUCHI_TRUST_PROXY=1) takes the FIRST address, so a
    # client's own X-Forwarded-For must not reach it
    proxy_set_header Host $host;
    proxy_set_header X-Forwarded-For $remote_addr;
    proxy_set_header X-Real-IP $remote_addr;
    proxy_set_header X-Forwarded-Proto $scheme;
    proxy_set_header X-Forwarded-Host $host;
    proxy_set_header Connection "";
    proxy_read_timeout 60s;

    # residents: status, tickets, web tickets, reservations, notices portal, static files
    location / {{
        proxy_pass http://madoguchi_hub;
    }}
    location ^~ /f/ {{
        client_max_body_size {FORM_UPLOAD_MAX};  # residents' attachments (online forms)
        proxy_pass http://madoguchi_hub;
    }}
    location ^~ /t/ {{
        proxy_pass http://madoguchi_hub;
        location {_SSE_TICKET} {{
{_sse('            ')}        }}
    }}
    # live streams (Server-Sent Events): no buffering, long reads
{sse}
    # staff only{" (--staff-network)" if d.staff_networks else ""}
{staff}}}
"""


def nginx_standalone(d: HubDeploy, prefix: Path, run_as: str) -> str:
    """A whole nginx.conf that runs as any user with everything under ``prefix`` (tests, or a
    trial before installing): ``nginx -p PREFIX -c PREFIX/nginx.conf``. Its workers run as
    ``run_as`` (the user who generated it), so files under a private ``prefix`` stay readable
    when the trial runs as root (nginx ignores ``user`` otherwise)."""
    p = prefix.resolve()
    temps = "".join(f"    {k}_temp_path {p / 'tmp' / k};\n"
                    for k in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    return f"""\
# standalone nginx for `madoguchi provision hub --standalone` (not for /etc/nginx)
daemon off;
user {run_as};
worker_processes 1;
pid {p}/run/nginx.pid;
error_log {p}/logs/error.log info;
events {{
    worker_connections 512;
}}
http {{
    access_log {p}/logs/access.log;
{temps}    include {p}/nginx/madoguchi-hub.conf;
}}
"""


def modsecurity_rules(d: HubDeploy) -> str:
    """The ModSecurity main rules file for ``--waf``: engine settings, OWASP CRS, exclusions."""
    return f"""\
# madoguchi hub WAF (000 7(3)ケ) - generated by `madoguchi provision hub --waf`.
# apt-get install libnginx-mod-http-modsecurity modsecurity-crs
# cp /etc/modsecurity/modsecurity.conf-recommended /etc/modsecurity/modsecurity.conf
# Install as {d.waf_rules}. Start with SecRuleEngine DetectionOnly for two weeks, read
# /var/log/modsec_audit.log for false positives, then switch to On.
Include /etc/modsecurity/modsecurity.conf
SecRuleEngine DetectionOnly
Include /etc/modsecurity/crs/crs-setup.conf
Include /usr/share/modsecurity-crs/rules/*.conf

# notice PDF uploads (staff, up to {UPLOAD_MAX}) are not inspected: the body limit would refuse them
SecRule REQUEST_URI "@beginsWith /admin/notices/" \\
    "id:1001,phase:1,pass,nolog,ctl:requestBodyAccess=Off"
# live streams never end: response bodies there are not inspected (they would be held back)
SecRule REQUEST_URI "@rx ^/(api/status/stream|api/live|t/[^/]+/stream|admin/notices/[^/]+/live)$" \\
    "id:1002,phase:1,pass,nolog,ctl:responseBodyAccess=Off"
"""


# --- systemd and settings -----------------------------------------------------------------------

def hub_unit(d: HubDeploy) -> str:
    """``madoguchi-hub@PORT.service``: one hub process per port, hardened."""
    return f"""\
# /etc/systemd/system/madoguchi-hub@.service - generated by `madoguchi provision hub`
# one hub web process per instance; the instance name is its port: madoguchi-hub@{d.ports[0]}
[Unit]
Description=madoguchi hub (port %i)
After=network-online.target postgresql.service mosquitto.service
Wants=network-online.target
PartOf=madoguchi-hub.target

[Service]
# READY=1 once listening; a ping every 15 s from the event loop (edge/watchdog.py): a hung
# loop is killed and restarted after 30 s. Readiness for a balancer: GET /api/ready.
Type=notify
NotifyAccess=main
WatchdogSec=30
User={d.user}
Group={d.user}
EnvironmentFile=/etc/madoguchi/hub.env
EnvironmentFile=-/etc/madoguchi/hub-%i.env
WorkingDirectory={d.data_dir}
# each instance its own MQTT client id (one id shared by two processes would take over each
# other's session): MADOGUCHI_HUB_MQTT ends in "?" or "&", see hub.env
ExecStart={d.install_dir}/.venv/bin/madoguchi hub run --host 127.0.0.1 --port %i \\
    --db ${{MADOGUCHI_HUB_DB}} --prefix ${{MADOGUCHI_HUB_PREFIX}} \\
    --mqtt ${{MADOGUCHI_HUB_MQTT}}client_id=madoguchi-hub-%i
Restart=on-failure
RestartSec=2
TimeoutStopSec=20
LimitNOFILE=65536
UMask=0077

NoNewPrivileges=yes
ProtectSystem=strict
ReadWritePaths={d.data_dir}
ProtectHome=yes
PrivateTmp=yes
PrivateDevices=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6
RestrictNamespaces=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes
LockPersonality=yes
CapabilityBoundingSet=
SystemCallArchitectures=native
SystemCallFilter=@system-service

[Install]
WantedBy=madoguchi-hub.target
"""


def hub_target(d: HubDeploy) -> str:
    wants = " ".join(f"madoguchi-hub@{p}.service" for p in d.ports)
    return f"""\
# /etc/systemd/system/madoguchi-hub.target - all hub processes behind nginx
[Unit]
Description=madoguchi hub processes
Wants={wants}

[Install]
WantedBy=multi-user.target
"""


def env_example(d: HubDeploy) -> str:
    """``hub.env.example``: every setting the hub reads; placeholders, never secrets."""
    return f"""\
# /etc/madoguchi/hub.env - the hub's settings (systemd EnvironmentFile of madoguchi-hub@.service)
# install -m 0640 -o root -g {d.user} hub.env.example /etc/madoguchi/hub.env, then edit.
# Lines starting with # show the default. No quotes needed; no spaces around "=".

# --- the unit's command line ---
MADOGUCHI_HUB_DB=postgresql://madoguchi:CHANGE-ME@127.0.0.1:5432/madoguchi
# broker URL with the hub's user (edge provisioning: DIR/hub/mqtt.env); must end in "?" or "&"
# because the unit appends client_id=madoguchi-hub-PORT
MADOGUCHI_HUB_MQTT=mqtts://hub:CHANGE-ME@mqtt.ward.example.jp:8883/?
MADOGUCHI_HUB_PREFIX=madoguchi/v1

# --- behind nginx ---
MADOGUCHI_HUB_PUBLIC_URL=https://{d.server_name}{"" if d.https_port == 443 else f":{d.https_port}"}
MADOGUCHI_TRUST_PROXY=1
MADOGUCHI_COOKIE_SECURE=1

# --- keys (hub/notify/README.md): 32 random bytes, base64: head -c32 /dev/urandom | base64
MADOGUCHI_HUB_KEYS=k1:CHANGE-ME
# nightly backup (madoguchi-backup-hub.timer): the key that seals it (may be MADOGUCHI_HUB_KEYS'
# own; keep a copy off this machine: without it no backup can be restored) and the second place
#MADOGUCHI_BACKUP_KEYS=b1:CHANGE-ME
#MADOGUCHI_BACKUP_COPY_TO=backup@dr.ward.example.jp:/srv/madoguchi-hub
# "required": only sites enrolled at the hub are accepted
#MADOGUCHI_HUB_ENROLMENT=open

# --- mail and SMS (hub/notify/README.md) ---
#MADOGUCHI_SMTP_URL=smtp://smtp.ward.example.jp:587
#MADOGUCHI_SMTP_FROM=madoguchi@ward.example.jp
#MADOGUCHI_SMS_URL=https://sms-gateway.example.jp/send
#MADOGUCHI_SMS_TOKEN=CHANGE-ME
#MADOGUCHI_NOTICE_TEXTS=/etc/madoguchi/texts.toml

# --- staff sign-in (hub/auth/README.md) ---
#MADOGUCHI_LOGIN_MAX_FAILURES=5
#MADOGUCHI_ADDRESS_MAX_FAILURES=20
#MADOGUCHI_LOCKOUT_S=900
#MADOGUCHI_SESSION_IDLE_S=1800
#MADOGUCHI_SESSION_ABSOLUTE_S=43200
#MADOGUCHI_LOGIN_MESSAGE=

# --- residents' pages ---
#MADOGUCHI_MAIN_SITE=
#MADOGUCHI_RESERVATION_MAIN_OFFICE=0001
#MADOGUCHI_RESERVATION_SATURDAY_ANY_ID=1
# web ticket limits: MADOGUCHI_WEBTICKET_* (hub/webticket/rules.py), e.g.
#MADOGUCHI_WEBTICKET_POW_BITS=

# --- online notices (hub/notices/README.md) ---
#MADOGUCHI_NOTICE_FILES={d.data_dir}/notice-files
#MADOGUCHI_NOTICE_SIGN_P12=/etc/madoguchi/notice-sign.p12
#MADOGUCHI_NOTICE_SIGN_P12_PASS=CHANGE-ME
#MADOGUCHI_NOTICE_TSA_URL=https://tsa.example.jp/
#MADOGUCHI_NOTICE_TRUST_ROOTS=/etc/madoguchi/notice-roots.pem
#MADOGUCHI_NOTICE_LINK_DAYS=30
#MADOGUCHI_NOTICE_CODE_MINUTES=10
#MADOGUCHI_NOTICE_TEST_ADDRESSES=
#MADOGUCHI_NOTICE_SENDER_NAME=

# --- online forms (hub/forms/README.md) ---
#MADOGUCHI_FORMS_FILES={d.data_dir}/form-files
# clamd scans every attachment (apt-get install clamav-daemon; freshclam keeps its signatures)
#MADOGUCHI_CLAMD=/run/clamav/clamd.ctl
#MADOGUCHI_FORMS_CODE_MINUTES=10
#MADOGUCHI_FORMS_DRAFT_DAYS=30
#MADOGUCHI_FORMS_WEBHOOK_ALLOW_PRIVATE=0
# OpenID Connect (e.g. a マイナンバーカード / JPKI identity provider) for forms that use it
#MADOGUCHI_FORMS_OIDC_ISSUER=https://idp.example.jp
#MADOGUCHI_FORMS_OIDC_CLIENT_ID=madoguchi
#MADOGUCHI_FORMS_OIDC_CLIENT_SECRET=CHANGE-ME
#MADOGUCHI_FORMS_OIDC_REDIRECT_URI=https://forms.example.jp/forms/oidc/callback
#MADOGUCHI_FORMS_OIDC_SCOPES=openid profile address
#MADOGUCHI_FORMS_OIDC_CLAIMS={{"name": "name", "address": "address"}}
# fees of forms (hub/forms/payment.py): the payment provider the municipality contracts; unset:
# no online payments, and a form with a fee says so instead of accepting applications. Only
# "fake" (the test provider, hub/forms/fake_pay.py: no money moves) has an adapter so far.
# The provider calls back at https://<hub>/forms/payments/callback (public, signed).
#MADOGUCHI_FORMS_PAY_PROVIDER=fake
#MADOGUCHI_FORMS_PAY_URL=https://pay.example.jp
#MADOGUCHI_FORMS_PAY_API_KEY=CHANGE-ME
#MADOGUCHI_FORMS_PAY_SECRET=whsec_CHANGE-ME

# --- fleet alerts and metrics (hub/fleet/README.md) ---
#MADOGUCHI_METRICS_TOKEN=CHANGE-ME
#MADOGUCHI_METRICS_ALLOW=10.0.0.0/8
#MADOGUCHI_FLEET_STALE_S=150
"""


def readme(d: HubDeploy) -> str:
    nets = ", ".join(d.staff_networks) or "none (open)"
    waf = f"\n| `nginx/modsecurity-madoguchi.conf` | `{d.waf_rules}` |" if d.waf else ""
    return f"""\
# madoguchi hub deployment ({d.server_name})

Generated by `madoguchi provision hub`; provisioning/hub/README.md explains every step.
Hub ports: {", ".join(map(str, d.ports))}; staff networks: {nets}; WAF: {"on" if d.waf else "off"}.

| file | install as |
|---|---|
| `nginx/madoguchi-hub.conf` | `/etc/nginx/sites-available/` (+ link in `sites-enabled/`) |{waf}
| `systemd/madoguchi-hub@.service` | `/etc/systemd/system/madoguchi-hub@.service` |
| `systemd/madoguchi-hub.target` | `/etc/systemd/system/madoguchi-hub.target` |
| `hub.env.example` | `/etc/madoguchi/hub.env` (0640 root:{d.user}; fill in the CHANGE-ME values) |
| `systemd/madoguchi-backup-hub.{{service,timer}}` | `/etc/systemd/system/` (nightly backup) |

```sh
nginx -t && systemctl reload nginx
systemctl daemon-reload && systemctl enable --now madoguchi-hub.target
systemctl enable --now madoguchi-backup-hub.timer
```
TLS: `{d.cert}` (full chain) and `{d.key}` (0600 root).
"""


def render(d: HubDeploy, *, standalone: Path | None = None,
           run_as: str = "nobody") -> dict[str, str]:
    """Relative path -> text of every file; ``standalone``: also ``nginx.conf`` for that prefix,
    its workers running as ``run_as``."""
    files = {"nginx/madoguchi-hub.conf": nginx_site(d),
             "systemd/madoguchi-hub@.service": hub_unit(d),
             "systemd/madoguchi-hub.target": hub_target(d),
             "hub.env.example": env_example(d), "README.md": readme(d),
             **backup_units.hub_units(install_dir=d.install_dir, data_dir=d.data_dir,
                                      user=d.user)}
    if d.waf:
        files["nginx/modsecurity-madoguchi.conf"] = modsecurity_rules(d)
    if standalone is not None:
        files["nginx.conf"] = nginx_standalone(d, standalone, run_as)
    return files


def write_hub(out: Path, d: HubDeploy, *, standalone: bool = False) -> list[Path]:
    """Check ``d``, write every file under ``out`` together; the paths written."""
    d = check(d)
    batch = Batch()
    written = []
    for rel, text in render(d, standalone=out if standalone else None,
                            run_as=getpass.getuser()).items():
        batch.add(out / rel, text, 0o644)
        written.append(out / rel)
    if standalone:
        for sub in ("run", "logs", "tmp"):
            batch.mkdir(out / sub, 0o700)
    batch.commit()
    return written
