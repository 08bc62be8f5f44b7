"""Raw TCP (port 9100, "JetDirect"): LAN printers."""

from __future__ import annotations

import asyncio
import contextlib

from edge.devices.transport.base import Transport, TransportError

CONNECT_TIMEOUT_S = 3.0
WRITE_TIMEOUT_S = 5.0


class TcpTransport(Transport):
    def __init__(self, url: str, host: str, port: int) -> None:
        super().__init__(url)
        self.host, self.port = host, port
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    @property
    def is_open(self) -> bool:
        return self._writer is not None and not self._writer.is_closing()

    async def open(self) -> None:
        try:
            self._reader, self._writer = await asyncio.wait_for(
                asyncio.open_connection(self.host, self.port), CONNECT_TIMEOUT_S)
        except TimeoutError:
            raise TransportError("timeout", f"{self.host}:{self.port}") from None
        except OSError as exc:
            raise TransportError("unplugged", f"{self.host}:{self.port}: {exc}") from None

    async def write(self, data: bytes) -> None:
        if self._writer is None:
            raise TransportError("unplugged", "not open")
        try:
            self._writer.write(data)
            await asyncio.wait_for(self._writer.drain(), WRITE_TIMEOUT_S)
        except TimeoutError:
            raise TransportError("timeout", "write") from None
        except OSError as exc:
            await self.close()
            raise TransportError("write_failed", str(exc)) from None

    async def read(self, size: int, timeout: float) -> bytes:
        if self._reader is None:
            raise TransportError("unplugged", "not open")
        try:
            data = await asyncio.wait_for(self._reader.read(size), timeout)
        except TimeoutError:
            return b""
        except OSError as exc:
            raise TransportError("unplugged", str(exc)) from None
        if not data and self._reader.at_eof():
            await self.close()
            raise TransportError("unplugged", "connection closed")
        return data

    async def close(self) -> None:
        w, self._writer, self._reader = self._writer, None, None
        if w is not None:
            w.close()
            with contextlib.suppress(OSError, TimeoutError):
                await asyncio.wait_for(w.wait_closed(), 1.0)
