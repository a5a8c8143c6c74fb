"""Every fault test is bounded in time: ``@bounded(seconds)`` (checked at collection).

The bound cancels the test's coroutine (its ``finally`` blocks run: servers stopped, the database
started again) and fails it with the bound it exceeded, instead of letting a stuck fault hang the
suite. Blocking calls inside a test go through ``asyncio.to_thread`` or bounded waits so that the
cancellation can reach them.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest


def bounded(seconds: float) -> Callable[[Callable[..., Awaitable[Any]]], Callable[..., Any]]:
    """Fail the decorated async test if it runs longer than ``seconds``."""

    def wrap(test: Callable[..., Awaitable[Any]]) -> Callable[..., Any]:
        @functools.wraps(test)
        async def run(*args: Any, **kwargs: Any) -> Any:
            started = time.monotonic()
            try:
                async with asyncio.timeout(seconds) as scope:
                    return await test(*args, **kwargs)
            except TimeoutError:
                if scope.expired():
                    pytest.fail(
                        f"{test.__name__} exceeded its bound of {seconds:.0f} s "
                        f"(stopped after {time.monotonic() - started:.0f} s)"
                    )
                raise

        run.fault_bound = seconds  # type: ignore[attr-defined]
        return run

    return wrap
