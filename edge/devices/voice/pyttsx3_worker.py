"""pyttsx3 in its own process, driven by JSON lines on stdin/stdout.

Why a process: pyttsx3 drivers can hang (no audio driver, a stuck SAPI/espeak loop) and a hung
thread cannot be killed; a process can. Its espeak driver also initialises libespeak-ng once per
process, so one long-lived worker renders every phrase without start-up cost.

Protocol: the worker first writes ``{"ready": true, "driver": ..., "voices": [...]}`` (or
``{"ready": false, "error": ...}``), then answers each request
``{"text", "voice", "rate", "volume", "out"}`` with ``{"ok": true}`` or ``{"ok": false, "error"}``.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any


def _voices(engine: Any) -> list[dict[str, Any]]:
    return [{"id": str(v.id), "name": str(v.name or ""),
             "languages": [str(x) for x in (v.languages or [])],
             "gender": str(v.gender or "")} for v in engine.getProperty("voices")]


def _render(engine: Any, req: dict[str, Any]) -> dict[str, Any]:
    out = Path(req["out"])
    out.unlink(missing_ok=True)
    engine.setProperty("voice", req["voice"])
    engine.setProperty("rate", int(req["rate"]))
    engine.setProperty("volume", float(req["volume"]))
    for _ in range(3):  # pyttsx3 2.99's espeak driver writes an empty WAV about 1 time in 100
        engine.save_to_file(req["text"], str(out))
        engine.runAndWait()
        if out.is_file() and out.stat().st_size > 44:
            break
    want = str(req.get("expect_voice") or "")
    got = str(engine.getProperty("voice") or "")
    if want and want not in got:  # espeak ignores unknown voice names without an error
        return {"ok": False, "error": f"voice {req['voice']!r} not applied (got {got!r})"}
    if not out.is_file() or out.stat().st_size <= 44:
        return {"ok": False, "error": "no audio written"}
    return {"ok": True}


def main() -> int:
    proto = os.fdopen(os.dup(1), "w", encoding="utf-8", buffering=1)
    os.dup2(2, 1)  # drivers print ("Audio saved to ...") to stdout: keep it off the protocol
    sys.stdout = sys.stderr

    def send(msg: dict[str, Any]) -> None:
        proto.write(json.dumps(msg, ensure_ascii=False) + "\n")

    try:
        import pyttsx3

        engine = pyttsx3.init()
        driver = type(engine.proxy._driver).__module__.rsplit(".", 1)[-1]
        send({"ready": True, "driver": driver, "voices": _voices(engine)})
    except Exception as exc:
        send({"ready": False, "error": f"{type(exc).__name__}: {exc}"})
        return 1
    for line in sys.stdin:
        try:
            send(_render(engine, json.loads(line)))
        except Exception as exc:
            send({"ok": False, "error": f"{type(exc).__name__}: {exc}"})
    return 0


if __name__ == "__main__":
    sys.exit(main())
