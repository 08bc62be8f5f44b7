"""Voice calls (Q12): number readings, templates, engines (real espeak-ng and pyttsx3), audio
helpers, the phrase cache, and the queue (order, no overlap, recall, zones, health, latency)."""

from __future__ import annotations

import asyncio
import itertools
import math
import stat
import time
import wave
from array import array
from pathlib import Path

import pytest
from conftest import unavailable
from hypothesis import given
from hypothesis import strategies as st

from edge.devices.health import HealthBoard
from edge.devices.voice import (
    Announcement,
    CommandSink,
    EspeakEngine,
    FileSink,
    NullSink,
    OpenJTalkEngine,
    Pyttsx3Engine,
    SinkError,
    TemplateError,
    VoiceService,
    VoiceSettings,
    VoiceZone,
    audio,
    choose_engine,
    load_templates,
    numbers_intl,
    numbers_ja,
)
from edge.devices.voice.audio import Pcm
from edge.devices.voice.cache import PhraseCache
from edge.devices.voice.engines import OK, Availability, Engine, Gender
from edge.devices.voice.sinks import PlayRecord

NAMES = {"ja": "3番窓口", "en": "Counter 3", "zh": "3号窗口", "ko": "3번 창구"}

# --- numbers ---------------------------------------------------------------------------------

JA = {
    0: "ぜろ", 1: "いち", 4: "よん", 7: "なな", 9: "きゅう", 10: "じゅう", 11: "じゅういち",
    14: "じゅうよん", 20: "にじゅう", 99: "きゅうじゅうきゅう", 100: "ひゃく", 101: "ひゃくいち",
    123: "ひゃくにじゅうさん", 200: "にひゃく", 300: "さんびゃく", 400: "よんひゃく",
    600: "ろっぴゃく", 800: "はっぴゃく", 999: "きゅうひゃくきゅうじゅうきゅう", 1000: "せん",
    1001: "せんいち", 2000: "にせん", 3000: "さんぜん", 8000: "はっせん",
    3600: "さんぜんろっぴゃく", 8300: "はっせんさんびゃく", 10000: "いちまん",
    10001: "いちまんいち", 11000: "いちまんせん", 40000: "よんまん", 38000: "さんまんはっせん",
    99999: "きゅうまんきゅうせんきゅうひゃくきゅうじゅうきゅう",
}


@pytest.mark.parametrize(("n", "kana"), sorted(JA.items()))
def test_japanese_reading_table(n: int, kana: str) -> None:
    assert numbers_ja.reading(n) == kana


def test_japanese_digits_and_range() -> None:
    assert numbers_ja.digits_reading(120) == "いち、にい、ぜろ"
    assert numbers_intl.spoken("ja", 305, "digits") == "さん、ぜろ、ごお"
    for bad in (-1, 100_000):
        with pytest.raises(ValueError, match="out of range"):
            numbers_ja.reading(bad)


@given(st.integers(1, 99_999))
def test_japanese_reading_is_hiragana_composed_of_its_parts(n: int) -> None:
    kana = numbers_ja.reading(n)
    assert all("\u3041" <= c <= "\u309f" for c in kana), kana
    for unit in (10_000, 1000, 100, 10):  # the reading of n = its head's reading + the rest's
        head, rest = n - n % unit, n % unit
        if head and rest:
            assert kana == numbers_ja.reading(head) + numbers_ja.reading(rest)


@given(st.integers(0, 99_999), st.integers(0, 99_999))
def test_readings_never_collide(a: int, b: int) -> None:
    for lang in ("ja", "en", "zh", "ko"):
        for style in ("words", "digits"):
            same = numbers_intl.spoken(lang, a, style) == numbers_intl.spoken(lang, b, style)
            assert same == (a == b), (lang, style, a, b)


@given(st.integers(0, 99_999))
def test_digit_readings_have_one_word_per_digit(n: int) -> None:
    assert len(numbers_ja.digits_reading(n).split("、")) == len(str(n))
    assert len(numbers_intl.digits("en", n).split()) == len(str(n))
    assert len(numbers_intl.digits("zh", n)) == len(str(n))


@pytest.mark.parametrize(("n", "en", "zh", "ko"), [
    (0, "zero", "零", "영"), (7, "seven", "七", "칠"), (10, "ten", "十", "십"),
    (15, "fifteen", "十五", "십오"), (21, "twenty-one", "二十一", "이십일"),
    (110, "one hundred ten", "一百一十", "백십"),
    (123, "one hundred twenty-three", "一百二十三", "백이십삼"),
    (1005, "one thousand five", "一千零五", "천오"),
    (10010, "ten thousand ten", "一万零一十", "만십"),
    (20300, "twenty thousand three hundred", "二万零三百", "이만삼백"),
    (99999, "ninety-nine thousand nine hundred ninety-nine", "九万九千九百九十九",
     "구만구천구백구십구"),
])
def test_other_language_numbers(n: int, en: str, zh: str, ko: str) -> None:
    assert (numbers_intl.en_words(n), numbers_intl.zh_numerals(n), numbers_intl.ko_sino(n)) \
        == (en, zh, ko)


def test_digit_by_digit_in_every_language() -> None:
    assert numbers_intl.spoken("en", 123, "digits") == "one two three"
    assert numbers_intl.spoken("zh", 120, "digits") == "一二零"
    assert numbers_intl.spoken("ko", 120, "digits") == "일 이 영"
    assert numbers_intl.spoken("en", 123_456) == "one two three four five six"  # no refusal


def test_names_to_kana_for_engines_without_kanji() -> None:
    assert numbers_ja.to_kana("3番窓口") == ("さんばんまどぐち", "")
    assert numbers_ja.to_kana("１２番 住民票") == ("じゅうにばん じゅうみんひょう", "")
    assert numbers_ja.to_kana("謎窓口") == ("謎まどぐち", "謎")  # reported, never guessed


# --- templates -------------------------------------------------------------------------------


def test_default_templates_compose_every_language() -> None:
    t = load_templates()
    a = Announcement(123, "3", NAMES, {})
    assert t.compose(a, ["ja", "en", "zh", "ko"], kana_only=True) == [
        ("ja", "ひゃくにじゅうさんばんのかた、さんばんまどぐちへおこしください。"),
        ("en", "Number one hundred twenty-three, please come to Counter 3."),
        ("zh", "一百二十三号，请到三号窗口。"),
        ("ko", "백이십삼번 고객님, 삼번 창구에 오십시오."),
    ]
    assert t.compose(a, ["en"], style="digits") == [
        ("en", "Number one two three, please come to Counter 3.")]
    recall = t.compose(Announcement(5, "3", NAMES, {}, recall=True), ["ja"], kana_only=True)
    assert recall == [
        ("ja", "もういちどおよびします。ごばんのかた、さんばんまどぐちへおこしください。")]


def test_names_kana_reading_and_fallbacks() -> None:
    t = load_templates()
    names = {"ja": "税務窓口", "ja-Hira": "ぜいむまどぐち", "en": "Tax counter"}
    a = Announcement(1, "9", names, {})
    assert "ぜいむまどぐちへ" in t.compose(a, ["ja"], kana_only=True)[0][1]
    assert "税務窓口へ" in t.compose(a, ["ja"], kana_only=False)[0][1]  # Open JTalk reads kanji
    assert "Tax counter" in t.compose(a, ["zh"])[0][1]  # no Chinese name: English
    assert "9에" in t.compose(Announcement(1, "9", {}, {}), ["ko"])[0][1]  # no names: the id


def test_phrases_split_so_counter_phrases_are_fixed() -> None:
    t = load_templates()
    phrases = t.phrases(Announcement(8, "3", NAMES, {}), "ja", kana_only=True)
    assert [(p.text, sorted(p.placeholders)) for p in phrases] == [
        ("はちばんのかた、", ["number"]), ("さんばんまどぐちへおこしください。", ["counter"])]


def test_site_file_overrides_per_language_and_key(tmp_path: Path) -> None:
    site = tmp_path / "voice.toml"
    site.write_text('[ja]\ncall = "{number}ばんのおきゃくさま、{counter}へどうぞ。"\n'
                    '[en]\nrecall = "Once more: {number} to {counter} for {service}."\n',
                    encoding="utf-8")
    t = load_templates(site)
    a = Announcement(2, "3", NAMES, {"en": "certificates"})
    assert t.compose(a, ["ja"], kana_only=True)[0][1] == (
        "にばんのおきゃくさま、さんばんまどぐちへどうぞ。")
    assert t.get("ja", "recall", kana=True).startswith("もういちど")  # not overridden
    assert t.compose(Announcement(2, "3", NAMES, {"en": "certificates"}, recall=True),
                     ["en"])[0][1] == "Once more: two to Counter 3 for certificates."
    assert t.compose(a, ["en"])[0][1].startswith("Number two,")
    assert t.origin[("ja", "call")] == f"{site}:2"
    assert t.compose(a, ["ja"])[0][1] == t.compose(a, ["ja"], kana_only=True)[0][1].replace(
        "にばん", "2ばん").replace("さんばんまどぐち", "3番窓口")  # a kana call serves both


def test_japanese_has_a_natural_text_and_a_kana_one(tmp_path: Path) -> None:
    t = load_templates()
    a = Announcement(110, "3", NAMES, {})
    assert t.compose(a, ["ja"]) == [("ja", "110番の方、3番窓口へお越しください。")]
    assert t.compose(a, ["ja"], style="digits")[0][1].startswith("いち、いち、ぜろ番の方、")
    site = tmp_path / "voice.toml"
    site.write_text('[ja]\ncall = "{number}番のお客様、{counter}へどうぞ。"\n'
                    'call_kana = "{number}ばんのおきゃくさま、{counter}へどうぞ。"\n',
                    encoding="utf-8")
    mine = load_templates(site)
    assert mine.compose(a, ["ja"])[0][1] == "110番のお客様、3番窓口へどうぞ。"
    assert mine.compose(a, ["ja"], kana_only=True)[0][1] == (
        "ひゃくじゅうばんのおきゃくさま、さんばんまどぐちへどうぞ。")
    assert mine.get("ja", "recall").startswith("もう一度")  # not overridden: the default


@pytest.mark.parametrize(("body", "message"), [
    ('[ja]\ncall = "{nmber}ばん"\n', r":2: \[ja\]\.call: unknown placeholder \{nmber\}"),
    ('[fr]\ncall = "{number}"\n', r":1: \[fr\]: unknown language"),
    ('[en]\ncal = "{number}"\n', r":2: \[en\]\.cal: unknown key"),
    ('[en]\ncall = "Counter {counter}"\n', r"\[en\]\.call: the template must say \{number\}"),
    ('[ja]\ncall_kana = "{number}番の方"\n', r"\[ja\]\.call_kana: write this in kana.*番方"),
    ('[ja]\ncall = "{number}番の方"\n', r":2: \[ja\]\.call has kanji: also give \[ja\]\.call_kana"),
    ('[en]\ncall_kana = "{number}"\n', r"\[en\]\.call_kana: unknown key"),
    ('[en]\ncall = "{number"\n', r"\[en\]\.call: .*literal braces"),
    ('[en]\ncall = "{number:>5}"\n', r"takes no format"),
    ('[en]\ncall = 3\n', r"\[en\]\.call: must be a string"),
    ("[en\n", r"not valid TOML"),
])
def test_bad_template_files_are_clear_errors(tmp_path: Path, body: str, message: str) -> None:
    site = tmp_path / "bad.toml"
    site.write_text(body, encoding="utf-8")
    with pytest.raises(TemplateError, match=message) as info:
        load_templates(site)
    assert str(site) in str(info.value)


def test_missing_template_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(TemplateError, match="cannot read"):
        load_templates(tmp_path / "nope.toml")


# --- audio -----------------------------------------------------------------------------------


def tone(freq: float, seconds: float, rate: int = audio.RATE, amp: int = 10_000) -> Pcm:
    s = array("h", (round(amp * math.sin(2 * math.pi * freq * i / rate))
                    for i in range(round(seconds * rate))))
    return Pcm(s.tobytes(), rate)


def frequency(pcm: Pcm) -> float:
    s = pcm.samples()
    crossings = sum(1 for a, b in itertools.pairwise(s) if a < 0 <= b)
    return crossings / pcm.duration


def test_volume_scaling_halves_amplitude() -> None:
    loud = tone(440, 0.2)
    half = audio.scale(loud, 0.5)
    assert audio.peak(half) == pytest.approx(audio.peak(loud) / 2, abs=1)
    assert audio.peak(audio.scale(loud, 0.0)) == 0
    with pytest.raises(ValueError, match=r"0\.0-1\.0"):
        audio.scale(loud, 1.5)


def test_chime_is_two_tones_that_decay() -> None:
    c = audio.chime()
    assert 1.0 < c.duration < 1.2
    half = len(c.data) // 2
    first, second = Pcm(c.data[:half]), Pcm(c.data[half:])
    assert frequency(first) == pytest.approx(1318.5, rel=0.03)  # "pin"
    assert frequency(second) == pytest.approx(1046.5, rel=0.03)  # "pon"
    head, tail = Pcm(first.data[: len(first.data) // 4]), Pcm(first.data[-len(first.data) // 4:])
    assert audio.peak(head) > 4 * audio.peak(tail)
    assert audio.peak(audio.chime(volume=0.5)) == pytest.approx(audio.peak(c) / 2, abs=2)


def test_resample_concat_trim_and_wav_roundtrip(tmp_path: Path) -> None:
    hi = tone(500, 1.0, rate=48_000)
    lo = audio.resample(hi, 22_050)
    assert lo.rate == 22_050
    assert lo.duration == pytest.approx(1.0, abs=0.001)
    assert frequency(lo) == pytest.approx(500, rel=0.01)
    joined = audio.concat([hi, tone(300, 0.5)], gap_s=0.25)
    assert joined.duration == pytest.approx(1.75, abs=0.002)
    padded = audio.concat([audio.silence(0.5), tone(300, 0.5), audio.silence(0.7)])
    assert audio.trim(padded, keep_s=0.0).duration == pytest.approx(0.5, abs=0.01)
    assert audio.trim(audio.silence(1.0)).data == b""
    path = tmp_path / "x.wav"
    audio.write_wav(path, joined)
    assert audio.duration(path) == pytest.approx(1.75, abs=0.002)
    assert audio.read_wav(path) == joined
    assert audio.read_wav(audio.wav_bytes(joined)) == joined


# --- engines ---------------------------------------------------------------------------------


def espeak() -> EspeakEngine:
    e = EspeakEngine()
    if not e.availability().ok:
        unavailable(f"espeak-ng cannot run: {e.availability().reason}")
    return e


def wav_seconds(path: Path) -> float:
    with wave.open(str(path), "rb") as w:
        assert (w.getnchannels(), w.getsampwidth()) == (1, 2)
        return w.getnframes() / w.getframerate()


@pytest.mark.parametrize("lang", ["ja", "en"])
def test_espeak_renders_male_and_female(tmp_path: Path, lang: str) -> None:
    e = espeak()
    t = load_templates()
    files: dict[tuple[int, Gender], Path] = {}
    for n in (1, 99_999):
        text = t.compose(Announcement(n, "3", NAMES, {}), [lang], kana_only=True)[0][1]
        for gender in ("male", "female"):
            out = files[(n, gender)] = tmp_path / f"{lang}-{n}-{gender}.wav"
            e.render(text, lang, gender, out)
            assert 0.5 < wav_seconds(out) < 15, (text, wav_seconds(out))
    for gender in ("male", "female"):
        assert wav_seconds(files[(99_999, gender)]) > wav_seconds(files[(1, gender)]) + 1.0
    assert files[(1, "male")].read_bytes() != files[(1, "female")].read_bytes()
    assert e.voice(lang, "female").endswith("+f3")


@pytest.mark.parametrize(("lang", "text"), [("zh", "一百二十三号，请到三号窗口。"),
                                            ("ko", "백이십삼번 고객님, 삼번 창구에 오십시오.")])
def test_espeak_speaks_chinese_and_korean(tmp_path: Path, lang: str, text: str) -> None:
    e = espeak()
    assert e.supports(lang)
    out = tmp_path / "x.wav"
    e.render(text, lang, "female", out)
    assert 1.0 < wav_seconds(out) < 15


def test_pyttsx3_renders_a_wav(tmp_path: Path) -> None:
    e = Pyttsx3Engine()
    try:
        if not e.availability().ok:
            unavailable(f"pyttsx3 cannot run here: {e.availability().reason}")
        assert e.supports("ja")
        assert e.supports("en")
        male, female = tmp_path / "m.wav", tmp_path / "f.wav"
        e.render("ひゃくにじゅうさんばんのかた", "ja", "male", male)
        e.render("ひゃくにじゅうさんばんのかた", "ja", "female", female)
        assert 0.5 < wav_seconds(male) < 15
        assert male.read_bytes() != female.read_bytes()
        e.render("Number one hundred twenty-three", "en", "female", tmp_path / "en.wav")
        assert 0.5 < wav_seconds(tmp_path / "en.wav") < 15
        assert e.calls == 3
    finally:
        e.close()


def test_pyttsx3_that_hangs_is_reported_unavailable(tmp_path: Path) -> None:
    hang = tmp_path / "python"
    hang.write_text("#!/bin/sh\nsleep 30\n")
    hang.chmod(hang.stat().st_mode | stat.S_IXUSR)
    e = Pyttsx3Engine(python=str(hang), init_timeout_s=0.5)
    t0 = time.monotonic()
    assert e.availability() == Availability(
        False, "timeout", "pyttsx3 worker: no answer within 0.5 s")
    assert time.monotonic() - t0 < 5
    assert e._proc is None  # killed, not left behind


def test_open_jtalk_is_unavailable_without_pyopenjtalk(monkeypatch: pytest.MonkeyPatch) -> None:
    from edge.devices.voice import jtalk

    def broken() -> None:
        raise OSError("libopenjtalk.so: cannot open shared object file")

    monkeypatch.setattr(jtalk, "import_pyopenjtalk", broken)
    e = OpenJTalkEngine()
    a = e.availability()
    assert (a.ok, a.code) == (False, "no_module")
    assert a.reason == ("pyopenjtalk could not be loaded: OSError: "
                        "libopenjtalk.so: cannot open shared object file")
    assert choose_engine("auto", "ja", {"open-jtalk": e, "espeak-ng": espeak()}) is not e


def test_voice_file_names_tell_the_gender(tmp_path: Path) -> None:
    from edge.devices.voice.engines import find_voices, is_female_voice

    for name in ("mei/mei_normal", "tohoku-f01/tohoku-f01-neutral", "nitech_jp_atr503_m001"):
        (tmp_path / f"{name}.htsvoice").parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / f"{name}.htsvoice").write_bytes(b"x")
    found = find_voices([tmp_path])
    assert [v.stem for v in found if is_female_voice(v)] == ["mei_normal", "tohoku-f01-neutral"]
    assert [v.stem for v in found if not is_female_voice(v)] == ["nitech_jp_atr503_m001"]


class FakeEngine(Engine):
    """Renders ``len(text) * 20 ms`` of tone with silent padding; counts its calls."""

    name = "fake"

    def __init__(self, ok: bool = True, fail: bool = False) -> None:
        super().__init__()
        self.ok, self.fail = ok, fail

    def _check(self) -> Availability:
        return OK if self.ok else Availability(False, "no_binary", "fake is off")

    def supports(self, lang: str) -> bool:
        return True

    def voice(self, lang: str, gender: Gender) -> str:
        return f"fake-{gender}"

    def _render(self, text: str, lang: str, gender: Gender, out: Path) -> None:
        if self.fail:
            from edge.devices.voice import EngineError
            raise EngineError("fake failure")
        body = tone(300 if gender == "male" else 600, 0.02 * len(text))
        audio.write_wav(out, audio.concat([audio.silence(0.2), body, audio.silence(0.3)]))


def test_choose_engine_order_and_fallbacks() -> None:
    on, off = FakeEngine(), FakeEngine(ok=False)
    assert choose_engine("auto", "ja", {"open-jtalk": on, "espeak-ng": off}) is on
    assert choose_engine("auto", "en", {"open-jtalk": on, "pyttsx3": off}) is None
    assert choose_engine("pyttsx3", "en", {"espeak-ng": on, "pyttsx3": off}) is on
    assert choose_engine("auto", "ja", {}) is None
    real = choose_engine("auto", "ja")
    assert real is not None
    assert real.name == "open-jtalk"  # pyopenjtalk-plus is a dependency


# --- cache -----------------------------------------------------------------------------------


def test_cache_renders_a_phrase_once(tmp_path: Path) -> None:
    e = FakeEngine()
    cache = PhraseCache(tmp_path)
    first = cache.get(e, "ja", "female", "さんばんまどぐちへ", 0.5)
    assert cache.get(e, "ja", "female", "さんばんまどぐちへ", 0.5) == first
    assert e.calls == 1
    assert PhraseCache(tmp_path).get(e, "ja", "female", "さんばんまどぐちへ", 0.5) == first
    assert e.calls == 1  # from disk, after a restart
    cache.get(e, "ja", "female", "さんばんまどぐちへ", 1.0)  # another volume: another key
    cache.get(e, "ja", "male", "さんばんまどぐちへ", 0.5)  # another voice: another key
    assert e.calls == 3
    assert first.duration == pytest.approx(0.02 * 9 + 0.06, abs=0.01)  # trimmed, 30 ms kept


# --- the service -----------------------------------------------------------------------------


def settings(tmp_path: Path, **kw: object) -> VoiceSettings:
    base: dict[str, object] = {"cache_dir": tmp_path / "cache", "languages": ("ja", "en"),
                               "prerender_numbers": "none"}
    return VoiceSettings(**{**base, **kw})  # type: ignore[arg-type]


def fake_service(tmp_path: Path, zones: list[VoiceZone], engine: Engine | None = None,
                 board: HealthBoard | None = None, **kw: object) -> VoiceService:
    return VoiceService(settings(tmp_path, **kw), zones, board=board,
                        engines={"espeak-ng": engine or FakeEngine()})


def assert_in_order_without_overlap(records: list[PlayRecord]) -> None:
    for a, b in itertools.pairwise(records):
        assert a.ended <= b.started, (a, b)
        assert a.seq < b.seq


async def test_three_announcements_play_in_order_without_overlap(tmp_path: Path) -> None:
    sink = FileSink(tmp_path / "out", realtime=0.02)
    svc = VoiceService(settings(tmp_path), [VoiceZone("hall", None, sink)])
    await svc.start({"3": NAMES})
    for n in (101, 102, 103):
        svc.announce(Announcement(n, "3", NAMES, {}))
    await svc.idle()
    await svc.stop()
    assert [r.label for r in sink.records] == ["3-00101", "3-00102", "3-00103"]
    assert_in_order_without_overlap(sink.records)
    for r in sink.records:
        assert r.path is not None
        assert r.ended - r.started >= 0.02 * r.duration_s - 0.01  # held while "playing"
        assert 3 < wav_seconds(r.path) < 20  # chime + Japanese + English


async def test_calls_arriving_during_playback_wait_their_turn(tmp_path: Path) -> None:
    sink = FileSink(tmp_path / "out", realtime=0.02)  # each clip holds the zone ~40-60 ms
    svc = fake_service(tmp_path, [VoiceZone("hall", None, sink)])
    await svc.start()
    announced: dict[str, float] = {}

    async def counter(cid: str, numbers: range, pause_s: float) -> None:
        for n in numbers:
            svc.announce(Announcement(n, cid, {}, {}))
            announced[f"{cid}-{n:05d}"] = time.perf_counter()
            await asyncio.sleep(pause_s)

    await asyncio.gather(counter("1", range(1, 8), 0.013), counter("2", range(201, 206), 0.021))
    await svc.idle()
    await svc.stop()
    labels = [r.label for r in sink.records]
    assert labels == sorted(labels, key=announced.__getitem__)  # strict arrival order
    assert len(labels) == 12
    assert_in_order_without_overlap(sink.records)


async def test_recall_repeats_the_call(tmp_path: Path) -> None:
    site = tmp_path / "t.toml"  # recall worded like the call, so durations compare exactly
    site.write_text('[ja]\nrecall = "{number}ばんのかた、{counter}へおこしください。"\n'
                    '[en]\nrecall = "Number {number}, please come to {counter}."\n')
    sink = FileSink(tmp_path / "out")
    svc = fake_service(tmp_path, [VoiceZone("hall", None, sink)], recall_repeats=3,
                       templates_path=site)
    await svc.start()
    svc.announce(Announcement(7, "3", NAMES, {}))
    svc.announce(Announcement(7, "3", NAMES, {}, recall=True))
    await svc.idle()
    await svc.stop()
    call, recall = (r.duration_s for r in sink.records)
    lead = audio.chime().duration + 0.25
    speech = call - lead
    assert recall - lead == pytest.approx(3 * speech + 2 * svc.settings.repeat_gap_s, abs=0.002)


async def test_zones_route_by_counter(tmp_path: Path) -> None:
    first, second, everywhere = NullSink(), NullSink(), NullSink()
    svc = fake_service(tmp_path, [VoiceZone("1F", {"1", "2"}, first),
                                  VoiceZone("2F", {"3"}, second),
                                  VoiceZone("all", None, everywhere)])
    await svc.start()
    for n, counter in ((1, "1"), (2, "3"), (3, "2"), (4, "9")):
        svc.announce(Announcement(n, counter, {}, {}))
    await svc.idle()
    await svc.stop()
    assert [r.label for r in first.records] == ["1-00001", "2-00003"]
    assert [r.label for r in second.records] == ["3-00002"]
    assert [r.label for r in everywhere.records] == ["1-00001", "3-00002", "2-00003", "9-00004"]
    assert len(svc.latencies_s) == 7


class KeepSink(NullSink):
    def __init__(self) -> None:
        super().__init__()
        self.clips: list[Pcm] = []

    async def play(self, clip: Pcm, label: str) -> PlayRecord:
        self.clips.append(clip)
        return await super().play(clip, label)


async def test_volume_setting_scales_speech_and_chime(tmp_path: Path) -> None:
    sinks = {1.0: KeepSink(), 0.5: KeepSink()}
    for volume, sink in sinks.items():
        svc = fake_service(tmp_path / str(volume), [VoiceZone("z", None, sink)], volume=volume)
        await svc.start()
        svc.announce(Announcement(5, "1", {}, {}))
        await svc.idle()
        await svc.stop()
    loud, quiet = sinks[1.0].clips[0], sinks[0.5].clips[0]
    assert quiet.duration == loud.duration
    assert audio.peak(quiet) == pytest.approx(audio.peak(loud) / 2, abs=2)


async def test_second_call_of_a_cached_phrase_does_not_call_the_engine(tmp_path: Path) -> None:
    e = espeak()
    svc = VoiceService(settings(tmp_path, lookahead=0), [VoiceZone("z", None, NullSink())],
                       engines={"espeak-ng": e})
    await svc.start({"3": NAMES})
    await svc.ready()
    assert e.calls == 4  # counter phrase + "もういちどおよびします。" / "Calling again."
    svc.announce(Announcement(123, "3", NAMES, {}))
    await svc.idle()
    assert e.calls == 6  # only the number phrase, in two languages
    svc.announce(Announcement(123, "3", NAMES, {}))
    svc.announce(Announcement(123, "3", NAMES, {}, recall=True))
    await svc.idle()
    assert e.calls == 6
    await svc.stop()


async def test_warm_calls_are_assembled_from_the_cache(tmp_path: Path) -> None:
    e = espeak()
    sink = FileSink(tmp_path / "out")
    svc = VoiceService(settings(tmp_path), [VoiceZone("z", None, sink)],
                       engines={"espeak-ng": e})
    await svc.start({"3": NAMES})
    svc.announce(Announcement(100, "3", NAMES, {}))  # cold: renders the number
    await svc.idle()
    await svc.ready()  # lookahead prepared 101..105
    for n in range(101, 106):
        for lang in ("ja", "en"):
            for p in svc.templates.phrases(Announcement(n, "3", NAMES, {}), lang,
                                           kana_only=True):
                assert svc.cache.has(e, lang, "female", p.text, svc.settings.volume)
    for n in range(101, 106):
        svc.announce(Announcement(n, "3", NAMES, {}))
        await svc.idle()
    await svc.stop()
    # a warm cache means no engine call per announcement (the speed is `bench devices`' job)
    assert svc.latency_summary()["count"] == 6


async def test_no_engine_is_an_error_and_the_chime_still_plays(tmp_path: Path) -> None:
    board, sink = HealthBoard(), NullSink()
    svc = fake_service(tmp_path, [VoiceZone("z", None, sink)], FakeEngine(ok=False), board)
    await svc.start()
    h = board.get("voice")
    assert h is not None
    assert (h.state, h.reason) == ("error", "no_engine")
    assert "fake is off" in h.detail
    svc.announce(Announcement(1, "1", {}, {}))
    await svc.idle()
    await svc.stop()
    assert sink.records[0].duration_s == pytest.approx(audio.chime().duration, abs=0.01)


async def test_engine_failing_mid_call_falls_back_to_the_next(tmp_path: Path) -> None:
    broken, spare, sink = FakeEngine(fail=True), FakeEngine(), NullSink()
    svc = VoiceService(settings(tmp_path), [VoiceZone("z", None, sink)],
                       engines={"espeak-ng": broken, "pyttsx3": spare})
    await svc.start()
    svc.announce(Announcement(1, "1", {}, {}))
    await svc.idle()
    await svc.stop()
    assert svc.engine_for == {"ja": spare, "en": spare}
    assert spare.calls > 0
    assert sink.records[0].duration_s > audio.chime().duration + 1


async def test_failing_sink_reports_write_failed(tmp_path: Path) -> None:
    board, good = HealthBoard(), NullSink()
    bad = CommandSink(["false"], spool=tmp_path / "spool")
    svc = fake_service(tmp_path, [VoiceZone("a", None, good), VoiceZone("b", None, bad)],
                       board=board)
    await svc.start()
    svc.announce(Announcement(1, "1", {}, {}))
    await svc.idle()
    h = board.get("voice")
    assert h is not None
    assert (h.state, h.reason) == ("degraded", "write_failed")
    assert "zone b: false exit 1" in h.detail
    assert len(good.records) == 1
    await svc.stop()


async def test_command_sink_hands_over_a_file_and_waits(tmp_path: Path) -> None:
    seen = tmp_path / "seen.txt"
    sink = CommandSink(["sh", "-c", f'sleep 0.2; wc -c < "$0" > {seen}', "{file}"],
                       spool=tmp_path / "spool")
    rec = await sink.play(tone(440, 0.5), "1-00001")
    assert rec.ended - rec.started >= 0.2
    assert int(seen.read_text()) == 44 + 2 * round(0.5 * audio.RATE)
    assert not list((tmp_path / "spool").iterdir())  # spool file removed
    with pytest.raises(SinkError, match="no-such-player"):
        await CommandSink(["no-such-player"], spool=tmp_path / "spool").play(tone(1, 0.1), "x")
    slow = CommandSink(["sh", "-c", "sleep 5", "{file}"], spool=tmp_path / "spool", slack_s=0.2)
    with pytest.raises(SinkError, match="still playing"):
        await slow.play(tone(440, 0.1), "x")


def test_settings_are_validated() -> None:
    with pytest.raises(ValueError, match="volume"):
        VoiceSettings(volume=2.0)
    with pytest.raises(ValueError, match="unknown languages"):
        VoiceSettings(languages=("ja", "fr"))
    with pytest.raises(ValueError, match="recall_repeats"):
        VoiceSettings(recall_repeats=0)
