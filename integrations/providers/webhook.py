"""Webhook: POST the published summary as JSON to a URL, HMAC-signed when a secret is set.

The body is `{"event": "summary.published", "title", "content", "target": {…}}`: what the
publisher gave as `target` stays under its own key and can never stand in for the event
or the content. With a secret, `X-Precis-Timestamp: <unix seconds>` and `X-Precis-Signature:
sha256=<hex HMAC-SHA256 of "<timestamp>.<raw body>">`: a receiver recomputes it, compares in
constant time, and refuses timestamps more than a few minutes old (a replay).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

from config.errors import ValidationFailed

from .. import outbound
from ..http import ProviderError
from .base import Provider

SIGNATURE_HEADER = "X-Precis-Signature"
TIMESTAMP_HEADER = "X-Precis-Timestamp"
ATTEMPTS = 3


def signature(secret: str, timestamp: int, body: bytes) -> str:
    signed = str(timestamp).encode("ascii") + b"." + body
    return "sha256=" + hmac.new(secret.encode("utf-8"), signed, hashlib.sha256).hexdigest()


class Webhook(Provider):
    name = "webhook"
    display_name = "Webhook"
    capabilities = frozenset({"publish"})
    uses_oauth = False

    @staticmethod
    def validate_config(config: dict[str, Any]) -> dict[str, Any]:
        url = config.get("url")
        secret = config.get("secret") or ""
        if not isinstance(url, str):
            raise ValidationFailed("A webhook needs config.url.", "required", "config.url")
        if not isinstance(secret, str) or len(secret) > 500:
            raise ValidationFailed(
                "config.secret must be a string of at most 500 characters.", "invalid", "config.secret"
            )
        outbound.check_url(url)  # refuses private/loopback/metadata addresses up front (400)
        unknown = set(config) - {"url", "secret"}
        if unknown:
            raise ValidationFailed(f"Unknown config keys: {', '.join(sorted(unknown))}.", "unknown_field", "config")
        return {"url": url.strip(), "secret": secret}

    def publish(self, client, *, title, content, target, config) -> dict[str, Any]:
        payload = {"event": "summary.published", "title": title, "content": content, "target": target or {}}
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        headers = {"Content-Type": "application/json", "User-Agent": "Precis-Webhook/1"}
        if config.get("secret"):
            timestamp = int(time.time())
            headers[TIMESTAMP_HEADER] = str(timestamp)
            headers[SIGNATURE_HEADER] = signature(config["secret"], timestamp, body)
        last_error = ""
        for _attempt in range(ATTEMPTS):
            try:
                response = outbound.request("POST", config["url"], data=body, headers=headers, max_bytes=64 * 1024)
            except outbound.OutboundError as error:
                last_error = error.detail
                if not error.transient:
                    raise ProviderError(error.code, error.detail) from None
                continue
            if response.status >= 500:
                last_error = f"the receiver answered {response.status}"
                continue
            if response.status >= 400:
                raise ProviderError("webhook_refused", f"The webhook receiver answered {response.status}.")
            return {"status": response.status}
        raise ProviderError("webhook_failed", f"The webhook failed {ATTEMPTS} times: {last_error}.", transient=True)
