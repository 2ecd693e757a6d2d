"""Structured logs with structlog: JSON in the stack, readable console lines in `make run`.

Every log line — ours, Django's, Celery's — goes through the same structlog
renderer (stdlib logging with structlog's ProcessorFormatter), carries the
context bound for the current request or task (`request_id`, `org_id`,
`user_id`; `task_id`, `job_id`), and passes a redaction step that blanks
anything that looks like a credential. Request bodies and document content
are never logged.
"""

from __future__ import annotations

import re
from typing import Any

import structlog

# Keys whose values never reach a log line.
_SECRET_KEY = re.compile(r"pass(word)?|secret|token|authorization|api[_-]?key|cookie|signature|code_verifier", re.I)


def redact(_logger, _method, event_dict: dict[str, Any]) -> dict[str, Any]:
    for key in list(event_dict):
        if key != "event" and _SECRET_KEY.search(key):
            event_dict[key] = "[redacted]"
    return event_dict


def _shared_processors() -> list:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        redact,
    ]


def logging_config(*, fmt: str, level: str) -> dict[str, Any]:
    """A dictConfig for Django's LOGGING setting."""
    renderer = structlog.processors.JSONRenderer() if fmt == "json" else structlog.dev.ConsoleRenderer(colors=False)
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "structlog": {
                "()": structlog.stdlib.ProcessorFormatter,
                "processors": [
                    structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    structlog.processors.format_exc_info if fmt == "json" else (lambda _l, _m, e: e),
                    renderer,
                ],
                "foreign_pre_chain": _shared_processors(),
            }
        },
        "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "structlog"}},
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            "django.db.backends": {"level": "WARNING"},
            # our access log replaces these
            "django.server": {"level": "WARNING"},
            "daphne.access": {"level": "WARNING"},
            "celery.app.trace": {"level": "WARNING"},
        },
    }


def configure_structlog() -> None:
    structlog.configure(
        processors=[*_shared_processors(), structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )


def get_logger(name: str):
    return structlog.get_logger(name)
