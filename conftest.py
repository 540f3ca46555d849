"""Root pytest configuration: the environment of the nbval notebook run (smoke profile).

The notebooks' kernels inherit this process's environment: they write runs/ and results/ into a
temporary output root (never into the repository) and show no progress bars, exactly as when
scripts/build_notebooks.py stored their outputs.
"""

import atexit
import os
import shutil
import tempfile

if "T5VAE_OUTPUT_ROOT" not in os.environ:
    _root = tempfile.mkdtemp(prefix="t5vae-test-output-")
    os.environ["T5VAE_OUTPUT_ROOT"] = _root
    atexit.register(shutil.rmtree, _root, ignore_errors=True)
os.environ["TQDM_DISABLE"] = "1"
os.environ.setdefault("MPLBACKEND", "Agg")


def pytest_collection_modifyitems(config, items):
    """Under pytest-xdist (`--dist loadgroup`) the notebooks run in one worker, in order: they
    share the smoke profile's runs in T5VAE_OUTPUT_ROOT (each builds on the one before)."""
    import pytest

    for item in items:
        if item.nodeid.startswith("notebooks/"):
            item.add_marker(pytest.mark.xdist_group("notebooks"))
