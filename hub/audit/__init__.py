"""Audit trail (A3): a hash-chained, append-only log of staff actions. See README.md.

Only the tables are imported here: ``hub.store.store`` imports this package for them, so
importing the service (which needs ``hub.store``) here would be circular.
"""

from hub.audit import tables

__all__ = ["tables"]
