"""Where an announcement's audio goes: a folder, a player command, or nowhere.

Why ``play`` returns only when playback has ended: the zone's queue awaits it, and that is what
keeps announcements from overlapping or cutting each other off.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from edge.devices.voice import audio
from edge.devices.voice.audio import Pcm


class SinkError(Exception):
    """The output refused the audio (player failed, disk full); health "write_failed"."""


@dataclass(frozen=True, slots=True)
class PlayRecord:
    seq: int
    label: str
    path: Path | None
    started: float  # time.perf_counter() when audio started (file complete / player running)
    ended: float  # time.perf_counter() when playback ended
    duration_s: float  # of the audio


class Sink(ABC):
    """One output; ``records`` lists what it played, in order."""

    def __init__(self) -> None:
        self.records: list[PlayRecord] = []

    @abstractmethod
    async def play(self, clip: Pcm, label: str) -> PlayRecord:
        """Play ``clip`` to the end; raise ``SinkError`` if it cannot."""

    def _record(self, label: str, path: Path | None, started: float, clip: Pcm) -> PlayRecord:
        rec = PlayRecord(len(self.records) + 1, label, path, started, time.perf_counter(),
                         clip.duration)
        self.records.append(rec)
        return rec


class NullSink(Sink):
    """Plays nothing, at once (a zone switched off, or a machine without speakers)."""

    async def play(self, clip: Pcm, label: str) -> PlayRecord:
        return self._record(label, None, time.perf_counter(), clip)


class FileSink(Sink):
    """Writes ``00001-<label>.wav`` per announcement into ``folder``.

    ``realtime`` > 0 holds the zone for that fraction of the clip's duration, as a speaker
    would (1.0 = real time); tests use a small fraction to see order and gaps cheaply.
    """

    def __init__(self, folder: Path, realtime: float = 0.0) -> None:
        super().__init__()
        self.folder, self.realtime = folder, realtime
        folder.mkdir(parents=True, exist_ok=True)

    async def play(self, clip: Pcm, label: str) -> PlayRecord:
        path = self.folder / f"{len(self.records) + 1:05d}-{label}.wav"
        try:
            await asyncio.to_thread(audio.write_wav, path, clip)
        except OSError as exc:
            raise SinkError(f"{path}: {exc}") from exc
        started = time.perf_counter()
        if self.realtime > 0:
            await asyncio.sleep(clip.duration * self.realtime)
        return self._record(label, path, started, clip)


class CommandSink(Sink):
    """Runs a player per announcement and waits for it, e.g. ``aplay -q -D plughw:1 {file}``.

    ``{file}`` in ``argv`` is replaced by the WAV's path (appended when absent). A player that
    fails, or runs far longer than the clip, is an error: the hall may not have heard it.
    """

    def __init__(self, argv: Sequence[str], spool: Path | None = None,
                 slack_s: float = 10.0) -> None:
        super().__init__()
        if not argv:
            raise ValueError("CommandSink needs a command, e.g. ['aplay', '-q', '{file}']")
        self.argv, self.slack_s = list(argv), slack_s
        self.spool = spool or Path(tempfile.gettempdir()) / "madoguchi-voice-spool"
        self.spool.mkdir(parents=True, exist_ok=True)

    def command(self, path: Path) -> list[str]:
        if any("{file}" in a for a in self.argv):
            return [a.replace("{file}", str(path)) for a in self.argv]
        return [*self.argv, str(path)]

    async def play(self, clip: Pcm, label: str) -> PlayRecord:
        path = self.spool / f"{label}-{os.getpid()}-{id(self):x}.wav"  # unique per zone
        try:
            await asyncio.to_thread(audio.write_wav, path, clip)
            proc = await asyncio.create_subprocess_exec(
                *self.command(path), stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
        except OSError as exc:
            path.unlink(missing_ok=True)
            raise SinkError(f"{self.argv[0]}: {exc}") from exc
        started = time.perf_counter()
        try:
            _, err = await asyncio.wait_for(proc.communicate(), clip.duration + self.slack_s)
        except TimeoutError:
            raise SinkError(f"{self.argv[0]} still playing after "
                            f"{clip.duration + self.slack_s:.0f} s") from None
        finally:
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
            path.unlink(missing_ok=True)
        if proc.returncode != 0:
            tail = err.decode("utf-8", "replace").strip()[-200:]
            raise SinkError(f"{self.argv[0]} exit {proc.returncode}: {tail}")
        return self._record(label, None, started, clip)
