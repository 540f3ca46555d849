"""Parameter files: the committed grid is valid; every invalid value names its file and key."""

from __future__ import annotations

import shutil

import pytest
import yaml

from helpers import REPO
from t5vae.config import params as P

GRID_PHASE1 = {f"{pool}_p{p}_{fr}" for pool in ("max", "mean") for p in ("none", "0.15", "0.4")
               for fr in ("frozen", "unfrozen")}  # fmt: skip
GRID_PHASE2 = {"lnone_pnone", "lnone_p0.15", "lnone_p0.4", "l0.5_pnone", "l0.5_p0.15", "l0.5_p0.4",
               "l3_p0.15", "l6_p0.15", "vanilla", "autoencoder", "wd0.3", "bow"}  # fmt: skip


def test_committed_params_are_valid_and_cover_the_paper_grid():
    P.validate_all()
    assert set(P.list_names("phase1")) == GRID_PHASE1
    assert set(P.list_names("phase2")) == GRID_PHASE2
    assert {"smoke", "quick", "paper"} <= set(P.list_names("profiles"))
    assert set(P.list_names("datasets")) == {"ptb", "snli", "yelp", "yahoo", "builtin"}
    t = P.load_phase2("l3_p0.15")
    assert (t.objective.kl_threshold, t.objective.denoise_prob, t.phase1) == (
        3,
        0.15,
        "max_p0.15_frozen",
    )
    assert P.load_phase2("vanilla").phase1 is None
    paper = P.load_profile("paper")
    assert (
        paper.model.base == "t5-small"
        and paper.eval.iw_samples == 500
        and paper.phase2.epochs == 10
    )


@pytest.fixture
def params_copy(tmp_path):
    root = tmp_path / "params"
    shutil.copytree(REPO / "params", root)
    return root


BAD = [
    (
        "profiles/quick",
        "pretrain.train_size",
        0,
        r"quick\.yaml: pretrain\.train_size: must be 'data', null or >= 1",
    ),
    (
        "profiles/quick",
        "phase2_from_decoder",
        "half",
        r"quick\.yaml: phase2_from_decoder: must be one of null, frozen, unfrozen",
    ),
    (
        "phase2/l0.5_p0.15",
        "objective.kl_threshold",
        -1,
        r"l0\.5_p0\.15\.yaml: objective\.kl_threshold: must be >= 0",
    ),
    (
        "phase2/l0.5_p0.15",
        "objective.denoise_prob",
        1.0,
        r"l0\.5_p0\.15\.yaml: objective\.denoise_prob: must be in \[0, 1\)",
    ),
    ("phase2/l0.5_p0.15", "objective.denoise_prob", -0.1, r"denoise_prob: must be in \[0, 1\)"),
    (
        "phase2/l0.5_p0.15",
        "objective.kl_thresold",
        3,
        r"l0\.5_p0\.15\.yaml: objective\.kl_thresold: unknown key",
    ),
    (
        "phase2/l0.5_p0.15",
        "phase1",
        "nope",
        r"l0\.5_p0\.15\.yaml: phase1: .*nope\.yaml does not exist",
    ),
    (
        "phase2/l0.5_p0.15",
        "objective.kl_schedule",
        {"kind": "exp"},
        r"p0\.15\.yaml: objective\.kl_schedule\.kind: must be one of",
    ),
    (
        "phase2/l0.5_p0.15",
        "objective.kl_threshold",
        "lots",
        r"kl_threshold: expected float or null, got 'lots'",
    ),
    (
        "phase1/max_pnone_frozen",
        "objective.kl_threshold",
        0.5,
        r"max_pnone_frozen\.yaml: objective: phase 1 has no KL term",
    ),
    (
        "profiles/smoke",
        "phase2.kl_schedule.warmup_ratio",
        0,
        r"smoke\.yaml: phase2\.kl_schedule\.warmup_ratio: must be in \(0, 1\]",
    ),
    (
        "phase1/max_pnone_frozen",
        "pooling",
        "sum",
        r"max_pnone_frozen\.yaml: pooling: must be one of",
    ),
    (
        "phase1/max_pnone_frozen",
        "freeze_decoder",
        "maybe",
        r"frozen\.yaml: freeze_decoder: expected bool",
    ),
    (
        "phase1/max_pnone_frozen",
        "phase1_embeddings",
        "shared",
        r"phase1_embeddings: must be one of",
    ),
    (
        "profiles/smoke",
        "model.latent_dim",
        0,
        r"smoke\.yaml: model\.latent_dim: must be an integer >= 1",
    ),
    ("profiles/smoke", "model.latnt_dim", 4, r"smoke\.yaml: model\.latnt_dim: unknown key"),
    ("profiles/smoke", "eval.iw_samples", 0, r"smoke\.yaml: eval\.iw_samples: must be >= 1"),
    ("profiles/smoke", "phase2.lr", -1.0, r"smoke\.yaml: phase2\.lr: must be >= 0"),
    ("profiles/smoke", "phase1.epochs", 0, r"smoke\.yaml: phase1\.epochs: must be >= 1"),
    ("profiles/smoke", "data.train_size", 0, r"smoke\.yaml: data\.train_size: must be >= 1"),
    (
        "profiles/smoke",
        "pretrain.noise_density",
        1.5,
        r"smoke\.yaml: pretrain\.noise_density: must be in",
    ),
    (
        "profiles/smoke",
        "pretrain.mixed_precision",
        "fp8",
        r"smoke\.yaml: pretrain\.mixed_precision: must be one of no, fp16, bf16",
    ),
    ("profiles/smoke", "model", [1, 2], r"smoke\.yaml: model: expected a mapping"),
    ("profiles/smoke", "seeds", [], r"smoke\.yaml: seeds: must be a non-empty list"),
    ("profiles/smoke", "seeds", [0, 0], r"smoke\.yaml: seeds: must not repeat a seed"),
    (
        "profiles/smoke",
        "seeds",
        [-1],
        r"smoke\.yaml: seeds: must be a non-empty list of integers >= 0",
    ),
    ("profiles/smoke", "cpu_threads", 0, r"smoke\.yaml: cpu_threads: must be >= 1"),
    ("datasets/ptb", "max_length", 1, r"ptb\.yaml: max_length: must be >= 2"),
    ("datasets/ptb", "source", "ftp", r"ptb\.yaml: source: must be one of files, hub, builtin"),
    ("datasets/ptb", "name", "wiki", r"ptb\.yaml: name: must equal the file name"),
]


@pytest.mark.parametrize(
    ("file", "key", "value", "message"), BAD, ids=[f"{f}:{k}={v}" for f, k, v, _ in BAD]
)
def test_invalid_values_name_file_and_key(params_copy, file, key, value, message):
    path = params_copy / f"{file}.yaml"
    data = yaml.safe_load(path.read_text())
    *parents, last = key.split(".")
    node = data
    for k in parents:
        node = node.setdefault(k, {})
    node[last] = value
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(P.ParamsError, match=message):
        P.validate_all(params_copy)


def test_broken_yaml_names_the_file(params_copy):
    (params_copy / "datasets" / "ptb.yaml").write_text("max_length: [1\n")
    with pytest.raises(P.ParamsError, match=r"ptb\.yaml: not valid YAML"):
        P.validate_all(params_copy)


def test_unknown_names_list_the_choices(params_copy):
    with pytest.raises(
        P.ParamsError,
        match=r"nosuch\.yaml does not exist; available in .*: field, field_gpu, paper, quick, replica, smoke",
    ):
        P.load_profile("nosuch", params_copy)


def test_profiles_can_extend_another(params_copy):
    (params_copy / "profiles" / "quick-more.yaml").write_text("extends: quick\nseeds: [1, 2]\n")
    more = P.load_profile("quick-more", params_copy)
    quick = P.load_profile("quick", params_copy)
    assert more.seeds == [1, 2] and more.name == "quick-more"
    assert more.model == quick.model and more.phase2 == quick.phase2
    (params_copy / "profiles" / "loop.yaml").write_text("extends: loop\n")
    with pytest.raises(P.ParamsError, match="extends: must name another file"):
        P.load_profile("loop", params_copy)


def test_dataset_tokenizer_settings_override_the_profile(params_copy):
    assert P.load_dataset("ptb", params_copy).tokenizer == {
        "vocab_size": 8000,
        "model_type": "unigram",
    }
    path = params_copy / "datasets" / "ptb.yaml"
    path.write_text(path.read_text().replace("model_type: unigram", "model_type: trigram"))
    with pytest.raises(
        P.ParamsError, match=r"ptb\.yaml: model_type: must be one of unigram, bpe, word, char"
    ):
        P.load_dataset("ptb", params_copy)
    path.write_text("source: files\ntokenizer: {source: base}\n")
    with pytest.raises(
        P.ParamsError, match=r"ptb\.yaml: tokenizer: only vocab_size and model_type"
    ):
        P.load_dataset("ptb", params_copy)


def test_overrides_are_validated_like_yaml_values():
    prof = P.load_profile(
        "smoke", overrides=["phase2.epochs=5", "eval.iw_samples=7", "seeds=[1, 2]"]
    )
    assert (prof.phase2.epochs, prof.eval.iw_samples, prof.seeds) == (5, 7, [1, 2])
    assert prof.name.startswith("smoke+") and len(prof.name) == len("smoke+") + 8
    assert prof.overrides == sorted(["phase2.epochs=5", "eval.iw_samples=7", "seeds=[1, 2]"])
    assert (
        P.load_profile(
            "smoke", overrides=["seeds=[1, 2]", "eval.iw_samples=7", "phase2.epochs=5"]
        ).name
        == prof.name
    )
    cases = {
        "phase2.epochs=0": r"smoke\.yaml with --set phase2\.epochs=0: phase2\.epochs: must be >= 1",
        "phase2.epochz=3": r"phase2\.epochz: unknown key",
        "phase2.lr=fast": r"phase2\.lr: expected float, got 'fast'",
        "phase2.kl_schedule.kind=exp": r"phase2\.kl_schedule\.kind: must be one of",
        "epochs": r"expected key\.path=value",
        "name=other": r"name cannot be set",
        "phase2.lr=0.1 phase2.lr=0.2": r"phase2\.lr is set twice",
    }
    for item, message in cases.items():
        with pytest.raises(P.ParamsError, match=message):
            P.load_profile("smoke", overrides=item.split(" "))


def test_overrides_are_recorded_and_part_of_the_run_identity(tmp_path):
    from t5vae.evaluation.metrics import METRIC_KEYS
    from t5vae.notebook import steps
    from t5vae.report.results import is_complete, write_results

    plain = steps.make_spec("smoke", "builtin", "phase2", "vanilla", tmp_path)
    other = steps.make_spec(
        "smoke", "builtin", "phase2", "vanilla", tmp_path, overrides=["phase2.epochs=3"]
    )
    assert other.params()["profile"]["overrides"] == ["phase2.epochs=3"]
    assert other.identity != plain.identity and other.results_file != plain.results_file
    assert other.base_dir == plain.base_dir  # the base does not depend on phase 2: built once
    # ... nor on how its sentences are named: the first 200 ("data", smoke's train_size) == 200
    base = [steps.make_spec("smoke", "builtin", "base", "base", tmp_path, overrides=o).base_dir
            for o in (None, ["pretrain.train_size=200"], ["pretrain.train_size=100"])]  # fmt: skip
    assert base[0] == base[1] != base[2]
    assert (
        steps.make_spec("smoke", "builtin", "phase2", "vanilla", tmp_path, seed=1).identity
        != plain.identity
    )
    record = write_results(other, dict.fromkeys(METRIC_KEYS, 1.0))
    assert record["provenance"]["params"]["profile"]["overrides"] == ["phase2.epochs=3"]
    assert record["profile"] == other.profile.name
    write_results(plain, dict.fromkeys(METRIC_KEYS, 1.0))
    # a results file computed with other parameters (here: in place of this run's) is not reused
    other.results_file.parent.mkdir(parents=True, exist_ok=True)
    other.results_file.write_text(plain.results_file.read_text())
    assert not is_complete(other.results_file, other.identity)
    assert is_complete(plain.results_file, plain.identity)


def test_phase2_can_start_from_the_same_phase1_variant_with_the_decoder_unfrozen(params_copy):
    """profile.phase2_from_decoder swaps only the decoder setting of the phase-1 run a technique
    names; a variant without a counterpart is an error naming the key."""
    assert (
        P.phase1_with_decoder("max_p0.15_frozen", "unfrozen", params_copy) == "max_p0.15_unfrozen"
    )
    assert (
        P.phase1_with_decoder("mean_pnone_unfrozen", "frozen", params_copy) == "mean_pnone_frozen"
    )
    assert P.phase1_with_decoder("max_p0.15_frozen", None, params_copy) == "max_p0.15_frozen"
    assert P.phase1_with_decoder("max_p0.15_frozen", "frozen", params_copy) == "max_p0.15_frozen"
    (params_copy / "phase1" / "max_p0.15_unfrozen.yaml").unlink()
    with pytest.raises(
        P.ParamsError, match="phase2_from_decoder: unfrozen: .* like max_p0.15_frozen"
    ):
        P.phase1_with_decoder("max_p0.15_frozen", "unfrozen", params_copy)


def test_fields_added_later_change_no_identity_at_their_old_behaviour():
    """identity.ADDED_LATER: a field holding the value that reproduces the old behaviour is left
    out of a run's identity (committed results stay valid); any other value is part of it."""
    from t5vae.notebook import steps

    def identity(*overrides):
        return steps.make_spec(
            "smoke", "builtin", "phase2", "l0.5_pnone", overrides=list(overrides)
        ).identity

    plain = identity()
    assert identity("pretrain.train_size=data", "phase2_from_decoder=null") == plain
    assert identity("pretrain.train_size=100") != plain
    assert identity("phase2_from_decoder=unfrozen") != plain

    # select_after_warmup: true is the default now, false the old behaviour (left out); phase 1
    # (no warm-up) trains the same either way, and true is left out there
    def decisive(*overrides):
        spec = steps.make_spec(
            "smoke", "builtin", "phase2", "l0.5_pnone", overrides=list(overrides)
        )
        return spec._decisive_params()["profile"]

    assert "select_after_warmup" in decisive()["phase2"]
    assert "select_after_warmup" not in decisive()["phase1"]
    old = decisive("phase2.select_after_warmup=false")
    assert "select_after_warmup" not in old["phase2"] and identity(
        "phase2.select_after_warmup=false") != plain  # fmt: skip
    assert decisive("phase1.select_after_warmup=false")["phase1"]["select_after_warmup"] is False
