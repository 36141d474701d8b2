"""Structured logging: JSON for services, readable lines for people. Configured once at the entry point."""

from __future__ import annotations

import logging
import sys

import structlog


class _CurrentStderr:
    """Whatever `sys.stderr` is when a line is written, not when logging was configured: a CLI run
    in-process (tests capturing output, an embedding program) may swap and close the stream it had."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def configure_logging(fmt: str = "console", level: str = "info") -> None:
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer(ensure_ascii=False)
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(getattr(logging, level.upper(), logging.INFO)),
        logger_factory=structlog.PrintLoggerFactory(file=_CurrentStderr()),  # type: ignore[arg-type]
        cache_logger_on_first_use=True,
    )


class _ToStructlog(logging.Handler):
    """A standard-library log record (libraries such as Faust, mode and aiokafka log that way) written as one
    structlog event, so that a process's log has one format."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
        except Exception:  # a library's malformed format string must not stop the process
            message = str(record.msg)
        structlog.get_logger(record.name).log(record.levelno, " ".join(message.split()), logger=record.name)


def forward_standard_logging(level: str = "info") -> None:
    """Send the standard library's log records at `level` and above through structlog (configure_logging)."""
    root = logging.getLogger()
    root.handlers[:] = [_ToStructlog()]
    root.setLevel(getattr(logging, level.upper(), logging.INFO))
