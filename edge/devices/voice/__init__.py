"""Voice calls (Q12): 「123番の方、3番窓口へお越しください。」

- ``numbers_ja`` / ``numbers_intl``: numbers as words per language (kana for espeak-ng);
- ``templates`` (+ ``templates.toml``): what is said, staff-editable per site;
- ``jtalk``: Open JTalk in-process (pyopenjtalk-plus), the default Japanese voice; female is the
  bundled voice Mei, male is Mei transformed (see its docstring) unless a male voice is installed;
- ``engines``: espeak-ng (other languages, Japanese fallback) and pyttsx3, and the engine order;
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
    Pyttsx3Engine,
    choose_engine,
)
from edge.devices.voice.jtalk import OpenJTalkEngine
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
