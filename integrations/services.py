"""Integrations: OAuth connect/reconnect/refresh/revoke, webhooks, import and publish.

OAuth2 authorization code flow with PKCE (S256) and `state` through authlib.
`state` is random, stored only as a SHA-256, single use, expires after
OAUTH_STATE_TTL_S, and bound to the org, the user, the provider and the browser
that asked for it (a nonce in an HttpOnly cookie, stored as a SHA-256); the
callback exchanges the code with the exact redirect URI the authorization
used. Tokens are encrypted at rest (integrations.crypto) and refreshed at
about half their lifetime — on use and by a beat task.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import logging
import secrets
from datetime import timedelta
from typing import Any, NamedTuple

import requests
from authlib.common.security import generate_token
from authlib.integrations.base_client.errors import OAuthError
from authlib.integrations.requests_client import OAuth2Session
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.models import User
from config.errors import PrecisError, ServiceUnavailable, ValidationFailed
from documents import ingestion
from jobs import services as job_services
from jobs.lease import LeaseKeeper
from jobs.models import Job
from jobs.scheduler import queue_for, schedule_soon
from organizations import audit
from organizations.models import Organization

from . import crypto, outbound
from . import providers as registry
from .http import ProviderError, ProviderUnauthorized
from .models import Integration, OAuthState
from .providers import ImportFailure, Provider, TokenSet

logger = logging.getLogger(__name__)


def _hash(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def provider_or_404(name: str, *, oauth: bool | None = None) -> Provider:
    from rest_framework.exceptions import NotFound

    provider = registry.get(name)
    if provider is None or (oauth is not None and provider.uses_oauth != oauth):
        raise NotFound(f"No integration provider {name!r}.")
    return provider


def _oauth_session(provider: Provider, redirect_uri: str) -> OAuth2Session:
    conf = provider.conf()
    return OAuth2Session(
        conf["client_id"],
        conf["client_secret"],
        scope=" ".join(provider.scopes) or None,
        redirect_uri=redirect_uri,
        code_challenge_method="S256",
        token_endpoint_auth_method="client_secret_basic",
    )


# -- connecting --------------------------------------------------------------------------
class Authorization(NamedTuple):
    url: str  # the provider's authorization URL (state + PKCE challenge)
    # For the browser that asked, as an HttpOnly cookie; the callback needs it back
    # (only its SHA-256 is stored). A link passed to anyone else is worthless without it.
    browser_nonce: str


def oauth_authorize(
    *,
    org: Organization,
    user: User,
    provider_name: str,
    redirect_uri: str,
    integration: Integration | None = None,
    return_to: str = "",
) -> Authorization:
    """Start the flow: a new state bound to org, user, provider and the asking browser
    (`return_to="admin"`: the callback sends the browser back to the admin console)."""
    provider = provider_or_404(provider_name, oauth=True)
    if not provider.configured():
        raise ValidationFailed(
            f"{provider.display_name} is not configured on this server ({provider_name.upper()}_CLIENT_ID/SECRET).",
            "provider_not_configured",
        )
    if integration is not None and integration.provider != provider_name:
        raise ValidationFailed("That integration belongs to another provider.", "invalid", "integration_id")
    state, verifier, nonce = secrets.token_urlsafe(32), generate_token(64), secrets.token_urlsafe(32)
    OAuthState.objects.create(
        org=org,
        user=user,
        provider=provider_name,
        state_hash=_hash(state),
        browser_nonce_hash=_hash(nonce),
        code_verifier_encrypted=crypto.encrypt(verifier),
        redirect_uri=redirect_uri,
        integration=integration,
        expires_at=timezone.now() + timedelta(seconds=settings.OAUTH_STATE_TTL_S),
        return_to=return_to,
    )
    url, _state = _oauth_session(provider, redirect_uri).create_authorization_url(
        provider.conf()["authorize_url"], state=state, code_verifier=verifier, **provider.authorize_params()
    )
    return Authorization(url=url, browser_nonce=nonce)


def oauth_return_to(provider_name: str, state: str) -> str:
    """Where the flow of `state` asked to come back to ("" when unknown); claims nothing."""
    if not state or len(state) > 200:
        return ""
    rows = OAuthState.unscoped_objects.filter(state_hash=_hash(state), provider=provider_name)
    return rows.values_list("return_to", flat=True).first() or ""


def _claim_state(provider_name: str, state: str, browser_nonce: str) -> OAuthState:
    """The callback's credential: unknown, used, expired or another provider's → 400.

    A known state is spent before anything else is checked: one that comes back
    without its browser's nonce (the link was opened elsewhere) stays spent, so
    the code that came with it cannot be redeemed by anyone else later."""
    invalid = ValidationFailed("The authorization state is invalid, expired or already used.", "invalid_state", "state")
    if not state or len(state) > 200:
        raise invalid
    record = OAuthState.unscoped_objects.select_related("org", "user").filter(state_hash=_hash(state)).first()
    if record is None or record.provider != provider_name:
        raise invalid
    claimed = OAuthState.unscoped_objects.filter(pk=record.pk, used_at__isnull=True).update(used_at=timezone.now())
    if claimed != 1 or record.expires_at <= timezone.now():
        raise invalid
    if not (0 < len(browser_nonce) <= 200 and hmac.compare_digest(_hash(browser_nonce), record.browser_nonce_hash)):
        raise ValidationFailed(
            "This authorization was started in another browser (or its cookie is missing). "
            "Start connecting again from Precis in this browser.",
            "state_browser_mismatch",
            "state",
        )
    if not record.user.is_active or record.user.org_id != record.org_id or not record.org.is_active:
        raise invalid
    return record


def oauth_callback(
    *, provider_name: str, state: str, browser_nonce: str, code: str | None, error: str | None = None
) -> Integration:
    """Finish the flow: validate state and browser, exchange the code, store the integration
    (encrypted). The state is spent by its first callback, whatever follows, unless the
    caller rolls that back (the callback view runs outside the request transaction)."""
    provider = provider_or_404(provider_name, oauth=True)
    record = _claim_state(provider_name, state, browser_nonce)
    if error or not code:
        raise ValidationFailed(f"The provider did not authorize the connection ({error or 'no code'}).", "oauth_denied")
    session = _oauth_session(provider, record.redirect_uri)
    try:
        token = session.fetch_token(
            provider.conf()["token_url"], code=code, code_verifier=crypto.decrypt(record.code_verifier_encrypted)
        )
        tokens = provider.token_set(dict(token))
        account_name, external_id = provider.account(provider.client(tokens.access_token), tokens)
    except OAuthError as exc:
        raise ValidationFailed(f"The provider refused the code: {exc.error}.", "oauth_exchange_failed") from None
    except ProviderError as exc:
        raise ValidationFailed(exc.detail, "oauth_exchange_failed") from None
    except requests.RequestException:
        raise ServiceUnavailable(f"{provider.display_name} could not be reached.", "provider_unavailable") from None
    except (KeyError, ValueError, TypeError):
        raise ValidationFailed("The provider's token answer was malformed.", "oauth_exchange_failed") from None
    integration = record.integration or Integration(org_id=record.org_id, provider=provider_name)
    _store_tokens(integration, tokens)
    integration.account_name = account_name or integration.account_name
    integration.external_account_id = external_id or integration.external_account_id
    integration.name = integration.name or account_name or provider.display_name
    integration.scopes = list(tokens.scopes) or list(provider.scopes)
    integration.status, integration.status_detail = Integration.Status.ACTIVE, ""
    integration.created_by = integration.created_by or record.user
    reconnected = not integration._state.adding
    with transaction.atomic():  # the callback runs outside the request transaction
        integration.save()
        audit.record(
            "integration.connected",
            org=record.org_id,
            actor=record.user,
            target=integration,
            changes={"provider": integration.provider, "reconnected": reconnected},
        )
    return integration


def _store_tokens(integration: Integration, tokens) -> None:
    now = timezone.now()
    integration.access_token = tokens.access_token
    if tokens.refresh_token:  # a rotated refresh token is always kept
        integration.refresh_token = tokens.refresh_token
    integration.token_issued_at = now
    integration.token_expires_at = now + timedelta(seconds=tokens.expires_in) if tokens.expires_in else None


def webhook_create(*, org: Organization, user: User, name: str, config: dict[str, Any]) -> Integration:
    from .providers.webhook import Webhook

    integration = Integration(org=org, provider="webhook", name=name, created_by=user, account_name=name)
    integration.config = Webhook.validate_config(config)
    integration.save()
    audit.record("integration.connected", org=org, target=integration, changes={"provider": "webhook"})
    return integration


def integration_mark(integration: Integration, status: str, detail: str = "") -> None:
    integration.status, integration.status_detail = status, detail[:500]
    Integration.unscoped_objects.filter(pk=integration.pk).update(status=status, status_detail=detail[:500])


# -- tokens --------------------------------------------------------------------------------
def _past_half_life(integration: Integration) -> bool:
    if not integration.token_expires_at or not integration.token_issued_at:
        return False
    half = integration.token_issued_at + (integration.token_expires_at - integration.token_issued_at) / 2
    return timezone.now() >= half


class RefreshRefused(ProviderUnauthorized):
    """The provider refused the refresh token: the integration needs reconnecting (`mark`)."""

    def __init__(self, detail: str, mark: str):
        super().__init__(detail)
        self.mark = mark


_TOKEN_FIELDS = [
    "access_token_encrypted",
    "refresh_token_encrypted",
    "token_issued_at",
    "token_expires_at",
    "status",
    "status_detail",
]


def integration_refresh(*, integration: Integration) -> Integration:
    """Refresh the access token. `invalid_grant`/401 → needs_reauth (reconnect); other errors are transient.

    The row is locked for the exchange, and refreshed only if its refresh token is still the
    one `integration` was read with: a provider that rotates refresh tokens (the old one dies
    with the exchange) must not see a second worker spend the old one and then mark a good
    integration `needs_reauth`. `integration` ends up with the current tokens either way."""
    provider = provider_or_404(integration.provider, oauth=True)
    refused: RefreshRefused | None = None
    with transaction.atomic():
        current = Integration.unscoped_objects.select_for_update().get(pk=integration.pk)
        if current.refresh_token_encrypted == integration.refresh_token_encrypted and current.refresh_token:
            try:
                tokens = _exchange_refresh_token(provider, current.refresh_token)
            except RefreshRefused as error:
                refused = error
            else:
                _store_tokens(current, tokens)
                current.status, current.status_detail = Integration.Status.ACTIVE, ""
                current.save(update_fields=[*_TOKEN_FIELDS, "updated_at"])
    if refused is not None:  # marked outside the lock's transaction, which raising would roll back
        integration_mark(current, Integration.Status.NEEDS_REAUTH, refused.mark)
        raise refused
    for name in _TOKEN_FIELDS:
        setattr(integration, name, getattr(current, name))
    return integration


def _exchange_refresh_token(provider: Provider, refresh_token: str) -> TokenSet:
    session = _oauth_session(provider, "")
    try:
        token = session.refresh_token(provider.conf()["token_url"], refresh_token=refresh_token)
    except OAuthError as exc:
        if exc.error in ("invalid_grant", "invalid_client", "unauthorized_client"):
            raise RefreshRefused(
                f"The provider refused to refresh the token ({exc.error}); reconnect.", f"Refresh refused: {exc.error}."
            ) from None
        raise ProviderError("provider_unavailable", f"Token refresh failed: {exc.error}.", transient=True) from None
    except requests.HTTPError as exc:
        if exc.response is not None and exc.response.status_code in (400, 401):
            raise RefreshRefused(
                "The provider refused to refresh the token; reconnect.", "Refresh refused; reconnect."
            ) from None
        raise ProviderError("provider_unavailable", "Token refresh failed.", transient=True) from None
    except requests.RequestException:
        raise ProviderError(
            "provider_unavailable", "Token refresh failed: provider unreachable.", transient=True
        ) from None
    try:
        return provider.token_set(dict(token))
    except (KeyError, TypeError, ValueError):
        raise ProviderError(
            "provider_error", "The provider answered the refresh without a usable token.", transient=True
        ) from None


def integration_access_token(*, integration: Integration) -> str:
    if integration.status in (Integration.Status.NEEDS_REAUTH, Integration.Status.REVOKED):
        raise ProviderUnauthorized(f"The integration is {integration.status}; reconnect it.")
    if _past_half_life(integration):
        integration_refresh(integration=integration)
    return integration.access_token


def oauth_state_purge() -> int:
    """Delete every OAuth state that was used or has expired; returns how many."""
    from django.db.models import Q

    deleted, _ = OAuthState.unscoped_objects.filter(
        Q(used_at__isnull=False) | Q(expires_at__lt=timezone.now())
    ).delete()
    return deleted


def refresh_expiring_tokens() -> dict[str, int]:
    """Beat task body: refresh every active integration past half its token lifetime."""
    from organizations.tenancy import dangerously_unscoped

    counts = {"refreshed": 0, "failed": 0}
    with dangerously_unscoped():
        candidates = Integration.objects.filter(
            status=Integration.Status.ACTIVE, token_expires_at__isnull=False
        ).exclude(refresh_token_encrypted="")
        for integration in candidates:
            try:
                if not _past_half_life(integration):
                    continue
                integration_refresh(integration=integration)
                counts["refreshed"] += 1
            except ProviderError:
                counts["failed"] += 1
            except Exception:  # one broken row (undecryptable, an odd answer) must not stop the others
                logger.exception("refreshing integration %s (%s) failed", integration.pk, integration.provider)
                counts["failed"] += 1
    return counts


def integration_disconnect(*, integration: Integration) -> None:
    """Revoke at the provider where it supports revocation (best effort), then delete."""
    provider = registry.get(integration.provider)
    revoke_url = provider.conf().get("revoke_url") if provider and provider.uses_oauth else ""
    if revoke_url and integration.access_token_encrypted:
        token = integration.refresh_token or integration.access_token
        try:
            requests.post(
                revoke_url,
                data={"token": token},
                headers={"Authorization": f"Bearer {integration.access_token}"},
                timeout=(5, 10),
            )
        except requests.RequestException:
            logger.warning(
                "revoking integration %s at %s failed; deleting anyway", integration.pk, integration.provider
            )
    audit.record("integration.disconnected", org=integration.org_id, target=integration)
    integration.delete()


# -- jobs ----------------------------------------------------------------------------------
def import_request(
    *, org: Organization, user: User, integration: Integration, items: list[str] | None, query: str | None
) -> Job:
    provider = provider_or_404(integration.provider)
    if "import" not in provider.capabilities:
        raise ValidationFailed(f"{provider.display_name} cannot import.", "unsupported_capability")
    provider.check_import(items=items or [], query=query or "")
    return job_services.job_create(
        org=org,
        kind=Job.Kind.IMPORT,
        created_by=user,
        queue=queue_for(Job.Kind.IMPORT),
        payload={"integration_id": str(integration.pk), "items": items or [], "query": query or ""},
    )


def url_import_request(*, org: Organization, user: User, url: str, title: str | None) -> Job:
    outbound.check_url(url)  # refuse private/loopback/metadata targets before queueing (400)
    return job_services.job_create(
        org=org,
        kind=Job.Kind.IMPORT,
        created_by=user,
        queue=queue_for(Job.Kind.IMPORT),
        payload={"url": url.strip(), "title": title or ""},
    )


def integration_publish(*, integration: Integration, title: str, content: str, target: dict[str, Any]) -> dict:
    """Publish through a provider (called by the publish job). Raises ProviderError."""
    provider = provider_or_404(integration.provider)
    token = integration_access_token(integration=integration) if provider.uses_oauth else None
    try:
        result = provider.publish(
            provider.client(token), title=title, content=content, target=target, config=integration.config
        )
    except ProviderUnauthorized as exc:
        integration_mark(integration, Integration.Status.EXPIRED, exc.detail)
        raise
    Integration.unscoped_objects.filter(pk=integration.pk).update(last_used_at=timezone.now())
    return result


def validate_publish_target(*, integration: Integration, target: Any) -> dict[str, Any]:
    provider = provider_or_404(integration.provider)
    if "publish" not in provider.capabilities:
        raise ValidationFailed(f"{provider.display_name} cannot publish.", "unsupported_capability", "integration_id")
    if not isinstance(target, dict):
        raise ValidationFailed("target must be a JSON object.", "invalid_target", "target")
    return provider.validate_target(target)


def import_job_run(*, job_id) -> None:
    """Task body for import jobs (provider items or a URL), inside the job's org scope."""
    job_services.job_run(job_id, _import)


def _import(job: Job) -> None:
    token = job.lease_token
    with LeaseKeeper(job.pk, token) as lease:
        try:
            result = _import_url(job) if job.payload.get("url") else _import_from_provider(job, lease)
        except _Stop:
            return
        except ProviderError as error:
            job_services.job_retry_or_fail(
                job, code=error.code, detail=error.detail, transient=error.transient, retry_after=error.retry_after
            )
            return
        except outbound.OutboundError as error:
            job_services.job_retry_or_fail(job, code=error.code, detail=error.detail, transient=error.transient)
            return
        except PrecisError as error:  # extraction refused the content, the outbound guard refused a hop, ...
            job_services.job_fail(
                job_id=job.pk, lease_token=token, code=str(error.get_codes()), detail=str(error.detail)
            )
            return
    document_id = result.pop("document_id", None)
    if document_id:
        Job.unscoped_objects.filter(pk=job.pk).update(document_id=document_id)
    job_services.job_succeed(job_id=job.pk, lease_token=token, result=result)


class _Stop(Exception):
    """The job was cancelled (or taken away) between items."""


def _import_url(job: Job) -> dict[str, Any]:
    url = job.payload["url"]
    fetched = outbound.request("GET", url)
    if fetched.status >= 400:
        raise outbound.OutboundError("fetch_failed", f"The URL answered {fetched.status}.", fetched.status >= 500)
    filename = fetched.filename or "page"
    if "html" in fetched.content_type and not filename.lower().endswith((".html", ".htm")):
        filename += ".html"
    with transaction.atomic():
        document, outcome, _ingest = ingestion.document_accept_file(
            org=job.org,
            created_by=job.created_by,
            stream=io.BytesIO(fetched.body),
            filename=filename,
            source="url",
            source_ref=url[:1024],
            title=job.payload.get("title") or None,
            metadata={"url": url, "final_url": fetched.url, "fetched_content_type": fetched.content_type[:100]},
        )
        schedule_soon()
    return {"document_id": str(document.pk), "outcome": outcome, "final_url": fetched.url}


def _import_from_provider(job: Job, lease: LeaseKeeper) -> dict[str, Any]:
    integration = Integration.objects.filter(pk=job.payload.get("integration_id")).first()
    if integration is None:
        raise ProviderError("integration_deleted", "The integration was deleted.")
    provider = provider_or_404(integration.provider)
    try:
        client = provider.client(integration_access_token(integration=integration))
        requested = job.payload.get("items") or []
        counts = {"created": 0, "updated": 0, "unchanged": 0, "failed": 0}
        failures: list[dict[str, str]] = []
        documents: list[str] = []
        for index, item in enumerate(
            provider.import_items(client, items=requested, query=job.payload.get("query") or None)
        ):
            if isinstance(item, ImportFailure):
                counts["failed"] += 1
                failures.append({"item": item.external_id, "code": item.code, "detail": item.detail})
            else:
                try:
                    with transaction.atomic():
                        document, outcome, _ingest = ingestion.document_accept_file(
                            org=job.org,
                            created_by=job.created_by,
                            stream=io.BytesIO(item.content),
                            filename=item.filename or item.title,
                            source=integration.provider,
                            source_ref=item.external_id,
                            title=item.title,
                            metadata=item.metadata,
                        )
                        schedule_soon()
                    counts[outcome] += 1
                    documents.append(str(document.pk))
                except PrecisError as error:
                    counts["failed"] += 1
                    failures.append(
                        {"item": item.external_id, "code": str(error.get_codes()), "detail": str(error.detail)}
                    )
            total = max(len(requested), index + 1)
            if not (
                lease.alive
                and job_services.job_set_progress(
                    job_id=job.pk, lease_token=job.lease_token, progress=min(99, int(100 * (index + 1) / total))
                )
            ):
                raise _Stop()
    except ProviderUnauthorized as exc:
        if integration.status == Integration.Status.ACTIVE:
            integration_mark(integration, Integration.Status.EXPIRED, exc.detail)
        raise
    Integration.unscoped_objects.filter(pk=integration.pk).update(last_used_at=timezone.now())
    if counts["failed"] and not (counts["created"] or counts["updated"] or counts["unchanged"]):
        first = failures[0]
        raise ProviderError(
            "import_failed", f"No item could be imported; first error on {first['item']}: {first['detail']}"
        )
    return {**counts, "failures": failures[:100], "documents": documents[:1000]}
