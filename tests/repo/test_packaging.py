"""The two ways to install: the lock (the reference's exact environment, ./reproduce.sh's default)
and the ranges (pyproject.toml, environment.yml for conda users), which agree with each other."""

from __future__ import annotations

import pytest
import tomllib
import yaml

from helpers import REPO


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    wanted = set(project["dependencies"]) | set(extras["test"]) | set(extras["docs"])
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    listed = {r for r in pip if not r.startswith("-e")}
    assert listed == wanted, {
        "only in environment.yml": listed - wanted,
        "only in pyproject": wanted - listed,
    }
    assert "-e ." in pip


def test_torch_is_a_range_and_the_lock_pins_the_cpu_build():
    """pyproject asks for a range (users who bring their own environment keep their torch); the
    lock pins the CPU build the references were computed with, and every locked version lies in
    pyproject's ranges (the locked environment is one point of the ranged one)."""
    from packaging.requirements import Requirement

    from t5vae.report.environment import canonical, read_lock

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    deps = project["dependencies"]
    torch_req = Requirement(next(d for d in deps if d.startswith("torch")))
    assert "==" not in str(torch_req.specifier) and torch_req.specifier.contains("2.13.0")
    assert not torch_req.specifier.contains("2.3.0")
    pins = read_lock(REPO / "requirements" / "lock.txt")
    assert pins["torch"] == "2.13.0+cpu"
    wanted = [*deps, *(d for extra in project["optional-dependencies"].values() for d in extra)]
    for text in wanted:
        req = Requirement(text)
        assert canonical(req.name) in pins, f"{req.name} is not in the lock: ./reproduce.sh lock"
        assert req.specifier.contains(pins[canonical(req.name)], prereleases=True), (
            text,
            pins[canonical(req.name)],
        )
    for line in (REPO / "requirements" / "pins.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, version = line.split("==")
            assert pins[canonical(name)] == version, f"the lock does not follow pins.txt: {line}"
    # every pin carries at least one hash (pip --require-hashes installs it)
    text = (REPO / "requirements" / "lock.txt").read_text()
    blocks = [b for b in text.split("\n") if "==" in b and not b.startswith(("#", " "))]
    assert len(blocks) == len(pins) and text.count("--hash=sha256:") >= len(pins)


def test_lock_parsing_and_differences(tmp_path):
    from t5vae.report.environment import differences, lock_hash, read_lock

    lock = tmp_path / "lock.txt"
    lock.write_text(
        "# comment\nFoo_Bar==1.0 \\\n    --hash=sha256:aa\n    # via x\naccelerate==1.15.0\n"
    )
    pins = read_lock(lock)
    assert pins == {"foo-bar": "1.0", "accelerate": "1.15.0"}
    assert differences(pins, {"foo-bar": "1.0", "accelerate": "1.16.0", "pip": "26"}) == [
        "accelerate 1.16.0 (lock 1.15.0)"
    ]
    assert differences(pins, {"accelerate": "1.15.0"}) == ["foo-bar missing (lock 1.0)"]
    assert lock_hash(pins) == lock_hash(dict(reversed(list(pins.items()))))  # order-free
    lock.write_text("a==1\na==2\n")
    with pytest.raises(ValueError, match=r"lock\.txt:2: a is pinned twice"):
        read_lock(lock)


def test_the_locked_install_is_exactly_the_lock():
    """In the environment ./reproduce.sh installs by default (T5VAE_ENV=locked: CI's), every
    locked package is installed at its locked version, and results record the lock's hash."""
    import sys
    from pathlib import Path

    from t5vae.report.environment import (
        LOCK_FILE,
        differences,
        installed,
        lock_hash,
        read_lock,
        record,
    )

    stamp = Path(sys.prefix) / ".t5vae-installed"
    if not stamp.is_file() or not stamp.read_text().startswith("locked"):
        pytest.skip(f"not the locked environment ({stamp}): T5VAE_ENV=ranges or current")
    pins = read_lock(LOCK_FILE)
    assert differences(pins, installed()) == []
    env = record()
    assert env["lock"] == lock_hash(pins) and env["differs_from_lock"] == []
    assert env["packages"]["torch"] == "2.13.0+cpu" and len(env["runtime"]) == 16


def test_reproduce_sh_installs_the_lock_by_default_and_documents_the_opt_outs():
    script = (REPO / "reproduce.sh").read_text()
    assert 'MODE="${T5VAE_ENV:-locked}"' in script
    assert '--require-hashes --no-deps -r "$LOCK"' in script
    assert "PIP_CONSTRAINT" not in (REPO / ".ci" / "run").read_text()  # CI takes the default path
    readme = (REPO / "README.md").read_text()
    for mode in ("T5VAE_ENV=ranges", "T5VAE_ENV=current"):
        assert mode in readme


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
    env = dict(os.environ)  # as a user who brings an environment: pip's own settings
    subprocess.run([*pip, "install", "torch==2.13.0"], check=True, env=env, timeout=900)
    report = tmp_path / "report.json"
    subprocess.run([*pip, "install", "--dry-run", "--report", str(report), "-e", str(REPO)],
                   check=True, env=env, timeout=900)  # fmt: skip
    would_install = {
        item["metadata"]["name"].lower() for item in json.loads(report.read_text())["install"]
    }
    assert "t5vae" in would_install and "transformers" in would_install
    assert "torch" not in would_install, "installing t5vae would replace the torch already there"
