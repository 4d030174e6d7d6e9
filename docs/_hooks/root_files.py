"""MkDocs hook: site pages that are whole files from the repository root (README.md, ...).

A stub page in docs/ holds one line ``{% root "BENCHMARKS.md" %}``; this hook puts the file's text
there and rewrites its links, written for GitHub from the root (``docs/ray.md``, ``README.md``),
so that they resolve from docs/ and ``mkdocs build --strict`` checks them like any other link.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
INCLUDE = re.compile(r'^\{% root "([^"]+)" %\}$', re.MULTILINE)
LINK = re.compile(r"\]\(([^)#\s]*)(#[^)\s]*)?\)")
# Root files that have a page of their own on the site.
PAGES = {
    "README.md": "index.md",
    "BENCHMARKS.md": "benchmarks.md",
    "CONTRIBUTING.md": "contributing.md",
}


def _link(match: re.Match[str]) -> str:
    target, anchor = match.group(1), match.group(2) or ""
    if target.startswith("docs/"):
        target = target.removeprefix("docs/")
    elif target in PAGES:
        target = PAGES[target]
    return f"]({target}{anchor})"


def _include(match: re.Match[str]) -> str:
    return LINK.sub(_link, (ROOT / match.group(1)).read_text(encoding="utf-8"))


def on_page_markdown(markdown: str, **_: Any) -> str:
    return INCLUDE.sub(_include, markdown)
