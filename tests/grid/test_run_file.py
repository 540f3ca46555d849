"""A run is resolved once: the grid writes run.json, the notebooks load it and read nothing
under params/ after that."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from helpers import REPO
from t5vae.config import params as P
from t5vae.config.run import load_run_file, make_spec, write_run_file

SPECS = [
    ("phase1", "max_p0.15_frozen", None),
    ("phase2", "l0.5_p0.15", None),
    ("phase2", "vanilla", ["phase2.epochs=3"]),
    ("base", "base", None),
]


@pytest.mark.parametrize(("stage", "name", "overrides"), SPECS)
def test_a_run_file_gives_back_the_same_run(stage, name, overrides, tmp_path):
    spec = make_spec("smoke", "builtin", stage, name, tmp_path, seed=1, overrides=overrides)
    loaded = load_run_file(write_run_file(spec))
    assert loaded == spec
    assert loaded.identity == spec.identity and loaded.results_file == spec.results_file
    if spec.phase1 is not None:
        assert loaded.phase1.identity == spec.phase1.identity


AUDIT = """
import os, sys
params = sys.argv[2]
opened = []
def hook(event, args):
    if event == "open" and isinstance(args[0], (str, os.PathLike)):
        if os.path.abspath(os.fspath(args[0])).startswith(params):
            opened.append(os.fspath(args[0]))
sys.addaudithook(hook)
from t5vae.notebook import display, steps
spec = steps.spec(sys.argv[1], "no-such-profile", "no-such-dataset", "phase2", "no-such-name")
print(display.describe(spec))
_ = (spec.identity, spec.setting, spec.params, spec.results_file, spec.phase1.identity,
     spec.phase1.results_file, spec.tokenized_dir, spec.base_dir)
print("OPENED", opened)
"""


def test_a_notebook_given_a_run_file_reads_nothing_under_params(tmp_path):
    """The run as a notebook resolves it from run.json, with every property its cells use,
    opens no file under params/ (a Python audit hook on open)."""
    spec = make_spec("smoke", "builtin", "phase2", "l0.5_p0.15", tmp_path)
    run_file = write_run_file(spec)
    out = subprocess.run(
        [sys.executable, "-c", AUDIT, str(run_file), str(REPO / "params")],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert out.stdout.strip().endswith("OPENED []"), out.stdout[-2000:]


def test_a_bad_run_file_is_named(tmp_path):
    bad = tmp_path / "run.json"
    bad.write_text("{not json")
    with pytest.raises(P.ParamsError, match="run.json: not a readable run file"):
        load_run_file(bad)
    spec = make_spec("smoke", "builtin", "phase1", "max_p0.15_frozen", tmp_path)
    data = spec.to_dict()
    data["profile"]["phase1"]["epochs"] = 0
    bad.write_text(json.dumps(data))
    with pytest.raises(P.ParamsError, match="run.json"):
        load_run_file(bad)
