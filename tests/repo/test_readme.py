"""Numbers in the README come from generated files: each generated block equals its file."""

from __future__ import annotations

import importlib.util

from helpers import REPO

spec = importlib.util.spec_from_file_location("sync_readme", REPO / "scripts" / "sync_readme.py")
sync_readme = importlib.util.module_from_spec(spec)
spec.loader.exec_module(sync_readme)


def test_generated_blocks_match_their_files():
    text = (REPO / "README.md").read_text()
    found = sync_readme.blocks(text)
    assert any(path.endswith("claims.md") for path, _ in found), "README quotes no claims table"
    for path, content in found:
        assert content == sync_readme.body(path), (
            f"README block from {path} is stale: run python scripts/sync_readme.py"
        )
