"""Brute-force protection: login per IP, failed logins per account and client with
backoff, registration per IP, mail per IP and per address.

Rates come from LOGIN_THROTTLE_RATE / REGISTER_THROTTLE_RATE / MAIL_IP_THROTTLE_RATE /
MAIL_ACCOUNT_THROTTLE_RATE (DRF rate strings); the backoff from LOGIN_FREE_FAILURES and
LOGIN_BACKOFF_MAX_S. A throttled request answers 429 with Retry-After.

The counters live in the shared cache (Redis). While it is unreachable they live in each
process's memory (`ThrottleCache`), so login keeps working through a Redis outage, with
limits that count per process until Redis answers again.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time

from django.conf import settings
from django.core.cache import cache as shared_cache
from django.core.cache.backends.locmem import LocMemCache
from rest_framework.exceptions import Throttled
from rest_framework.throttling import BaseThrottle, SimpleRateThrottle

from .models import normalize_email

logger = logging.getLogger(__name__)


class ThrottleCache:
    """The shared cache, or this process's memory while the shared cache does not answer.

    After a failure the shared cache is left alone for RETRY_AFTER_S (a dead Redis costs
    one connect timeout per process per interval, not one per request)."""

    RETRY_AFTER_S = 5.0

    def __init__(self) -> None:
        self.local = LocMemCache("precis-throttle-fallback", {"OPTIONS": {"MAX_ENTRIES": 100_000}})
        self._skip_until = 0.0
        self._lock = threading.Lock()

    @property
    def degraded(self) -> bool:
        return time.monotonic() < self._skip_until

    def _call(self, method: str, *args, **kwargs):
        if not self.degraded:
            try:
                return getattr(shared_cache, method)(*args, **kwargs)
            except Exception as exc:  # redis' ConnectionError/TimeoutError, OSError: the cache is down
                with self._lock:
                    if not self.degraded:
                        logger.warning("throttle cache unreachable (%s); counting in this process", exc)
                    self._skip_until = time.monotonic() + self.RETRY_AFTER_S
        return getattr(self.local, method)(*args, **kwargs)

    def get(self, key, default=None):
        return self._call("get", key, default)

    def set(self, key, value, timeout=None):
        return self._call("set", key, value, timeout)

    def delete(self, key):
        return self._call("delete", key)


THROTTLE_CACHE = ThrottleCache()


class _PerIPThrottle(SimpleRateThrottle):
    """Counts requests per client address (see NUM_PROXIES for proxies)."""

    cache = THROTTLE_CACHE

    def get_cache_key(self, request, view):
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class LoginIPThrottle(_PerIPThrottle):
    scope = "login_ip"


class RegisterIPThrottle(_PerIPThrottle):
    scope = "register_ip"


class MailIPThrottle(_PerIPThrottle):
    """Requests that make Precis send mail (password reset), per client address."""

    scope = "mail_ip"


class MailAccountThrottle(SimpleRateThrottle):
    """Mail to one address (password reset links), whoever asks, from wherever."""

    scope = "mail_account"
    cache = THROTTLE_CACHE

    def get_cache_key(self, request, view):
        data = request.data if isinstance(request.data, dict) else {}
        email = data.get("email")
        if not isinstance(email, str) or not email.strip():
            return None
        ident = hashlib.sha256(normalize_email(email).encode()).hexdigest()
        return self.cache_format % {"scope": self.scope, "ident": ident}


class MailUserThrottle(SimpleRateThrottle):
    """Mail one signed-in user asks for themselves (verification resend)."""

    scope = "mail_account"
    cache = THROTTLE_CACHE

    def get_cache_key(self, request, view):
        if not request.user or not request.user.is_authenticated:
            return None
        return self.cache_format % {"scope": "mail_user", "ident": str(request.user.pk)}


class PasswordChangeThrottle(SimpleRateThrottle):
    """PATCH /auth/me/ with `current_password`: as strict as login, per user (a stolen
    access token must not allow guessing the password)."""

    scope = "login_account"
    cache = THROTTLE_CACHE

    def get_cache_key(self, request, view):
        data = request.data if isinstance(request.data, dict) else {}
        if request.method != "PATCH" or "current_password" not in data or not request.user.is_authenticated:
            return None
        return self.cache_format % {"scope": "password_change", "ident": str(request.user.pk)}


class LoginBackoff:
    """Failed logins of one account from one client: backoff, never a lock.

    The first LOGIN_FREE_FAILURES failures cost nothing; after that each attempt must wait
    1, 2, 4 … seconds (at most LOGIN_BACKOFF_MAX_S) after the previous failure. A success
    clears it. Keyed by account *and* client: guessing from elsewhere never locks the
    owner out, however long it goes on (per-IP limits bound how fast one client guesses).
    """

    def __init__(self, request, email: str):
        account = hashlib.sha256(normalize_email(email).encode()).hexdigest()
        self.key = f"throttle_login_backoff_{account}_{BaseThrottle().get_ident(request)}"

    def wait(self) -> float:
        state = THROTTLE_CACHE.get(self.key)
        return max(0.0, state["until"] - time.time()) if state else 0.0

    def check(self) -> None:
        """Raise DRF's Throttled (429, Retry-After) while this client must wait."""
        wait = self.wait()
        if wait > 0:
            raise Throttled(wait=wait, detail="Too many failed logins; wait before trying again.")

    def failed(self) -> None:
        state = THROTTLE_CACHE.get(self.key) or {"failures": 0, "until": 0.0}
        failures = state["failures"] + 1
        over = failures - settings.LOGIN_FREE_FAILURES
        delay = min(2.0 ** (over - 1), settings.LOGIN_BACKOFF_MAX_S) if over > 0 else 0.0
        THROTTLE_CACHE.set(self.key, {"failures": failures, "until": time.time() + delay}, 86_400)

    def succeeded(self) -> None:
        THROTTLE_CACHE.delete(self.key)


class _AdminLoginThrottle(SimpleRateThrottle):
    """The login form of the Django admin: the API login's per-IP limit."""

    scope = "login_ip"
    cache = THROTTLE_CACHE

    def get_cache_key(self, request, view):
        return self.cache_format % {"scope": "admin_login_ip", "ident": self.get_ident(request)}


def admin_login_throttled(login_view):
    """Wrap AdminSite.login with the API login's protection: per IP, and failures per account
    and client with backoff (a failed login re-renders the form: 200; a success redirects)."""
    from django.http import HttpResponse

    def refused(wait: float) -> HttpResponse:
        response = HttpResponse("Too many login attempts; try again later.", status=429)
        response["Retry-After"] = str(max(int(wait + 0.999), 1))
        return response

    def view(request, *args, **kwargs):
        if request.method != "POST":
            return login_view(request, *args, **kwargs)
        ip_throttle = _AdminLoginThrottle()
        if not ip_throttle.allow_request(request, None):
            return refused(ip_throttle.wait() or 60)
        email = request.POST.get("username", "")
        backoff = LoginBackoff(request, email) if email.strip() else None
        if backoff and (wait := backoff.wait()) > 0:
            return refused(wait)
        response = login_view(request, *args, **kwargs)
        if backoff:
            backoff.succeeded() if response.status_code == 302 else backoff.failed()
        return response

    return view
