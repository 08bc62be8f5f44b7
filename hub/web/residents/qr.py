"""The check-in QR of a web ticket's page, drawn on the server as inline SVG (no JavaScript).

Why the payload is the site's ``status_url`` with the token: it is exactly what the printed
ticket's QR carries, so the kiosk's check-in (``kiosk-ui/kiosk/scanner.js`` takes the token from
``…/t/<token>``), a counter's scanner and a phone camera all read it the same way. Black modules
on white with the standard four-module quiet zone and error correction M, so a kiosk scanner
reads it off a phone screen at any brightness; the SVG scales without blur.
"""

from __future__ import annotations

import html

import qrcode
import qrcode.constants

QUIET = 4  # modules of white margin (ISO/IEC 18004 quiet zone)


def payload(status_url: str, token: str) -> str:
    return status_url.replace("{token}", token)


def svg(data: str, label: str) -> str:
    """An ``<svg role="img">`` of ``data``'s QR code, one path of horizontal runs."""
    code = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, border=QUIET)
    code.add_data(data)
    code.make(fit=True)
    matrix = code.get_matrix()  # includes the quiet zone
    size = len(matrix)
    runs: list[str] = []
    for y, row in enumerate(matrix):
        x = 0
        while x < size:
            if row[x]:
                start = x
                while x < size and row[x]:
                    x += 1
                runs.append(f"M{start},{y}h{x - start}v1h-{x - start}z")
            else:
                x += 1
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {size} {size}" '
            f'role="img" aria-label="{html.escape(label)}" shape-rendering="crispEdges" '
            f'class="qr-code" data-testid="checkin-qr">'
            f'<rect width="{size}" height="{size}" fill="#fff"/>'
            f'<path fill="#000" d="{"".join(runs)}"/></svg>')
