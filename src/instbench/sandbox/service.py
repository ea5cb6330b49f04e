"""The life cycle the sandbox's parts share: ``start()``, ``stop()``, and ``with``."""

from __future__ import annotations

from types import TracebackType
from typing import Self


class Service:
    """A part of the sandbox that runs between ``start()`` and ``stop()``.

    ``with part:`` starts it and stops it however the block ends, so a failing test or an
    interrupted run never leaves a server thread or a simulated instance's script behind.
    Subclasses implement ``start`` (returning self) and ``stop`` (safe to call twice).
    """

    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
