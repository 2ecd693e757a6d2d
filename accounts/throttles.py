"""Brute-force protection: login per IP and per account, registration per IP.

Rates come from LOGIN_THROTTLE_RATE / REGISTER_THROTTLE_RATE (DRF rate strings).
A throttled request answers 429 with Retry-After.
"""

import hashlib

from rest_framework.throttling import SimpleRateThrottle

from .models import normalize_email


class LoginIPThrottle(SimpleRateThrottle):
    scope = "login_ip"

    def get_cache_key(self, request, view):
        return self.cache_format % {
            "scope": self.scope,
            "ident": self.get_ident(request),
        }


class LoginAccountThrottle(SimpleRateThrottle):
    """Counts attempts per target email, whatever address they come from."""

    scope = "login_account"

    def get_cache_key(self, request, view):
        data = request.data if isinstance(request.data, dict) else {}
        email = data.get("email")
        if not isinstance(email, str) or not email.strip():
            return None
        return self.cache_format % {
            "scope": self.scope,
            "ident": hashlib.sha256(normalize_email(email).encode()).hexdigest(),
        }


class RegisterIPThrottle(SimpleRateThrottle):
    scope = "register_ip"

    def get_cache_key(self, request, view):
        return self.cache_format % {
            "scope": self.scope,
            "ident": self.get_ident(request),
        }
