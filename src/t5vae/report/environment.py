"""The software environment that decides a run's exact numbers: the lock, and what is installed.

`requirements/lock.txt` pins every package (version and hashes) of the environment the committed
references were computed in; `./reproduce.sh` installs it by default (`T5VAE_ENV=locked`) and
`./reproduce.sh lock` regenerates it (uv, from pyproject.toml's ranges and requirements/pins.txt).
A results file records, in `provenance.environment`, the lock's hash when every locked package is
installed at its locked version (else None and the differences), every installed distribution's
version, so that a difference between two environments can be read off the files, and the
fingerprint of what a run imports: the versions of this package's runtime dependencies, followed
recursively (tools such as pytest or Sphinx, also in the lock, decide no number).
"""

from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path

from t5vae.utils.identity import digest

LOCK_FILE = Path(__file__).resolve().parents[3] / "requirements" / "lock.txt"
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)")


def canonical(name: str) -> str:
    """A distribution's name as PEP 503 normalises it (`Foo_Bar` -> `foo-bar`)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def read_lock(path: Path = LOCK_FILE) -> dict[str, str]:
    """{package: version} of a pip requirements file of `name==version` pins (hashes ignored)."""
    pins = {}
    for number, line in enumerate(Path(path).read_text().splitlines(), 1):
        match = _PIN.match(line)
        if match:
            name = canonical(match[1])
            if name in pins:
                raise ValueError(f"{path}:{number}: {name} is pinned twice")
            pins[name] = match[2]
    if not pins:
        raise ValueError(f"{path}: no `name==version` pins")
    return pins


def lock_hash(pins: dict[str, str]) -> str:
    """The hash of a lock's pins (not of its bytes: comments and hash order do not count)."""
    return digest(sorted(f"{k}=={v}" for k, v in pins.items()), 16)


def installed() -> dict[str, str]:
    """{package: version} of every distribution importable here."""
    return {canonical(d.metadata["Name"]): d.version for d in metadata.distributions()
            if d.metadata["Name"]}  # fmt: skip


def runtime_closure(root: str = "t5vae") -> dict[str, str]:
    """{package: version} of `root` and every distribution it requires to run, recursively
    (requirements whose environment marker holds here, extras left out)."""
    from packaging.requirements import Requirement

    out, todo = {}, [canonical(root)]
    while todo:
        name = todo.pop()
        if name in out:
            continue
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            out[name] = "missing"
            continue
        out[name] = dist.version
        for text in dist.requires or []:
            req = Requirement(text)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(canonical(req.name))
    return dict(sorted(out.items()))


def differences(pins: dict[str, str], have: dict[str, str]) -> list[str]:
    """The locked packages that are missing or at another version, e.g. `accelerate 1.16.0 (lock
    1.15.0)`; packages the lock does not list (pip, uv, the package itself) do not count."""
    out = []
    for name, version in sorted(pins.items()):
        if have.get(name) != version:
            out.append(f"{name} {have.get(name, 'missing')} (lock {version})")
    return out


def record(lock: Path = LOCK_FILE) -> dict:
    """What a results file stores about the software environment (provenance.environment)."""
    have = installed()
    runtime = {k: v for k, v in runtime_closure().items() if k != "t5vae"}
    out = {"lock": None, "differs_from_lock": None, "runtime": digest(runtime, 16),
           "packages": dict(sorted(have.items()))}  # fmt: skip
    if not Path(lock).is_file():
        out["differs_from_lock"] = [f"no lock file ({lock})"]
        return out
    pins = read_lock(lock)
    diff = differences(pins, have)
    out["lock"] = None if diff else lock_hash(pins)
    out["differs_from_lock"] = diff
    return out
