"""Structured logs on stderr: readable in a terminal, JSON when ``TRAITSYNC_LOG_FORMAT=json``."""

from __future__ import annotations

import logging
import os
import sys

import structlog


def configure_logging(level: str | None = None) -> None:
    level_name = (level or os.environ.get("TRAITSYNC_LOG_LEVEL", "INFO")).upper()
    numeric = getattr(logging, level_name, logging.INFO)
    renderer: structlog.types.Processor
    if os.environ.get("TRAITSYNC_LOG_FORMAT", "console") == "json":
        renderer = structlog.processors.JSONRenderer()
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    structlog.configure(
        processors=[structlog.processors.add_log_level, structlog.processors.TimeStamper(fmt="iso"),
                    structlog.processors.format_exc_info, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
    logging.basicConfig(level=numeric, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    # Libraries' routine INFO lines (each Alembic migration step, each httpx request) say nothing
    # a user acts on; they show with --log-level debug.
    quiet = numeric if numeric <= logging.DEBUG else max(numeric, logging.WARNING)
    for name in _CHATTY:
        logging.getLogger(name).setLevel(quiet)


_CHATTY = ("alembic", "httpx", "httpcore")
