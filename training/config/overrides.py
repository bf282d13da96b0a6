"""`--set key=value` overrides on a frozen config tree, and the flat and JSON forms a config is logged in."""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from dataclasses import fields, is_dataclass, replace
from typing import Any, Literal, TypeVar

C = TypeVar("C")


def apply_overrides(cfg: Any, overrides: list[str]) -> Any:
    """Return `cfg` with `a.b=value` overrides applied; values are parsed to the field's declared type."""
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep:
            raise ValueError(f"override {item!r} is not of the form key=value")
        cfg = _set_path(cfg, key.strip().split("."), raw.strip())
    return cfg


def _set_path(obj: Any, path: list[str], raw: str) -> Any:
    names = {f.name: f for f in fields(obj)}
    head = path[0]
    if head not in names:
        raise ValueError(f"{type(obj).__name__} has no field {head!r}; fields: {sorted(names)}")
    current = getattr(obj, head)
    if len(path) > 1:
        if not is_dataclass(current):
            raise ValueError(f"{head!r} is not a section, cannot set {'.'.join(path)}")
        return replace(obj, **{head: _set_path(current, path[1:], raw)})
    hints = typing.get_type_hints(type(obj))
    return replace(obj, **{head: _parse(raw, hints[head], head)})


def _parse(raw: str, hint: Any, name: str) -> Any:
    origin = typing.get_origin(hint)
    if origin in (types.UnionType, typing.Union) and type(None) in typing.get_args(hint):
        # `X | None`: "none" (or nothing) is None, anything else parses as X
        if raw.lower() in ("none", ""):
            return None
        (inner,) = [a for a in typing.get_args(hint) if a is not type(None)]
        return _parse(raw, inner, name)
    if origin is Literal:
        choices = typing.get_args(hint)
        if raw not in choices:
            raise ValueError(f"{name} must be one of {choices}, got {raw!r}")
        return raw
    if origin is tuple:
        item = typing.get_args(hint)[0]
        return tuple(_parse(s.strip(), item, name) for s in raw.split(",") if s.strip())
    if hint is bool:
        if raw.lower() not in ("true", "false", "1", "0", "yes", "no"):
            raise ValueError(f"{name} must be true or false, got {raw!r}")
        return raw.lower() in ("true", "1", "yes")
    if hint in (int, float, str):
        try:
            return hint(raw)
        except ValueError as e:
            raise ValueError(f"{name} must be {hint.__name__}, got {raw!r}") from e
    raise ValueError(f"cannot parse a value for {name} of type {hint}")


def to_dict(cfg: Any) -> dict[str, Any]:
    return dataclasses.asdict(cfg)


def flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{'a': {'b': 1}} -> {'a.b': 1}: the form MLflow params take."""
    out: dict[str, Any] = {}
    for key, value in d.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, name + "."))
        else:
            out[name] = value
    return out


def from_dict(cls: type[C], data: dict[str, Any]) -> C:
    """Rebuild a config of class `cls` (the task table's `config`) from `to_dict` output, e.g. a run's config.json."""
    return _build(cls, data)


def _build(cls: Any, data: dict[str, Any]) -> Any:
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for f in fields(cls):
        if f.name not in data:
            continue
        value = data[f.name]
        hint = hints[f.name]
        if is_dataclass(hint) and isinstance(value, dict):
            value = _build(hint, value)
        elif typing.get_origin(hint) is tuple:
            value = tuple(value)
        kwargs[f.name] = value
    return cls(**kwargs)


def dumps(cfg: Any) -> str:
    return json.dumps(to_dict(cfg), indent=2, sort_keys=True)
