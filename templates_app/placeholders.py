"""Strict prompt placeholders: `{{ name }}` replaced by plain text, nothing else.

The renderer is a single-pass regular-expression substitution over a fixed
registry of names: there is no attribute access, no expression, no filter,
no format-string or template-engine evaluation, and text inserted by one
placeholder (e.g. a document containing "{{ today }}") is never re-read.
Unknown or malformed placeholders are refused when a template is saved.

Registry (extend with `register`):
    document.title, document.content, document.source, document.language, organization.name, today
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

_PLACEHOLDER = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
_NAME = re.compile(r"^[a-z][a-z_]*(\.[a-z][a-z_]*)?$")


@dataclass(frozen=True)
class RenderContext:
    document_title: str = ""
    document_content: str = ""
    document_source: str = ""
    document_language: str = ""
    organization_name: str = ""
    today: date | None = None


PLACEHOLDERS: dict[str, tuple[str, Callable[[RenderContext], str]]] = {}


def register(name: str, description: str, resolve: Callable[[RenderContext], str]) -> None:
    if not _NAME.match(name):
        raise ValueError(f"invalid placeholder name {name!r}")
    PLACEHOLDERS[name] = (description, resolve)


register("document.title", "The document's title.", lambda c: c.document_title)
register(
    "document.content", "The document's text (or one chunk of it for long documents).", lambda c: c.document_content
)
register(
    "document.source", "Where the document came from (manual, upload, url, a provider).", lambda c: c.document_source
)
register(
    "document.language",
    "The document's language in English (e.g. German), as detected from its text; empty when it could not be told.",
    lambda c: c.document_language,
)
register("organization.name", "Your organization's name.", lambda c: c.organization_name)
register("today", "Today's date, ISO 8601 (YYYY-MM-DD).", lambda c: (c.today or date.today()).isoformat())


class PlaceholderError(ValueError):
    def __init__(self, message: str, placeholder: str):
        super().__init__(message)
        self.placeholder = placeholder


def placeholders_in(body: str) -> list[str]:
    """The names used in `body`; raises PlaceholderError on an unknown or malformed one."""
    names = []
    for match in _PLACEHOLDER.finditer(body):
        raw = match.group(0)
        name = match.group(1).strip()
        if not _NAME.match(name):
            raise PlaceholderError(f"Malformed placeholder {raw!r}: use {{{{ name }}}} with a registered name.", raw)
        if name not in PLACEHOLDERS:
            known = ", ".join(sorted(PLACEHOLDERS))
            raise PlaceholderError(f"Unknown placeholder {raw!r}; available: {known}.", raw)
        names.append(name)
    # Braces left over once every well-formed placeholder is removed are malformed ones.
    rest = _PLACEHOLDER.sub("", body)
    stray = re.search(r"\{\{|\}\}", rest)
    if stray:
        snippet = rest[max(0, stray.start() - 10) : stray.end() + 20]
        raise PlaceholderError(f"Unbalanced braces near {snippet!r}.", snippet)
    return names


def render(body: str, context: RenderContext) -> str:
    """Replace each placeholder by its value, in one pass. `body` must have been validated."""

    def substitute(match: re.Match) -> str:
        name = match.group(1).strip()
        entry = PLACEHOLDERS.get(name)
        if entry is None:  # validated bodies never get here; refuse rather than leak syntax
            raise PlaceholderError(f"Unknown placeholder {match.group(0)!r}.", match.group(0))
        return entry[1](context)

    return _PLACEHOLDER.sub(substitute, body)


def describe() -> list[dict[str, Any]]:
    return [{"name": name, "description": desc} for name, (desc, _r) in sorted(PLACEHOLDERS.items())]
