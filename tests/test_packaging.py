"""environment.yml (users, conda) and pyproject.toml (pip, CI) agree on dependencies."""

from __future__ import annotations

import pytest
import tomllib
import yaml

from conftest import REPO


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    wanted = set(project["dependencies"]) | set(project["optional-dependencies"]["test"])
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    listed = {r for r in pip if not r.startswith("-e")}
    assert listed == wanted, {
        "only in environment.yml": listed - wanted,
        "only in pyproject": wanted - listed,
    }
    assert "-e ." in pip


def test_torch_is_a_range_and_only_this_projects_machines_pin_it():
    """pyproject asks for a range (users keep their torch); the CPU pin lives in the constraints
    file that only .ci/run (this project's machines) hands to pip."""
    from packaging.requirements import Requirement

    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    torch_req = Requirement(next(d for d in deps if d.startswith("torch")))
    assert "==" not in str(torch_req.specifier) and torch_req.specifier.contains("2.13.0")
    assert not torch_req.specifier.contains("2.3.0")
    assert "torch==2.13.0" in (REPO / ".ci" / "constraints.txt").read_text().splitlines()
    assert 'export PIP_CONSTRAINT="$PWD/.ci/constraints.txt"' in (REPO / ".ci" / "run").read_text()
    assert "PIP_CONSTRAINT" not in (REPO / "reproduce.sh").read_text().replace(
        "PIP_CONSTRAINT=.ci", ""
    )


@pytest.mark.slow
def test_installing_into_an_environment_with_a_suitable_torch_keeps_it(tmp_path):
    """A fresh venv that already has a torch (as Colab or a CUDA machine has): installing the
    package resolves without replacing it (pip's own report of what it would install)."""
    import json
    import os
    import subprocess
    import sys

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "--disable-pip-version-check", "-q"]
    env = {k: v for k, v in os.environ.items() if k != "PIP_CONSTRAINT"}  # as a user: no pin
    subprocess.run([*pip, "install", "torch==2.13.0"], check=True, env=env, timeout=900)
    report = tmp_path / "report.json"
    subprocess.run([*pip, "install", "--dry-run", "--report", str(report), "-e", str(REPO)],
                   check=True, env=env, timeout=900)  # fmt: skip
    would_install = {
        item["metadata"]["name"].lower() for item in json.loads(report.read_text())["install"]
    }
    assert "t5vae" in would_install and "transformers" in would_install
    assert "torch" not in would_install, "installing t5vae would replace the torch already there"
