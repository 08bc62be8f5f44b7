"""Byte pipes to devices, chosen by URL; all async, all failing with ``TransportError``.

URLs: ``usb://04b8:0202`` (pyusb), ``serial:///dev/ttyUSB0?baudrate=9600`` (pyserial; any
pyserial URL such as ``serial:loop://`` works too), ``tcp://10.0.0.5:9100`` (raw port 9100),
``file:///tmp/out.bin`` (append), ``sim://name`` (in-process simulator with fault switches).
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from edge.devices.transport.base import SerialSettings, Transport, TransportError

__all__ = ["SerialSettings", "Transport", "TransportError", "make_transport"]

SCHEMES = ("usb", "serial", "tcp", "file", "sim")


def make_transport(url: str, serial: SerialSettings | None = None) -> Transport:
    """Build (not open) the transport a device URL names; ValueError for a malformed URL."""
    parts = urlsplit(url)
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    if parts.scheme == "sim":
        from edge.devices.transport.sim import SimTransport
        return SimTransport(url, parts.netloc + parts.path)
    if parts.scheme == "tcp":
        from edge.devices.transport.tcp import TcpTransport
        if not parts.hostname:
            raise ValueError(f"{url}: tcp:// needs a host, e.g. tcp://10.0.0.5:9100")
        return TcpTransport(url, parts.hostname, parts.port or 9100)
    if parts.scheme == "file":
        from edge.devices.transport.file import FileTransport
        return FileTransport(url, parts.path)
    if parts.scheme == "serial":
        from edge.devices.transport.serial import SerialTransport
        settings = (serial or SerialSettings()).with_query(query)
        port = url.split("serial:", 1)[1]
        port = port.split("?", 1)[0]
        if port.startswith("///"):
            port = port[2:]
        elif port.startswith("//"):
            port = port[2:]  # serial://loop:// style is not used; serial:loop:// is
        if not port:
            raise ValueError(f"{url}: serial needs a port, e.g. serial:///dev/ttyUSB0")
        return SerialTransport(url, port, settings)
    if parts.scheme == "usb":
        from edge.devices.transport.usb import UsbTransport
        try:
            vid, pid = (int(x, 16) for x in parts.netloc.split(":"))
        except ValueError:
            raise ValueError(f"{url}: usb:// needs VID:PID in hex, e.g. usb://04b8:0202") from None
        return UsbTransport(url, vid, pid, out_ep=_hex(query.get("out")),
                            in_ep=_hex(query.get("in")))
    raise ValueError(f"{url}: unknown scheme {parts.scheme!r} (use one of {', '.join(SCHEMES)})")


# which schemes make sense for which kind of device
KIND_SCHEMES: dict[str, tuple[str, ...]] = {
    "printer": ("usb", "serial", "tcp", "file", "sim"),
    "display": ("serial", "tcp", "file", "sim"),
    "scanner": ("evdev", "serial", "sim"),
    "keypad": ("evdev", "sim"),
}


def check_url(url: str, kind: str | None = None) -> str | None:
    """What is wrong with a device URL (None: fine), without opening anything."""
    scheme = urlsplit(url).scheme
    if kind is not None and scheme not in KIND_SCHEMES.get(kind, ()):
        return (f"a {kind} cannot use {scheme}:// "
                f"(use {', '.join(s + '://' for s in KIND_SCHEMES.get(kind, ()))})")
    if scheme == "evdev":
        return None if urlsplit(url).path.startswith("/dev/") else \
            "evdev:// needs a device path, e.g. evdev:///dev/input/by-id/…-event-kbd"
    query = {k: v[-1] for k, v in parse_qs(urlsplit(url).query).items()}
    if scheme == "serial":
        if "baudrate" in query and not query["baudrate"].isdigit():
            return f"baudrate must be a number, got {query['baudrate']!r}"
        if query.get("parity", "N") not in ("N", "E", "O"):
            return "parity must be N, E or O"
    try:
        _check_parts(url, scheme, urlsplit(url).netloc, query)
    except ValueError as exc:
        return str(exc)
    return None


def _check_parts(url: str, scheme: str, netloc: str, query: dict[str, str]) -> None:
    if scheme == "usb":
        try:
            _vid, _pid = (int(x, 16) for x in netloc.split(":"))
            _hex(query.get("out"))
            _hex(query.get("in"))
        except ValueError:
            raise ValueError(f"{url}: usb:// needs VID:PID in hex (and hex endpoints), "
                             "e.g. usb://04b8:0202?out=01&in=82") from None
    elif scheme == "tcp" and not urlsplit(url).hostname:
        raise ValueError(f"{url}: tcp:// needs a host, e.g. tcp://10.0.0.5:9100")
    elif scheme not in SCHEMES and scheme != "evdev":
        raise ValueError(f"{url}: unknown scheme {scheme!r} (use one of {', '.join(SCHEMES)})")


def _hex(v: str | None) -> int | None:
    return None if v is None else int(v, 16)
