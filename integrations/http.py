"""One HTTP client layer for every provider API: timeouts, retries, errors, pagination.

429 and 5xx (and connection errors, timeouts) are retried with exponential
backoff, honouring `Retry-After` up to 30 s, at most 3 retries; 401 raises
ProviderUnauthorized (the integration is marked expired); other 4xx raise a
permanent ProviderError; a body that is not the expected JSON is an error too.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Callable, Iterator
from typing import Any

import requests
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt

MAX_RETRY_AFTER_S = 30.0
TIMEOUT = (5, 30)


class ProviderError(Exception):
    def __init__(self, code: str, detail: str, *, transient: bool = False, retry_after: float | None = None):
        super().__init__(detail)
        self.code, self.detail, self.transient, self.retry_after = code, detail, transient, retry_after


class ProviderUnauthorized(ProviderError):
    def __init__(self, detail: str = "The provider refused the integration's credentials (401)."):
        super().__init__("provider_unauthorized", detail)


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            return max(0.0, email.utils.parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError):
            return None


def _wait(state: RetryCallState) -> float:
    error = state.outcome.exception() if state.outcome else None
    if isinstance(error, ProviderError) and error.retry_after is not None:
        return min(error.retry_after, MAX_RETRY_AFTER_S)
    return min(8.0, 0.5 * 2 ** (state.attempt_number - 1))


def _retryable(error: BaseException) -> bool:
    return isinstance(error, ProviderError) and error.transient and (error.retry_after or 0) <= MAX_RETRY_AFTER_S


class ProviderClient:
    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        headers: dict[str, str] | None = None,
        session: requests.Session | None = None,
        max_retries: int = 3,
        name: str = "provider",
    ):
        self.base_url = base_url.rstrip("/")
        self.session = session or requests.Session()
        self.headers = dict(headers or {})
        if token:
            self.headers["Authorization"] = f"Bearer {token}"
        self.max_retries = max_retries
        self.name = name

    def url(self, path: str) -> str:
        return path if path.startswith(("http://", "https://")) else f"{self.base_url}/{path.lstrip('/')}"

    def request(self, method: str, path: str, **kwargs) -> requests.Response:
        retrying = Retrying(
            stop=stop_after_attempt(self.max_retries + 1),
            wait=_wait,
            retry=retry_if_exception(_retryable),
            reraise=True,
        )
        return retrying(self._once, method, path, **kwargs)

    def _once(self, method: str, path: str, **kwargs) -> requests.Response:
        headers = {**self.headers, **kwargs.pop("headers", {})}
        try:
            response = self.session.request(method, self.url(path), headers=headers, timeout=TIMEOUT, **kwargs)
        except requests.Timeout:
            raise ProviderError("provider_timeout", f"{self.name} did not answer in time.", transient=True) from None
        except requests.RequestException as exc:
            raise ProviderError(
                "provider_unavailable", f"Could not reach {self.name} ({exc.__class__.__name__}).", transient=True
            ) from None
        if response.status_code == 401:
            raise ProviderUnauthorized(f"{self.name} refused the integration's credentials (401).")
        if response.status_code == 429 or response.status_code >= 500:
            raise ProviderError(
                "provider_rate_limited" if response.status_code == 429 else "provider_unavailable",
                f"{self.name} answered {response.status_code}.",
                transient=True,
                retry_after=_retry_after(response),
            )
        if response.status_code >= 400:
            raise ProviderError(
                "provider_bad_request",
                f"{self.name} refused the request ({response.status_code}): {_message(response)}",
            )
        return response

    def json(self, method: str, path: str, **kwargs) -> Any:
        response = self.request(method, path, **kwargs)
        try:
            return response.json()
        except ValueError:
            raise ProviderError(
                "provider_bad_response", f"{self.name} answered with something that is not JSON."
            ) from None

    def paginate(
        self,
        method: str,
        path: str,
        *,
        items_key: str,
        next_key: str,
        cursor_param: str,
        has_more: Callable[[dict], bool] | None = None,
        in_body: bool = False,
        **kwargs,
    ) -> Iterator[dict]:
        """Follow a cursor (`nextPageToken`, `next_cursor`, ...) until the provider says stop."""
        cursor = None
        for _page in range(10_000):
            call_kwargs = dict(kwargs)
            if cursor:
                if in_body:
                    call_kwargs["json"] = {**(call_kwargs.get("json") or {}), cursor_param: cursor}
                else:
                    call_kwargs["params"] = {**(call_kwargs.get("params") or {}), cursor_param: cursor}
            page = self.json(method, path, **call_kwargs)
            if not isinstance(page, dict) or not isinstance(page.get(items_key, []), list):
                raise ProviderError("provider_bad_response", f"{self.name} sent a page in an unexpected shape.")
            yield from page.get(items_key, [])
            cursor = page.get(next_key)
            if not cursor or (has_more is not None and not has_more(page)):
                return


def _message(response: requests.Response) -> str:
    try:
        data = response.json()
    except ValueError:
        return (response.text or response.reason or "")[:200]
    if isinstance(data, dict):
        error = data.get("error") or data.get("message")
        if isinstance(error, dict):
            error = error.get("message")
        return str(error or data)[:200]
    return str(data)[:200]
