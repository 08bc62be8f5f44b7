"""The voice device service: calls spoken in order, per zone, with health and latency figures.

Why this shape: one builder turns each announcement into one clip (chime + phrases in every
language, repeated for a recall), strictly in arrival order; each zone then has its own FIFO and
plays a clip to the end before the next, so two calls never overlap or cut each other off in a
hall, while a silent or broken zone does not hold up the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence, Set
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from edge.devices.health import DeviceState, HealthBoard
from edge.devices.voice import audio
from edge.devices.voice.audio import Pcm
from edge.devices.voice.cache import SLOW_RENDER_S, PhraseCache, lower_priority
from edge.devices.voice.engines import (
    Engine,
    EngineError,
    EnginePreference,
    Gender,
    default_engines,
    engine_order,
)
from edge.devices.voice.numbers_intl import NumberStyle
from edge.devices.voice.sinks import PlayRecord, Sink, SinkError
from edge.devices.voice.templates import LANGUAGES, Announcement, Templates, load_templates

_LOGGER = logging.getLogger(__name__)
_UNSAFE = re.compile(r"[^0-9A-Za-z_-]")
AUTO_RANGE_MAX = 1000  # "auto" prepares at most this many numbers; "all" prepares the range
RANGE_QUIET_S = 2.0  # the range is prepared only this long after the last call


@dataclass(frozen=True, slots=True)
class VoiceSettings:
    engine: EnginePreference = "auto"
    gender: Gender = "female"
    volume: float = 0.8  # 0.0-1.0, applied to speech and chime alike
    chime: bool = True
    languages: tuple[str, ...] = ("ja", "en")
    recall_repeats: int = 2  # a recall says the call this many times
    number_style: NumberStyle = "words"  # or "digits": one two three
    templates_path: Path | None = None  # the site's overrides of templates.toml
    cache_dir: Path | None = None  # default: <tmp>/madoguchi-voice-cache
    open_jtalk_voices: tuple[Path, ...] = ()  # extra *.htsvoice files or folders (see jtalk.py)
    prerender_numbers: Literal["auto", "all", "none"] = "auto"  # see cache.py
    number_range: tuple[int, int] = (1, 999)  # numbers in use, for "all"/"auto"
    lookahead: int = 5  # after calling n, prepare n+1..n+lookahead
    phrase_gap_s: float = 0.12
    language_gap_s: float = 0.6
    repeat_gap_s: float = 1.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.volume <= 1.0:
            raise ValueError(f"volume must be 0.0-1.0, not {self.volume}")
        if unknown := [x for x in self.languages if x not in LANGUAGES]:
            raise ValueError(f"unknown languages {unknown} (known: {', '.join(LANGUAGES)})")
        if self.recall_repeats < 1:
            raise ValueError("recall_repeats must be at least 1")
        if self.gender not in ("male", "female"):
            raise ValueError(f"gender must be male or female, not {self.gender!r}")


@dataclass(frozen=True, slots=True)
class VoiceZone:
    """Loudspeakers for some counters (``None`` = all), e.g. one floor of the office.

    ``gain`` (0.0-1.0) scales the clip for this zone only: a zone set quieter than the site
    (a bereavement corner) gets the same clip, built once at the loudest zone's volume, scaled
    down (``zone_gains``)."""

    id: str
    counters: Set[str] | None
    sink: Sink
    gain: float = 1.0

    def serves(self, counter_id: str) -> bool:
        return self.counters is None or counter_id in self.counters


@dataclass(slots=True)
class _Job:
    clip: Pcm
    label: str
    announced: float  # time.perf_counter() at announce()


@dataclass(slots=True)
class _Zone:
    zone: VoiceZone
    queue: asyncio.Queue[_Job] = field(default_factory=asyncio.Queue)
    failure: str = ""


class VoiceService:
    """``await start()``, then ``announce(a)`` per call; ``latencies_s`` for the bench."""

    def __init__(self, settings: VoiceSettings, zones: Sequence[VoiceZone], *,
                 board: HealthBoard | None = None, device_id: str = "voice",
                 engines: Mapping[str, Engine] | None = None,
                 cache: PhraseCache | None = None, templates: Templates | None = None) -> None:
        self.settings = settings
        self.board, self.device_id = board, device_id
        self.engines = dict(engines) if engines is not None else default_engines(
            settings.open_jtalk_voices)
        folder = settings.cache_dir or Path(tempfile.gettempdir()) / "madoguchi-voice-cache"
        self.cache = cache or PhraseCache(folder)
        self.templates = templates or load_templates(settings.templates_path)
        self.engine_for: dict[str, Engine | None] = {}
        self.latencies_s: list[float] = []  # announce() -> sink started, per zone played
        self.played: list[tuple[str, PlayRecord]] = []  # (zone id, record)
        self._zones = [_Zone(z) for z in zones]
        self._queue: asyncio.Queue[tuple[Announcement, float]] = asyncio.Queue()
        self._warm: asyncio.Queue[tuple[str, str]] = asyncio.Queue()  # (lang, phrase text)
        # the whole number range (slow engines): prepared only while ``_warm`` is empty, so
        # the next numbers after a call never wait behind hundreds of others
        self._range: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self._background: ThreadPoolExecutor | None = None  # preparation, at a low priority
        self._last_call = float("-inf")  # time.monotonic() of the last announce()
        self._engine_problem: tuple[DeviceState, str, str] | None = None
        self._chime: Pcm | None = None
        self._idle = asyncio.Event()  # set while no announcement waits to be built
        self._idle.set()
        self._failed: set[tuple[str, int]] = set()  # (lang, id(engine)) that failed to render
        if board is not None:
            board.register(device_id, "voice")

    # -- life cycle ------------------------------------------------------------------------

    async def start(self, counters: Mapping[str, Mapping[str, str]] | None = None) -> None:
        """Choose engines, then warm the cache in the background; ``counters``: id -> names."""
        if self._tasks:
            raise RuntimeError("VoiceService already started")
        await asyncio.to_thread(self._choose_engines)
        self._background = ThreadPoolExecutor(1, "voice-prepare", initializer=lower_priority)
        self._chime = audio.chime(volume=self.settings.volume)
        self._tasks = [asyncio.create_task(self._build_loop(), name="voice-build"),
                       asyncio.create_task(self._warm_loop(), name="voice-warm")]
        self._tasks += [asyncio.create_task(self._play_loop(z), name=f"voice-{z.zone.id}")
                        for z in self._zones]
        for cid, names in (counters or {}).items():
            self._prepare_counter(cid, names)
        first = self.settings.number_range[0]  # a day starts there: its first calls are warm
        self._prepare_numbers(range(first, first + self.settings.lookahead))
        if self.settings.prerender_numbers == "all":
            self._prepare_numbers(range(self.settings.number_range[0],
                                        self.settings.number_range[1] + 1), self._range)
        self._update_health()

    async def stop(self, drain_s: float = 30.0) -> None:
        """Let queued announcements finish (up to ``drain_s``), then stop."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.idle(), drain_s)
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        if self._background is not None:
            self._background.shutdown(wait=False, cancel_futures=True)
            self._background = None
        for e in self.engines.values():
            await asyncio.to_thread(e.close)

    async def __aenter__(self) -> VoiceService:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- calls -----------------------------------------------------------------------------

    def announce(self, a: Announcement) -> None:
        """Queue a call (returns at once; call on the loop, e.g. from a commit listener).

        It plays after every earlier one, to its end, in each zone serving its counter.
        """
        self._idle.clear()
        self._last_call = time.monotonic()
        self._queue.put_nowait((a, time.perf_counter()))

    async def idle(self) -> None:
        """Return when everything announced so far has been played."""
        await self._queue.join()
        for z in self._zones:
            await z.queue.join()

    async def ready(self) -> None:
        """Return when the counter phrases and the next numbers after the calls so far are
        rendered (tests, bench); the whole number range may still be in preparation."""
        await self._warm.join()

    def played_count(self) -> int:
        return len(self.played)

    def last_started(self) -> float:
        """``time.perf_counter()`` when the last clip started playing (0.0 before any)."""
        return self.played[-1][1].started if self.played else 0.0

    def engine_names(self) -> dict[str, str | None]:
        """The engine speaking each configured language (None: that language is silent)."""
        return {lang: e.name if e else None for lang, e in self.engine_for.items()}

    def latency_summary(self) -> dict[str, float]:
        """count, p50 and p99 of announce() -> start of audio, in seconds."""
        xs = sorted(self.latencies_s)
        if not xs:
            return {"count": 0}

        def pick(q: float) -> float:
            return xs[min(len(xs) - 1, int(q * len(xs)))]

        return {"count": len(xs), "p50": pick(0.5), "p99": pick(0.99), "max": xs[-1]}

    async def _build_loop(self) -> None:
        while True:
            a, announced = await self._queue.get()
            try:
                zones = [z for z in self._zones if z.zone.serves(a.counter_id)]
                clip = await asyncio.to_thread(self._build, a) if zones else None
                counter = _UNSAFE.sub("_", a.counter_id)  # the label may become a file name
                label = f"{counter}-{a.number:05d}{'-recall' if a.recall else ''}"
                for z in zones:
                    assert clip is not None
                    mine = clip if z.zone.gain == 1.0 else audio.scale(clip, z.zone.gain)
                    z.queue.put_nowait(_Job(mine, label, announced))
                self._prepare_numbers(range(a.number + 1, a.number + 1 + self.settings.lookahead))
            except Exception:
                _LOGGER.exception("voice: could not build the announcement of %s", a.number)
            finally:
                self._queue.task_done()
                if self._queue.empty():
                    self._idle.set()

    async def _play_loop(self, z: _Zone) -> None:
        while True:
            job = await z.queue.get()
            try:
                rec = await z.zone.sink.play(job.clip, job.label)
                self.latencies_s.append(rec.started - job.announced)
                self.played.append((z.zone.id, rec))
                z.failure = ""
            except SinkError as exc:
                _LOGGER.warning("voice zone %s: %s", z.zone.id, exc)
                z.failure = str(exc)
            except Exception as exc:
                _LOGGER.exception("voice zone %s failed", z.zone.id)
                z.failure = f"{type(exc).__name__}: {exc}"
            finally:
                self._update_health()
                z.queue.task_done()

    # -- building clips (worker threads) -----------------------------------------------------

    def _build(self, a: Announcement) -> Pcm:
        s = self.settings
        blocks = [b for b in (self._speak(a, lang) for lang in s.languages) if b is not None]
        speech = audio.concat(blocks, s.language_gap_s)
        if a.recall and s.recall_repeats > 1:
            speech = audio.concat([speech] * s.recall_repeats, s.repeat_gap_s)
        if s.chime and self._chime is not None:
            return audio.concat([self._chime, speech], 0.25)
        return speech

    def _speak(self, a: Announcement, lang: str) -> Pcm | None:
        """One language's block; on an engine failure the next engine in line takes over."""
        while (engine := self.engine_for.get(lang)) is not None:
            phrases = self.templates.phrases(a, lang, style=self.settings.number_style,
                                             kana_only=not engine.reads_kanji)
            try:
                pieces = [self.cache.get(engine, lang, self.settings.gender, p.text,
                                         self.settings.volume) for p in phrases]
                return audio.concat(pieces, self.settings.phrase_gap_s)
            except (EngineError, OSError, ValueError, EOFError) as exc:
                _LOGGER.warning("voice: %s failed for %s: %s", engine.name, lang, exc)
                self._failed.add((lang, id(engine)))
                self._choose_engines()
        return None

    def _choose_engines(self) -> None:
        """Per language the first engine that can speak it; runs in a worker thread (loading
        Open JTalk takes about a second). A language spoken by a later engine than its first
        (Japanese by espeak-ng because pyopenjtalk did not load) is reported as degraded with
        reason ``engine_fallback``; one that no engine speaks as ``no_engine``."""
        notes: list[str] = []
        missing: list[str] = []
        fallback: list[str] = []
        for lang in self.settings.languages:
            chosen: Engine | None = None
            order = [n for n in engine_order(self.settings.engine, lang) if n in self.engines]
            for name in order:
                e = self.engines[name]
                if (lang, id(e)) in self._failed:
                    notes.append(f"{lang}: {name}: failed to render")
                    continue
                avail = e.availability()
                if avail.ok and e.supports(lang):
                    chosen = e
                    break
                notes.append(f"{lang}: {name}: {avail.reason if not avail.ok else 'no voice'}")
            self.engine_for[lang] = chosen
            if chosen is None:
                missing.append(lang)
            elif order and chosen is not self.engines[order[0]]:
                fallback.append(lang)
        used = ", ".join(f"{lang}: {e.name}" for lang, e in self.engine_for.items() if e)
        detail = "; ".join([f"using {used}" if used else "no engine", *notes])
        if missing and len(missing) == len(self.settings.languages):
            self._engine_problem = ("error", "no_engine", detail)
        elif missing:
            self._engine_problem = ("degraded", "no_engine", detail)
        elif fallback:
            self._engine_problem = ("degraded", "engine_fallback", detail)
        else:
            self._engine_problem = ("ok", "", detail)

    # -- warming the cache -------------------------------------------------------------------

    def _prepare_counter(self, counter_id: str, names: Mapping[str, str]) -> None:
        """Queue a counter's phrases that hold no number or service, for call and recall."""
        for recall in (False, True):
            self._queue_phrases(Announcement(0, counter_id, names, {}, recall),
                                lambda ps: "number" not in ps and "service" not in ps)

    def _prepare_numbers(self, numbers: range,
                         queue: asyncio.Queue[tuple[str, str]] | None = None) -> None:
        """Queue the number phrases (those holding nothing but the number) of ``numbers``."""
        for n in numbers:
            for recall in (False, True):
                self._queue_phrases(Announcement(n, "", recall=recall),
                                    lambda ps: ps == {"number"}, queue)

    def _queue_phrases(self, a: Announcement, wanted: Callable[[frozenset[str]], bool],
                       queue: asyncio.Queue[tuple[str, str]] | None = None) -> None:
        for lang in self.settings.languages:
            engine = self.engine_for.get(lang)
            if engine is None:
                continue
            for p in self.templates.phrases(a, lang, style=self.settings.number_style,
                                            kana_only=not engine.reads_kanji):
                if wanted(p.placeholders):
                    (self._warm if queue is None else queue).put_nowait((lang, p.text))

    async def _warm_loop(self) -> None:
        decided = self.settings.prerender_numbers != "auto"
        while True:
            if not decided and len(self.cache.render_s) >= 5:
                decided = True
                p95 = self.cache.render_p95() or 0.0
                if p95 > SLOW_RENDER_S:
                    _LOGGER.info("voice: phrases take %.0f ms to render; preparing all numbers",
                                 p95 * 1000)
                    lo, hi = self.settings.number_range
                    hi = min(hi, lo + AUTO_RANGE_MAX - 1)  # 9999 numbers would be ~1 GB
                    self._prepare_numbers(range(lo, hi + 1), self._range)
            queue, (lang, text) = await self._next_to_prepare()
            await self._idle.wait()  # a live call goes first
            engine = self.engine_for.get(lang)
            if engine is not None and not self.cache.has(engine, lang, self.settings.gender,
                                                          text, self.settings.volume):
                try:
                    await asyncio.get_running_loop().run_in_executor(
                        self._background, self.cache.get, engine, lang, self.settings.gender,
                        text, self.settings.volume)
                except Exception as exc:
                    _LOGGER.warning("voice: could not prepare %r: %s", text, exc)
            queue.task_done()

    async def _next_to_prepare(self) -> tuple[asyncio.Queue[tuple[str, str]], tuple[str, str]]:
        """An urgent phrase if any; else a range phrase once no call came for ``RANGE_QUIET_S``
        (a busy hall is not slowed by filling the cache); else wait for an urgent one. Only this
        loop fills ``_range`` after start, so waiting on ``_warm`` alone misses nothing."""
        while self._warm.empty() and not self._range.empty():
            quiet = RANGE_QUIET_S - (time.monotonic() - self._last_call)
            if quiet <= 0:
                return self._range, self._range.get_nowait()
            await asyncio.sleep(min(quiet, 0.05))
        return self._warm, await self._warm.get()

    # -- health ------------------------------------------------------------------------------

    def _update_health(self) -> None:
        if self.board is None:
            return
        state, code, detail = self._engine_problem or ("ok", "", "")
        failing = [z for z in self._zones if z.failure]
        if failing and state != "error":
            state = "error" if len(failing) == len(self._zones) else "degraded"
            code = "write_failed"
            detail = "; ".join(f"zone {z.zone.id}: {z.failure}" for z in failing)
        self.board.report(self.device_id, state, code or None, detail)


def zone_gains(site_volume: float, zones: Sequence[float | None]) -> tuple[float, list[float]]:
    """The volume to build clips at and each zone's gain, for zones with their own volume
    (None: the site's). Clips are built once, at the loudest zone's volume, so no zone ever
    needs a gain above 1 (which would clip the samples)."""
    volumes = [site_volume if v is None else v for v in zones]
    top = max(volumes, default=site_volume)
    return top, [1.0 if top == 0 else v / top for v in volumes]
