"""A real SMTP server on loopback (aiosmtpd) that keeps what it receives.

config/settings/test.py points EMAIL_URL at a free loopback port; the session fixture
`mailbox` listens there, so mail sent by the test process or by a Celery worker it
started arrives here over SMTP. Tests wait for a message with `mailbox.wait_for(to=…)`.
"""

from __future__ import annotations

import email
import email.policy
import logging
import threading
import time
from email.message import EmailMessage
from urllib.parse import urlsplit

import pytest
from aiosmtpd.controller import Controller
from django.conf import settings

logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd logs every SMTP line


class Mailbox:
    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self._arrived = threading.Condition()

    async def handle_DATA(self, server, session, envelope):  # aiosmtpd handler hook
        message = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        with self._arrived:
            self.messages.append(message)
            self._arrived.notify_all()
        return "250 OK"

    def to(self, address: str) -> list[EmailMessage]:
        with self._arrived:
            return [m for m in self.messages if address.lower() in m["To"].lower()]

    def wait_for(self, *, to: str, count: int = 1, timeout: float = 30.0) -> EmailMessage:
        """The `count`-th message to `to` (waits for it); its newest."""
        deadline = time.monotonic() + timeout
        with self._arrived:
            while len(self.to(to)) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no mail #{count} to {to} within {timeout}s (got {len(self.to(to))})")
                self._arrived.wait(left)
            return self.to(to)[-1]


def text_of(message: EmailMessage) -> str:
    return message.get_body(preferencelist=("plain",)).get_content()


def html_of(message: EmailMessage) -> str:
    return message.get_body(preferencelist=("html",)).get_content()


@pytest.fixture(scope="session")
def mailbox():
    url = urlsplit(settings.EMAIL_URL_FOR_TESTS)
    box = Mailbox()
    controller = Controller(box, hostname=url.hostname, port=url.port)
    controller.start()
    yield box
    controller.stop()
