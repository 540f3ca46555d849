"""A run's identity: which parameters decide its numbers, and the hash of them.

A results file is reused only when its identity is the run's (config.run.RunSpec.identity); tables
and the comparison check that the runs of a table were computed with the same setting
(report.results.profile_setting). The one place that says what decides a run's numbers and what
does not: profile fields, training settings, the environment.
"""

from __future__ import annotations

import hashlib
import json


def digest(obj, length: int = 16) -> str:
    """The first `length` hex digits of the SHA-256 of `obj` as canonical JSON (sorted keys)."""
    text = json.dumps(obj, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:length]


# what makes two results comparable bit for bit, besides the packages (report.results, compare):
# CPU training is deterministic for a fixed model of CPU, thread count and device
ENVIRONMENT_DECIDES = ("cpu", "machine", "torch_threads", "device")
# training settings (training.config.TrainConfig) that change no number: a run resumes from a
# checkpoint written with other values of them
TRAINING_NOT_DECIDING = ("progress", "checkpoint_every", "num_workers", "cache_dir", "log_with",
                         "tracking_dir", "run_name")  # fmt: skip
UNDECIDING_SECTIONS = ("tracking", "launcher")  # profile sections that decide no number
NOT_NUMBERS = tuple(f"{section}." for section in UNDECIDING_SECTIONS)  # their --set keys
# profile fields left out of a run's identity: texts, the overrides' record, those sections
NOT_DECISIVE = ("name", "description", "overrides", *UNDECIDING_SECTIONS)
# Profile fields added after reference results were computed, with the value that reproduces the
# old behaviour: left out of a run's identity while they hold it, so adding a field recomputes
# nothing and committed results still compare with fresh ones.
ADDED_LATER = {
    "phase2_from_decoder": None,
    "pretrain.train_size": "data",
    "pretrain.mixed_precision": "no",
    # phase 1's KL weight is constant: no warm-up, either value trains the same model
    "phase1.select_after_warmup": True,
    "phase2.select_after_warmup": False,
}


def decisive_profile(profile: dict) -> dict:
    """The fields of a profile (as a dict) that decide a run's numbers (a new dict)."""
    out = {k: v for k, v in profile.items() if k not in NOT_DECISIVE}
    for key, default in ADDED_LATER.items():
        section, _, name = key.rpartition(".")
        node = out.get(section) if section else out
        if isinstance(node, dict) and name in node and node[name] == default:
            node = {k: v for k, v in node.items() if k != name}
            out = {**out, section: node} if section else node
    return out
