"""Backup files on disk: keys, nightly names, atomic writes, 7 generations, the second copy.

Why a generation is a whole file named by its night (``edge-<site>-2026-11-21.mbk``): any one
file restores on its own, a second run on the same night replaces that night's file, and keeping
N generations is "delete all but the newest N names", which an operator can check with ``ls``.
Only files of this exact pattern are ever deleted, so a shared folder is safe.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import subprocess
from collections.abc import Callable, Mapping
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import BinaryIO

from edge.backup.errors import BackupError
from hub.settings import SettingsError, parse_keys

_LOGGER = logging.getLogger(__name__)
KEEP = 7
SUFFIX = ".mbk"
_NIGHT = r"\d{4}-\d{2}-\d{2}"


def load_keys(env: Mapping[str, str], *names: str) -> tuple[dict[str, bytes], str]:
    """The AES-256 keys (``ID:BASE64,...``, the first one current) from the first variable of
    ``names`` that is set. No ephemeral fallback: a backup nobody can open later is worse than
    none, so a missing key is an error that says what to set."""
    for name in names:
        text = env.get(name, "").strip()
        if not text:
            continue
        try:
            keys, key_id = parse_keys(text)
        except SettingsError as exc:
            raise BackupError(str(exc).replace("MADOGUCHI_HUB_KEYS", name),
                              f"{name} の形式が正しくありません"
                              "（ID:BASE64 の32バイト鍵）") from None
        if keys:
            return keys, key_id
    wanted = " or ".join(names)
    raise BackupError(f"no backup key: set {wanted} (ID:BASE64 of 32 bytes; keep a copy of it "
                      "away from the backups)",
                      f"バックアップ鍵がありません: {wanted} を設定してください"
                      "（ID:BASE64、32バイト。鍵の控えはバックアップとは別の場所に保管）")


def night_name(prefix: str, now: datetime) -> str:
    """``prefix-YYYY-MM-DD.mbk``: the night (local date of ``now``) the file belongs to."""
    return f"{prefix}-{now:%Y-%m-%d}{SUFFIX}"


def generations(folder: Path, prefix: str) -> list[Path]:
    """This prefix's nightly files in ``folder``, oldest first."""
    pattern = re.compile(re.escape(prefix) + "-" + _NIGHT + re.escape(SUFFIX) + "$")
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if pattern.match(p.name))


def prune(folder: Path, prefix: str, keep: int = KEEP) -> list[Path]:
    """Delete all but the newest ``keep`` generations; returns what was deleted."""
    old = generations(folder, prefix)[:-keep] if keep > 0 else []
    for path in old:
        path.unlink()
        _LOGGER.info("backup generation removed: %s", path.name)
    return old


def write_atomically(path: Path, fill: Callable[[BinaryIO], object]) -> None:
    """Write ``path`` through a temporary file in the same folder: a crash or a refused write
    leaves the previous file (or none), never half a backup under a nightly name."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.partial")
    try:
        with tmp.open("wb") as f:
            fill(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    finally:
        tmp.unlink(missing_ok=True)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _is_remote(target: str) -> bool:
    """``host:path``, ``user@host:path`` or ``rsync://``: only rsync can reach it."""
    return target.startswith("rsync://") or re.match(r"^[^/:]+:", target) is not None


def copy_generations(folder: Path, prefix: str, target: str) -> str:
    """Mirror this prefix's generations to the second location (the 100 km copy): the same 7
    files there, older ones deleted there too. rsync when installed (also reaches remote
    targets over ssh); otherwise a plain copy into a local folder. Returns how it was done."""
    rsync = shutil.which("rsync")
    if rsync is not None:
        if not _is_remote(target):
            Path(target).mkdir(parents=True, exist_ok=True)
        # filter rules: only this prefix's files are sent, and --delete removes only those
        cmd = [rsync, "-a", "--delete", f"--include={prefix}-*{SUFFIX}", "--exclude=*",
               f"{folder}/", target.rstrip("/") + "/"]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=3600)
        if done.returncode != 0:
            raise BackupError(f"copy to {target} failed (rsync {done.returncode}): "
                              f"{done.stderr.strip()[:300]}",
                              f"{target} への複製に失敗しました（rsync {done.returncode}）")
        return "rsync"
    if _is_remote(target):
        raise BackupError(f"copy to {target} needs rsync, which is not installed",
                          f"{target} への複製には rsync が必要ですが、インストールされていません")
    dest = Path(target)
    dest.mkdir(parents=True, exist_ok=True)
    wanted = {p.name: p for p in generations(folder, prefix)}
    for name, src in wanted.items():
        there = dest / name
        if not there.exists() or there.stat().st_size != src.stat().st_size:
            write_atomically(there, partial(_copy_into, src))
    for stale in generations(dest, prefix):
        if stale.name not in wanted:
            stale.unlink()
    return "copy"


def _copy_into(src: Path, out: BinaryIO) -> None:
    with src.open("rb") as f:
        shutil.copyfileobj(f, out, 1 << 20)


def swap_sqlite(new: Path, dest: Path, stamp: str) -> Path | None:
    """Put the restored database ``new`` at ``dest`` with one atomic rename.

    The file it replaces is kept as ``<dest>.replaced-<stamp>`` (a hard link made before the
    rename, so ``dest`` is never missing), with its ``-wal``/``-shm`` moved beside it: a stale
    write-ahead log left next to the new file would be replayed into it. Returns the kept path.
    """
    kept: Path | None = None
    if dest.exists():
        kept = dest.with_name(f"{dest.name}.replaced-{stamp}")
        os.link(dest, kept)
        for side in ("-wal", "-shm"):
            path = dest.with_name(dest.name + side)
            if path.exists():
                os.replace(path, kept.with_name(kept.name + side))
    os.replace(new, dest)
    _fsync_dir(dest.parent)
    return kept


def discard(path: Path) -> None:
    """Remove a temporary file and its SQLite side files, if any."""
    for p in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm"),
              path.with_name(path.name + "-journal")):
        with contextlib.suppress(FileNotFoundError):
            p.unlink()
