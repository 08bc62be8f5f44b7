"""Open JTalk (pyopenjtalk-plus) as the default Japanese voice: what it says, that it is really
Open JTalk speaking (not espeak-ng), the male transform, the fallback and the phrase cache."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pyopenjtalk
import pytest
from conftest import unavailable
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.devices.health import HealthBoard
from edge.devices.voice import (
    Announcement,
    EspeakEngine,
    NullSink,
    OpenJTalkEngine,
    Sink,
    VoiceService,
    VoiceSettings,
    VoiceZone,
    audio,
    choose_engine,
    numbers_ja,
    service,
)
from edge.devices.voice.audio import Pcm
from edge.devices.voice.cache import PhraseCache
from edge.devices.voice.engines import OK, Availability, Engine, Gender
from edge.devices.voice.jtalk import MALE_FORMANT, MALE_HALF_TONES, spoken_text
from edge.devices.voice.sinks import PlayRecord

CALL = "123番の方、3番窓口へお越しください。"
NAMES = {"ja": "3番窓口", "en": "Counter 3"}


# --- measuring audio -------------------------------------------------------------------------


def samples(pcm: Pcm) -> npt.NDArray[np.float64]:
    return np.frombuffer(pcm.data, dtype="<i2").astype(np.float64)


def rms(pcm: Pcm) -> float:
    return float(np.sqrt(np.mean(samples(pcm) ** 2)))


def median_f0(pcm: Pcm, lo: float = 60.0, hi: float = 500.0) -> float:
    """Median F0 (Hz) of the voiced frames, by YIN's cumulative-mean-normalised difference.

    Works at 8 kHz (enough for F0 up to 500 Hz); frames quieter than half the RMS are skipped,
    and a frame counts as voiced when its normalised difference dips below 0.15.
    """
    rate = 8000
    x = samples(audio.resample(pcm, rate))
    n, tmax, tmin = int(0.04 * rate), int(rate / lo), int(rate / hi)
    level = np.sqrt(np.mean(x ** 2))
    found: list[float] = []
    for start in range(0, len(x) - n - tmax, n // 2):
        frame = x[start:start + n + tmax]
        if np.sqrt(np.mean(frame[:n] ** 2)) < 0.5 * level:
            continue
        d = np.array([np.sum((frame[:n] - frame[t:t + n]) ** 2) for t in range(tmax + 1)])
        cmnd = np.ones_like(d)
        cmnd[1:] = d[1:] * np.arange(1, tmax + 1) / np.maximum(np.cumsum(d[1:]), 1e-12)
        below = np.flatnonzero(cmnd[tmin:] < 0.15)
        if below.size == 0:
            continue
        t = tmin + int(below[0])
        while t < tmax and cmnd[t + 1] < cmnd[t]:
            t += 1
        found.append(rate / t)
    assert len(found) >= 10, "too few voiced frames to estimate F0"
    return float(np.median(found))


def test_f0_estimator_finds_known_tones() -> None:
    for f in (120.0, 200.0, 380.0):
        t = np.arange(int(0.5 * audio.RATE)) / audio.RATE
        wave = 8000 * (np.sin(2 * np.pi * f * t) + 0.5 * np.sin(4 * np.pi * f * t))
        pcm = Pcm(np.round(wave).astype("<i2").tobytes())
        assert median_f0(pcm) == pytest.approx(f, rel=0.03)


@pytest.fixture(scope="module")
def jtalk() -> OpenJTalkEngine:
    e = OpenJTalkEngine()
    assert e.availability().ok, e.availability().reason  # a dependency: never skipped
    return e


def render(engine: OpenJTalkEngine | EspeakEngine, text: str, gender: str,
           tmp_path: Path) -> Pcm:
    out = tmp_path / f"{engine.name}-{gender}-{abs(hash(text))}.wav"
    engine.render(text, "ja", gender, out)  # type: ignore[arg-type]
    return audio.read_wav(out)


# --- what it says ------------------------------------------------------------------------------


def katakana(hiragana: str) -> str:
    kata = "".join(chr(ord(c) + 0x60) if "\u3041" <= c <= "\u3096" else c for c in hiragana)
    return kata.replace("ュウ", "ュー").replace("ョウ", "ョー")  # Open JTalk writes long vowels


def reading_of(n: int) -> str:
    return str(pyopenjtalk.g2p(spoken_text(f"{n}番の方、"), kana=True))


def test_the_call_is_read_as_a_person_would() -> None:
    assert pyopenjtalk.g2p(spoken_text(CALL), kana=True) == (
        "ヒャクニジューサンバンノカタ、サンバンマドグチエオコシクダサイ。")
    assert spoken_text("窓口の方へお進みください") == "窓口の方へお進みください"  # direction


def test_every_ticket_number_up_to_1199_is_read_right() -> None:
    wrong = [(n, reading_of(n)) for n in range(1, 1200)
             if reading_of(n) != katakana(numbers_ja.reading(n)) + "バンノカタ、"]
    assert wrong == []  # 110 was ヒャクトーバン (the police number) before READING_FIXES


@settings(max_examples=200, deadline=None)
@given(st.integers(1200, numbers_ja.MAX))
def test_large_ticket_numbers_are_read_right(n: int) -> None:
    assert reading_of(n) == katakana(numbers_ja.reading(n)) + "バンノカタ、"


# --- it is Open JTalk speaking -----------------------------------------------------------------


def test_default_japanese_engine_is_open_jtalk(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    engine = choose_engine("auto", "ja")
    assert isinstance(engine, OpenJTalkEngine)
    assert engine.name == "open-jtalk"

    def no_process(*args: object, **kw: object) -> None:
        raise AssertionError(f"a process was started: {args[:1]}")

    monkeypatch.setattr(subprocess, "run", no_process)  # in-process: no espeak-ng behind it
    monkeypatch.setattr(subprocess, "Popen", no_process)
    pcm = render(engine, CALL, "female", tmp_path)
    assert pcm.rate == audio.RATE
    assert 2.0 < pcm.duration < 6.0, pcm.duration
    assert rms(pcm) > 1500, rms(pcm)  # speech, not silence (silence is 0; espeak-ng ~3000)
    assert median_f0(pcm) > 300  # Mei's voice (~380 Hz); espeak-ng's ja+f3 is ~200 Hz


def test_espeak_ng_sounds_different(tmp_path: Path, jtalk: OpenJTalkEngine) -> None:
    """The signature used above tells the engines apart: espeak-ng's female is far lower."""
    espeak = EspeakEngine()
    if not espeak.availability().ok:
        unavailable(f"espeak-ng cannot run: {espeak.availability().reason}")
    kana = "ひゃくにじゅうさんばんのかた、さんばんまどぐちへおこしください。"
    assert median_f0(render(espeak, kana, "female", tmp_path)) < 260


def test_male_is_lower_than_female(tmp_path: Path, jtalk: OpenJTalkEngine) -> None:
    female = render(jtalk, CALL, "female", tmp_path)
    male = render(jtalk, CALL, "male", tmp_path)
    f_hz, m_hz = median_f0(female), median_f0(male)
    expected = MALE_FORMANT * 2 ** (MALE_HALF_TONES / 12)  # about 0.42
    assert m_hz < 0.6 * f_hz, (f_hz, m_hz)
    assert m_hz == pytest.approx(expected * f_hz, rel=0.15), (f_hz, m_hz)
    assert male.duration == pytest.approx(female.duration, rel=0.1)  # same pace
    assert rms(male) > 1500
    assert jtalk.voice("ja", "male") != jtalk.voice("ja", "female")


def test_an_installed_male_voice_is_used_as_is(tmp_path: Path) -> None:
    bundled = Path(pyopenjtalk.DEFAULT_HTS_VOICE.decode())
    male_file = tmp_path / "voices" / "takumi_male.htsvoice"  # any name without a female mark
    male_file.parent.mkdir()
    male_file.write_bytes(bundled.read_bytes())
    e = OpenJTalkEngine(voice_paths=[tmp_path / "voices"], voice_dirs=[])
    assert e.availability().ok
    assert e.pick("male") == (male_file, 0.0, 1.0)
    assert e.pick("female") == (bundled, 0.0, 1.0)
    assert e.voice("ja", "male").startswith("takumi_male@ht0@vt1")
    assert render(e, "1番の方、", "male", tmp_path).duration > 0.5


# --- fallback ----------------------------------------------------------------------------------


class KeepSink(NullSink):
    def __init__(self) -> None:
        super().__init__()
        self.clips: list[Pcm] = []

    async def play(self, clip: Pcm, label: str) -> PlayRecord:
        self.clips.append(clip)
        return await super().play(clip, label)


async def speak_one(tmp_path: Path, board: HealthBoard, sink: Sink,
                    languages: tuple[str, ...] = ("ja",)) -> VoiceService:
    svc = VoiceService(VoiceSettings(cache_dir=tmp_path / "cache", languages=languages,
                                     prerender_numbers="none", lookahead=0, chime=False),
                       [VoiceZone("hall", None, sink)], board=board)
    await svc.start({"3": NAMES})
    svc.announce(Announcement(123, "3", NAMES, {}))
    await svc.idle()
    await svc.stop()
    return svc


async def test_service_speaks_japanese_with_open_jtalk(tmp_path: Path) -> None:
    board, sink = HealthBoard(), KeepSink()
    svc = await speak_one(tmp_path, board, sink, ("ja", "en"))
    assert svc.engine_names() == {"ja": "open-jtalk", "en": "espeak-ng"}
    assert svc.engines["espeak-ng"].calls == 2  # English only: counter phrase, number phrase
    h = board.get("voice")
    assert h is not None
    assert (h.state, h.reason) == ("ok", None)
    ja = Pcm(sink.clips[0].data[:2 * round(2.0 * audio.RATE)])  # the Japanese block comes first
    assert median_f0(ja) > 300


async def test_falls_back_to_espeak_ng_when_pyopenjtalk_cannot_load(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if not EspeakEngine().availability().ok:
        unavailable("espeak-ng is needed as the fallback")
    monkeypatch.setitem(sys.modules, "pyopenjtalk", None)  # `import pyopenjtalk` now fails
    board, sink = HealthBoard(), KeepSink()
    svc = await speak_one(tmp_path, board, sink)
    assert svc.engine_names() == {"ja": "espeak-ng"}
    h = board.get("voice")
    assert h is not None
    assert (h.state, h.reason) == ("degraded", "engine_fallback")
    assert "ja: open-jtalk: pyopenjtalk could not be loaded: ModuleNotFoundError" in h.detail
    assert h.view()["message"]["ja"].startswith("主の音声エンジン")
    assert 2.0 < sink.clips[0].duration < 8.0  # espeak-ng spoke the kana text
    assert median_f0(sink.clips[0]) < 260


# --- the phrase cache --------------------------------------------------------------------------


def test_cache_hits_on_the_second_call_and_misses_on_any_change(
        tmp_path: Path, jtalk: OpenJTalkEngine) -> None:
    cache = PhraseCache(tmp_path)
    before = jtalk.calls
    first = cache.get(jtalk, "ja", "female", "3番窓口へお越しください。", 0.8)
    assert cache.get(jtalk, "ja", "female", "3番窓口へお越しください。", 0.8) == first
    assert (jtalk.calls - before, cache.misses, cache.hits) == (1, 1, 1)
    assert PhraseCache(tmp_path).get(jtalk, "ja", "female", "3番窓口へお越しください。",
                                     0.8) == first  # from disk after a restart
    assert jtalk.calls - before == 1
    cache.get(jtalk, "ja", "male", "3番窓口へお越しください。", 0.8)  # voice
    cache.get(jtalk, "ja", "female", "3番窓口へお越しください。", 0.5)  # volume
    cache.get(jtalk, "ja", "female", "3番窓口までお越しください。", 0.8)  # template text
    assert jtalk.calls - before == 4
    espeak = EspeakEngine()
    keys = {PhraseCache.key(e, e.voice("ja", "female"), "さんばん", 0.8) for e in (jtalk, espeak)}
    assert len(keys) == 2  # engine


# --- preparing numbers with a slow engine --------------------------------------------------------


class SlowEngine(Engine):
    """Open JTalk's pace (~0.1 s a phrase) with a tone instead of speech; counts its calls."""

    name = "slow"
    reads_kanji = True

    def _check(self) -> Availability:
        return OK

    def supports(self, lang: str) -> bool:
        return True

    def voice(self, lang: str, gender: Gender) -> str:
        return "slow"

    def _render(self, text: str, lang: str, gender: Gender, out: Path) -> None:
        time.sleep(0.1)
        t = np.arange(int(0.3 * audio.RATE)) / audio.RATE
        audio.write_wav(out, Pcm(np.round(8000 * np.sin(2 * np.pi * 300 * t))
                                 .astype("<i2").tobytes()))


async def test_next_numbers_are_prepared_before_the_whole_range(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(service, "RANGE_QUIET_S", 1.0)
    engine = SlowEngine()
    svc = VoiceService(VoiceSettings(cache_dir=tmp_path / "cache", languages=("ja",),
                                     number_range=(1, 400), lookahead=3),
                       [VoiceZone("hall", None, NullSink())], engines={"open-jtalk": engine})
    await svc.start({"3": NAMES})
    await svc.ready()  # counter phrases and the day's first numbers (1-3)

    def cached(n: int) -> bool:
        return svc.cache.has(engine, "ja", "female", f"{n}番の方、", svc.settings.volume)

    assert all(cached(n) for n in (1, 2, 3))
    svc.announce(Announcement(200, "3", NAMES, {}))
    await svc.idle()
    t0 = time.perf_counter()
    await svc.ready()  # the next numbers; the range (slow engine: prepared too) can wait
    assert time.perf_counter() - t0 < 3.0
    assert all(cached(n) for n in (201, 202, 203))
    assert not cached(400)  # the range is still being prepared, behind them
    assert not svc._range.empty()
    # a busy hall: calls every 0.3 s; the range waits (at most the phrase in hand finishes)
    before = svc._range.qsize()
    for n in range(210, 216):
        svc.announce(Announcement(n, "3", NAMES, {}))
        await svc.idle()
        await asyncio.sleep(0.3)
    await svc.ready()
    assert before - svc._range.qsize() <= 2
    quiet_from = svc._range.qsize()
    await asyncio.sleep(3.0)  # quiet from 1 s after the last call: the range moves on
    assert svc._range.qsize() < quiet_from - 2
    await svc.stop()


def test_a_broken_voice_file_is_skipped(tmp_path: Path) -> None:
    (tmp_path / "broken_male.htsvoice").write_bytes(b"not a voice")
    e = OpenJTalkEngine(voice_paths=[tmp_path], voice_dirs=[])
    assert e.availability().ok
    assert e.site_voices == []
    assert e.pick("male") == (e.bundled, MALE_HALF_TONES, MALE_FORMANT)  # the transform instead
