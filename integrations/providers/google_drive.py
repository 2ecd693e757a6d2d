"""Google Drive (v3): import Google Docs (exported as text) and PDF/DOCX/TXT files."""

from __future__ import annotations

import re
from collections.abc import Iterator

from config.errors import ValidationFailed

from ..http import ProviderClient, ProviderError
from .base import ImportedItem, ImportFailure, Provider, TokenSet

GOOGLE_DOC = "application/vnd.google-apps.document"
FOLDER = "application/vnd.google-apps.folder"
IMPORTABLE = {
    "application/pdf": ".pdf",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": ".docx",
    "text/plain": ".txt",
    "text/markdown": ".md",
    "text/html": ".html",
}


_DRIVE_ID = re.compile(r"^[A-Za-z0-9_-]{1,200}$")


def _quoted(value: str) -> str:
    """A string literal of Drive's search syntax (backslash and quote escaped)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


class GoogleDrive(Provider):
    name = "google_drive"
    display_name = "Google Drive"
    capabilities = frozenset({"import"})
    scopes = ("https://www.googleapis.com/auth/drive.readonly", "openid", "email")

    def check_import(self, *, items: list[str], query: str) -> None:
        """Drive ids only: both end up in API paths and in a Drive search expression."""
        for index, item in enumerate(items):
            if not _DRIVE_ID.match(item):
                raise ValidationFailed(
                    "A Drive file id has only letters, digits, - and _.", "invalid_id", f"items.{index}"
                )
        if query and not _DRIVE_ID.match(query):
            raise ValidationFailed("For Drive, query is a folder id: letters, digits, - and _.", "invalid_id", "query")

    def authorize_params(self) -> dict[str, str]:
        return {"access_type": "offline", "prompt": "consent", "include_granted_scopes": "true"}

    def account(self, client: ProviderClient, tokens: TokenSet) -> tuple[str, str]:
        about = client.json("GET", "/drive/v3/about", params={"fields": "user(displayName,emailAddress,permissionId)"})
        user = about.get("user") or {}
        return user.get("emailAddress") or user.get("displayName") or "", user.get("permissionId") or ""

    def import_items(self, client, *, items, query) -> Iterator[ImportedItem | ImportFailure]:
        """`items`: file ids; `query`: a folder id (its files, not recursive)."""
        file_ids = list(items or [])
        if query:
            for entry in client.paginate(
                "GET",
                "/drive/v3/files",
                items_key="files",
                next_key="nextPageToken",
                cursor_param="pageToken",
                params={
                    "q": f"{_quoted(query)} in parents and trashed = false",
                    "fields": "nextPageToken,files(id)",
                    "pageSize": 100,
                },
            ):
                file_ids.append(entry["id"])
        for file_id in file_ids:
            try:
                meta = client.json(
                    "GET", f"/drive/v3/files/{file_id}", params={"fields": "id,name,mimeType,modifiedTime"}
                )
                mime = meta.get("mimeType", "")
                if mime == GOOGLE_DOC:
                    body = client.request("GET", f"/drive/v3/files/{file_id}/export", params={"mimeType": "text/plain"})
                    filename = f"{meta.get('name', file_id)}.txt"
                elif mime in IMPORTABLE:
                    body = client.request("GET", f"/drive/v3/files/{file_id}", params={"alt": "media"})
                    name = meta.get("name", file_id)
                    filename = name if name.lower().endswith(IMPORTABLE[mime]) else name + IMPORTABLE[mime]
                else:
                    yield ImportFailure(
                        file_id, "unsupported_file_type", f"Drive files of type {mime!r} are not imported."
                    )
                    continue
            except ProviderError as error:
                if error.code == "provider_unauthorized":
                    raise
                yield ImportFailure(file_id, error.code, error.detail)
                continue
            yield ImportedItem(
                external_id=file_id,
                title=meta.get("name", file_id),
                content=body.content,
                filename=filename,
                metadata={"drive_mime_type": mime, "modified_time": meta.get("modifiedTime")},
            )
