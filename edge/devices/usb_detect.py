"""Which USB devices are plugged in, from sysfs (no libusb, no root), matched to profiles."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from edge.devices.profiles import Profile

SYSFS_USB_DEVICES = Path("/sys/bus/usb/devices")


def by_usb_id(profiles: Mapping[str, Profile]) -> dict[tuple[str, str], list[str]]:
    """(vendor, product) -> ids of the profiles that declare it; several when ids are shared."""
    index: dict[tuple[str, str], set[str]] = {}
    for pid, profile in profiles.items():
        for usb in profile.usb:
            index.setdefault((usb.vendor, usb.product), set()).add(pid)
    return {key: sorted(index[key]) for key in sorted(index)}


@dataclass(frozen=True)
class UsbSeen:
    """One attached USB device as sysfs describes it."""

    port: str  # sysfs name, e.g. "1-1.2": bus 1, port 1, then port 2 of a hub
    vendor_id: str  # 4 lowercase hex digits
    product_id: str
    manufacturer: str  # the device's own strings; "" when it has none
    product: str
    busnum: int | None
    devnum: int | None

    @property
    def usb_id(self) -> tuple[str, str]:
        return (self.vendor_id, self.product_id)


def _sysfs_attr(device: Path, name: str) -> str:
    try:
        return (device / name).read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return ""


def _sysfs_int(device: Path, name: str) -> int | None:
    text = _sysfs_attr(device, name)
    return int(text) if text.isdigit() else None


def detect_usb(sysfs: Path = SYSFS_USB_DEVICES) -> list[UsbSeen]:
    """Attached USB devices, from sysfs (no libusb, no root); [] when there are none.

    Root hubs (``usbN``) and interfaces (``1-1:1.0``) are skipped; other hubs are listed.
    """
    try:
        entries = sorted(sysfs.iterdir())
    except OSError:
        return []
    seen = []
    for device in entries:
        if device.name.startswith("usb") or ":" in device.name:
            continue
        vendor = _sysfs_attr(device, "idVendor").lower()
        product = _sysfs_attr(device, "idProduct").lower()
        if not (re.fullmatch(r"[0-9a-f]{4}", vendor) and re.fullmatch(r"[0-9a-f]{4}", product)):
            continue
        seen.append(UsbSeen(
            port=device.name,
            vendor_id=vendor,
            product_id=product,
            manufacturer=_sysfs_attr(device, "manufacturer"),
            product=_sysfs_attr(device, "product"),
            busnum=_sysfs_int(device, "busnum"),
            devnum=_sysfs_int(device, "devnum"),
        ))
    seen.sort(key=lambda s: (s.busnum or 0, s.devnum or 0, s.port))
    return seen
