"""Results files: one JSON per run and seed, written atomically, with provenance.

results/<profile>/<dataset>/seed<k>/<stage>-<name>.json holds {"metrics", "provenance", "status",
"history", "examples", ...}; tables, figures and the comparison with the reference are generated
from these files only (tables.py, compare.py, claims.py), never edited by hand.
"""

from __future__ import annotations

import json
import platform
import subprocess
from dataclasses import asdict
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

import pandas as pd

from t5vae.evaluation.metrics import METRIC_KEYS
from t5vae.report import environment as software
from t5vae.utils.files import atomic_write_json
from t5vae.utils.identity import ENVIRONMENT_DECIDES, decisive_profile, digest

# 1: results/<profile>/<dataset>/<run>.json, no seed, history or trained_with (before reference/)
# 2: seed folders, "seed", "history", "provenance.trained_with", "schema"
RESULTS_SCHEMA = 2
PACKAGES = ("t5vae", "torch", "transformers", "accelerate", "datasets", "sentencepiece", "numpy")


class ResultsError(ValueError):
    """A results file is corrupted, truncated or not a results file (the message names it)."""


def git_state(repo: Path | None = None) -> dict:
    repo = repo or Path(__file__).resolve().parents[3]
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True,
                                check=True).stdout.strip()  # fmt: skip
        # generated results/ do not make the code dirty (they are rewritten by design)
        status = [
            "git",
            "status",
            "--porcelain",
            "--untracked-files=no",
            "--",
            ".",
            ":(exclude)results",
            ":(exclude)reference",
        ]
        dirty = bool(
            subprocess.run(status, cwd=repo, capture_output=True, text=True).stdout.strip()
        )
    except (OSError, subprocess.CalledProcessError):
        return {"git_commit": None, "git_dirty": None}
    return {"git_commit": commit, "git_dirty": dirty}


def cpu_model() -> str:
    """The CPU's model name (Linux /proc/cpuinfo), else what platform knows."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment() -> dict:
    """Where numbers are computed: CPU model, torch's thread count now, device."""
    import torch

    return {
        "host": platform.node(),
        "cpu": cpu_model(),
        "machine": platform.machine(),
        "torch_threads": torch.get_num_threads(),
        "device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu",
    }


def versions() -> dict:
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def params_hash(params: dict) -> str:
    return digest(params, 12)


def profile_setting(stored: dict) -> str:
    """A hash of a results file's profile parameters as this code reads them: fields added
    since the file was written take their defaults (which reproduce the old behaviour), and
    what does not change numbers (texts, tracking, launcher, the grid's seed list) is left out.
    A file this code cannot read as a profile is hashed as stored."""
    from t5vae.config.params import ParamsError, Profile
    from t5vae.config.schema import build

    try:
        profile = asdict(build(Profile, stored, "results file"))
    except (ParamsError, TypeError, ValueError):  # another schema: compare it as stored
        profile = dict(stored)
    profile.pop("seeds", None)  # the grid's seed list (a run records its own seed)
    return params_hash(decisive_profile(profile))


def provenance(spec, **extra) -> dict:
    params = spec.params()
    return {
        **git_state(),
        "versions": versions(),
        "environment": software.record(),  # the lock's hash and every installed package
        "params": params,
        "params_hash": params_hash(params),
        "identity": spec.identity,  # what is_complete checks (runs.RunSpec.identity)
        "setting": spec.setting,  # the same without the seed (what compare checks)
        "seed": spec.seed,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        **environment(),
        **extra,
    }


def _record(spec, status: str, metrics: dict | None, error: str | None = None, **extra) -> dict:
    label = spec.technique.label if spec.stage == "phase2" else spec.name
    return {
        "run_id": spec.run_id, "profile": spec.profile.name, "dataset": spec.dataset.name,
        "schema": RESULTS_SCHEMA, "seed": spec.seed, "stage": spec.stage, "name": spec.name,
        "label": label or spec.name,
        "status": status, "error": error, "metrics": metrics, "provenance": provenance(spec, **extra),
    }  # fmt: skip


def write_results(spec, metrics: dict, examples: dict | None = None,
                  history: list[dict] | None = None, diagnosis=None, **extra) -> dict:  # fmt: skip
    """Write the run's results file atomically; returns the record.

    `history` (the training history, one row per epoch) makes the file self-contained: tables,
    curves and the comparison with the reference need nothing from runs/. `diagnosis`: the run's
    collapse diagnosis (evaluation.diagnosis.Diagnosis), stored as its label and rule.
    """
    record = _record(
        spec, "ok", {k: v for k, v in metrics.items() if k not in ("mu", "logvar")}, **extra
    )
    if diagnosis is not None:
        record["diagnosis"] = {"label": diagnosis.label, "rule": diagnosis.rule}
    record["examples"] = examples or {}
    record["history"] = history or []
    atomic_write_json(spec.results_file, record, default=float)
    return record


def write_failure(spec, error: str, **extra) -> dict:
    """Mark a run failed (kept in the tables as failed, never silently omitted)."""
    record = _record(spec, "failed", None, error=error, **extra)
    atomic_write_json(spec.results_file, record)
    return record


def read_results(path: Path) -> dict:
    """Load one results file, or raise ResultsError naming it."""
    try:
        record = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ResultsError(
            f"{path}: corrupted or truncated results file ({e}); delete it to recompute"
        ) from None
    if not isinstance(record, dict) or not {"run_id", "status", "metrics", "provenance"} <= set(
        record
    ):
        raise ResultsError(
            f"{path}: not a t5vae results file (missing keys); delete it to recompute"
        )
    if record["status"] == "ok" and not set(METRIC_KEYS) <= set(record["metrics"] or {}):
        raise ResultsError(f"{path}: results file lacks metrics; delete it to recompute")
    return record


def is_complete(path: Path, identity: str | None = None) -> bool:
    """A valid results file with status ok exists (what lets reproduce skip a run), computed with
    the parameters whose `identity` is given (runs.RunSpec.identity) when one is."""
    try:
        record = read_results(path)
    except (ResultsError, FileNotFoundError):
        return False
    return record["status"] == "ok" and (
        identity is None or record["provenance"].get("identity") == identity
    )


RUN_COLUMNS = ["dataset", "seed", "stage", "name", "label", "status", "run_id"]
META_COLUMNS = [*RUN_COLUMNS, "from_phase1", "git_commit", "git_dirty", "trained_commits", "params_hash", "setting",
                "epochs", "epoch_limit", "last_change", "n_prior_samples", "iw_samples", "latent_dim",
                "profile_params", "env", "software", "train_time_s", "eval_time_s", "path",
                "diagnosis"]  # fmt: skip


def env_fingerprint(prov: dict) -> str:
    """A short hash of the environment that decides the exact numbers (not the host name)."""
    env = {k: prov.get(k) for k in ENVIRONMENT_DECIDES}
    env["versions"] = {k: v for k, v in (prov.get("versions") or {}).items() if k != "t5vae"}
    return params_hash(env)


def software_fingerprint(prov: dict) -> str | None:
    """The software a run imported beyond the packages in `versions`: the hash of the versions of
    t5vae's runtime dependencies, recursively (environment.runtime_closure); None for a results
    file written before environments were recorded (then judged by `versions` alone)."""
    return (prov.get("environment") or {}).get("runtime")


def same_environment(reference, reproduced) -> bool:
    """Two collected rows were computed where numbers are bit-for-bit the same: CPU model,
    machine, threads, device and the recorded versions, and the reference's software fingerprint
    when it has one (a lock-installed run matches a reference from before the lock by versions)."""
    ref_software = reference.get("software")
    return reference["env"] == reproduced["env"] and (
        pd.isna(ref_software) or ref_software == reproduced.get("software")
    )


def result_files(results_dir: Path) -> list[Path]:
    """results_dir/<dataset>/seed<k>/<stage>-<name>.json, sorted."""
    return sorted(Path(results_dir).glob("*/seed*/*.json"))


def collect(results_dir: Path) -> pd.DataFrame:
    """All results files under results_dir as one row per run and seed (metrics as columns)."""
    rows = []
    for path in result_files(results_dir):
        rec = read_results(path)
        prov = rec["provenance"]
        row = {k: rec.get(k) for k in RUN_COLUMNS}
        if row["seed"] is None:
            row["seed"] = prov.get("seed")
        row.update(rec["metrics"] or {})
        trained = sorted({str(t.get("git_commit")) for t in prov.get("trained_with") or []})
        start = prov["params"].get("phase1") if rec["stage"] == "phase2" else None
        row.update(from_phase1=start["name"] if start else None,  # the run phase 2 started from
                   git_commit=prov.get("git_commit"), git_dirty=prov.get("git_dirty"),
                   trained_commits=",".join(trained) or None,
                   params_hash=prov.get("params_hash"), setting=prov.get("setting"),
                   profile_params=profile_setting(prov["params"]["profile"]),
                   env=env_fingerprint(prov), software=software_fingerprint(prov),
                   train_time_s=prov.get("train_time_s"),
                   eval_time_s=prov.get("eval_time_s"), path=str(path),
                   diagnosis=(rec.get("diagnosis") or {}).get("label"),
                   **_definitions(prov["params"]["profile"]),
                   **convergence(rec))  # fmt: skip
        rows.append(row)
    return pd.DataFrame(rows, columns=None if rows else META_COLUMNS)


def _definitions(profile: dict) -> dict:
    """The profile values that define a run's metrics (the published-rows comparison states them):
    prior samples behind distinct-n, K of the IW-NLL, the latent size."""
    ev, model = profile.get("eval") or {}, profile.get("model") or {}
    return {"n_prior_samples": ev.get("n_prior_samples"), "iw_samples": ev.get("iw_samples"),
            "latent_dim": model.get("latent_dim")}  # fmt: skip


def convergence(record: dict) -> dict:
    """How training ended: epochs trained, the epoch limit, and the last epoch's relative change
    of the validation metric that selects the checkpoint (None without two epochs)."""
    stage, params = record.get("stage"), record["provenance"].get("params") or {}
    phase = (params.get("profile") or {}).get(stage) or {}
    hist = record.get("history") or []
    values = [h.get(f"valid_{phase.get('select_by')}") for h in hist]
    values = [v for v in values if isinstance(v, int | float)]
    last = (values[-1] - values[-2]) / abs(values[-2]) if len(values) > 1 and values[-2] else None
    return {"epochs": len(hist) or None, "epoch_limit": phase.get("epochs"), "last_change": last}


def metric_columns(df: pd.DataFrame) -> list[str]:
    """The columns of `collect` that hold metrics."""
    return [c for c in df.columns if c not in META_COLUMNS]


def provenance_warnings(df: pd.DataFrame) -> list[str]:
    """Say so when results of different code versions or profile parameters are mixed."""
    out = []
    if df.empty:
        return out
    commits = sorted({str(c)[:10] for c in df["git_commit"].dropna()})
    if len(commits) > 1:
        out.append(f"results come from {len(commits)} code versions: {', '.join(commits)}")
    if df["git_dirty"].fillna(False).astype(bool).any():
        out.append("some results were produced with uncommitted changes (git_dirty)")
    other = [
        f"{r.dataset}/seed{r.seed}/{r.run_id}"
        for r in df.itertuples()
        if r.status == "ok" and r.trained_commits and r.trained_commits != r.git_commit
    ]
    if other:
        out.append(
            f"{len(other)} runs were trained by another commit than the one that evaluated them "
            f"(or by several): {', '.join(other[:5])}{' ...' if len(other) > 5 else ''}"
        )
    if df["profile_params"].nunique() > 1:
        out.append("results were produced with different profile parameters")
    if df["env"].nunique() > 1:
        out.append("results were computed in different environments (CPU, threads, packages)")
    return out
