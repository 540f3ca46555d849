"""The documentation site (docs/, Sphinx + MyST-NB): builds offline with warnings as errors, every
page reachable from its navigation, nothing loaded from the network, the notebooks shown with
their stored outputs, every metric and technique with its entry, and four pages rendered in a real
headless Chromium (scripts/check_site.py; screenshots next to the build)."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from helpers import REPO, load_script
from t5vae.evaluation.metrics import METRICS

check_site = load_script("scripts/check_site.py")


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """A fresh build (-E: nothing cached) into a temporary folder; warnings fail it (-W)."""
    out = tmp_path_factory.mktemp("docs") / "html"
    proc = subprocess.run([sys.executable, "-m", "sphinx", "-b", "html", "-E", "-W", "--keep-going",
                           "-q", str(REPO / "docs"), str(out)],
                          capture_output=True, text=True)  # fmt: skip
    assert proc.returncode == 0, f"the site does not build without warnings:\n{proc.stderr[-4000:]}"
    return out


def test_every_page_is_reachable_from_the_navigation(site):
    pages = check_site.content_pages(site)
    assert {"index.html", "metrics.html", "api.html", "cli.html"} <= pages
    assert pages - check_site.reachable_from_navigation(site) == set()


def test_nothing_is_loaded_from_the_network(site):
    assert check_site.network_assets(site) == []
    # MathJax and the search index are bundled in the build
    assert (site / "_static" / "mathjax" / "tex-chtml.js").is_file()
    assert (site / "searchindex.js").is_file()


def test_the_notebooks_are_pages_with_their_stored_outputs(site):
    notebooks = sorted(p.stem for p in (REPO / "notebooks").glob("*.ipynb"))
    assert len(notebooks) == 6
    for name in notebooks:
        page = (site / "notebooks" / f"{name}.html").read_text()
        assert "cell_output" in page, f"{name}: no stored output on its page"
    # a printed line and a figure of the stored outputs
    assert "base model:" in (site / "notebooks" / "00_base_model.html").read_text()
    assert "<img" in (site / "notebooks" / "05_explore_latent_space.html").read_text()


def test_every_metric_and_technique_has_its_entry():
    metrics_page = (REPO / "docs" / "metrics.md").read_text()
    for name in METRICS:
        anchor = name.split("_*")[0] if name.endswith("_*") else name
        if name.startswith("n_"):
            anchor = "counts"
        if name.startswith("dci_"):
            anchor = "dci_disentanglement"  # the three DCI scores share one entry
        assert f"(metric-{anchor})=" in metrics_page, f"docs/metrics.md has no entry for {name}"
        assert name.rstrip("*").rstrip("_") in metrics_page
    # an entry may stack several anchors on one section: an anchor-only piece is not an entry
    sections = [s for s in re.split(r"\n\(metric-", metrics_page)[1:] if "\n" in s.strip()]
    assert all("$" in s or "BLEU" in s or "count" in s for s in sections), (
        "an entry without its formula"
    )
    method = (REPO / "docs" / "method.md").read_text()
    for yaml in sorted((REPO / "params" / "phase2").glob("*.yaml")):
        assert f"`{yaml.stem}`" in method, (
            f"docs/method.md has no entry for the technique {yaml.stem}"
        )


def test_the_site_renders_in_headless_chromium(site):
    binary = check_site.chromium_binary()
    if binary is None:
        pytest.skip("no Chromium (apt-get install chromium, or set T5VAE_CHROMIUM)")
    report = check_site.browser_check(site, site.parent / "screenshots", binary)
    for name in check_site.BROWSER_PAGES:
        r = report[name]
        assert r["console_errors"] == [] and r["failed_requests"] == [], (name, r)
        assert r["broken_images"] == [], (name, r)
        assert r["title"], name
        assert (site.parent / "screenshots" / f"{name}.png").stat().st_size > 10_000
    assert report["notebook"]["images"] > 0 and report["results"]["images"] > 0
    assert report["metrics"]["formulas"] > 10
    assert report["metrics"]["typeset"] == report["metrics"]["formulas"]  # MathJax ran offline
    assert report["navigation"]["url"].endswith("/metrics.html")
