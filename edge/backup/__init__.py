"""Nightly sealed backups of the edge's SQLite and the hub's database, and their restore.

``add_parsers`` plugs ``madoguchi backup`` / ``madoguchi restore`` into the CLI; the file format
is in ``container``, the generations and the second copy in ``files``.
"""

from edge.backup.cli import add_parsers

__all__ = ["add_parsers"]
