"""Notion: import pages as text through the blocks API (recursively); publish summaries."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from config.errors import ValidationFailed

from ..http import ProviderClient, ProviderError
from .base import ImportedItem, ImportFailure, Provider, TokenSet

NOTION_VERSION = "2022-06-28"
TEXT_BLOCKS = {
    "paragraph",
    "heading_1",
    "heading_2",
    "heading_3",
    "bulleted_list_item",
    "numbered_list_item",
    "to_do",
    "quote",
    "callout",
    "toggle",
    "code",
}
MAX_DEPTH = 10
RICH_TEXT_LIMIT = 2000  # characters per rich_text object
BLOCKS_PER_REQUEST = 100


def _plain(rich_text: list[dict]) -> str:
    return "".join(part.get("plain_text") or part.get("text", {}).get("content", "") for part in rich_text or [])


def _paragraphs(content: str) -> list[dict]:
    blocks = []
    for paragraph in [p for p in content.split("\n\n") if p.strip()] or [content]:
        for start in range(0, len(paragraph), RICH_TEXT_LIMIT):
            text = paragraph[start : start + RICH_TEXT_LIMIT]
            blocks.append(
                {
                    "object": "block",
                    "type": "paragraph",
                    "paragraph": {"rich_text": [{"type": "text", "text": {"content": text}}]},
                }
            )
    return blocks


class Notion(Provider):
    name = "notion"
    display_name = "Notion"
    capabilities = frozenset({"import", "publish"})

    def authorize_params(self) -> dict[str, str]:
        return {"owner": "user"}

    def client(self, access_token):
        client = super().client(access_token)
        client.headers["Notion-Version"] = NOTION_VERSION
        return client

    def token_set(self, token: dict[str, Any]) -> TokenSet:
        base = super().token_set(token)
        return TokenSet(
            access_token=base.access_token,
            refresh_token=base.refresh_token,
            expires_in=base.expires_in,
            account_name=token.get("workspace_name") or "",
            external_account_id=token.get("workspace_id") or "",
        )

    def _title(self, page: dict) -> str:
        for prop in (page.get("properties") or {}).values():
            if isinstance(prop, dict) and prop.get("type") == "title":
                return _plain(prop.get("title", []))
        return ""

    def _text(self, client: ProviderClient, block_id: str, depth: int = 0) -> list[str]:
        lines: list[str] = []
        for block in client.paginate(
            "GET",
            f"/v1/blocks/{block_id}/children",
            items_key="results",
            next_key="next_cursor",
            cursor_param="start_cursor",
            has_more=lambda page: bool(page.get("has_more")),
            params={"page_size": 100},
        ):
            kind = block.get("type")
            if kind in TEXT_BLOCKS:
                text = _plain(block.get(kind, {}).get("rich_text", []))
                if kind.startswith("heading"):
                    text = "#" * int(kind[-1]) + " " + text
                elif kind in ("bulleted_list_item", "to_do"):
                    text = "- " + text
                if text.strip():
                    lines.append(text)
            elif kind == "child_page":
                lines.append("## " + block.get("child_page", {}).get("title", ""))
            if block.get("has_children") and depth < MAX_DEPTH:
                lines.extend(self._text(client, block["id"], depth + 1))
        return lines

    def import_items(self, client, *, items, query) -> Iterator[ImportedItem | ImportFailure]:
        """`items`: page ids; `query`: a search over the pages shared with the integration."""
        page_ids = list(items or [])
        if query:
            for result in client.paginate(
                "POST",
                "/v1/search",
                items_key="results",
                next_key="next_cursor",
                cursor_param="start_cursor",
                has_more=lambda page: bool(page.get("has_more")),
                in_body=True,
                json={"query": query, "filter": {"property": "object", "value": "page"}},
            ):
                page_ids.append(result["id"])
        for page_id in page_ids:
            try:
                page = client.json("GET", f"/v1/pages/{page_id}")
                text = "\n\n".join(self._text(client, page_id))
            except ProviderError as error:
                if error.code == "provider_unauthorized":
                    raise
                yield ImportFailure(page_id, error.code, error.detail)
                continue
            title = self._title(page) or page_id
            yield ImportedItem(
                external_id=page_id,
                title=title,
                content=text.encode("utf-8"),
                filename=f"{page_id}.md",
                metadata={"notion_url": page.get("url"), "last_edited_time": page.get("last_edited_time")},
            )

    def validate_target(self, target: dict[str, Any]) -> dict[str, Any]:
        parent = target.get("page_id") or target.get("append_to")
        if not isinstance(parent, str) or not parent.strip():
            raise ValidationFailed(
                "Notion needs target {'page_id': <parent page>} (new child page) or {'append_to': <block id>}.",
                "invalid_target",
                "target",
            )
        return target

    def publish(self, client, *, title, content, target, config) -> dict[str, Any]:
        blocks = _paragraphs(content)
        if target.get("append_to"):
            parent_id = target["append_to"]
            created = {"id": parent_id}
        else:
            created = client.json(
                "POST",
                "/v1/pages",
                json={
                    "parent": {"page_id": target["page_id"]},
                    "properties": {
                        "title": {"title": [{"type": "text", "text": {"content": title[:RICH_TEXT_LIMIT]}}]}
                    },
                    "children": blocks[:BLOCKS_PER_REQUEST],
                },
            )
            parent_id, blocks = created["id"], blocks[BLOCKS_PER_REQUEST:]
        for start in range(0, len(blocks), BLOCKS_PER_REQUEST):
            client.json("PATCH", f"/v1/blocks/{parent_id}/children", json={"children": blocks[start : start + 100]})
        return {"page_id": created.get("id"), "url": created.get("url")}
