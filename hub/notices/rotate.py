"""Key rotation for notices (``madoguchi hub keys rotate``): every sealed field and every PDF
blob re-encrypted with the current key, so the old key can then be removed.

Fields are re-sealed row by row in batches (each row in the transaction that reads it); blobs
are rewritten atomically by ``FileStore.reseal_sync``. Values whose key is already gone cannot be
read by anyone: they are counted as lost and left for the retention purge.
"""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import Table, select, update

from hub.notices.files import FileStore
from hub.notices.tables import notice_files, notice_recipients, notices
from hub.notify.crypto import CryptoError, key_id_of, reseal
from hub.store.store import HubStore

# table -> the sealed columns and the field name each is bound to (hub.notices.records)
SEALED: tuple[tuple[Table, dict[str, str]], ...] = (
    (notice_recipients, {"name": "name", "email": "email", "match_key": "key", "data": "data"}),
    (notice_files, {"match_key": "key"}),
    (notices, {"test_addresses": "test_addresses"}),
)


def _resealed(keys: dict[str, bytes], key_id: str, row: Any,
              columns: dict[str, str]) -> dict[str, str] | None:
    out: dict[str, str] = {}
    for column, name in columns.items():
        sealed = getattr(row, column)
        if not sealed or key_id_of(sealed) == key_id:
            continue
        out[column] = reseal(keys, key_id, f"{row.id}/{name}", sealed)
    return out


async def rotate(store: HubStore, keys: dict[str, bytes], key_id: str,
                 files: FileStore | None) -> tuple[int, int]:
    """(values and files re-encrypted, unreadable ones)."""
    done = lost = 0
    for table, columns in SEALED:
        async with store.begin() as tx:
            rows = (await tx.conn.execute(select(table.c.id, *(table.c[c] for c in columns))
                                          )).all()
            for row in rows:
                try:
                    values = _resealed(keys, key_id, row, columns)
                except CryptoError:
                    lost += 1
                    continue
                if values:
                    await tx.conn.execute(update(table).where(table.c.id == row.id)
                                          .values(**values))
                    done += len(values)
    if files is not None:
        async with store.read() as tx:
            blobs = [str(r[0]) for r in (await tx.conn.execute(select(notice_files.c.id))).all()]
        for blob in blobs:
            try:
                done += int(await asyncio.to_thread(files.reseal_sync, blob))
            except (CryptoError, OSError):
                lost += 1
    return done, lost
