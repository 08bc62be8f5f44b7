"""Open JTalk in-process through the ``pyopenjtalk-plus`` wheel: the default Japanese voice.

Why this engine first for Japanese: it reads kanji and numerals with Japanese accent
(「123番の方、3番窓口へお越しください。」 -> ヒャクニジューサンバンノカタ、サンバンマドグチエ…),
which residents follow in a noisy hall far better than espeak-ng's kana reading. The wheel
carries Open JTalk, its dictionary and one HTS voice, so it speaks offline with nothing else
installed (MIT; the voice "Mei" is CC BY 3.0, Nagoya Institute of Technology / MMDAgent).

Voices: the wheel ships ONE voice, ``mei_normal`` (female, median F0 about 380 Hz). The male
voice is made from it by a documented transform, unless a male ``*.htsvoice`` file is installed
(``VoiceSettings.open_jtalk_voices``, or below ``/usr/share/hts-voice``), which is then used as is:

- Mei is synthesised ``1 / MALE_FORMANT`` times faster and ``MALE_HALF_TONES`` half tones lower,
  then played back ``MALE_FORMANT`` times slower (the samples are relabelled at
  ``48000 * MALE_FORMANT`` Hz before resampling). Playing slower lowers every frequency, so the
  formants drop by ``MALE_FORMANT`` (a vocal tract ~18 % longer) and the pitch by
  ``MALE_FORMANT * 2 ** (MALE_HALF_TONES / 12)`` (about 0.42: ~380 Hz -> ~160 Hz), while the
  speed change cancels out and the duration stays that of the female rendering. A pitch shift
  alone (``half_tone``) keeps a female vocal tract and sounds like a low woman, hence both.
  ``tests/voice/`` measures that the male rendering's F0 is lower.

Loading: ``import pyopenjtalk`` takes about a second (dictionaries, Sudachi). It happens once,
in ``availability()``, which ``VoiceService.start`` runs in a worker thread; renders run in
the service's worker threads too, so the event loop never waits for it. A failed import makes
the engine unavailable (code ``no_module``) and the service falls back to espeak-ng, reporting
the voice device as degraded with reason ``engine_fallback``.
"""

from __future__ import annotations

import contextlib
import io
import logging
import math
import re
import sys
import threading
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from edge.devices.voice import audio
from edge.devices.voice.audio import Pcm
from edge.devices.voice.engines import (
    OK,
    VOICE_DIRS,
    Availability,
    Engine,
    EngineError,
    Gender,
    find_voices,
    is_female_voice,
)

if TYPE_CHECKING:
    from types import ModuleType

    import numpy as np
    import numpy.typing as npt
    from pyopenjtalk.htsengine import HTSEngine

_LOGGER = logging.getLogger(__name__)

MALE_FORMANT = 0.85  # formants x0.85 (vocal tract ~18 % longer)
MALE_HALF_TONES = -12.0  # with the formant step: pitch x0.425 overall
GAIN = 0.75  # Mei is ~3 dB louder than espeak-ng; both blocks of a call should match
RENDER_VERSION = "pj1"  # bump when the rendering below changes (it is part of the cache key)
BUNDLED = "mei_normal"

# Readings Open JTalk gets wrong in call texts (tests/voice/ checks every number 1-1199 and a
# sample up to 99999 against ``numbers_ja``):
# - 「の方」 is read ノホー (direction) even in 「123番の方」 (the person, ノカタ); direction is
#   only meant before へ/に/向;
# - 「110番」 is read ヒャクトーバン, the police number; a ticket 110 is ヒャクジューバン.
READING_FIXES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"の方(?![へに向])"), "のかた"),
    (re.compile(r"(?<![0-9０-９])(?:110|１１０)(?=番)"), "百十"),
)


def import_pyopenjtalk() -> ModuleType:
    """The heavy import (~1 s), a seam for tests that make it fail.

    The wheel prints a notice on stdout at import when onnxruntime is absent (it then reads 「何」
    by rule instead of by a model; call texts have no 「何」). Stdout may be a JSON report
    (``madoguchi bench``), so the notice goes to the log instead.
    """
    if "pyopenjtalk" in sys.modules:
        import pyopenjtalk

        return pyopenjtalk
    notice = io.StringIO()
    with contextlib.redirect_stdout(notice):
        import pyopenjtalk
    if text := notice.getvalue().strip():
        _LOGGER.info("pyopenjtalk: %s", " ".join(text.split()))
    return pyopenjtalk


def spoken_text(text: str) -> str:
    """``text`` with ``READING_FIXES`` applied: what Open JTalk is actually given."""
    for pattern, repl in READING_FIXES:
        text = pattern.sub(repl, text)
    return text


class OpenJTalkEngine(Engine):
    """Japanese only; ``reads_kanji``: templates give it natural text, numerals included."""

    name: ClassVar[str] = "open-jtalk"
    reads_kanji: ClassVar[bool] = True

    def __init__(self, voice_paths: Sequence[Path] = (), voice_dirs: Sequence[Path] = VOICE_DIRS,
                 speed: float = 1.0, timeout_s: float = 20.0) -> None:
        super().__init__(timeout_s)
        self.voice_paths, self.voice_dirs, self.speed = voice_paths, voice_dirs, speed
        self.module: ModuleType | None = None
        self.bundled: Path | None = None
        self.site_voices: list[Path] = []
        self.version = ""
        self._local = threading.local()  # one HTS engine per thread and voice: no lock waits
        self._load_lock = threading.Lock()

    def _check(self) -> Availability:
        with self._load_lock:
            try:
                pj = import_pyopenjtalk()
            except Exception as exc:  # ImportError, or a broken binary (OSError)
                return Availability(False, "no_module",
                                    f"pyopenjtalk could not be loaded: {type(exc).__name__}: {exc}")
            try:
                self.bundled = Path(pj.DEFAULT_HTS_VOICE.decode("utf-8"))
                self.site_voices = [v for v in find_voices([*self.voice_paths, *self.voice_dirs])
                                    if self._loads(v)]
                self.version = _version()
                self.module = pj
                self._synthesize("テスト", "female")  # load dictionary and voice now
            except Exception as exc:
                self.module = None
                return Availability(False, "init_failed",
                                    f"pyopenjtalk cannot synthesise: {type(exc).__name__}: {exc}")
        return OK

    def _loads(self, path: Path) -> bool:
        """Whether an installed voice file loads; a broken one is skipped (logged), so it
        cannot silence the male voice at the first call."""
        try:
            self._hts(path)
        except (RuntimeError, OSError, ValueError) as exc:
            _LOGGER.warning("voice file %s does not load, not used: %s", path, exc)
            return False
        return True

    def supports(self, lang: str) -> bool:
        return lang == "ja"

    def pick(self, gender: Gender) -> tuple[Path, float, float]:
        """(voice file, half tones, formant scale) for ``gender``; see the module docstring."""
        if self.bundled is None:
            raise EngineError(f"{self.name}: {self.availability().reason}")
        females = [v for v in [*self.site_voices, self.bundled] if is_female_voice(v)]
        males = [v for v in self.site_voices if not is_female_voice(v)]
        if gender == "female":
            return (females or [self.bundled])[0], 0.0, 1.0
        if males:
            return males[0], 0.0, 1.0
        return self.bundled, MALE_HALF_TONES, MALE_FORMANT

    def voice(self, lang: str, gender: Gender) -> str:
        if not self.availability().ok:
            raise EngineError(f"{self.name}: {self.availability().reason}")
        path, half_tones, formant = self.pick(gender)
        return (f"{path.stem}@ht{half_tones:g}@vt{formant:g}@r{self.speed:g}"
                f"@{self.version}@{RENDER_VERSION}")

    def _render(self, text: str, lang: str, gender: Gender, out: Path) -> None:
        audio.write_wav(out, self._synthesize(text, gender))

    def _synthesize(self, text: str, gender: Gender) -> Pcm:
        pj = self.module
        if pj is None:
            raise EngineError(f"{self.name}: not loaded")
        path, half_tones, formant = self.pick(gender)
        try:
            labels = pj.extract_fullcontext(spoken_text(text))
            hts = self._hts(path)
            hts.set_speed(self.speed / formant)
            hts.add_half_tone(half_tones)
            samples = hts.synthesize(labels)
            rate = hts.get_sampling_frequency()
        except (RuntimeError, ValueError, MemoryError) as exc:
            raise EngineError(f"{self.name}: {exc}") from exc
        return to_pcm(samples, rate * formant)

    def _hts(self, path: Path) -> HTSEngine:
        engines: dict[Path, HTSEngine] = self._local.__dict__.setdefault("engines", {})
        if path not in engines:
            from pyopenjtalk.htsengine import HTSEngine

            engines[path] = HTSEngine(str(path).encode("utf-8"))
        return engines[path]


def _version() -> str:
    try:
        return metadata.version("pyopenjtalk-plus")
    except metadata.PackageNotFoundError:
        return "unknown"


def to_pcm(samples: npt.NDArray[np.float64], rate: float, out_rate: int = audio.RATE) -> Pcm:
    """HTS output (float, 16-bit scale, may exceed it) -> 16-bit PCM at ``out_rate``.

    ``rate`` may be fractional (the male transform relabels it). A windowed-sinc low-pass at
    0.45 x ``out_rate`` before linear interpolation keeps 48 kHz speech from aliasing; then the
    fixed ``GAIN`` and a tanh soft limiter, since some phrases peak at twice full scale.
    """
    import numpy as np

    x = np.asarray(samples, dtype=np.float64) * GAIN
    if x.size == 0:
        return Pcm(b"", out_rate)
    if rate > out_rate:
        cutoff = 0.45 * out_rate / rate  # in cycles per input sample
        taps = np.arange(-32, 33)
        kernel = 2 * cutoff * np.sinc(2 * cutoff * taps) * np.hamming(taps.size)
        x = np.convolve(x, kernel / kernel.sum(), mode="same")
    n = max(1, math.floor(x.size * out_rate / rate))
    y = np.interp(np.arange(n) * (rate / out_rate), np.arange(x.size), x)
    full = 32767.0
    y = full * np.tanh(y / full)
    return Pcm(np.round(y).astype("<i2").tobytes(), out_rate)
