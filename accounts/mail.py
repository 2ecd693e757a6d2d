"""Mail Precis sends to people: password resets, address verification, invitations.

Each mail is a template pair, `accounts/mail/<name>.txt` and `.html`, whose first text
line is the subject. Mail about an organization goes out in its name (the From display
name and the signature). Sending never happens in the request: `send` hands the
rendered message to the `accounts.send_email` Celery task after the transaction
commits (retried while the mail server is down), or, in the embedded mode or while the
broker is unreachable, to a background thread. So answering the same to a password
reset for a known and an unknown address also takes the same time.
"""

from __future__ import annotations

import logging
import sys
import threading
from email.utils import formataddr, parseaddr

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.core.mail.backends.filebased import EmailBackend as FileBackend
from django.db import transaction
from django.template.loader import render_to_string

logger = logging.getLogger(__name__)


class ConsoleAndFileBackend(FileBackend):
    """The default without EMAIL_URL: each mail on stdout and in EMAIL_FILE_PATH (var/mail/)."""

    def write_message(self, message):
        super().write_message(message)
        sys.stdout.write(message.message().as_string() + "\n" + "-" * 79 + "\n")
        sys.stdout.flush()


def link(path: str, token: str) -> str:
    """`FRONTEND_URL/<path>?token=…`, or the token alone without FRONTEND_URL."""
    if not settings.FRONTEND_URL:
        return token
    from urllib.parse import quote

    return f"{settings.FRONTEND_URL.rstrip('/')}/{path}?token={quote(token, safe=':')}"


def _sender(org_name: str | None) -> str:
    name, address = parseaddr(settings.DEFAULT_FROM_EMAIL)
    if org_name:
        name = f"{' '.join(org_name.split())} via {name or 'Precis'}"
    return formataddr((name, address)) if name else address


def render(template: str, *, to: str, context: dict, org_name: str | None = None) -> dict[str, str]:
    """The message as plain data (what the task carries): subject, text, html, from, to."""
    context = {**context, "org_name": org_name, "is_url": "://" in context.get("link", "")}
    subject, _, text = render_to_string(f"accounts/mail/{template}.txt", context).strip().partition("\n")
    html = render_to_string(f"accounts/mail/{template}.html", context)
    return {
        "subject": " ".join(subject.split()),
        "text": text.strip() + "\n",
        "html": html,
        "from": _sender(org_name),
        "to": to,
    }


def deliver(message: dict[str, str]) -> None:
    """Send a rendered message now, through the configured EMAIL_BACKEND."""
    mail = EmailMultiAlternatives(message["subject"], message["text"], message["from"], [message["to"]])
    mail.attach_alternative(message["html"], "text/html")
    mail.send()


def send(template: str, *, to: str, context: dict, org_name: str | None = None) -> None:
    """Render now; send after the current transaction commits (nothing if it rolls back)."""
    message = render(template, to=to, context=context, org_name=org_name)
    transaction.on_commit(lambda: _hand_over(message))


def _hand_over(message: dict[str, str]) -> None:
    if not settings.EMBEDDED:
        from .tasks import send_email

        try:
            send_email.apply_async(args=[message], queue="default")
            return
        except Exception:  # the broker is down: send it from here rather than lose it
            logger.warning("broker unreachable; sending %r from the web process", message["subject"])
    threading.Thread(target=_deliver_logged, args=(message,), name="precis-mail", daemon=True).start()


def _deliver_logged(message: dict[str, str]) -> None:
    try:
        deliver(message)
    except Exception:
        logger.exception("could not send mail %r", message["subject"])
