"""The provider registry: every provider Precis can connect to."""

from __future__ import annotations

from .base import ImportedItem, ImportFailure, Provider, TokenSet
from .google_drive import GoogleDrive
from .notion import Notion
from .slack import Slack
from .webhook import Webhook

REGISTRY: dict[str, type[Provider]] = {cls.name: cls for cls in (GoogleDrive, Notion, Slack, Webhook)}

__all__ = ["REGISTRY", "ImportFailure", "ImportedItem", "Provider", "TokenSet", "get"]


def get(name: str) -> Provider | None:
    cls = REGISTRY.get(name)
    return cls() if cls else None
