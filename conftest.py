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
