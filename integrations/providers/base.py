"""What an integration provider declares and implements."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

from django.conf import settings

from ..http import ProviderClient


@dataclass(frozen=True)
class ImportedItem:
    """One external item to become (or update) a document."""

    external_id: str
    title: str
    content: bytes  # the item's bytes; extracted like an upload
    filename: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ImportFailure:
    external_id: str
    code: str
    detail: str


@dataclass(frozen=True)
class TokenSet:
    access_token: str
    refresh_token: str = ""
    expires_in: int | None = None
    scopes: tuple[str, ...] = ()
    account_name: str = ""
    external_account_id: str = ""


class Provider:
    name: ClassVar[str]
    display_name: ClassVar[str]
    capabilities: ClassVar[frozenset[str]] = frozenset()
    uses_oauth: ClassVar[bool] = True
    scopes: ClassVar[tuple[str, ...]] = ()

    # -- configuration (settings.INTEGRATION_PROVIDERS[name], from <PROVIDER>_* variables) --
    @classmethod
    def conf(cls) -> dict[str, str]:
        return settings.INTEGRATION_PROVIDERS.get(cls.name, {})

    @classmethod
    def configured(cls) -> bool:
        return not cls.uses_oauth or bool(cls.conf().get("client_id") and cls.conf().get("client_secret"))

    def check_import(self, *, items: list[str], query: str) -> None:
        """Refuse (ValidationFailed, 400) what this provider cannot take as `items`/`query`,
        before a job is queued. By default anything the serializer allowed."""

    def authorize_params(self) -> dict[str, str]:
        """Extra query parameters for the authorization URL."""
        return {}

    def token_set(self, token: dict[str, Any]) -> TokenSet:
        """Read the token endpoint's answer (providers differ a little)."""
        scope = token.get("scope") or ""
        return TokenSet(
            access_token=token["access_token"],
            refresh_token=token.get("refresh_token") or "",
            expires_in=int(token["expires_in"]) if str(token.get("expires_in") or "").isdigit() else None,
            scopes=tuple(scope.replace(",", " ").split()) if isinstance(scope, str) else tuple(scope),
        )

    def account(self, client: ProviderClient, tokens: TokenSet) -> tuple[str, str]:
        """(account name, external account id) for display; may call the API."""
        return tokens.account_name, tokens.external_account_id

    def client(self, access_token: str | None) -> ProviderClient:
        return ProviderClient(self.conf().get("api_base_url", ""), token=access_token, name=self.display_name)

    # -- capabilities ----------------------------------------------------------------
    def import_items(
        self, client: ProviderClient, *, items: list[str] | None, query: str | None
    ) -> Iterator[ImportedItem | ImportFailure]:
        raise NotImplementedError

    def publish(
        self, client: ProviderClient, *, title: str, content: str, target: dict[str, Any], config: dict[str, Any]
    ) -> dict[str, Any]:
        raise NotImplementedError

    def validate_target(self, target: dict[str, Any]) -> dict[str, Any]:
        return target
