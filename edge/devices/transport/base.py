"""The transport contract every device service relies on."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, replace
from typing import Literal


class TransportError(Exception):
    """The device cannot be reached or refused data; ``reason`` is a health reason code."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class SerialSettings:
    baudrate: int = 9600
    bytesize: Literal[7, 8] = 8
    parity: Literal["N", "E", "O"] = "N"
    stopbits: Literal[1, 2] = 1
    rtscts: bool = False

    def with_query(self, q: dict[str, str]) -> SerialSettings:
        """Apply ``?baudrate=19200&parity=E`` overrides from a device URL."""
        out = self
        if "baudrate" in q:
            out = replace(out, baudrate=int(q["baudrate"]))
        if "parity" in q and q["parity"] in ("N", "E", "O"):
            out = replace(out, parity=q["parity"])  # type: ignore[arg-type]
        if q.get("bytesize") in ("7", "8"):
            out = replace(out, bytesize=int(q["bytesize"]))  # type: ignore[arg-type]
        if q.get("stopbits") in ("1", "2"):
            out = replace(out, stopbits=int(q["stopbits"]))  # type: ignore[arg-type]
        return out


class Transport(ABC):
    """An async byte pipe. ``write`` sends everything or raises; ``read`` may return less."""

    answers = True  # False when the device can never reply (a file, a printer device node)

    def __init__(self, url: str) -> None:
        self.url = url

    @property
    @abstractmethod
    def is_open(self) -> bool: ...

    @abstractmethod
    async def open(self) -> None:
        """Connect; raise TransportError(reason) if the device is absent or refuses."""

    @abstractmethod
    async def write(self, data: bytes) -> None: ...

    @abstractmethod
    async def read(self, size: int, timeout: float) -> bytes:
        """Up to ``size`` bytes; ``b""`` when nothing arrived within ``timeout`` seconds."""

    @abstractmethod
    async def close(self) -> None: ...

    async def __aenter__(self) -> Transport:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
