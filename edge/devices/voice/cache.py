"""Rendered phrases on disk (and the hottest in memory), so a call is assembled, not synthesised.

The goal is call -> start of audio p99 <= 250 ms. Measured on a 2-vCPU edge box: espeak-ng
renders a phrase in 15-35 ms (process start included), the pyttsx3 worker in 15-25 ms; a miss
through this cache (render, trim, resample, volume, write) costs about 35 ms per phrase and
55 KiB of disk. Open JTalk (in-process, pyopenjtalk-plus) is slower: 60-110 ms per phrase on an
idle box (synthesis at 48 kHz), 200-300 ms when the CPUs are busy; a number phrase is ~1.5 s of
audio, ~65 KiB. Whole announcements for every number x counter x language would be tens of
thousands of files, so:

- the unit is a *phrase* (a template cut after 、。,.): counter phrases ("3番窓口へお越し
  ください。", for espeak-ng "さんばんまどぐちへおこしください。") are the same for every call
  and are rendered at start for every counter and language; number phrases ("123番の方、")
  are per number;
- at start the first numbers of the day, and after each call the next numbers
  (n+1..n+lookahead), are rendered in the background, ahead of the whole range, since tickets
  are called roughly in order. Warm, a call is file reads, a byte join and one WAV
  write: p50 4 ms, p99 12 ms (200 calls, espeak-ng, ja+en); a cold number costs ~60 ms with
  espeak-ng, ~140 ms with Open JTalk (idle box) and 300 ms or more on a loaded one;
- the whole number range is rendered in the background only when the engine is slow
  (measured phrase render p95 above ``SLOW_RENDER_S``), which Open JTalk is; at most
  ``service.AUTO_RANGE_MAX`` numbers from the first (``prerender_numbers = "all"``: every
  number), after the urgent phrases, once no call came for ``service.RANGE_QUIET_S``, in a
  thread at nice 10 (``lower_priority``), so a busy hall is not slowed by it. 1-999 then costs
  ~2-5 min of one CPU once (kept across daemon restarts; the default folder is under the temp
  directory, which a reboot may empty) and ~65 MB for Japanese; with
  espeak-ng alone a miss is well inside the budget and this is skipped.

Pieces are stored trimmed, at the common rate and already scaled to the volume, keyed by
hash(engine, voice, text, volume). The voice string carries what shapes the sound (Open JTalk:
voice file, pitch and formant transform, speed, wheel version, rendering version; espeak-ng:
voice and variant), and the text is the template's phrase: changing the engine, the voice or
gender, the volume or a template simply misses and re-renders.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import threading
import time
from collections import OrderedDict
from pathlib import Path

from edge.devices.voice import audio
from edge.devices.voice.audio import Pcm
from edge.devices.voice.engines import Engine, Gender

_LOGGER = logging.getLogger(__name__)

SLOW_RENDER_S = 0.08  # a miss above this would eat a third of the 250 ms budget
FORMAT = "v1"  # bump when the stored form (trim, rate, scaling) changes


class PhraseCache:
    """Thread-safe: the live call and the background warm-up may ask at the same time."""

    def __init__(self, folder: Path, rate: int = audio.RATE, memory_items: int = 256) -> None:
        self.folder = folder
        self.rate = rate
        self.memory_items = memory_items
        self.hits = 0
        self.misses = 0
        self.render_s: list[float] = []  # engine time per miss, for the slow-engine decision
        self._memory: OrderedDict[str, Pcm] = OrderedDict()
        self._lock = threading.Lock()
        self._inflight: dict[str, threading.Lock] = {}
        folder.mkdir(parents=True, exist_ok=True)

    @staticmethod
    def key(engine: Engine, voice: str, text: str, volume: float) -> str:
        raw = "\x1f".join((FORMAT, engine.name, voice, text, f"{volume:.3f}"))
        return hashlib.sha256(raw.encode("utf-8")).hexdigest()[:32]

    def path(self, key: str) -> Path:
        return self.folder / f"{key}.wav"

    def has(self, engine: Engine, lang: str, gender: Gender, text: str, volume: float) -> bool:
        key = self.key(engine, engine.voice(lang, gender), text, volume)
        return key in self._memory or self.path(key).is_file()

    def get(self, engine: Engine, lang: str, gender: Gender, text: str, volume: float) -> Pcm:
        """The phrase's audio, rendering it with ``engine`` only if it was never rendered."""
        key = self.key(engine, engine.voice(lang, gender), text, volume)
        pcm = self._lookup(key)
        if pcm is not None:
            return pcm
        with self._lock:
            gate = self._inflight.setdefault(key, threading.Lock())
        with gate:  # a second asker waits for the first render instead of repeating it
            pcm = self._lookup(key)
            if pcm is None:
                pcm = self._render(engine, lang, gender, text, volume, key)
        with self._lock:
            self._inflight.pop(key, None)
        return pcm

    def _lookup(self, key: str) -> Pcm | None:
        with self._lock:
            pcm = self._memory.get(key)
            if pcm is not None:
                self._memory.move_to_end(key)
                self.hits += 1
                return pcm
        try:
            pcm = audio.read_wav(self.path(key))
        except (OSError, EOFError, ValueError):
            return None
        self._remember(key, pcm)
        with self._lock:
            self.hits += 1
        return pcm

    def _render(self, engine: Engine, lang: str, gender: Gender, text: str, volume: float,
                key: str) -> Pcm:
        tmp = self.folder / f".{key}.{threading.get_ident()}.render.wav"
        t0 = time.perf_counter()
        try:
            engine.render(text, lang, gender, tmp)
            raw = audio.read_wav(tmp)
        finally:
            tmp.unlink(missing_ok=True)
        spent = time.perf_counter() - t0
        pcm = audio.scale(audio.resample(audio.trim(raw), self.rate), volume)
        audio.write_wav(self.path(key), pcm)
        self._remember(key, pcm)
        with self._lock:
            self.misses += 1
            self.render_s.append(spent)
        _LOGGER.debug("rendered %r with %s in %.0f ms", text, engine.name, spent * 1000)
        return pcm

    def _remember(self, key: str, pcm: Pcm) -> None:
        with self._lock:
            self._memory[key] = pcm
            self._memory.move_to_end(key)
            while len(self._memory) > self.memory_items:
                self._memory.popitem(last=False)

    def render_p95(self) -> float | None:
        """Engine time per phrase (95th percentile) over the renders so far."""
        with self._lock:
            times = sorted(self.render_s)
        return times[min(len(times) - 1, int(0.95 * len(times)))] if times else None


def lower_priority() -> None:
    """Run the calling (preparing) thread at nice 10 (Linux: per thread), so that on a busy
    2-CPU box Open JTalk filling the cache (~0.1 s of CPU a phrase) yields to live calls, the
    displays and the web server; elsewhere it stays at normal priority."""
    with contextlib.suppress(AttributeError, OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)
