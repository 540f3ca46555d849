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


def pytest_xdist_make_scheduler(config, log):
    """Under pytest-xdist the notebooks run in one worker, in order: a notebook's cells share one
    kernel, and the notebooks share the smoke profile's runs in T5VAE_OUTPUT_ROOT (each builds on
    the one before). Every other test is scheduled on its own, as `--dist load` does.
    (xdist's own `--dist loadgroup` with xdist_group marks splits the group under pytest 9.)"""
    from xdist.scheduler import LoadScopeScheduling

    class NotebooksTogether(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return "notebooks" if nodeid.startswith("notebooks/") else nodeid

    return NotebooksTogether(config, log)


def pytest_collection_modifyitems(config, items):
    """Longest first, so that two workers finish together: the notebooks (one unit, see above),
    then the tests marked slow (end to end, tens of seconds to minutes each), then the rest.
    A stable sort: each group keeps its collection order."""

    def rank(item) -> int:
        if item.nodeid.startswith("notebooks/"):
            return 0
        return 1 if item.get_closest_marker("slow") else 2

    items.sort(key=rank)
