"""Numbers in the README come from generated files: each generated block equals its file."""

from __future__ import annotations

from helpers import REPO, load_script

sync_readme = load_script("scripts/sync_readme.py")


def test_generated_blocks_match_their_files():
    text = (REPO / "README.md").read_text()
    found = sync_readme.blocks(text)
    assert any(path.endswith("claims.md") for path, _ in found), "README quotes no claims table"
    for path, content in found:
        assert content == sync_readme.body(path), (
            f"README block from {path} is stale: run python scripts/sync_readme.py"
        )
