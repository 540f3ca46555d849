"""`t5vae explore`: the page's API on a smoke checkpoint (directly and over HTTP), its errors, and
the page itself in a real headless Chromium (scripts/check_explorer.py): a sentence typed and
reconstructed, the interpolation slider moved, prior samples, an attribute shift; screenshots."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request

import pytest

from helpers import REPO, load_script
from t5vae import hub
from t5vae.evaluation.generation import interpolate, reconstruct
from t5vae.explorer import Explorer, make_server
from t5vae.notebook import steps

check_explorer = load_script("scripts/check_explorer.py")

A = "the chef cooked a soup yesterday and it was great ."
B = "the team will win the cup tomorrow and it will be awful ."


@pytest.fixture(scope="module")
def explorer(tmp_path_factory):
    spec = steps.make_spec("smoke", "builtin", "phase1", "max_pnone_unfrozen",
                           tmp_path_factory.mktemp("explore"))  # fmt: skip
    steps.ensure_trained(spec, progress=False)
    model, tokenizer = hub.load(str(spec.best_dir))
    return Explorer(model, tokenizer, name="smoke checkpoint", max_new_tokens=24)


@pytest.fixture(scope="module")
def server(explorer):
    httpd = make_server(explorer)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    host, port = httpd.server_address[:2]
    yield f"http://{host}:{port}/"
    httpd.shutdown()


def test_the_api_gives_what_the_library_gives(explorer):
    kw = {"max_new_tokens": 24}
    status, r = explorer.handle("POST", "/api/reconstruct", {"sentence": A})
    assert (
        status == 200 and r["text"] == reconstruct(explorer.model, explorer.tokenizer, [A], **kw)[0]
    )
    assert r["input"]["factors"] == {"topic": "food", "sentiment": "positive", "tense": "past",
                                     "length": "short"}  # fmt: skip
    status, r = explorer.handle(
        "POST", "/api/interpolate", {"a": A, "b": B, "steps": 5, "kind": "slerp"}
    )
    path = interpolate(explorer.model, explorer.tokenizer, A, B, 5, "slerp", **kw)
    assert status == 200 and [s["text"] for s in r["path"]] == path
    assert set(r["smoothness"]) == {"grammatical", "monotone_factors"}
    json.dumps(r, allow_nan=False)  # strict JSON for the page (no grammatical step: null, not NaN)
    first = explorer.handle("POST", "/api/sample", {"n": 3, "seed": 4})[1]["samples"]
    assert (
        len(first) == 3
        and explorer.handle("POST", "/api/sample", {"n": 3, "seed": 4})[1]["samples"] == first
    )
    status, r = explorer.handle("POST", "/api/shift", {"sentence": A, "factor": "sentiment",
                                                       "value": "negative", "alpha": 2})  # fmt: skip
    assert status == 200 and r["reached"] == (
        r["factors"] is not None and r["factors"]["sentiment"] == "negative"
    )
    info = explorer.handle("GET", "/api/info")[1]
    assert info["latent_dim"] == explorer.model.config.latent_dim and "tense" in info["factors"]


@pytest.mark.parametrize(
    ("path", "body", "status", "message"),
    [("/api/reconstruct", {}, 400, "sentence: a non-empty sentence is needed"),
     ("/api/interpolate", {"a": A, "b": B, "steps": 100}, 400, "steps: expected 2 <= steps <= 21"),
     ("/api/interpolate", {"a": A, "b": B, "kind": "cubic"}, 400, "kind: lerp or slerp"),
     ("/api/sample", {"n": "many"}, 400, "n: expected a number"),
     ("/api/shift", {"sentence": A, "factor": "colour", "value": "red"}, 400, "unknown attribute colour=red"),
     ("/api/nothing", {}, 404, "no POST /api/nothing")],
)  # fmt: skip
def test_a_bad_request_is_answered_with_what_is_wrong(explorer, path, body, status, message):
    got, answer = explorer.handle("POST", path, body)
    assert got == status and answer["error"].startswith(message)


def test_without_attributes_the_shift_is_refused_and_not_offered(explorer):
    plain = Explorer(explorer.model, explorer.tokenizer, attributes=False)
    assert plain.handle("GET", "/api/info")[1]["factors"] == {}
    status, answer = plain.handle(
        "POST", "/api/shift", {"sentence": A, "factor": "tense", "value": "past"}
    )
    assert status == 400 and "--attributes none" in answer["error"]


def test_the_page_and_the_api_over_http(server):
    page = urllib.request.urlopen(server).read().decode()
    assert (
        "<title>t5vae explorer</title>" in page
        and "http" not in page.split("<script>")[1].split("fetch")[0]
    )
    request = urllib.request.Request(server + "api/reconstruct", data=json.dumps({"sentence": A}).encode(),
                                     headers={"Content-Type": "application/json"})  # fmt: skip
    assert "text" in json.loads(urllib.request.urlopen(request).read())
    bad = urllib.request.Request(server + "api/sample", data=b"not json")
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(bad)
    assert e.value.code == 400 and json.loads(e.value.read())["error"] == "a JSON object is needed"


def test_the_page_works_in_headless_chromium(server, explorer):
    """Types a sentence, reconstructs it, interpolates and moves the slider to the middle, samples,
    shifts; the page shows what the API gives, loads nothing from elsewhere, logs no error."""
    binary = check_explorer.chromium_binary()
    if binary is None:
        pytest.skip("no Chromium (apt-get install chromium, or set T5VAE_CHROMIUM)")
    shots = REPO / "docs" / "_build" / "screenshots"
    r = check_explorer.walkthrough(server, shots, binary)
    assert r["console_errors"] == [] and r["outside_requests"] == []
    assert r["info"].startswith("checkpoint: smoke checkpoint")
    expected = explorer.handle("POST", "/api/reconstruct", {"sentence": check_explorer.SENTENCE})[1]
    assert r["reconstruction"].startswith(expected["text"])
    path = explorer.handle("POST", "/api/interpolate", {"a": A, "b": B, "steps": 7})[1]["path"]
    assert r["path"] == [s["text"] for s in path]
    assert r["slider_label"] == "t = 0.50" and r["current_step"] == path[3]["text"]
    assert r["slider_text"].startswith(path[3]["text"])
    assert len(r["samples"]) == 5 and "reached" in r["shifted"]
    for step in ("reconstruct", "interpolate", "sample-shift"):
        assert (shots / f"explorer-{step}.png").stat().st_size > 10_000
