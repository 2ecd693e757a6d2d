"""Template write logic: validation at save time, ownership rules."""

from __future__ import annotations

import hashlib

from django.db import IntegrityError, transaction
from rest_framework.exceptions import PermissionDenied

from accounts.models import Role, User
from config.errors import ValidationFailed
from organizations import audit
from organizations.models import Organization

from .models import Template
from .placeholders import PlaceholderError, placeholders_in

#: What a template's audit entry shows the change of (the body by its length: prompts are long).
AUDITED_FIELDS = ("name", "description", "body", "format", "default_max_words", "favour")


def _audited(template: Template) -> dict:
    values = {field: getattr(template, field) for field in AUDITED_FIELDS}
    body = values["body"]
    values["body"] = f"{len(body)} characters, sha256 {hashlib.sha256(body.encode()).hexdigest()[:12]}"
    return values


def _validate_body(body: str) -> None:
    if not body.strip():
        raise ValidationFailed("The template body must not be blank.", "blank", "body")
    try:
        placeholders_in(body)
    except PlaceholderError as exc:
        raise ValidationFailed(str(exc), "invalid_placeholder", "body") from None


def _save(template: Template) -> Template:
    try:
        with transaction.atomic():
            template.save()
    except IntegrityError:
        raise ValidationFailed("A template with this name already exists.", "name_taken", "name") from None
    return template


def template_create(
    *,
    org: Organization,
    created_by: User,
    name: str,
    body: str,
    description: str = "",
    format: str = "prose",
    default_max_words: int = 150,
    favour: list[str] | None = None,
) -> Template:
    _validate_body(body)
    template = _save(
        Template(
            org=org,
            created_by=created_by,
            name=name.strip(),
            body=body,
            description=description,
            format=format,
            default_max_words=default_max_words,
            favour=favour or [],
        )
    )
    audit.record("template.created", org=org, target=template)
    return template


def template_check_writable(*, template: Template, user: User) -> None:
    """System templates are read-only; org templates are changed by their creator or an admin."""
    if template.is_system:
        raise PermissionDenied("System templates are read-only; copy one into a new template to change it.")
    if user.role != Role.ADMIN and template.created_by_id != user.id:
        raise PermissionDenied("Only the template's creator or an organization admin may change it.")


def template_update(
    *,
    template: Template,
    user: User,
    name: str | None = None,
    body: str | None = None,
    description: str | None = None,
    format: str | None = None,
    default_max_words: int | None = None,
    favour: list[str] | None = None,
) -> Template:
    template_check_writable(template=template, user=user)
    before = _audited(template)
    if format is not None:
        template.format = format
    if default_max_words is not None:
        template.default_max_words = default_max_words
    if favour is not None:
        template.favour = favour
    if body is not None:
        _validate_body(body)
        template.body = body
    if name is not None:
        template.name = name.strip()
    if description is not None:
        template.description = description
    template = _save(template)
    changes = audit.diff(before, _audited(template))
    if changes:
        audit.record("template.updated", org=template.org_id, target=template, changes=changes)
    return template


def template_delete(*, template: Template, user: User) -> None:
    template_check_writable(template=template, user=user)
    audit.record("template.deleted", org=template.org_id, target=template)
    template.delete()
