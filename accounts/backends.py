"""Password login by email (case-insensitive: emails are stored lower-cased)."""

from django.contrib.auth.backends import ModelBackend


class EmailBackend(ModelBackend):
    """ModelBackend that also refuses users whose organization is deactivated."""

    def user_can_authenticate(self, user) -> bool:
        if not super().user_can_authenticate(user):
            return False
        org = getattr(user, "org", None)
        return user.is_superuser or (org is not None and org.is_active)
