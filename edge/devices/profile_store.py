"""Load firmware-profiles/*.yaml: inheritance, strict validation, one collated JSON.

A ward IT person who edits a profile gets every problem at once, each as
``file: key: message``, never a stack trace. Reading, ``inherits:`` and collation need only
PyYAML and the standard library, so the wheel build hook (``hatch_build.py``) loads this file by
path and runs them without pydantic or python-escpos; validation imports the schema lazily.

The collated JSON holds each profile as resolved (parents merged, ``id`` set) with the keys that
the files write; schema defaults apply when it is loaded (``load_collated`` validates it).
USB detection is in ``usb_detect.py``, the CLI in ``profiles_cli.py``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from difflib import get_close_matches
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from yaml.constructor import ConstructorError

if TYPE_CHECKING:

    from pydantic import BaseModel, ValidationError

    from edge.devices.profiles import Profile

SCHEMA_VERSION = 1
"""Bumped when the collated JSON changes shape; readers refuse other versions."""

COLLATED_PATH = Path(__file__).resolve().parent.parent / "_data" / "firmware-profiles.json"
"""Where the wheel's build hook puts the collated JSON (absent in a source checkout)."""

_ID = re.compile(r"^_?[a-z0-9]+(-[a-z0-9]+)*$")
_LOADER_KEYS = ("inherits", "abstract", "id")  # consumed or reported while resolving
_MERGE_TAG = "tag:yaml.org,2002:merge"
_OWN_KEYS = ("name", "notes")  # describe one model, so never inherited


class ProfileError(Exception):
    """Problems in a set of profiles; ``problems`` holds one ``file: key: message`` each."""

    def __init__(self, where: str, problems: list[str]) -> None:
        self.where = where
        self.problems = problems
        count = f"{len(problems)} problem{'s' if len(problems) != 1 else ''}"
        super().__init__(f"{where}: {count}\n" + "\n".join(f"  {p}" for p in problems))


@dataclass(frozen=True)
class Resolved:
    """One concrete profile after ``inherits:``: plain data, not yet validated."""

    id: str
    file: str  # e.g. "epson-tm-t88vi.yaml"
    data: dict[str, Any]  # merged keys with ``id`` set, loader keys removed
    origin: dict[str, str]  # top-level key -> the file that wrote it (for error messages)


@dataclass(frozen=True)
class _Source:
    id: str
    file: str
    data: dict[str, Any]


# -- reading and inheritance (PyYAML only) ---------------------------------------------------


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key written twice (plain safe_load keeps the last silently)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == _MERGE_TAG:
                continue
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise ConstructorError(
                    None, None, f"key {key!r} is written twice", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _read(path: Path, problems: list[str]) -> dict[str, Any] | None:
    name = path.name
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        problems.append(f"{name}: not UTF-8 text (byte {exc.start}); save it as UTF-8")
        return None
    except OSError as exc:
        problems.append(f"{name}: cannot read: {exc.strerror or exc}")
        return None
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 -- a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "YAML"
        what = " ".join(str(part) for part in (exc.context, exc.problem) if part)
        problems.append(f"{name}: {where}: {what or 'YAML syntax error'}")
        return None
    except yaml.YAMLError as exc:
        problems.append(f"{name}: YAML: {exc}")
        return None
    if data is None:
        problems.append(f"{name}: the file is empty")
        return None
    if not isinstance(data, dict):
        problems.append(
            f"{name}: must be a mapping of `key: value` lines, got a {type(data).__name__}"
        )
        return None
    return data


def _check_source(source: _Source, problems: list[str]) -> bool:
    """File-level rules that need no parent; False when the file cannot be resolved at all."""
    file, data = source.file, source.data
    ok = True
    if "id" in data:  # reported, then ignored: the file name stays the id
        problems.append(f"{file}: id: remove this key; the id is the file name ({source.id!r})")
    abstract = data.get("abstract", False)
    if not isinstance(abstract, bool):
        problems.append(f"{file}: abstract: must be true or false, got {abstract!r}")
        ok = False
    elif abstract != source.id.startswith("_"):
        problems.append(
            f"{file}: abstract: family bases are abstract: true and their file name starts "
            "with `_`; models are neither"
        )
    if "inherits" in data and not isinstance(data["inherits"], str):
        problems.append(f"{file}: inherits: must be one profile id, got {data['inherits']!r}")
        ok = False
    if abstract is True and "notes" not in data:
        problems.append(f"{file}: notes: required key is missing (say what the family shares)")
    return ok


def _merge(parent: Mapping[str, Any], child: Mapping[str, Any]) -> dict[str, Any]:
    """Child keys override parent keys; mappings merge key by key; lists and values replace."""
    merged = dict(parent)
    for key, value in child.items():
        old = merged.get(key)
        if isinstance(old, dict) and isinstance(value, dict):
            merged[key] = _merge(old, value)
        else:
            merged[key] = value
    return merged


def _chain(
    source: _Source, sources: Mapping[str, _Source], broken: set[str], directory: Path
) -> list[_Source] | str | None:
    """The inheritance chain, root first; a problem text; or None if a parent is broken."""
    chain = [source]
    while "inherits" in chain[-1].data:
        parent_id = chain[-1].data["inherits"]
        if parent_id in broken:
            return None  # its own problems are reported on its file
        if parent_id not in sources:
            near = get_close_matches(parent_id, list(sources), n=1)
            hint = f" (did you mean {near[0]!r}?)" if near else ""
            return f"unknown profile {parent_id!r}: no {parent_id}.yaml in {directory}{hint}"
        if any(link.id == parent_id for link in chain):
            loop = " -> ".join([*(link.id for link in chain), parent_id])
            return f"inheritance cycle {loop}"
        chain.append(sources[parent_id])
    chain.reverse()
    return chain


def resolve_directory(directory: Path) -> tuple[list[Resolved], list[str]]:
    """Read every ``*.yaml`` in ``directory`` and apply ``inherits:``.

    Returns the concrete (non-abstract) profiles sorted by id and the problems found, each as
    ``file: key: message``. Nothing here validates values; that is ``load_profiles``'s job.
    """
    problems: list[str] = []
    if not directory.is_dir():
        return [], [f"{directory}: no such folder"]
    sources: dict[str, _Source] = {}
    broken: set[str] = set()
    for path in sorted(directory.iterdir()):
        suffix = path.suffix.lower()
        if suffix not in {".yaml", ".yml"} or not path.is_file():
            continue
        if path.suffix != ".yaml":
            problems.append(f"{path.name}: rename it to {path.stem}.yaml (only *.yaml is read)")
            continue
        if not _ID.match(path.stem):
            problems.append(
                f"{path.name}: the file name is the profile id: lowercase letters, digits and "
                "single hyphens (a leading `_` marks a family base), e.g. epson-tm-t88vi.yaml"
            )
            continue
        raw = _read(path, problems)
        source = _Source(path.stem, path.name, raw or {})
        sources[source.id] = source
        if raw is None or not _check_source(source, problems):
            broken.add(source.id)

    resolved: list[Resolved] = []
    for source in sources.values():
        if source.id in broken:
            continue
        chain = _chain(source, sources, broken, directory)
        if isinstance(chain, str):
            problems.append(f"{source.file}: inherits: {chain}")
            continue
        if chain is None or source.data.get("abstract", False):
            continue
        data: dict[str, Any] = {}
        origin: dict[str, str] = {}
        for link in chain:
            skip = _LOADER_KEYS if link is source else _LOADER_KEYS + _OWN_KEYS
            own = {k: v for k, v in link.data.items() if k not in skip}
            data = _merge(data, own)
            origin.update(dict.fromkeys(own, link.file))
        resolved.append(Resolved(source.id, source.file, {"id": source.id, **data}, origin))
    if not resolved and not problems:
        problems.append(f"{directory}: no profiles found (*.yaml other than family bases)")
    resolved.sort(key=lambda r: r.id)
    return resolved, _by_file(problems)


def _by_file(problems: list[str]) -> list[str]:
    """Problems grouped by file (stable: a file's own order is kept)."""
    return sorted(problems, key=lambda p: p.split(": ", 1)[0])


# -- collation (standard library only) --------------------------------------------------------


def _sorted(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _sorted(value[k]) for k in sorted(value, key=str)}
    if isinstance(value, list):
        return [_sorted(v) for v in value]
    return value


def collate_resolved(profiles: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """The collated document: ``{"schema_version", "profiles": {id: keys}}``, sorted."""
    return {
        "schema_version": SCHEMA_VERSION,
        "profiles": {pid: _sorted(dict(profiles[pid])) for pid in sorted(profiles)},
    }


def dumps_collated(document: Mapping[str, Any]) -> str:
    """The exact text of the JSON file: stable, UTF-8 (Japanese stays readable), one newline."""
    return json.dumps(document, ensure_ascii=False, indent=2, sort_keys=True) + "\n"


def collate(profiles: Mapping[str, Profile]) -> dict[str, Any]:
    """Collate validated profiles; equal to what the build hook writes from the same YAML."""
    return collate_resolved(
        {pid: p.model_dump(mode="json", exclude_unset=True) for pid, p in profiles.items()}
    )


# -- validation (pydantic, python-escpos) -----------------------------------------------------


def _models() -> dict[str, type[BaseModel]]:
    from edge.devices.profiles import (
        DisplayProfile,
        KeypadProfile,
        PrinterProfile,
        ScannerProfile,
    )

    return {"printer": PrinterProfile, "scanner": ScannerProfile, "keypad": KeypadProfile,
            "display": DisplayProfile}


def _allowed_keys(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """The keys a mapping at ``loc`` (inside ``model``) may hold, for "unknown key" errors."""
    from pydantic import BaseModel

    current: Any = model
    for part in loc:
        if isinstance(part, int):
            continue
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return []
        field = current.model_fields.get(part)
        if field is None:
            return []
        current = next(
            (t for t in _flatten(field.annotation) if isinstance(t, type)
             and issubclass(t, BaseModel)),
            None,
        )
    if isinstance(current, type) and issubclass(current, BaseModel):
        return sorted(k for k in current.model_fields if k != "id")
    return []


def _flatten(annotation: Any) -> Iterable[Any]:
    from typing import get_args

    yield annotation
    for arg in get_args(annotation):
        yield from _flatten(arg)


def _key_path(loc: tuple[Any, ...]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        elif part != "[key]":
            text += f".{part}" if text else str(part)
    return text


_OWN_LOCS = {(key,) for key in _OWN_KEYS}


def _explain(model: type[BaseModel], error: Mapping[str, Any]) -> tuple[str, str]:
    """(key path, message) for one pydantic error, in words for the person editing the file."""
    loc = tuple(error["loc"])
    kind, value, message = error["type"], error.get("input"), str(error["msg"])
    if kind == "value_error":
        message = message.removeprefix("Value error, ")
        if not loc and ": " in message:  # model validators name their key first
            key, _, message = message.partition(": ")
            return key, message
    if kind == "extra_forbidden":
        allowed = _allowed_keys(model, loc[:-1])
        near = get_close_matches(str(loc[-1]), allowed, n=1)
        hint = f"did you mean {near[0]!r}? " if near else ""
        return _key_path(loc), f"unknown key ({hint}allowed: {', '.join(allowed)})"
    if kind == "missing":
        own = " (each model writes its own; it is never inherited)" if loc in _OWN_LOCS else ""
        return _key_path(loc), f"required key is missing{own}"
    if loc and loc[-1] == "[key]":
        return _key_path(loc), f"key {value!r}: {message}"
    if kind == "string_type" and isinstance(value, bool | int | float):
        return _key_path(loc), (
            f"must be text, but YAML read {value!r}; put it in quotes, e.g. \"0202\" (YAML reads "
            "unquoted 0202 as a number and yes/no/on/off as true/false)"
        )
    if kind != "value_error" and (isinstance(value, str | int | float | bool) or value is None):
        message += f", got {value!r}"
    if isinstance(value, bool) and kind == "literal_error":
        message += " (YAML reads yes/no/on/off as true/false: put the word in quotes)"
    return _key_path(loc), message


def _validate(item: Resolved, problems: list[str]) -> Profile | None:
    from pydantic import ValidationError

    models = _models()
    kind = item.data.get("kind")
    model = models.get(kind) if isinstance(kind, str) else None
    if model is None:
        what = "required key is missing" if kind is None else f"{kind!r} is not a kind"
        problems.append(
            f"{item.file}: kind: {what}; the kinds are {', '.join(models)}"
            + _inherited(item, "kind")
        )
        return None
    try:
        profile: Profile = model.model_validate(item.data)  # type: ignore[assignment]
    except ValidationError as exc:
        problems.extend(_format_errors(item, model, exc))
        return None
    return profile


def _inherited(item: Resolved, key: str) -> str:
    source = item.origin.get(key)
    return f" (the value comes from {source})" if source and source != item.file else ""


def _format_errors(item: Resolved, model: type[BaseModel], exc: ValidationError) -> list[str]:
    lines = []
    for error in exc.errors():
        key, message = _explain(model, error)
        top = key.split(".", 1)[0].split("[", 1)[0]
        lines.append(f"{item.file}: {key or '(file)'}: {message}{_inherited(item, top)}")
    return lines


def default_directory() -> Path:
    from edge.paths import data_dir

    try:
        return data_dir("firmware-profiles")
    except FileNotFoundError as exc:
        raise ProfileError("firmware-profiles", [str(exc)]) from None


def load_profiles(directory: Path | None = None) -> dict[str, Profile]:
    """Read, resolve and validate every profile in ``directory`` (default: the shipped ones).

    Raises ``ProfileError`` listing every problem found, each as ``file: key: message``.
    """
    directory = directory if directory is not None else default_directory()
    resolved, problems = resolve_directory(directory)
    profiles: dict[str, Profile] = {}
    for item in resolved:
        profile = _validate(item, problems)
        if profile is not None:
            profiles[item.id] = profile
    if problems:
        raise ProfileError(str(directory), _by_file(problems))
    return profiles


def load_collated(path: Path | None = None, directory: Path | None = None) -> dict[str, Any]:
    """The collated document (as ``collate`` makes it), from the shipped JSON or else the YAML.

    ``path`` defaults to ``COLLATED_PATH`` (present in an installed wheel); when it does not
    exist the YAML in ``directory`` is loaded and collated. An existing JSON is validated like
    the YAML, and one that is broken or of another schema version raises ``ProfileError``
    rather than falling back silently: that is a packaging fault that should be seen.
    """
    path = path if path is not None else COLLATED_PATH
    if not path.is_file():
        return collate(load_profiles(directory))
    document = _read_collated(path)
    profiles_from_collated(document, path.name)
    return document


def _read_collated(path: Path) -> dict[str, Any]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        problem = f"{path.name}: cannot read collated profiles: {exc}"
        raise ProfileError(str(path), [problem]) from None
    if isinstance(document, dict) and document.get("schema_version") == SCHEMA_VERSION:
        return document
    found = document.get("schema_version") if isinstance(document, dict) else None
    raise ProfileError(str(path), [
        f"{path.name}: schema_version: expected {SCHEMA_VERSION}, got {found!r}; rebuild it "
        "with this version (`madoguchi profiles check --out FILE`, or build the wheel)"
    ])


def profiles_from_collated(
    document: Mapping[str, Any], source: str = "firmware-profiles.json"
) -> dict[str, Profile]:
    """Validate a collated document back into profile models (``ProfileError`` if it fails)."""
    entries = document.get("profiles")
    if not isinstance(entries, dict):
        raise ProfileError(source, [f"{source}: profiles: must be a mapping of id -> profile"])
    problems: list[str] = []
    profiles: dict[str, Profile] = {}
    for pid in sorted(entries):
        data = entries[pid]
        if not isinstance(data, dict) or data.get("id") != pid:
            problems.append(f"{source}: {pid}: must be a mapping whose id is {pid!r}")
            continue
        profile = _validate(Resolved(pid, f"{source} [{pid}]", data, {}), problems)
        if profile is not None:
            profiles[pid] = profile
    if problems:
        raise ProfileError(source, problems)
    return profiles
