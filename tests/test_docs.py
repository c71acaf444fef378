"""The README and docs/: every relative link points at a file that exists, and every #anchor at a heading there."""
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def slug(heading: str) -> str:
    "GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    "The anchors of a page's headings (not of the comments in its fenced code blocks)."
    found, fenced = set(), False
    for line in page.read_text().splitlines():
        if line.startswith("```"): fenced = not fenced
        elif line.startswith("#") and not fenced: found.add(slug(line.lstrip("#")))
    return found


def test_slug_follows_github():
    assert slug(" Train your own (lesson 7)") == "train-your-own-lesson-7"
    assert slug("What is pinned, where, and how to refresh it") == "what-is-pinned-where-and-how-to-refresh-it"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(page):
    broken = []
    for target in LINK.findall(page.read_text()):
        if re.match(r"[a-z]+:", target): continue                      # https:, mailto:
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        if not file.exists(): broken.append(f"{target}: no such file")
        elif anchor and file.suffix == ".md" and anchor not in anchors(file): broken.append(f"{target}: no such heading")
    assert not broken, f"{page.name}: " + "; ".join(broken)
