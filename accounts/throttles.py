"""Brute-force protection: login per IP and per account, registration per IP, mail per
IP and per address.

Rates come from LOGIN_THROTTLE_RATE / REGISTER_THROTTLE_RATE / MAIL_IP_THROTTLE_RATE /
MAIL_ACCOUNT_THROTTLE_RATE (DRF rate strings).
A throttled request answers 429 with Retry-After.
"""

import hashlib

from rest_framework.throttling import BaseThrottle, SimpleRateThrottle

from .models import normalize_email


class _PerIPThrottle(SimpleRateThrottle):
    """Counts requests per client address (see NUM_PROXIES for proxies)."""

    def get_cache_key(self, request, view):
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class LoginIPThrottle(_PerIPThrottle):
    scope = "login_ip"


class RegisterIPThrottle(_PerIPThrottle):
    scope = "register_ip"


class MailIPThrottle(_PerIPThrottle):
    """Requests that make Precis send mail (password reset), per client address."""

    scope = "mail_ip"


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


class MailAccountThrottle(LoginAccountThrottle):
    """Mail to one address (password reset links), whoever asks."""

    scope = "mail_account"


class MailUserThrottle(SimpleRateThrottle):
    """Mail one signed-in user asks for themselves (verification resend)."""

    scope = "mail_account"

    def get_cache_key(self, request, view):
        if not request.user or not request.user.is_authenticated:
            return None
        return self.cache_format % {"scope": "mail_user", "ident": str(request.user.pk)}


class PasswordChangeThrottle(SimpleRateThrottle):
    """PATCH /auth/me/ with `current_password`: as strict as login, per user (a stolen
    access token must not allow guessing the password)."""

    scope = "login_account"

    def get_cache_key(self, request, view):
        data = request.data if isinstance(request.data, dict) else {}
        if request.method != "PATCH" or "current_password" not in data or not request.user.is_authenticated:
            return None
        return self.cache_format % {"scope": "password_change", "ident": str(request.user.pk)}


class _AdminLoginThrottle(SimpleRateThrottle):
    """The same limits for the Django admin's login form (it takes the same passwords)."""

    scope = "login_ip"

    def __init__(self, ident: str, scope: str):
        self.scope = scope
        super().__init__()
        self._ident = ident

    def get_cache_key(self, request, view):
        return self.cache_format % {"scope": f"admin_{self.scope}", "ident": self._ident}


def admin_login_throttled(login_view):
    """Wrap AdminSite.login: POSTs count per IP and per account; over the limit → 429."""
    from django.http import HttpResponse

    def view(request, *args, **kwargs):
        if request.method == "POST":
            ip = BaseThrottle().get_ident(request)  # the API throttles' client identity (NUM_PROXIES)
            email = normalize_email(request.POST.get("username", ""))
            throttles = [_AdminLoginThrottle(ip, "login_ip")]
            if email:
                throttles.append(_AdminLoginThrottle(hashlib.sha256(email.encode()).hexdigest(), "login_account"))
            for throttle in throttles:
                if not throttle.allow_request(request, None):
                    wait = int(throttle.wait() or 60)
                    response = HttpResponse("Too many login attempts; try again later.", status=429)
                    response["Retry-After"] = str(max(wait, 1))
                    return response
        return login_view(request, *args, **kwargs)

    return view
