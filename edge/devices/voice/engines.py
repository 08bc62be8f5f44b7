"""Speech engines that render text to a WAV file, each saying whether it can run here and why.

Why three: Open JTalk (``jtalk``, in-process through the pyopenjtalk-plus wheel, which carries
its dictionary and a voice) sounds best in Japanese and reads kanji; espeak-ng is everywhere and
reads kana, Chinese and Korean, and speaks Japanese when Open JTalk cannot load; pyttsx3 reaches
the OS voices (SAPI on Windows). ``choose_engine`` picks per language, best first.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

_LOGGER = logging.getLogger(__name__)

Gender = Literal["male", "female"]
EnginePreference = Literal["auto", "open-jtalk", "espeak-ng", "pyttsx3"]
ENGINE_NAMES: tuple[str, ...] = ("open-jtalk", "espeak-ng", "pyttsx3")


@dataclass(frozen=True, slots=True)
class Availability:
    ok: bool
    code: str  # ok | no_binary | no_module | init_failed | timeout
    reason: str  # for people and logs, e.g. "pyopenjtalk could not be loaded: ImportError: …"


OK = Availability(True, "ok", "ok")


class EngineError(RuntimeError):
    """Rendering failed (the engine ran but gave no audio, or timed out)."""


class Engine(ABC):
    """Renders one phrase to a WAV file. Thread-safe; ``calls`` counts renders (for tests)."""

    name: ClassVar[str]
    reads_kanji: ClassVar[bool] = False

    def __init__(self, timeout_s: float = 20.0) -> None:
        self.timeout_s = timeout_s
        self.calls = 0
        self._availability: Availability | None = None

    def availability(self, refresh: bool = False) -> Availability:
        if self._availability is None or refresh:
            self._availability = self._check()
        return self._availability

    @abstractmethod
    def _check(self) -> Availability: ...

    @abstractmethod
    def supports(self, lang: str) -> bool: ...

    @abstractmethod
    def voice(self, lang: str, gender: Gender) -> str:
        """The voice used for ``lang``/``gender``; part of the cache key."""

    @abstractmethod
    def _render(self, text: str, lang: str, gender: Gender, out: Path) -> None: ...

    def render(self, text: str, lang: str, gender: Gender, out: Path) -> None:
        avail = self.availability()
        if not avail.ok:
            raise EngineError(f"{self.name}: {avail.reason}")
        self.calls += 1
        self._render(text, lang, gender, out)
        if not out.is_file() or out.stat().st_size <= 44:
            raise EngineError(f"{self.name}: no audio for {text!r}")

    def close(self) -> None:
        """Release helpers (a worker process); the engine restarts them when used again."""
        return None

    def _run(self, argv: list[str], text: str) -> None:
        try:
            proc = subprocess.run(argv, input=text.encode("utf-8"), capture_output=True,
                                  timeout=self.timeout_s, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise EngineError(f"{self.name}: {exc}") from exc
        if proc.returncode != 0:
            err = proc.stderr.decode("utf-8", "replace").strip()[-300:]
            raise EngineError(f"{self.name} exit {proc.returncode}: {err}")


# --- voice files (for Open JTalk, see ``jtalk``) ----------------------------------------------

VOICE_DIRS = (Path("/usr/share/hts-voice"), Path("/usr/local/share/hts-voice"))
_FEMALE = re.compile(r"mei|female|tohoku-f|(^|[_-])f\d", re.IGNORECASE)


def is_female_voice(path: Path) -> bool:
    """HTS voice files carry no gender; their names do (mei, tohoku-f01, ..._f001)."""
    return bool(_FEMALE.search(path.stem))


def find_voices(places: Sequence[Path]) -> list[Path]:
    """``*.htsvoice`` files: given files, and any below given folders; sorted per place."""
    found: list[Path] = []
    for p in places:
        if p.is_file() and p.suffix == ".htsvoice":
            found.append(p)
        elif p.is_dir():
            found += sorted(p.rglob("*.htsvoice"))
    return list(dict.fromkeys(found))


# --- espeak-ng ------------------------------------------------------------------------------

ESPEAK_VOICES = {"ja": "ja", "en": "en-us", "zh": "cmn-latn-pinyin", "ko": "ko"}
VARIANTS: dict[Gender, str] = {"male": "m3", "female": "f3"}


class EspeakEngine(Engine):
    """``espeak-ng -v ja+f3 -s SPEED -a AMPLITUDE -w out.wav`` (text on stdin, UTF-8)."""

    name = "espeak-ng"

    def __init__(self, binary: str = "espeak-ng", speed: int = 150, amplitude: int = 100,
                 timeout_s: float = 20.0) -> None:
        super().__init__(timeout_s)
        self.binary, self.speed, self.amplitude = binary, speed, amplitude
        self.exe: str | None = None
        self._langs: dict[str, bool] = {}

    def _check(self) -> Availability:
        self.exe = shutil.which(self.binary)
        if self.exe is None:
            return Availability(False, "no_binary", f"{self.binary} not installed")
        try:
            subprocess.run([self.exe, "--version"], capture_output=True, check=True, timeout=5)
        except (OSError, subprocess.SubprocessError) as exc:
            return Availability(False, "init_failed", f"{self.binary} --version: {exc}")
        return OK

    def supports(self, lang: str) -> bool:
        if lang not in self._langs:
            ok = False
            if self.availability().ok and self.exe and lang in ESPEAK_VOICES:
                proc = subprocess.run([self.exe, f"--voices={lang}"], capture_output=True,
                                      timeout=5, check=False)
                ok = len(proc.stdout.splitlines()) > 1  # a header, then one line per voice
            self._langs[lang] = ok
        return self._langs[lang]

    def voice(self, lang: str, gender: Gender) -> str:
        return f"{ESPEAK_VOICES.get(lang, lang)}+{VARIANTS[gender]}"

    def _render(self, text: str, lang: str, gender: Gender, out: Path) -> None:
        assert self.exe is not None
        self._run([self.exe, "-b", "1", "-v", self.voice(lang, gender), "-s", str(self.speed),
                   "-a", str(self.amplitude), "-w", str(out)], text)


# --- pyttsx3 --------------------------------------------------------------------------------


class Pyttsx3Engine(Engine):
    """pyttsx3 ``save_to_file`` + ``runAndWait`` in a worker process (see ``pyttsx3_worker``).

    A worker that does not start, or does not answer within ``timeout_s``, is killed and the
    engine reports itself unavailable ("timeout"), so a broken driver never stalls the queue.
    """

    name = "pyttsx3"

    def __init__(self, rate: int = 150, init_timeout_s: float = 10.0,
                 timeout_s: float = 20.0, python: str = sys.executable) -> None:
        super().__init__(timeout_s)
        self.rate, self.init_timeout_s, self.python = rate, init_timeout_s, python
        self.driver = ""
        self.voices: list[dict[str, Any]] = []
        self._proc: subprocess.Popen[str] | None = None
        self._lock = threading.Lock()

    def _check(self) -> Availability:
        with self._lock:
            try:
                self._start()
            except EngineError as exc:
                code = "timeout" if "no answer" in str(exc) else "init_failed"
                return Availability(False, code, str(exc))
        return OK

    def _start(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            return
        root = str(Path(__file__).resolve().parents[3])  # where the ``edge`` package lives
        path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH", "")) if p)
        env = {**os.environ, "PYTHONIOENCODING": "utf-8", "PYTHONPATH": path}
        self._proc = subprocess.Popen(
            [self.python, "-m", "edge.devices.voice.pyttsx3_worker"], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, encoding="utf-8",
            env=env, start_new_session=True)
        hello = self._reply(self.init_timeout_s)
        if not hello.get("ready"):
            self.close()
            raise EngineError(f"pyttsx3 init failed: {hello.get('error')}")
        self.driver, self.voices = str(hello.get("driver", "")), list(hello.get("voices", []))

    def _reply(self, timeout_s: float) -> dict[str, Any]:
        """One JSON line from the worker, or kill it after ``timeout_s``."""
        assert self._proc is not None
        assert self._proc.stdout is not None
        stdout, box = self._proc.stdout, list[str]()
        reader = threading.Thread(target=lambda: box.append(stdout.readline()), daemon=True)
        reader.start()
        reader.join(timeout_s)
        if not box:
            self.close()
            raise EngineError(f"pyttsx3 worker: no answer within {timeout_s:g} s")
        if not box[0]:
            self.close()
            raise EngineError("pyttsx3 worker exited")
        reply: dict[str, Any] = json.loads(box[0])
        return reply

    def close(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            if sys.platform == "win32":
                proc.kill()
            else:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)  # its children too: they hold the pipes
            proc.wait()
            for pipe in (proc.stdin, proc.stdout):
                if pipe is not None:
                    with contextlib.suppress(OSError):
                        pipe.close()

    def _candidates(self, lang: str) -> list[dict[str, Any]]:
        code = ESPEAK_VOICES.get(lang, lang) if self.driver == "espeak" else lang
        out = []
        for v in self.voices:
            names = [str(x).lower() for x in v["languages"]] + [str(v["id"]).lower()]
            if any(x == code or x.startswith(f"{code}-") or x.endswith(f"/{code}")
                   for x in names):
                out.append(v)
        return out

    def supports(self, lang: str) -> bool:
        return self.availability().ok and bool(self._candidates(lang))

    def voice(self, lang: str, gender: Gender) -> str:
        if self.driver == "espeak":  # espeak takes a gender variant; its voice ids are no names
            return f"{ESPEAK_VOICES.get(lang, lang)}+{VARIANTS[gender]}"
        candidates = self._candidates(lang)
        same = [v for v in candidates if str(v["gender"]).lower() == gender]
        chosen = (same or candidates)[0] if candidates else None
        return str(chosen["id"]) if chosen else lang

    def _render(self, text: str, lang: str, gender: Gender, out: Path) -> None:
        voice = self.voice(lang, gender)
        req = {"text": text, "voice": voice, "rate": self.rate, "volume": 1.0,
               "out": str(out.resolve()), "expect_voice": voice}
        with self._lock:
            self._start()
            assert self._proc is not None
            assert self._proc.stdin is not None
            try:
                self._proc.stdin.write(json.dumps(req, ensure_ascii=False) + "\n")
                self._proc.stdin.flush()
            except OSError as exc:
                self.close()
                raise EngineError(f"pyttsx3 worker: {exc}") from exc
            try:
                reply = self._reply(self.timeout_s)
            except EngineError:
                self._availability = Availability(False, "timeout", "pyttsx3 stopped answering")
                raise
        if not reply.get("ok"):
            raise EngineError(f"pyttsx3: {reply.get('error')}")


# --- choice ---------------------------------------------------------------------------------


def default_engines(open_jtalk_voices: Sequence[Path] = ()) -> dict[str, Engine]:
    from edge.devices.voice.jtalk import OpenJTalkEngine  # it imports this module

    return {"open-jtalk": OpenJTalkEngine(open_jtalk_voices), "espeak-ng": EspeakEngine(),
            "pyttsx3": Pyttsx3Engine()}


def engine_order(preference: EnginePreference, lang: str) -> list[str]:
    """Japanese: Open JTalk, espeak-ng (kana), pyttsx3; others: espeak-ng, pyttsx3.

    A named preference goes first; the rest stay as fallbacks so a hall is never silent.
    """
    auto = ["open-jtalk", "espeak-ng", "pyttsx3"] if lang == "ja" else ["espeak-ng", "pyttsx3"]
    if preference != "auto":
        auto = [preference, *[n for n in auto if n != preference]]
    return auto


def choose_engine(preference: EnginePreference, lang: str,
                  engines: Mapping[str, Engine] | None = None) -> Engine | None:
    """The first engine in ``engine_order`` that is available and speaks ``lang``."""
    pool = engines if engines is not None else default_engines()
    for name in engine_order(preference, lang):
        engine = pool.get(name)
        if engine is None:
            continue
        a = engine.availability()
        if a.ok and engine.supports(lang):
            return engine
        _LOGGER.debug("voice engine %s for %s: %s", name, lang, a.reason if not a.ok
                      else "language not supported")
    return None
