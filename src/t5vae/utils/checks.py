"""Validation: the one error type and the helpers every layer's settings use.

A dataclass of settings (a model's, a phase's, a dataset's, a profile's) checks its own values in
`__post_init__` with `check` / `check_choice`; each rule is written once, where the setting is
declared, and the YAML layer (config/schema.py) adds the file and key path to the message:
"<file>: <key.path>: <problem>".
"""

from __future__ import annotations


class ParamsError(ValueError):
    """An invalid setting; the message names it (and, from a file, the file and key path)."""


def check(cond: bool, key: str, msg: str) -> None:
    """Raise ParamsError("<key>: <msg>") unless `cond`."""
    if not cond:
        raise ParamsError(f"{key}: {msg}")


def check_choice(value, choices, key: str) -> None:
    """`value` is one of `choices` (None is written as YAML writes it: null)."""
    names = ", ".join("null" if c is None else str(c) for c in choices)
    check(value in choices, key, f"must be one of {names}, got {value!r}")


def check_prob(key: str, value: float) -> float:
    """The one rule for a deletion / dropout probability: in [0, 1)."""
    check(0 <= value < 1, key, f"must be in [0, 1), got {value}")
    return value
