"""Drive the explorer page (`t5vae explore`) in a real headless Chromium, as a person would: type a
sentence and reconstruct it, interpolate and move the slider, sample from the prior, shift an
attribute; a screenshot after each step.

    python scripts/check_explorer.py CHECKPOINT [SCREENSHOT_DIR]   (default docs/_build/screenshots)

Chromium from the system's packages (scripts/check_site.py finds it), driven by Playwright;
tests/grid/test_explorer.py runs the same walkthrough on a smoke checkpoint.
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from check_site import chromium_binary  # noqa: E402

SENTENCE = "the chef cooked a soup yesterday and it was great ."


def walkthrough(url: str, screenshots: Path, binary: str) -> dict:
    """What the page showed at each step, the requests it made that left `url`, console errors;
    writes <screenshots>/explorer-<step>.png."""
    from playwright.sync_api import sync_playwright

    screenshots.mkdir(parents=True, exist_ok=True)
    out = {"console_errors": [], "outside_requests": []}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=binary, args=["--no-sandbox"])
        page = browser.new_context(viewport={"width": 1100, "height": 1000}).new_page()
        page.on(
            "console", lambda m: out["console_errors"].append(m.text) if m.type == "error" else None
        )
        page.on("pageerror", lambda e: out["console_errors"].append(str(e)))
        page.on(
            "request",
            lambda r: None if r.url.startswith(url) else out["outside_requests"].append(r.url),
        )
        page.goto(url, wait_until="load")
        page.wait_for_function(
            "document.getElementById('info').textContent.startsWith('checkpoint')"
        )
        out["info"] = page.locator("#info").text_content()

        page.locator("#sentence").fill(SENTENCE)
        page.locator("#reconstruct").click()
        page.wait_for_function("document.getElementById('reconstruction').textContent.length > 0")
        out["reconstruction"] = page.locator("#reconstruction").text_content()
        page.screenshot(path=str(screenshots / "explorer-reconstruct.png"))

        page.locator("#interpolate").click()
        page.wait_for_function("!document.getElementById('slider').disabled")
        out["path"] = page.locator("#path li").all_text_contents()
        page.locator("#slider").fill("3")
        out["slider_label"] = page.locator("#step-label").text_content()
        out["slider_text"] = page.locator("#step-text").text_content()
        out["current_step"] = page.locator("#path li.current").text_content()
        page.locator("#step-text").scroll_into_view_if_needed()
        page.screenshot(path=str(screenshots / "explorer-interpolate.png"))

        page.locator("#sample").click()
        page.wait_for_function("document.querySelectorAll('#samples li').length > 0")
        out["samples"] = page.locator("#samples li").all_text_contents()

        if page.locator("#shift-section").is_visible():
            page.locator("#factor").select_option("sentiment")
            page.locator("#value").select_option("negative")
            page.locator("#alpha").fill("2")
            page.locator("#shift").click()
            page.wait_for_function("document.getElementById('shifted').textContent.length > 0")
            out["shifted"] = page.locator("#shifted").text_content()
        page.locator("#samples").scroll_into_view_if_needed()
        page.screenshot(path=str(screenshots / "explorer-sample-shift.png"), full_page=True)
        browser.close()
    return out


def main(argv: list[str]) -> int:
    from t5vae import hub
    from t5vae.explorer import Explorer, make_server

    if not argv:
        print(__doc__)
        return 2
    binary = chromium_binary()
    if binary is None:
        print("no Chromium found (apt-get install chromium, or set T5VAE_CHROMIUM)")
        return 1
    model, tokenizer = hub.load(argv[0])
    server = make_server(Explorer(model, tokenizer, name=argv[0]))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    host, port = server.server_address[:2]
    screenshots = Path(argv[1] if len(argv) > 1 else "docs/_build/screenshots")
    try:
        report = walkthrough(f"http://{host}:{port}/", screenshots, binary)
    finally:
        server.shutdown()
    for key, value in report.items():
        print(f"{key}: {value}")
    print(f"screenshots: {screenshots}/explorer-*.png")
    return 1 if report["console_errors"] or report["outside_requests"] else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
