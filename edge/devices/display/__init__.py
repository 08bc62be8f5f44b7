"""Counter displays on serial lines: pure framing (``codec``) and the device service."""
