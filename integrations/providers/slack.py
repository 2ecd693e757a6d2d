"""Slack (OAuth v2): publish summaries to a channel with chat.postMessage."""

from __future__ import annotations

from typing import Any

from config.errors import ValidationFailed

from ..http import ProviderClient, ProviderError, ProviderUnauthorized
from .base import Provider, TokenSet

MESSAGE_LIMIT = 3500  # characters per message; Slack truncates long texts, we split instead


def split_message(text: str, limit: int = MESSAGE_LIMIT) -> list[str]:
    """Split on paragraph, then line, then word boundaries into messages of at most `limit`."""
    parts: list[str] = []
    current = ""
    for piece in text.replace("\r\n", "\n").split("\n"):
        candidate = f"{current}\n{piece}" if current else piece
        if len(candidate) <= limit:
            current = candidate
            continue
        if current:
            parts.append(current)
        while len(piece) > limit:
            cut = piece.rfind(" ", 0, limit)
            cut = cut if cut > limit // 2 else limit
            parts.append(piece[:cut])
            piece = piece[cut:].lstrip()
        current = piece
    if current.strip():
        parts.append(current)
    return parts or [""]


class Slack(Provider):
    name = "slack"
    display_name = "Slack"
    capabilities = frozenset({"publish"})
    scopes = ("chat:write", "channels:read")

    def token_set(self, token: dict[str, Any]) -> TokenSet:
        if token.get("ok") is False:
            raise ProviderError("oauth_exchange_failed", f"Slack refused the authorization: {token.get('error')}")
        base = super().token_set(token)
        team = token.get("team") or {}
        return TokenSet(
            access_token=base.access_token,
            refresh_token=base.refresh_token,
            expires_in=base.expires_in,
            scopes=base.scopes,
            account_name=team.get("name") or "",
            external_account_id=team.get("id") or "",
        )

    def _call(self, client: ProviderClient, method: str, payload: dict[str, Any]) -> dict[str, Any]:
        data = client.json("POST", f"/{method}", json=payload)
        if not isinstance(data, dict):
            raise ProviderError("provider_bad_response", "Slack answered with something that is not an object.")
        if data.get("ok") is not True:
            error = data.get("error", "unknown_error")
            if error in ("invalid_auth", "not_authed", "token_revoked", "token_expired", "account_inactive"):
                raise ProviderUnauthorized(f"Slack refused the token: {error}.")
            if error == "ratelimited":
                raise ProviderError("provider_rate_limited", "Slack rate limited the request.", transient=True)
            raise ProviderError("provider_bad_request", f"Slack refused {method}: {error}.")
        return data

    def validate_target(self, target: dict[str, Any]) -> dict[str, Any]:
        channel = target.get("channel")
        if not isinstance(channel, str) or not channel.strip() or len(channel) > 80:
            raise ValidationFailed("Slack needs target {'channel': <channel id or #name>}.", "invalid_target", "target")
        return target

    def publish(self, client, *, title, content, target, config) -> dict[str, Any]:
        messages = split_message(f"*{title}*\n\n{content}")
        first = self._call(client, "chat.postMessage", {"channel": target["channel"], "text": messages[0]})
        thread_ts = first.get("ts")
        for message in messages[1:]:  # the rest in the first message's thread
            self._call(
                client, "chat.postMessage", {"channel": target["channel"], "text": message, "thread_ts": thread_ts}
            )
        return {"channel": first.get("channel"), "ts": thread_ts, "messages": len(messages)}
