"""Logging through structlog: JSON lines in a container, readable on a terminal.

The standard library's loggers, which the service and its libraries use, go
through the same processors as structlog's own. Fields bound with
``bind_contextvars`` (``request_id`` for a request, ``run`` and ``org`` for a
reconciliation run) appear on every line logged while they are bound.

``redact_secrets`` is a safety net, not the way secrets are kept out of logs:
the code never logs a token, secret or password. The net replaces the values
of keys that name a secret, and secret-shaped text in any value (Authorization
header values, SCIM tokens, passwords in URLs, JWTs and PEM private keys).
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TextIO

import structlog
from structlog.types import EventDict, Processor, WrappedLogger

REDACTED = "[REDACTED]"

# A key is secret when it names a credential; "token_id" and "tokens" are not.
_SECRET_KEY = re.compile(
    r"authorization|password|passwd|secret|api[_-]?key|private[_-]?key|cookie"
    r"|credential|(?:^|_)token$",
    re.IGNORECASE,
)
_SECRET_TEXT: tuple[tuple[re.Pattern[str], str], ...] = (
    (
        re.compile(
            r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----",
            re.DOTALL,
        ),
        REDACTED,
    ),
    (
        re.compile(r"\b(Bearer|SSWS|Basic)\s+[^\s\"',;]+", re.IGNORECASE),
        rf"\1 {REDACTED}",
    ),
    # SCIM tokens that this service generates start with "scimr_".
    (re.compile(r"\bscimr_[A-Za-z0-9_-]{8,}"), f"scimr_{REDACTED}"),
    (
        re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*"),
        REDACTED,
    ),
    (re.compile(r"(://[^/\s:@]+:)[^@\s/]+@"), rf"\1{REDACTED}@"),
    (
        re.compile(
            r"\b(password|secret|token|api_token|access_token|client_secret)"
            r"=[^&\s\"']+",
            re.IGNORECASE,
        ),
        rf"\1={REDACTED}",
    ),
)
# Loggers that report every request or job at INFO; kept at WARNING unless the
# service logs at DEBUG, so that one request or run is not many lines.
# Their DEBUG lines carry SQL bind values: secret hashes and sealed connector
# settings. They stay at INFO even when the service logs at DEBUG.
_BIND_VALUE_LOGGERS = ("aiosqlite",)
_CHATTY_LOGGERS = (
    "httpx",
    "httpcore",
    "apscheduler",
    "uvicorn.access",
    # Logs its dialect at every readiness probe; migrate logs each upgrade.
    "alembic.runtime.migration",
)


def _redact_text(text: str) -> str:
    for pattern, replacement in _SECRET_TEXT:
        text = pattern.sub(replacement, text)
    return text


def _redact(value: Any) -> Any:
    if isinstance(value, str):
        return _redact_text(value)
    if isinstance(value, dict):
        return {
            key: REDACTED
            if isinstance(key, str) and _SECRET_KEY.search(key)
            else _redact(item)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [_redact(item) for item in value]
    return value


def redact_secrets(
    _logger: WrappedLogger, _method: str, event_dict: EventDict
) -> EventDict:
    """Replace secret values in a log event (a structlog processor)."""
    for key, value in list(event_dict.items()):
        if key.startswith("_"):
            continue  # structlog's own bookkeeping, such as the LogRecord
        if _SECRET_KEY.search(key):
            event_dict[key] = REDACTED
        else:
            event_dict[key] = _redact(value)
    return event_dict


def _drop_color_message(
    _logger: WrappedLogger, _method: str, event_dict: EventDict
) -> EventDict:
    # uvicorn repeats each message with terminal colours in this extra field.
    event_dict.pop("color_message", None)
    return event_dict


# Fields whose text spans lines by design: tracebacks.
_MULTILINE_FIELDS = frozenset({"exception", "stack"})
_CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")


def escape_control_characters(
    _logger: WrappedLogger, _method: str, event_dict: EventDict
) -> EventDict:
    """Write control characters in text fields as escapes (a structlog processor).

    A console line is plain text, so a newline in a value, such as a request
    path with ``%0A``, would start a line that reads like another event. JSON
    lines escape them already.
    """
    for key, value in event_dict.items():
        if isinstance(value, str) and key not in _MULTILINE_FIELDS:
            event_dict[key] = _CONTROL_CHARACTERS.sub(_escape, value)
    return event_dict


def _escape(found: re.Match[str]) -> str:
    return found.group().encode("unicode_escape").decode("ascii")


def resolve_format(log_format: str, stream: TextIO) -> str:
    """Return "json" or "console"; "auto" means console on a terminal only."""
    if log_format != "auto":
        return log_format
    return "console" if stream.isatty() else "json"


def _renderer(log_format: str, stream: TextIO) -> list[Processor]:
    if log_format == "json":
        return [
            structlog.processors.EventRenamer("message"),
            structlog.processors.JSONRenderer(),
        ]
    return [
        escape_control_characters,
        structlog.dev.ConsoleRenderer(colors=stream.isatty()),
    ]


def configure_logging(
    level: str, log_format: str = "auto", stream: TextIO | None = None
) -> None:
    """Send all logging, standard library and structlog, to ``stream`` (stderr).

    Calling it again replaces the previous configuration.
    """
    stream = stream or sys.stderr
    chosen = resolve_format(log_format, stream)
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.ExtraAdder(),
        _drop_color_message,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        redact_secrets,
    ]
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            structlog.stdlib.PositionalArgumentsFormatter(),
            *shared,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            *_renderer(chosen, stream),
        ],
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # uvicorn's loggers log through the root handler, with the same format.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        named = logging.getLogger(name)
        named.handlers.clear()
        named.propagate = True
    quiet = logging.DEBUG if level.upper() == "DEBUG" else logging.WARNING
    for name in _CHATTY_LOGGERS:
        logging.getLogger(name).setLevel(quiet)
    for name in _BIND_VALUE_LOGGERS:
        logging.getLogger(name).setLevel(logging.INFO)


@contextmanager
def run_log_context(org: str, run_id: str) -> Iterator[None]:
    """Add ``org`` (slug) and ``run`` (id) to every line logged inside the block."""
    with structlog.contextvars.bound_contextvars(org=org, run=run_id):
        yield
