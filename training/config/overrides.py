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
    """Return `cfg` with `a.b=value` overrides applied; values are parsed to the field's declared type.

    All overrides are applied at once, each section rebuilt a single time: a section's own checks
    (`__post_init__`) see every value the command line sets, never a half-applied state in which two fields that
    must change together (`source_tokenizer.vocab_size` and `target_tokenizer.vocab_size`) still disagree."""
    tree: dict[str, Any] = {}
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep:
            raise ValueError(f"override {item!r} is not of the form key=value")
        *sections, name = key.strip().split(".")
        node = tree
        for section in sections:
            node = node.setdefault(section, {})
            if not isinstance(node, dict):
                raise ValueError(f"{section!r} is not a section, cannot set {key.strip()}")
        node[name] = raw.strip()
    return _apply_tree(cfg, tree, "")


def _apply_tree(obj: Any, tree: dict[str, Any], prefix: str) -> Any:
    names = {f.name: f for f in fields(obj)}
    hints = typing.get_type_hints(type(obj))
    changes = {}
    for head, value in tree.items():
        if head not in names:
            raise ValueError(f"{type(obj).__name__} has no field {head!r}; fields: {sorted(names)}")
        current = getattr(obj, head)
        if isinstance(value, dict):
            if not is_dataclass(current):
                raise ValueError(f"{head!r} is not a section, cannot set {prefix}{head}.{next(iter(value))}")
            changes[head] = _apply_tree(current, value, f"{prefix}{head}.")
        elif is_dataclass(current):
            raise ValueError(f"{prefix}{head} is a section: set one of its fields, e.g. {prefix}{head}.NAME=VALUE")
        else:
            changes[head] = _parse(value, hints[head], head)
    return replace(obj, **changes)


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
