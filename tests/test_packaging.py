"""environment.yml (users, conda) and pyproject.toml (pip, CI) agree on dependencies."""

from __future__ import annotations

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


def test_torch_is_pinned_to_the_cpu_build_ci_installs():
    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    assert "torch==2.13.0" in deps
