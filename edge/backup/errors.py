"""The one error type of backup and restore, with its message in English and Japanese."""

from __future__ import annotations


class BackupError(Exception):
    """A backup or restore that was refused or failed; nothing was overwritten."""

    def __init__(self, en: str, ja: str) -> None:
        super().__init__(f"{en} / {ja}")
        self.en = en
        self.ja = ja
