"""Brute-force protection: login per IP and per account, registration per IP.

Rates come from LOGIN_THROTTLE_RATE / REGISTER_THROTTLE_RATE (DRF rate strings).
A throttled request answers 429 with Retry-After.
"""

import hashlib

from rest_framework.throttling import SimpleRateThrottle

from .models import normalize_email


class _PerIPThrottle(SimpleRateThrottle):
    """Counts requests per client address (see NUM_PROXIES for proxies)."""

    def get_cache_key(self, request, view):
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class LoginIPThrottle(_PerIPThrottle):
    scope = "login_ip"


class RegisterIPThrottle(_PerIPThrottle):
    scope = "register_ip"


class LoginAccountThrottle(SimpleRateThrottle):
    """Counts attempts per target email, whatever address they come from."""

    scope = "login_account"

    def get_cache_key(self, request, view):
        data = request.data if isinstance(request.data, dict) else {}
        email = data.get("email")
        if not isinstance(email, str) or not email.strip():
            return None
        ident = hashlib.sha256(normalize_email(email).encode()).hexdigest()
        return self.cache_format % {"scope": self.scope, "ident": ident}
