"""`t5vae explore CHECKPOINT`: a local web page to use a trained model's latent space.

Type a sentence and see its reconstruction, move along an interpolation between two sentences
with a slider, sample from the prior, shift a sentence's attribute by alpha and see the factors
the built-in grammar reads off every decoded sentence.

    t5vae explore runs/quick/builtin/seed0/phase2/l0.5_pnone/best [--port 8765]

Why a page of this package's own and not Gradio: the standard library's HTTP server and one
HTML file with its script inline need no package beyond the locked environment, load nothing
from the network (Gradio's front end asks for fonts and scripts from CDNs unless configured
otherwise, and brings some forty packages), and the page's API is plain JSON over HTTP that the
tests call directly. `Explorer` holds the model and is the API; `serve` maps routes to it:

    GET  /                 the page
    GET  /api/info         the checkpoint, latent size, the factors a shift can target
    POST /api/reconstruct  {"sentence"}                    -> text, factors
    POST /api/interpolate  {"a", "b", "steps", "kind"}     -> path (each step's text and factors), smoothness
    POST /api/sample       {"n", "seed"}                   -> samples with their factors
    POST /api/shift        {"sentence", "factor", "value", "alpha"} -> text, factors, reached
"""

from __future__ import annotations

import json
import math
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import torch

from t5vae.data.builtin import FACTORS, parse
from t5vae.evaluation import control
from t5vae.evaluation.generation import interpolate, reconstruct, sample_prior

PAGE = Path(__file__).with_name("explorer.html")
MAX_SENTENCE_CHARS = 500


class BadRequest(ValueError):
    """A request the page or a caller got wrong: answered 400 with the message."""


def _text(body: dict, key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value.strip():
        raise BadRequest(f"{key}: a non-empty sentence is needed")
    if len(value) > MAX_SENTENCE_CHARS:
        raise BadRequest(f"{key}: at most {MAX_SENTENCE_CHARS} characters")
    return value.strip()


def _number(body: dict, key: str, default, low, high, kind=float):
    try:
        value = kind(body.get(key, default))
    except (TypeError, ValueError):
        raise BadRequest(f"{key}: expected a number") from None
    if not low <= value <= high:
        raise BadRequest(f"{key}: expected {low} <= {key} <= {high}, got {value}")
    return value


class Explorer:
    """The page's API on one model (calls are serialised: one decoding at a time)."""

    def __init__(self, model, tokenizer, name: str = "", attributes: bool = True,
                 max_new_tokens: int = 64):  # fmt: skip
        self.model, self.tokenizer, self.name = model.eval(), tokenizer, name
        self.attributes, self.max_new_tokens = attributes, max_new_tokens
        self._vectors: dict[tuple[str, str], torch.Tensor] = {}
        self._lock = threading.Lock()

    def _read(self, text: str) -> dict:
        return {"text": text, "factors": parse(text)}

    def info(self) -> dict:
        return {"checkpoint": self.name, "latent_dim": self.model.config.latent_dim,
                "factors": {k: list(v) for k, v in FACTORS.items()} if self.attributes else {}}  # fmt: skip

    def reconstruct(self, body: dict) -> dict:
        sentence = _text(body, "sentence")
        with self._lock:
            (text,) = reconstruct(self.model, self.tokenizer, [sentence],
                                  max_new_tokens=self.max_new_tokens)  # fmt: skip
        return {"input": self._read(sentence), **self._read(text)}

    def interpolate(self, body: dict) -> dict:
        a, b = _text(body, "a"), _text(body, "b")
        steps = _number(body, "steps", 7, 2, 21, int)
        kind = body.get("kind", "lerp")
        if kind not in ("lerp", "slerp"):
            raise BadRequest("kind: lerp or slerp")
        with self._lock:
            path = interpolate(self.model, self.tokenizer, a, b, steps, kind,
                               max_new_tokens=self.max_new_tokens)  # fmt: skip
        smooth = control.smoothness(path)  # NaN (no grammatical step) is not JSON: null
        smooth = {k: None if math.isnan(v) else v for k, v in smooth.items()}
        return {"kind": kind, "path": [self._read(t) for t in path], "smoothness": smooth}

    def sample(self, body: dict) -> dict:
        n = _number(body, "n", 5, 1, 50, int)
        seed = _number(body, "seed", 0, 0, 2**31 - 1, int)
        with self._lock:
            texts = sample_prior(self.model, self.tokenizer, n, seed=seed,
                                 max_new_tokens=self.max_new_tokens)  # fmt: skip
        return {"samples": [self._read(t) for t in texts]}

    def shift(self, body: dict) -> dict:
        if not self.attributes:
            raise BadRequest("this explorer was started without attributes (--attributes none)")
        sentence = _text(body, "sentence")
        factor, value = str(body.get("factor", "")), str(body.get("value", ""))
        try:
            control.check_attribute(factor, value)
        except ValueError as e:
            raise BadRequest(str(e)) from None
        alpha = _number(body, "alpha", 1.0, -10.0, 10.0)
        with self._lock:
            if (factor, value) not in self._vectors:
                self._vectors[factor, value] = control.builtin_attribute_vector(
                    self.model, self.tokenizer, factor, value, n=400
                )
            (text,) = control.shift(self.model, self.tokenizer, [sentence],
                                    self._vectors[factor, value], alpha,
                                    max_new_tokens=self.max_new_tokens)  # fmt: skip
        read = self._read(text)
        reached = read["factors"] is not None and read["factors"][factor] == value
        return {"input": self._read(sentence), **read, "factor": factor, "value": value,
                "alpha": alpha, "reached": reached}  # fmt: skip

    def handle(self, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
        """(HTTP status, JSON answer) of one API call."""
        routes = {("GET", "/api/info"): lambda _: self.info(),
                  ("POST", "/api/reconstruct"): self.reconstruct,
                  ("POST", "/api/interpolate"): self.interpolate,
                  ("POST", "/api/sample"): self.sample, ("POST", "/api/shift"): self.shift}  # fmt: skip
        route = routes.get((method, path))
        if route is None:
            return HTTPStatus.NOT_FOUND, {"error": f"no {method} {path}"}
        try:
            return HTTPStatus.OK, route(body or {})
        except BadRequest as e:
            return HTTPStatus.BAD_REQUEST, {"error": str(e)}


def make_server(explorer: Explorer, host: str = "127.0.0.1", port: int = 0) -> ThreadingHTTPServer:
    """The page and its API on host:port (port 0: a free one; server.server_address says which)."""
    page = PAGE.read_bytes()

    class Handler(BaseHTTPRequestHandler):
        def _send(self, status: int, payload: bytes, kind: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def _answer(self, method: str) -> None:
            if method == "GET" and self.path in ("/", "/index.html"):
                return self._send(HTTPStatus.OK, page, "text/html; charset=utf-8")
            body = None
            if method == "POST":
                try:
                    body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                except (ValueError, json.JSONDecodeError):
                    body = None
                if not isinstance(body, dict):
                    return self._send(HTTPStatus.BAD_REQUEST, b'{"error": "a JSON object is needed"}',
                                      "application/json")  # fmt: skip
            status, answer = explorer.handle(method, self.path, body)
            self._send(status, json.dumps(answer, allow_nan=False).encode(), "application/json")

        def do_GET(self):  # noqa: N802 (http.server's names)
            self._answer("GET")

        def do_POST(self):  # noqa: N802
            self._answer("POST")

        def log_message(self, *args):  # quiet: the terminal shows the address only
            pass

    return ThreadingHTTPServer((host, port), Handler)


def main(args) -> int:
    """`t5vae explore`: load the checkpoint, serve until Ctrl-C."""
    from t5vae import hub

    model, tokenizer = hub.load(args.checkpoint, args.tokenizer)
    explorer = Explorer(model, tokenizer, name=args.checkpoint,
                        attributes=args.attributes == "builtin")  # fmt: skip
    server = make_server(explorer, args.host, args.port)
    host, port = server.server_address[:2]
    print(f"t5vae explorer: http://{host}:{port}/  (Ctrl-C stops it)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0
