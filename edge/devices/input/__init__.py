"""Counter input devices: barcode/QR scanners and keypads (evdev HID or serial)."""
