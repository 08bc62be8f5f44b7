"""USB printers through pyusb (libusb), bulk endpoints, in a worker thread."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from edge.devices.transport.base import Transport, TransportError

T = TypeVar("T")
TIMEOUT_MS = 3000


class UsbTransport(Transport):
    def __init__(self, url: str, vid: int, pid: int, out_ep: int | None = None,
                 in_ep: int | None = None) -> None:
        super().__init__(url)
        self.vid, self.pid = vid, pid
        self._out_addr, self._in_addr = out_ep, in_ep
        self._dev: Any = None
        self._out: Any = None
        self._in: Any = None
        self._pool = ThreadPoolExecutor(1, thread_name_prefix=f"usb-{vid:04x}:{pid:04x}")

    @property
    def is_open(self) -> bool:
        return self._out is not None

    async def _run(self, fn: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn)

    def _open(self) -> None:
        import usb.core
        import usb.util

        try:
            dev = usb.core.find(idVendor=self.vid, idProduct=self.pid)
        except usb.core.NoBackendError:
            raise TransportError("not_found", "libusb is not installed") from None
        if dev is None:
            raise TransportError("unplugged", f"no USB device {self.vid:04x}:{self.pid:04x}")
        try:
            if dev.is_kernel_driver_active(0):
                dev.detach_kernel_driver(0)
            dev.set_configuration()
        except usb.core.USBError as exc:
            code = "permission" if exc.errno == 13 else "unplugged"
            raise TransportError(code, str(exc)) from None
        intf = dev.get_active_configuration()[(0, 0)]

        def ep(direction: int, addr: int | None) -> Any:
            return usb.util.find_descriptor(intf, custom_match=lambda e: (
                e.bEndpointAddress == addr if addr is not None else
                usb.util.endpoint_direction(e.bEndpointAddress) == direction))

        self._dev = dev
        self._out = ep(usb.util.ENDPOINT_OUT, self._out_addr)
        self._in = ep(usb.util.ENDPOINT_IN, self._in_addr)
        if self._out is None:
            raise TransportError("printer_error", "no bulk OUT endpoint")

    async def open(self) -> None:
        await self._run(self._open)

    async def write(self, data: bytes) -> None:
        import usb.core

        out = self._out
        if out is None:
            raise TransportError("unplugged", "not open")
        try:
            await self._run(lambda: out.write(data, TIMEOUT_MS))
        except usb.core.USBTimeoutError:
            raise TransportError("timeout", "write") from None
        except usb.core.USBError as exc:
            await self.close()
            raise TransportError("unplugged", str(exc)) from None

    async def read(self, size: int, timeout: float) -> bytes:
        import usb.core

        inp = self._in
        if inp is None:
            return b""
        try:
            data = await self._run(lambda: inp.read(size, int(timeout * 1000)))
        except usb.core.USBTimeoutError:
            return b""
        except usb.core.USBError as exc:
            await self.close()
            raise TransportError("unplugged", str(exc)) from None
        return bytes(data)

    async def close(self) -> None:
        dev, self._dev, self._out, self._in = self._dev, None, None, None
        if dev is not None:
            import usb.util

            with contextlib.suppress(Exception):
                await self._run(lambda: usb.util.dispose_resources(dev))
