"""WAV helpers on 16-bit mono PCM with the stdlib (numpy, when present, only speeds ``scale``).

Why our own: engines give different rates (espeak-ng 22050 Hz, Open JTalk 48000 Hz) and levels;
an announcement is chime + phrases + gaps joined into one clip at one rate and one volume, so a
player receives a single file and nothing can slip in between its parts.
"""

from __future__ import annotations

import io
import math
import os
import sys
import threading
import wave
from array import array
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

RATE = 22_050  # espeak-ng's and pyttsx3's native rate: most pieces need no resampling
_BIG_ENDIAN = sys.byteorder == "big"


@dataclass(frozen=True, slots=True)
class Pcm:
    """Signed 16-bit little-endian mono samples at ``rate`` Hz."""

    data: bytes
    rate: int = RATE

    @property
    def frames(self) -> int:
        return len(self.data) // 2

    @property
    def duration(self) -> float:
        return self.frames / self.rate

    def samples(self) -> array[int]:
        a = array("h", self.data)
        if _BIG_ENDIAN:
            a.byteswap()
        return a


def _pcm(samples: array[int], rate: int) -> Pcm:
    if _BIG_ENDIAN:
        samples = array("h", samples)
        samples.byteswap()
    return Pcm(samples.tobytes(), rate)


def read_wav(source: Path | bytes) -> Pcm:
    """A 16-bit WAV (mono, or stereo mixed down) as ``Pcm``."""
    with wave.open(io.BytesIO(source) if isinstance(source, bytes) else str(source), "rb") as w:
        if w.getsampwidth() != 2:
            raise ValueError(f"{source!s:.80}: {8 * w.getsampwidth()}-bit WAV, need 16-bit")
        channels, rate = w.getnchannels(), w.getframerate()
        data = w.readframes(w.getnframes())
    if channels == 1:
        return Pcm(data, rate)
    s = Pcm(data, rate).samples()
    mono = array("h", (sum(s[i:i + channels]) // channels for i in range(0, len(s), channels)))
    return _pcm(mono, rate)


def wav_bytes(pcm: Pcm) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(pcm.rate)
        w.writeframes(pcm.data)
    return buf.getvalue()


def write_wav(path: Path, pcm: Pcm) -> None:
    """Write atomically (temp file + rename): a player never sees half a file. The temp name is
    per process and thread: two sites sharing a cache folder may render the same phrase."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    tmp.write_bytes(wav_bytes(pcm))
    tmp.replace(path)


def duration(path: Path) -> float:
    with wave.open(str(path), "rb") as w:
        return w.getnframes() / w.getframerate()


def silence(seconds: float, rate: int = RATE) -> Pcm:
    return Pcm(bytes(2 * round(seconds * rate)), rate)


def resample(pcm: Pcm, rate: int = RATE) -> Pcm:
    """Linear interpolation: good enough for speech going to a hall loudspeaker."""
    if pcm.rate == rate or not pcm.data:
        return Pcm(pcm.data, rate)
    s = pcm.samples()
    n = max(1, round(len(s) * rate / pcm.rate))
    step = (len(s) - 1) / max(1, n - 1)
    out = array("h", bytes(2 * n))
    last = len(s) - 1
    for i in range(n):
        x = i * step
        j = int(x)
        k = j + 1 if j < last else last
        out[i] = round(s[j] + (s[k] - s[j]) * (x - j))
    return _pcm(out, rate)


def scale(pcm: Pcm, volume: float) -> Pcm:
    """Multiply every sample by ``volume`` (0.0-1.0), so 0.5 halves the amplitude."""
    if not 0.0 <= volume <= 1.0:
        raise ValueError(f"volume must be 0.0-1.0, not {volume}")
    if volume == 1.0:
        return pcm
    try:  # numpy comes with pyopenjtalk-plus: ~0.3 ms instead of ~15 ms per 2 s of audio, which
        import numpy as np  # matters as the background warm-up must not hold the GIL for long
    except ImportError:
        return _pcm(array("h", (round(v * volume) for v in pcm.samples())), pcm.rate)
    x = np.frombuffer(pcm.data, dtype="<i2").astype(np.float64)
    return Pcm(np.round(x * volume).astype("<i2").tobytes(), pcm.rate)


def peak(pcm: Pcm) -> int:
    s = pcm.samples()
    return max((abs(v) for v in s), default=0)


def trim(pcm: Pcm, threshold: int = 300, keep_s: float = 0.03) -> Pcm:
    """Cut leading and trailing silence (engines pad both ends), keeping ``keep_s`` of it."""
    s = pcm.samples()
    first = _first_loud(s, threshold, range(len(s)))
    last = _first_loud(s, threshold, range(len(s) - 1, -1, -1))
    if first is None or last is None:
        return Pcm(b"", pcm.rate)
    keep = round(keep_s * pcm.rate)
    start, end = max(0, first - keep), min(len(s), last + 1 + keep)
    return Pcm(pcm.data[2 * start:2 * end], pcm.rate)


def _first_loud(s: array[int], threshold: int, order: range) -> int | None:
    return next((i for i in order if s[i] > threshold or s[i] < -threshold), None)


def concat(pieces: Iterable[Pcm], gap_s: float = 0.0, rate: int = RATE) -> Pcm:
    """Join pieces at ``rate`` with ``gap_s`` of silence between them (not at the ends)."""
    gap = silence(gap_s, rate).data
    parts = [resample(p, rate).data for p in pieces]
    return Pcm(gap.join(p for p in parts if p), rate)


def chime(rate: int = RATE, volume: float = 1.0, tones: tuple[float, ...] = (1318.5, 1046.5),
          note_s: float = 0.55) -> Pcm:
    """A "pinpon" (E6 then C6), each note a struck sine with a soft octave, decaying.

    Generated, not shipped: no audio files to license, and it follows the volume setting.
    """
    n = round(note_s * rate)
    attack = max(1, round(0.005 * rate))
    amp = 0.6 * 32767 * volume
    out = array("h")
    for freq in tones:
        w = 2 * math.pi * freq / rate
        for i in range(n):
            env = min(1.0, i / attack) * math.exp(-4.5 * i / n)
            v = math.sin(w * i) + 0.25 * math.sin(2 * w * i)
            out.append(round(amp * env * v / 1.25))
    return _pcm(out, rate)
