"""Sending mail from a worker, retried while the mail server is unreachable."""

import logging
import smtplib

from celery import shared_task

from .mail import deliver

logger = logging.getLogger(__name__)


@shared_task(
    name="accounts.send_email",
    ignore_result=True,
    autoretry_for=(smtplib.SMTPException, OSError),
    retry_backoff=5,
    retry_backoff_max=600,
    max_retries=12,
)
def send_email(message: dict[str, str]) -> None:
    """`message` is accounts.mail.render's output; an SMTP or network error retries (about 1 h),
    except the server refusing the recipient, which no retry changes."""
    try:
        deliver(message)
    except smtplib.SMTPRecipientsRefused as exc:
        logger.warning("mail %r refused for its recipient: %s", message["subject"], exc.recipients)
