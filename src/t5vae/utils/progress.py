"""tqdm progress bars that honour both a caller's `enabled` and the TQDM_DISABLE environment variable
(an explicit `disable=` argument would otherwise override tqdm's own reading of the environment)."""

from __future__ import annotations

import os

from tqdm.auto import tqdm


def bar(iterable=None, enabled: bool = True, **kwargs):
    disabled = not enabled or os.environ.get("TQDM_DISABLE", "") not in ("", "0", "false", "False")
    return tqdm(iterable, disable=disabled, **kwargs)
