"""The folders are the layers: a module imports only from its own layer or the layers below
(the contract in pyproject.toml, checked by import-linter and, independently, by reading the
imports here)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import tomllib

from helpers import REPO

SRC = REPO / "src"


def layers() -> list[set[str]]:
    """The contract's layers, top first; each a set of top-level names under t5vae."""
    config = tomllib.loads((REPO / "pyproject.toml").read_text())
    (contract,) = config["tool"]["importlinter"]["contracts"]
    return [
        {p.strip().removeprefix("t5vae.") for p in row.split("|")} for row in contract["layers"]
    ]


def layer_of(module: str, order: list[set[str]]) -> int:
    top = module.split(".")[1].removesuffix(".py") if module.count(".") else module
    return next(i for i, names in enumerate(order) if top in names)


def upward_imports(src: Path, order: list[set[str]]) -> list[str]:
    """'importer -> imported' for every t5vae import that points to a higher layer (deferred
    imports inside functions included)."""
    found = []
    for path in sorted((src / "t5vae").rglob("*.py")):
        rel = path.relative_to(src).with_suffix("")
        module = ".".join(rel.parts)
        if rel.parts[1:] in [("__init__",)] or len(rel.parts) < 2:
            continue
        here = layer_of(module, order)
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            for name in names:
                if name.startswith("t5vae.") and layer_of(name, order) < here:
                    found.append(f"{module} -> {name}")
    return found


def test_no_module_imports_a_layer_above_its_own():
    assert upward_imports(SRC, layers()) == []


def test_an_upward_import_is_found(tmp_path):
    """The check above can fail: a model module importing the grid is reported."""
    (tmp_path / "t5vae" / "model").mkdir(parents=True)
    (tmp_path / "t5vae" / "model" / "vae.py").write_text("from t5vae.grid import reproduce\n")
    (tmp_path / "t5vae" / "grid").mkdir()
    (tmp_path / "t5vae" / "grid" / "reproduce.py").write_text("from t5vae.model import vae\n")
    assert upward_imports(tmp_path, layers()) == ["t5vae.model.vae -> t5vae.grid"]


def test_import_linter_keeps_the_layers_contract():
    lint = Path(sys.executable).parent / "lint-imports"
    out = subprocess.run([str(lint)], cwd=REPO, capture_output=True, text=True)
    assert out.returncode == 0 and "1 kept, 0 broken" in out.stdout, out.stdout + out.stderr


def test_the_ml_library_works_without_the_params_layer():
    """Model, data, metrics and training import neither config (YAML), report nor grid."""
    code = (
        "import sys, t5vae, t5vae.data.dataset, t5vae.evaluation.generation, "
        "t5vae.evaluation.probe, t5vae.training.pretrain\n"
        "print(sorted({m.split('.')[1] for m in sys.modules if m.startswith('t5vae.')}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = set(ast.literal_eval(out.stdout.strip()))
    assert loaded <= {"data", "evaluation", "model", "training", "utils"}, loaded


def test_no_import_cycle():
    """No chain of t5vae imports leads back to where it started (deferred imports included)."""
    import grimp
    import networkx as nx

    graph = grimp.build_graph("t5vae")
    edges = nx.DiGraph(
        [(m, i) for m in graph.modules for i in graph.find_modules_directly_imported_by(m)]
    )
    assert list(nx.simple_cycles(edges)) == []


def map_of_the_package(text: str) -> dict[str, str]:
    """{folder: its text} from the `src/t5vae/` block of docs/architecture.md's map."""
    block = text.split("src/t5vae/", 1)[1].split("\nreference/", 1)[0]
    out, folder = {}, None
    for line in block.splitlines()[1:]:
        head = line[2:].split(" ", 1)[0]
        if line.startswith("  ") and not line.startswith("   ") and head.endswith("/"):
            folder = head.rstrip("/")
            out[folder] = line[2 + len(head) :].strip()
        elif folder:
            out[folder] += " " + line.strip()
    return out


def left_out_of_the_map(described: dict[str, str], src: Path) -> dict[str, set[str]]:
    """{folder: modules its line does not name} for every subpackage of src/t5vae (a subpackage
    missing from the map: all of its modules)."""
    out = {}
    for package in sorted(p for p in (src / "t5vae").iterdir() if (p / "__init__.py").is_file()):
        words = set(described.get(package.name, "").replace(",", " ").replace("(", " ").split())
        modules = {p.stem for p in package.glob("*.py") if p.stem != "__init__"}
        if modules - words:
            out[package.name] = modules - words
    return out


def test_the_architecture_map_names_every_module_and_nothing_else():
    """docs/architecture.md's map of src/t5vae/ is checked against the package: every module is
    named in its folder's line, and every folder of the map exists."""
    described = map_of_the_package((REPO / "docs" / "architecture.md").read_text())
    assert left_out_of_the_map(described, SRC) == {}
    assert set(described) == {
        p.name for p in (SRC / "t5vae").iterdir() if (p / "__init__.py").is_file()
    }


def test_the_map_check_sees_a_module_left_out(tmp_path):
    (tmp_path / "t5vae" / "model").mkdir(parents=True)
    for name in ("__init__", "vae", "objectives", "released"):
        (tmp_path / "t5vae" / "model" / f"{name}.py").write_text("")
    text = "src/t5vae/    layers:\n  model/        vae, objectives\n                (more)\nreference/\n"
    described = map_of_the_package(text)
    assert described == {"model": "vae, objectives (more)"}
    assert left_out_of_the_map(described, tmp_path) == {"model": {"released"}}
