"""Copy generated files into README.md, so that every number it quotes comes from a file that a
command regenerates (tests/repo/test_readme.py fails when a block is stale).

A block is
    <!-- generated from reference/quick/claims.md -->
    ...
    <!-- end of generated block -->
and receives that file's text without its first heading line.

    python scripts/sync_readme.py
"""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
BLOCK = re.compile(r"(<!-- generated from (\S+) -->\n)(.*?)(<!-- end of generated block -->)", re.S)


def body(path: str) -> str:
    """The file's text without its first line if that is a heading, stripped, plus a newline."""
    lines = (REPO / path).read_text().strip().splitlines()
    if lines and lines[0].startswith("#"):
        lines = lines[1:]
    return "\n".join(lines).strip() + "\n"


def synced(text: str) -> str:
    return BLOCK.sub(lambda m: m.group(1) + body(m.group(2)) + m.group(4), text)


def blocks(text: str) -> list[tuple[str, str]]:
    """(file, current content) of every generated block."""
    return [(m.group(2), m.group(3)) for m in BLOCK.finditer(text)]


if __name__ == "__main__":
    README.write_text(synced(README.read_text()))
