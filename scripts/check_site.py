"""Check the built documentation site: every page reachable from the navigation, nothing loaded
from the network, and four pages rendered in a real headless Chromium with screenshots.

    python scripts/check_site.py [docs/_build/html]     # after ./reproduce.sh docs (it runs this)

Chromium comes from the system's packages (`apt-get install chromium`; T5VAE_CHROMIUM names
another binary); Playwright drives it (no browser download). Screenshots go to
<build>/../screenshots/<page>.png for a person to look at. tests/repo/test_docs.py runs the same
functions on a fresh build.
"""

from __future__ import annotations

import os
import shutil
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urldefrag, urljoin, urlparse

# the pages the browser opens: home, a notebook, a results page, the metrics
BROWSER_PAGES = {
    "home": "index.html",
    "notebook": "notebooks/05_explore_latent_space.html",
    "results": "results/quick.html",
    "metrics": "metrics.html",
}
# pages Sphinx writes that are not content (reachable from the search box or the API's links)
NOT_CONTENT = ("genindex.html", "search.html", "py-modindex.html", "_modules/", "_static/",
               "_sources/", "_images/")  # fmt: skip


class _Refs(HTMLParser):
    """Collects href/src of a page: all of them, and those inside the navigation sidebar."""

    def __init__(self):
        super().__init__()
        self.links, self.nav_links, self.assets = [], [], []
        self._depth, self._nav_at = 0, None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag not in ("br", "img", "link", "meta", "input", "hr", "source"):
            self._depth += 1
            if self._nav_at is None and "sidebar-tree" in (a.get("class") or ""):
                self._nav_at = self._depth
        if tag == "a" and a.get("href"):
            self.links.append(a["href"])
            if self._nav_at is not None:
                self.nav_links.append(a["href"])
        for key in ("src", "href"):
            if tag in ("script", "link", "img", "iframe", "source") and a.get(key):
                self.assets.append(a[key])

    def handle_endtag(self, tag):
        if tag in ("br", "img", "link", "meta", "input", "hr", "source"):
            return
        if self._nav_at is not None and self._depth == self._nav_at:
            self._nav_at = None
        self._depth -= 1


def _refs(page: Path) -> _Refs:
    parser = _Refs()
    parser.feed(page.read_text(errors="replace"))
    return parser


def content_pages(site: Path) -> set[str]:
    """Every HTML page of the site that is content (relative paths)."""
    pages = {p.relative_to(site).as_posix() for p in site.rglob("*.html")}
    return {p for p in pages if not p.startswith(NOT_CONTENT) and p not in NOT_CONTENT}


def reachable_from_navigation(site: Path) -> set[str]:
    """The pages reached from index.html by following the navigation sidebar's links only."""
    seen, todo = set(), ["index.html"]
    while todo:
        page = todo.pop()
        if page in seen or not (site / page).is_file():
            continue
        seen.add(page)
        for href in _refs(site / page).nav_links:
            url = urldefrag(urljoin(page, href)).url
            if not urlparse(url).scheme and url.endswith(".html"):
                todo.append(os.path.normpath(url))
    return seen


def network_assets(site: Path) -> list[str]:
    """Scripts, stylesheets, images or frames a page would load from the network."""
    found = []
    for page in site.rglob("*.html"):
        for ref in _refs(page).assets:
            if urlparse(ref).scheme in ("http", "https") or ref.startswith("//"):
                found.append(f"{page.relative_to(site)}: {ref}")
    return found


def chromium_binary() -> str | None:
    """The system's Chromium (its real binary, not Debian's wrapper script), or None."""
    named = os.environ.get("T5VAE_CHROMIUM")
    for candidate in (named, "/usr/lib/chromium/chromium", shutil.which("chromium"),
                      shutil.which("chromium-browser"), shutil.which("google-chrome")):  # fmt: skip
        if candidate and Path(candidate).is_file():
            return candidate
    return None


def browser_check(site: Path, screenshots: Path, binary: str) -> dict[str, dict]:
    """Open each of BROWSER_PAGES from disk in headless Chromium, offline; per page: console
    errors, failed requests, images that did not load, typeset formulas, the title; then follow
    the navigation from the home page to the metrics page. Writes <screenshots>/<name>.png."""
    from playwright.sync_api import sync_playwright

    screenshots.mkdir(parents=True, exist_ok=True)
    report = {}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=binary, args=["--no-sandbox"])
        context = browser.new_context(offline=True, viewport={"width": 1280, "height": 900})
        for name, rel in BROWSER_PAGES.items():
            page = context.new_page()
            errors, failed = [], []
            page.on("console", lambda m, e=errors: e.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda exc, e=errors: e.append(str(exc)))
            page.on("requestfailed", lambda r, f=failed: f.append(r.url))
            page.goto((site / rel).resolve().as_uri(), wait_until="load")
            if page.locator("span.math, div.math").count():
                page.wait_for_function("document.querySelectorAll('mjx-container').length > 0",
                                       timeout=20000)  # fmt: skip
            report[name] = {
                "title": page.title(),
                "console_errors": errors,
                "failed_requests": failed,
                "images": page.evaluate("document.images.length"),
                "broken_images": page.evaluate(
                    "[...document.images].filter(i => !(i.complete && i.naturalWidth > 0))"
                    ".map(i => i.src)"
                ),
                "formulas": page.locator("span.math, div.math").count(),
                "typeset": page.locator("mjx-container").count(),
            }
            if report[name]["images"]:  # the screenshot shows the first figure
                page.locator("img").first.scroll_into_view_if_needed()
            page.screenshot(path=str(screenshots / f"{name}.png"), full_page=False)
            page.close()
        page = context.new_page()
        page.goto((site / "index.html").resolve().as_uri())
        page.locator(".sidebar-tree a", has_text="Metrics").first.click()
        page.wait_for_load_state("load")
        report["navigation"] = {"url": page.url, "title": page.title()}
        browser.close()
    return report


def main(argv: list[str]) -> int:
    site = Path(argv[0] if argv else "docs/_build/html")
    problems = [f"not reachable from the navigation: {p}"
                for p in sorted(content_pages(site) - reachable_from_navigation(site))]  # fmt: skip
    problems += [f"loads from the network: {a}" for a in network_assets(site)]
    binary = chromium_binary()
    if binary is None:
        problems.append("no Chromium found (apt-get install chromium, or set T5VAE_CHROMIUM)")
    else:
        report = browser_check(site, site.parent / "screenshots", binary)
        for name, r in report.items():
            print(f"{name}: {r}")
            for key in ("console_errors", "failed_requests", "broken_images"):
                problems += [f"{name}: {key}: {x}" for x in r.get(key, [])]
        print(f"screenshots: {site.parent / 'screenshots'}")
    for p in problems:
        print("PROBLEM:", p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
