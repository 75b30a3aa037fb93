"""Reading a YAML configuration file into :class:`AtlasConfig`.

Errors name the file, the dotted key and what is allowed, in one line, so the
CLI can print them as they are.

Two readings: :func:`load_config` validates the whole file strictly (``arc-atlas
run`` needs every section right), :func:`load_config_sections` validates only
the sections a command uses. The second is what readers (the exporter, the
query API, ``review``) use, so a complete atlas-sdk config file — with
sections arc-atlas does not have, such as ``student`` or ``prompt_rewrite`` —
works there as seed 000 promises ("add a storage block to your SDK config").
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any, get_args

import yaml
from pydantic import BaseModel, ValidationError

from atlas.config.adapters import AdapterConfig
from atlas.config.models import AtlasConfig
from atlas.errors import ConfigError

__all__ = [
    "READER_SECTIONS",
    "config_from_mapping",
    "ignored_sections_message",
    "load_config",
    "load_config_sections",
    "load_reader_config",
]

logger = logging.getLogger("atlas.config")

# The sections the readers (export, query API, review) use.
READER_SECTIONS: tuple[str, ...] = ("storage", "runtime_safety")

# ${NAME} or ${NAME:-default}; values are expanded before validation so a URL
# can keep its password in the environment instead of the file.
_ENV_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def load_config(path: str | os.PathLike[str]) -> AtlasConfig:
    """Load and validate a YAML configuration file.

    ``${NAME}`` and ``${NAME:-default}`` in string values are replaced from the
    environment. Raises :class:`ConfigError` when the file is missing, is not
    valid YAML, or holds an unknown key or a bad value.
    """
    file = Path(path)
    return config_from_mapping(_read_mapping(file), source=str(file))


def load_config_sections(
    path: str | os.PathLike[str], sections: Collection[str] = READER_SECTIONS
) -> tuple[AtlasConfig, tuple[str, ...]]:
    """Load a configuration file, validating only ``sections``; the rest is left out.

    Returns the config and the top-level sections arc-atlas does not know
    (atlas-sdk's ``student``, ``prompt_rewrite``, ...), in file order, so the
    caller can say once that they were ignored. Known sections that the caller
    does not use (``agent``, ``rim``, ...) are skipped silently: they are not
    validated, so an agent type only atlas-sdk has does not stop an export.
    Raises :class:`ConfigError` as :func:`load_config` does, for the chosen
    sections only.
    """
    file = Path(path)
    data = _read_mapping(file)
    known = AtlasConfig.model_fields
    unknown = tuple(str(key) for key in data if key not in known)
    chosen = {key: value for key, value in data.items() if key in sections}
    return config_from_mapping(chosen, source=str(file)), unknown


def load_reader_config(path: str | os.PathLike[str]) -> AtlasConfig:
    """:func:`load_config_sections` for the readers, logging one warning for unknown sections."""
    config, ignored = load_config_sections(path)
    if ignored:
        logger.warning(ignored_sections_message(path, ignored))
    return config


def ignored_sections_message(path: str | os.PathLike[str], ignored: Collection[str]) -> str:
    """One line saying which sections of ``path`` were ignored."""
    return (
        f"{path}: ignored section(s) {', '.join(ignored)}: arc-atlas does not know them "
        f"(only {' and '.join(READER_SECTIONS)} are read here)."
    )


def _read_mapping(file: Path) -> Mapping[str, Any]:
    """The top-level mapping of a YAML file; raises :class:`ConfigError`."""
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"Config file {file} does not exist: check the path.") from None
    except OSError as exc:
        raise ConfigError(f"Config file {file} cannot be read: {exc.strerror}.") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "not valid YAML"
        raise ConfigError(f"{file}{where}: {problem}; fix the YAML syntax.") from None
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"{file}: the top level must be a mapping of sections (storage:, ...).")
    return data


def config_from_mapping(data: Mapping[str, Any], *, source: str = "<config>") -> AtlasConfig:
    """Validate an already-parsed configuration mapping (``source`` names it in errors)."""
    expanded = _expand_env(dict(data), source, ())
    try:
        return AtlasConfig.model_validate(expanded)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, source)) from None


def _expand_env(value: Any, source: str, path: tuple[str, ...]) -> Any:
    if isinstance(value, str):
        return _ENV_REFERENCE.sub(lambda m: _lookup(m, source, path), value)
    if isinstance(value, Mapping):
        return {k: _expand_env(v, source, (*path, str(k))) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand_env(v, source, (*path, str(i))) for i, v in enumerate(value)]
    return value


def _lookup(match: re.Match[str], source: str, path: tuple[str, ...]) -> str:
    name, default = match.group(1), match.group(2)
    found = os.environ.get(name)
    if found is not None:
        return found
    if default is not None:
        return default
    raise ConfigError(
        f"{source}: {'.'.join(path)} refers to ${{{name}}}, which is not set: "
        f"export {name} or write ${{{name}:-default}}."
    )


def _describe(exc: ValidationError, source: str) -> str:
    messages = []
    for error in exc.errors():
        raw = [str(part) for part in error["loc"]]
        loc, _ = _walk(raw)
        key = ".".join(loc) or "(top level)"
        if error["type"] == "extra_forbidden":
            _, model = _walk(raw[:-1])
            allowed = ", ".join(model.model_fields) if model is not None else "none"
            messages.append(f"{key}: unknown key; allowed here: {allowed}")
        elif error["type"] in ("union_tag_not_found", "union_tag_invalid"):
            tags = ", ".join(_TAGS)
            got = error.get("input")
            found = got.get("type") if isinstance(got, dict) else None
            what = f"type {found!r} is not one" if found else "a 'type' is needed"
            messages.append(f"{key}: {what} of {tags}")
        else:
            got = error.get("input")
            shown = "" if isinstance(got, (dict, list)) else f" (got {_shown(got)})"
            # pydantic prefixes a validator's own ValueError text with "Value error, ".
            text = error["msg"].removeprefix("Value error, ")
            messages.append(f"{key}: {text}{shown}")
    return f"{source}: " + "; ".join(messages) + "."


def _shown(value: Any) -> str:
    """A rejected value as an error shows it: a URL's password (from ${PW}, say) masked."""
    from atlas.storage.urls import mask_url  # atlas.storage imports atlas.config

    return repr(mask_url(value)) if isinstance(value, str) else repr(value)


def _members(annotation: Any) -> list[type[BaseModel]]:
    """The models a field can hold, through Optional, unions, tuples and Annotated."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [model for arg in get_args(annotation) for model in _members(arg)]


def _tag(model: type[BaseModel]) -> str | None:
    field = model.model_fields.get("type")
    values = get_args(field.annotation) if field is not None else ()
    return str(values[0]) if values else None


_TAGS = tuple(t for m in _members(AdapterConfig) if (t := _tag(m)))


def _walk(loc: list[str]) -> tuple[list[str], type[BaseModel] | None]:
    """The location as the user wrote it, and the model it ends in (None: not a model).

    pydantic puts the chosen member of a tagged union into the location
    (``agent.python.import_path``); the file has no such level, so it is dropped.
    """
    model: type[BaseModel] | None = AtlasConfig
    union: list[type[BaseModel]] = []
    shown: list[str] = []
    for part in loc:
        if union:
            chosen = next((m for m in union if _tag(m) == part), None)
            union = []
            if chosen is not None:
                model = chosen
                continue
        shown.append(part)
        if part.isdigit() or model is None:
            continue  # an index into a list keeps the item model
        field = model.model_fields.get(part)
        members = _members(field.annotation) if field is not None else []
        model = members[0] if len(members) == 1 else None
        union = members if len(members) > 1 else []
    return shown, model
