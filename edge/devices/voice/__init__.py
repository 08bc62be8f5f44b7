"""Voice calls (Q12): "ひゃくにじゅうさんばんのかた、さんばんまどぐちへおこしください".

- ``numbers_ja`` / ``numbers_intl``: numbers as words per language (kana for Japanese);
- ``templates`` (+ ``templates.toml``): what is said, staff-editable per site;
- ``engines``: Open JTalk, espeak-ng, pyttsx3, each reporting whether it can run and why;
- ``audio``: WAV joining, volume, resampling, the chime; ``cache``: pre-rendered phrases;
- ``sinks`` and ``service``: queued, never overlapping playback per zone, health and latency.
"""

from edge.devices.voice.engines import (
    Availability,
    Engine,
    EngineError,
    EnginePreference,
    EspeakEngine,
    Gender,
    OpenJTalkEngine,
    Pyttsx3Engine,
    choose_engine,
)
from edge.devices.voice.service import VoiceService, VoiceSettings, VoiceZone
from edge.devices.voice.sinks import CommandSink, FileSink, NullSink, PlayRecord, Sink, SinkError
from edge.devices.voice.templates import Announcement, TemplateError, Templates, load_templates

__all__ = [
    "Announcement",
    "Availability",
    "CommandSink",
    "Engine",
    "EngineError",
    "EnginePreference",
    "EspeakEngine",
    "FileSink",
    "Gender",
    "NullSink",
    "OpenJTalkEngine",
    "PlayRecord",
    "Pyttsx3Engine",
    "Sink",
    "SinkError",
    "TemplateError",
    "Templates",
    "VoiceService",
    "VoiceSettings",
    "VoiceZone",
    "choose_engine",
    "load_templates",
]
