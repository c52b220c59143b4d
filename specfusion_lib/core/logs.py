"""Opt-in logging setup for scripts, the command line and the notebooks.

The library logs through :mod:`logging` (one logger per module, ``logging.getLogger(__name__)``,
all below the ``specfusion_lib`` logger) and never configures logging when it is imported,
unless the ``SPECFUSION_LOG_LEVEL`` environment variable asks for it (see
:mod:`specfusion_lib`). An application that wants the library's log records calls
:func:`configure_logging` once::

    from specfusion_lib.core.logs import configure_logging

    configure_logging("INFO")  # or: SPECFUSION_LOG_LEVEL=DEBUG python script.py

Only the standard library is imported here, so the command-line parser can use this module
without loading torch or pymatgen.
"""

from __future__ import annotations

import logging
import os
import sys
import warnings
from typing import Any

__all__ = ["ENV_VAR", "LOG_FORMAT", "PACKAGE_LOGGER", "configure_logging", "parse_level"]

#: Environment variable holding the log level (a name such as ``INFO`` or a number).
ENV_VAR = "SPECFUSION_LOG_LEVEL"

#: Format of the records written by :func:`configure_logging`.
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

#: Name of the logger every module of the package logs below.
PACKAGE_LOGGER = "specfusion_lib"

# Marks the handler this module installs, so a second call finds it instead of adding one.
_HANDLER_ATTR = "_specfusion_handler"


class _CurrentStderrHandler(logging.StreamHandler):
    """A stream handler that always writes to the *current* ``sys.stderr``.

    Jupyter kernels and test runners replace ``sys.stderr``; binding the stream at emit time
    keeps the records visible (in the notebook cell that runs) instead of writing to a stream
    that was swapped out or closed.
    """

    @property
    def stream(self) -> Any:  # type: ignore[override]
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass  # always sys.stderr


def parse_level(level: str | int) -> int:
    """A logging level from a name (any case) or a number.

    Args:
        level: ``"DEBUG"``, ``"info"``, ``"20"``, ``logging.WARNING``, ...

    Returns:
        The numeric level.

    Raises:
        ValueError: An unknown level name or a negative number.
    """
    if isinstance(level, bool):
        raise ValueError(f"invalid log level {level!r}")
    if isinstance(level, int):
        value = level
    else:
        text = str(level).strip()
        if text.lstrip("-").isdigit():
            value = int(text)
        else:
            named = logging.getLevelName(text.upper())
            if not isinstance(named, int):
                raise ValueError(f"invalid log level {level!r} (use DEBUG, INFO, WARNING, "
                                 "ERROR or CRITICAL)")
            value = named
    if value < 0:
        raise ValueError(f"invalid log level {level!r}")
    return value


def configure_logging(level: str | int = "INFO", *, env: bool = True) -> None:
    """Send the package's log records to standard error with a concise format.

    Installs one handler on the ``specfusion_lib`` logger (format :data:`LOG_FORMAT`) and sets
    that logger's level. Idempotent: a second call only changes the level, it never adds a
    second handler. Records still propagate to the root logger, so an application that
    configured the root logger as well sees them twice; such an application does not need
    this function.

    Args:
        level: Level name (``"DEBUG"``, ``"INFO"``, ``"WARNING"``, ...) or number.
        env: When ``True`` and the environment variable ``SPECFUSION_LOG_LEVEL`` is set, its
            value replaces ``level`` (so ``run_all.sh`` or a user's shell can choose the level
            of code that calls ``configure_logging()`` with the default). An invalid value in
            the variable is reported with a warning and ``level`` is used. Pass ``False`` when
            the level was given explicitly (the command line's ``--log-level``).

    Raises:
        ValueError: ``level`` is not a valid level.
    """
    chosen = parse_level(level)
    from_env = os.environ.get(ENV_VAR, "").strip() if env else ""
    if from_env:
        try:
            chosen = parse_level(from_env)
        except ValueError as exc:
            warnings.warn(f"{ENV_VAR}={from_env!r} ignored: {exc}", stacklevel=2)
    logger = logging.getLogger(PACKAGE_LOGGER)
    logger.setLevel(chosen)
    if any(getattr(h, _HANDLER_ATTR, False) for h in logger.handlers):
        return
    handler = _CurrentStderrHandler()
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    setattr(handler, _HANDLER_ATTR, True)
    logger.addHandler(handler)
