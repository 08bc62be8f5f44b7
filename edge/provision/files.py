"""All-or-nothing writes of a set of files, and the ``KEY=value`` env files the daemons read.

Why: provisioning touches the broker's password file, the ACL and a site's folder together; a
failure half-way must not leave a password file that names a user whose credentials were never
written. Every file is first written next to its target and only then renamed into place.
"""

from __future__ import annotations

import contextlib
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Batch", "parse_env", "render_env"]


@dataclass
class Batch:
    """Files to write together: ``add`` them, then ``commit``; nothing lands before commit."""

    files: list[tuple[Path, str, int]] = field(default_factory=list)
    dirs: list[tuple[Path, int]] = field(default_factory=list)

    def add(self, path: Path, text: str, mode: int = 0o644) -> None:
        self.files.append((path, text, mode))

    def mkdir(self, path: Path, mode: int = 0o755) -> None:
        self.dirs.append((path, mode))

    def commit(self) -> None:
        """Write every file to a temp sibling (mode set before any content), then rename all.

        A file that exists keeps its mode, owner and group: an operator's one-time
        ``chgrp mosquitto passwd; chmod 640 passwd`` survives the next provisioning run.
        """
        made: list[Path] = []
        temps: list[tuple[Path, Path]] = []
        try:
            for path, mode in self.dirs:
                _mkdirs(path, mode, made)
            for path, _, _ in self.files:
                if path.is_dir():  # would fail at rename time, after other files moved
                    raise IsADirectoryError(21, "a folder is in the way", str(path))
            for path, text, mode in self.files:
                _mkdirs(path.parent, 0o755, made)
                old = path.stat() if path.exists() else None
                mode = stat.S_IMODE(old.st_mode) if old else mode
                tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
                tmp.unlink(missing_ok=True)  # left by a crashed run
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode & 0o600)
                temps.append((tmp, path))
                with os.fdopen(fd, "w", encoding="utf-8") as fh:
                    if old:
                        _same_owner(fh.fileno(), old)
                    os.fchmod(fh.fileno(), mode)  # the umask or an old temp cannot change it
                    fh.write(text)
                    fh.flush()
                    os.fsync(fh.fileno())
        except BaseException:
            for tmp, _ in temps:
                tmp.unlink(missing_ok=True)
            for path in reversed(made):
                _rmdir_quiet(path)
            raise
        for tmp, path in temps:
            os.replace(tmp, path)


def _same_owner(fd: int, old: os.stat_result) -> None:
    """Give the new file the old one's owner and group, as far as we are allowed to."""
    for uid in (old.st_uid, -1):
        try:
            os.fchown(fd, uid, old.st_gid)
            return
        except PermissionError:
            continue


def _mkdirs(path: Path, mode: int, made: list[Path]) -> None:
    """Create ``path`` with ``mode``; missing parents get 0755 so other users can pass through."""
    missing: list[Path] = []
    p = path
    while not p.exists():
        missing.append(p)
        p = p.parent
    for d in reversed(missing):
        d.mkdir()
        os.chmod(d, mode if d == path else 0o755)
        made.append(d)


def _rmdir_quiet(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.rmdir()


def parse_env(text: str) -> dict[str, str]:
    """``KEY=value`` lines (systemd ``EnvironmentFile`` subset: no quotes, no expansion)."""
    env: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if line and not line.startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            env[key.strip()] = value.strip()
    return env


def render_env(env: dict[str, str], header: str) -> str:
    lines = [f"# {h}" if h else "#" for h in header.splitlines()]
    for key, value in env.items():
        if any(c in value for c in "\n\"'\\ $`") or not key.isidentifier():
            raise ValueError(f"cannot write {key} safely as an env line")
        lines.append(f"{key}={value}")
    return "\n".join(lines) + "\n"
