"""Serial ports through pyserial, in one worker thread per port (pyserial blocks)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import serial

from edge.devices.transport.base import SerialSettings, Transport, TransportError

T = TypeVar("T")
WRITE_TIMEOUT_S = 2.0


class SerialTransport(Transport):
    def __init__(self, url: str, port: str, settings: SerialSettings) -> None:
        super().__init__(url)
        self.port, self.settings = port, settings
        self._ser: serial.SerialBase | None = None
        self._pool = ThreadPoolExecutor(1, thread_name_prefix=f"serial-{port}")

    @property
    def is_open(self) -> bool:
        return self._ser is not None and self._ser.is_open

    async def _run(self, fn: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn)

    async def open(self) -> None:
        s = self.settings

        def _open() -> serial.SerialBase:
            return serial.serial_for_url(
                self.port, baudrate=s.baudrate, bytesize=s.bytesize, parity=s.parity,
                stopbits=s.stopbits, rtscts=s.rtscts, timeout=0, write_timeout=WRITE_TIMEOUT_S)

        try:
            self._ser = await self._run(_open)
        except serial.SerialException as exc:
            text = str(exc)
            code = "permission" if "ermission" in text else "not_found"
            raise TransportError(code, text) from None
        except (OSError, ValueError) as exc:
            raise TransportError("not_found", str(exc)) from None

    async def write(self, data: bytes) -> None:
        ser = self._ser
        if ser is None:
            raise TransportError("unplugged", "not open")

        def _write() -> None:
            ser.write(data)
            ser.flush()

        try:
            await self._run(_write)
        except serial.SerialTimeoutException:
            raise TransportError("timeout", "write") from None
        except (serial.SerialException, OSError) as exc:
            await self.close()
            raise TransportError("unplugged", str(exc)) from None

    async def read(self, size: int, timeout: float) -> bytes:
        ser = self._ser
        if ser is None:
            raise TransportError("unplugged", "not open")

        def _read() -> bytes:
            ser.timeout = timeout
            first = ser.read(1)
            if not first:
                return b""
            ser.timeout = 0
            return first + ser.read(max(0, size - 1))

        try:
            return await self._run(_read)
        except (serial.SerialException, OSError) as exc:
            await self.close()
            raise TransportError("unplugged", str(exc)) from None

    async def close(self) -> None:
        ser, self._ser = self._ser, None
        if ser is not None:
            with contextlib.suppress(serial.SerialException, OSError):
                await self._run(ser.close)
