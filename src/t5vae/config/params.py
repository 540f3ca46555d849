"""The registry of parameter files: params/ -> validated dataclasses (config/profile.py).

params/profiles/<profile>.yaml, params/datasets/<dataset>.yaml, params/phase1/<variant>.yaml,
params/phase2/<technique>.yaml, params/claims.yaml, params/published/<dataset>.yaml. Every file
is checked before anything runs: unknown keys, wrong types and out-of-range values stop with a
ParamsError naming the file and the key. Nothing below this layer reads params/: a run is
resolved here once (config/run.py) and
carries its values.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import asdict
from pathlib import Path

import yaml

from t5vae.config.profile import (  # noqa: F401  (the dataclasses, as P.<name>)
    LAUNCHERS,
    Claim,
    DataParams,
    EvalParams,
    LauncherParams,
    ModelParams,
    Phase1Variant,
    Phase2Technique,
    PretrainParams,
    Profile,
    TrackingParams,
    check_seeds,
)
from t5vae.config.published import PublishedResults, load_published_file
from t5vae.config.schema import build, merge, parse_overrides, read_yaml
from t5vae.data.dataset import DatasetParams, HubSource  # noqa: F401
from t5vae.data.tokenizer import TokenizerParams  # noqa: F401
from t5vae.training.config import Phase1Params, PhaseParams  # noqa: F401
from t5vae.utils.checks import ParamsError, check  # noqa: F401
from t5vae.utils.identity import NOT_NUMBERS

PARAMS_ENV = "T5VAE_PARAMS_DIR"


def params_dir(path: str | os.PathLike | None = None) -> Path:
    """params/ of this checkout (or $T5VAE_PARAMS_DIR, or `path`)."""
    if path:
        return Path(path)
    if os.environ.get(PARAMS_ENV):
        return Path(os.environ[PARAMS_ENV])
    return Path(__file__).resolve().parents[3] / "params"


def load_file(cls, path: Path):
    data = read_yaml(path)
    data.setdefault("name", path.stem)
    if data["name"] != path.stem:
        raise ParamsError(
            f"{path}: name: must equal the file name {path.stem!r}, got {data['name']!r}"
        )
    return build(cls, data, str(path))


def load_profile(name: str, root=None, overrides: list[str] | None = None) -> Profile:
    """params/profiles/<name>.yaml, with `--set key.path=value` overrides merged over the YAML
    mapping before validation (so they are checked exactly like values in the file). A profile
    loaded with overrides is named `<name>+<hash of the overrides>`: its runs and results go to
    their own folders and never reuse results computed without them."""
    path = params_dir(root) / "profiles" / f"{name}.yaml"
    if not overrides:
        return _check_runs(load_file(Profile, path), path, root)
    mapping = parse_overrides(overrides)
    for key in ("name", "overrides"):
        if key in mapping:
            raise ParamsError(f"--set {key}=...: {key} cannot be set")
    data = merge(read_yaml(path), mapping)
    profile = build(Profile, data, f"{path} with --set {' '.join(overrides)}")
    decisive = sorted(o for o in overrides if not o.startswith(NOT_NUMBERS))
    if decisive:  # (tracking and launcher settings change no number: same folder, same runs)
        profile.name = f"{name}+{hashlib.sha256(repr(decisive).encode()).hexdigest()[:8]}"
    profile.overrides = sorted(overrides)
    return _check_runs(profile, path, root)


def _check_runs(profile: Profile, path: Path, root) -> Profile:
    """The profile's run lists name files that exist."""
    for key, kind in (("techniques", "phase2"), ("phase1_variants", "phase1")):
        unknown = sorted(set(getattr(profile, key) or []) - set(list_names(kind, root)))
        if unknown:
            raise ParamsError(f"{path}: {key}: unknown {', '.join(unknown)} (not in params/{kind})")
    return profile


def load_dataset(name: str, root=None) -> DatasetParams:
    """params/datasets/<name>.yaml: the registry of datasets (an unknown name lists the known)."""
    known = list_names("datasets", root)
    if name not in known:
        raise ParamsError(f"unknown dataset {name!r}; known datasets: {', '.join(known)} "
                          "(params/datasets/<name>.yaml)")  # fmt: skip
    return load_file(DatasetParams, params_dir(root) / "datasets" / f"{name}.yaml")


def load_phase1(name: str, root=None) -> Phase1Variant:
    return load_file(Phase1Variant, params_dir(root) / "phase1" / f"{name}.yaml")


def load_phase2(name: str, root=None) -> Phase2Technique:
    tech = load_file(Phase2Technique, params_dir(root) / "phase2" / f"{name}.yaml")
    if tech.phase1 is not None:
        path = params_dir(root) / "phase2" / f"{name}.yaml"
        try:
            load_phase1(tech.phase1, root)
        except ParamsError as e:
            raise ParamsError(f"{path}: phase1: {e}") from None
    return tech


def phase1_with_decoder(name: str, decoder: str | None, root=None) -> str:
    """The phase-1 variant that equals `name` except for its decoder ("frozen" / "unfrozen");
    `name` itself when decoder is None or already so. Error when params/phase1 has none."""
    variant = load_phase1(name, root)
    if decoder is None or variant.freeze_decoder == (decoder == "frozen"):
        return name
    want = {**asdict(variant), "freeze_decoder": decoder == "frozen", "name": None}
    for other in list_names("phase1", root):
        if {**asdict(load_phase1(other, root)), "name": None} == want:
            return other
    raise ParamsError(f"phase2_from_decoder: {decoder}: params/phase1 has no variant like {name} "
                      f"with the decoder {decoder}")  # fmt: skip


def load_claims(root=None) -> list[Claim]:
    """params/claims.yaml: a list of claims whose runs exist in params/phase1 and params/phase2."""
    path = params_dir(root) / "claims.yaml"
    try:
        data = yaml.safe_load(path.read_text()) if path.is_file() else []
    except yaml.YAMLError as e:
        raise ParamsError(f"{path}: not valid YAML: {e}") from None
    if not isinstance(data, list):
        raise ParamsError(
            f"{path}: top level: expected a list of claims, got {type(data).__name__}"
        )
    claims = []
    for i, item in enumerate(data):
        claim = build(Claim, item, f"{path}", f"[{i}].")
        for key, ref in (("run", claim.run), ("versus", claim.versus)):
            if ref is None:
                continue
            stage, _, name = ref.partition("/")
            if stage not in ("phase1", "phase2") or name not in list_names(stage, root):
                raise ParamsError(f"{path}: [{i}].{key}: {ref!r} is not <phase1|phase2>/<a file in "
                                  f"params/{stage or 'phase1'}>")  # fmt: skip
        claims.append(claim)
    return claims


def load_published(dataset: str, root=None) -> PublishedResults | None:
    """params/published/<dataset>.yaml (published rows beside ours), or None where there is none."""
    path = params_dir(root) / "published" / f"{dataset}.yaml"
    if not path.is_file():
        return None
    pub = load_published_file(path)
    for i, target in enumerate(pub.targets):
        if target.technique not in list_names("phase2", root):
            raise ParamsError(f"{path}: targets[{i}].technique: {target.technique!r} is not a file "
                              f"of params/phase2 ({', '.join(list_names('phase2', root))})")  # fmt: skip
    return pub


def list_names(kind: str, root=None) -> list[str]:
    return sorted(p.stem for p in (params_dir(root) / kind).glob("*.yaml"))


def validate_all(root=None) -> None:
    """Load every parameter file (raises ParamsError on the first invalid one)."""
    loaders = {
        "profiles": load_profile,
        "datasets": load_dataset,
        "phase1": load_phase1,
        "phase2": load_phase2,
        "published": load_published,
    }
    for kind, loader in loaders.items():
        for name in list_names(kind, root):
            loader(name, root)
    load_claims(root)
