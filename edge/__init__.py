"""madoguchi edge: the site daemon that owns one office's queue (offline-first)."""

__version__ = "0.1.0"
