"""Append bytes to a file (or a device node such as /dev/usb/lp0)."""

from __future__ import annotations

import asyncio
from typing import BinaryIO

from edge.devices.transport.base import Transport, TransportError


class FileTransport(Transport):
    answers = False
    def __init__(self, url: str, path: str) -> None:
        super().__init__(url)
        self.path = path
        self._f: BinaryIO | None = None

    @property
    def is_open(self) -> bool:
        return self._f is not None

    async def open(self) -> None:
        try:
            self._f = open(self.path, "ab")  # noqa: SIM115, ASYNC230 - held open until close()
        except PermissionError as exc:
            raise TransportError("permission", str(exc)) from None
        except OSError as exc:
            raise TransportError("not_found", str(exc)) from None

    async def write(self, data: bytes) -> None:
        f = self._f
        if f is None:
            raise TransportError("unplugged", "not open")

        def _write() -> None:
            f.write(data)
            f.flush()

        try:
            await asyncio.to_thread(_write)
        except OSError as exc:
            await self.close()
            raise TransportError("write_failed", str(exc)) from None

    async def read(self, size: int, timeout: float) -> bytes:
        return b""  # a file never answers status requests

    async def close(self) -> None:
        f, self._f = self._f, None
        if f is not None:
            f.close()
