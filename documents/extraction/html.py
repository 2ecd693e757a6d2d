"""HTML to text: the page's main content (navigation, footers, cookie banners and sidebars
left out, by trafilatura), or, where no main content stands out, every visible text."""

from __future__ import annotations

import re

_INVISIBLE_TAGS = ["script", "style", "noscript", "template", "svg", "iframe", "object", "embed", "head"]
_BLANK_RUNS = re.compile(r"\n[ \t]*(?:\n[ \t]*){2,}")


def title_of(markup: str) -> str:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(markup, "lxml")
    return soup.title.get_text(" ", strip=True) if soup.title else ""


def visible_text(markup: str) -> str:
    """Visible text only: no script/style/markup; block elements become line breaks."""
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(markup, "lxml")
    for tag in soup(_INVISIBLE_TAGS):
        tag.decompose()
    text = soup.get_text("\n")
    lines = (" ".join(line.split()) for line in text.splitlines())
    return _BLANK_RUNS.sub("\n\n", "\n".join(lines)).strip()


def main_text(markup: str) -> str:
    """The main content, one paragraph per block; the visible text when none stands out.

    trafilatura works on the string alone (it fetches nothing) and answers None for pages
    with no main content, such as a bare list of links or a fragment."""
    import lxml.html
    import trafilatura
    from lxml.etree import ParserError

    try:
        tree = lxml.html.document_fromstring(markup)
    except (ParserError, ValueError):
        return visible_text(markup)
    for element in list(tree.iter(*_INVISIBLE_TAGS)):
        if element.tag != "head":
            element.drop_tree()  # trafilatura keeps <noscript>; what a reader never sees goes first
    extracted = trafilatura.extract(
        tree, include_comments=False, include_tables=True, include_images=False, deduplicate=False
    )
    if not extracted or not extracted.strip():
        return visible_text(markup)
    return "\n\n".join(" ".join(line.split()) for line in extracted.splitlines() if line.strip())
