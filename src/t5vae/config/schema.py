"""YAML files to validated dataclasses: the machinery behind config/params.py.

`build(cls, mapping, file)` makes a dataclass (nested ones too) from a YAML mapping, checking key
names and types; the dataclasses check their values in __post_init__ (with `check`). Every error
reads "<file>: <key.path>: <problem>". `read_yaml` resolves `extends:`; `parse_overrides` turns
`--set key.path=value` strings into a mapping merged over a file's.
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from pathlib import Path

import yaml

from t5vae.utils.checks import ParamsError, check

__all__ = ["ParamsError", "build", "check", "merge", "parse_overrides", "read_yaml"]


def build(cls, data, file: str, prefix: str = ""):
    """Build dataclass `cls` from a mapping, recursively; errors read "<file>: <key>: <problem>"."""
    if not isinstance(data, dict):
        where = prefix.rstrip(".") or "top level"
        raise ParamsError(f"{file}: {where}: expected a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ParamsError(
            f"{file}: {prefix}{unknown[0]}: unknown key (known keys: {', '.join(sorted(known))})"
        )
    kwargs = {}
    for key, value in data.items():
        hint = _dataclass_hint(hints[key])
        if hint is not None and value is not None:
            kwargs[key] = build(hint, value, file, f"{prefix}{key}.")
            continue
        if hint is not None and not _type_ok(None, hints[key]):  # `key:` with no value: defaults
            kwargs[key] = build(hint, {}, file, f"{prefix}{key}.")
            continue
        hint = hints[key]
        if not _type_ok(value, hint):
            raise ParamsError(f"{file}: {prefix}{key}: expected {_type_name(hint)}, got {value!r}")
        kwargs[key] = value
    try:
        return cls(**kwargs)
    except ParamsError as e:
        raise ParamsError(f"{file}: {prefix}{e}") from None


def _dataclass_hint(hint):
    """The dataclass in a `D` or `D | None` type hint, else None."""
    if dataclasses.is_dataclass(hint):
        return hint
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        found = [h for h in typing.get_args(hint) if dataclasses.is_dataclass(h)]
        return found[0] if found else None
    return None


def _type_ok(value, hint) -> bool:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_type_ok(value, h) for h in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if hint is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    base = origin or hint
    return isinstance(value, base)


def _type_name(hint) -> str:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return " or ".join(_type_name(h) for h in typing.get_args(hint))
    return "null" if hint is type(None) else getattr(hint, "__name__", str(hint))


def read_yaml(path: Path) -> dict:
    """The mapping in a parameter file; `extends: <other>` merges it over a sibling file."""
    if not path.is_file():
        folder = path.parent
        choices = sorted(p.stem for p in folder.glob("*.yaml")) if folder.is_dir() else []
        raise ParamsError(
            f"{path} does not exist; available in {folder}: {', '.join(choices) or 'none'}"
        )
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise ParamsError(f"{path}: not valid YAML: {e}") from None
    if not isinstance(data, dict):
        raise ParamsError(f"{path}: top level: expected a mapping, got {data!r}")
    parent = data.pop("extends", None)
    if parent is not None:
        if not isinstance(parent, str) or parent == path.stem:
            raise ParamsError(f"{path}: extends: must name another file in {path.parent}")
        data = merge(read_yaml(path.parent / f"{parent}.yaml"), data)
        data.pop("name", None)
    return data


def merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


OVERRIDE = re.compile(r"^([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)=(.*)$", re.S)


def parse_overrides(items: list[str]) -> dict:
    """["phase2.epochs=10", "eval.iw_samples=500"] -> {"phase2": {"epochs": 10}, "eval": {...}};
    each value is read as YAML (10, 0.5, null, true, [0, 1], {kind: linear})."""
    out: dict = {}
    for item in items:
        m = OVERRIDE.match(item.strip())
        if not m:
            raise ParamsError(f"--set {item!r}: expected key.path=value, e.g. phase2.epochs=10")
        try:
            value = yaml.safe_load(m.group(2))
        except yaml.YAMLError as e:
            raise ParamsError(f"--set {item!r}: the value is not valid YAML: {e}") from None
        *parents, last = m.group(1).split(".")
        node = out
        for key in parents:
            node = node.setdefault(key, {})
            if not isinstance(node, dict):
                raise ParamsError(f"--set {item!r}: {key} is set twice, once as a value")
        if last in node:
            raise ParamsError(f"--set {item!r}: {m.group(1)} is set twice")
        node[last] = value
    return out
