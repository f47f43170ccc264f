"""Clocks: all waiting in drivers, simulators and the engine goes through one.

Both clocks run the same engine code on an asyncio loop; only the loop's notion of
time differs.

* :class:`WallClock` — a plain asyncio loop; seconds are real seconds (hardware).
* :class:`VirtualClock` — a loop whose time jumps to the next timer as soon as every
  task is waiting, so a 14-day campaign runs in seconds. ``asyncio.sleep``,
  ``asyncio.timeout`` and ``loop.call_later`` all follow virtual time.

Virtual time never advances while real work is in flight: a job submitted with
``loop.run_in_executor`` (threads) holds it, and when file descriptors other than the
loop's own are registered (a pty or socket to a wire-level emulator) the loop first
waits ``io_grace_s`` of real time for bytes before jumping.
"""

from __future__ import annotations

import asyncio
import selectors
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Coroutine
from datetime import datetime, timedelta, timezone
from typing import Any, TypeVar

T = TypeVar("T")

DEFAULT_VIRTUAL_ORIGIN = datetime(2026, 1, 5, 8, 0, 0, tzinfo=timezone.utc)
"""Fixed start of virtual time, so two runs with the same seed print the same dates."""


class Clock(ABC):
    """Source of time and of waiting. Times are seconds (float) since :meth:`run` began."""

    virtual: bool = False

    def __init__(self, origin: datetime | None = None, start: float = 0.0) -> None:
        self._origin = origin if origin is not None else self._default_origin()
        self._start = start
        self._t0: float | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    # -- running -----------------------------------------------------------------
    @abstractmethod
    def _new_loop(self) -> asyncio.AbstractEventLoop: ...

    def run(self, main: Callable[[], Coroutine[Any, Any, T]] | Coroutine[Any, Any, T]) -> T:
        """Run ``main`` to completion on a fresh loop of this clock's kind.

        Args:
            main: a coroutine, or a callable returning one.
        Returns:
            What ``main`` returned.
        """
        loop = self._new_loop()
        asyncio.set_event_loop(loop)
        try:
            self._bind(loop)
            coro = main() if callable(main) else main
            return loop.run_until_complete(coro)
        finally:
            if isinstance(loop, VirtualEventLoop):
                loop.detect_deadlock = False
            try:
                _cancel_all(loop)
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.run_until_complete(loop.shutdown_default_executor())
            finally:
                asyncio.set_event_loop(None)
                loop.close()

    def _bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._t0 = loop.time()

    def _default_origin(self) -> datetime:
        """Calendar time of t=0 when none is given."""
        return DEFAULT_VIRTUAL_ORIGIN

    def attach(self) -> None:
        """Bind to the already running loop (for code that owns its loop, e.g. tests)."""
        self._bind(asyncio.get_running_loop())

    # -- reading -----------------------------------------------------------------
    def now(self) -> float:
        """Seconds since the clock's origin: ``start`` when :meth:`run` begins (a resumed
        run continues its own timeline), then advancing."""
        if self._loop is None or self._t0 is None:
            return self._start
        return self._loop.time() - self._t0 + self._start

    def datetime_at(self, t: float) -> datetime:
        """Calendar time (UTC) of clock time ``t`` seconds."""
        return self._origin + timedelta(seconds=t)

    def datetime(self) -> datetime:
        """Calendar time (UTC) now."""
        return self.datetime_at(self.now())

    def add_idle_hook(self, hook: Callable[[bool], object]) -> bool:
        """Call ``hook(real_wait)`` whenever the loop has nothing ready to run, before it
        jumps virtual time (``real_wait`` False) or waits in real time for I/O, a thread
        or a timer (True). Hooks run synchronously and must not raise.

        Returns:
            False when the running loop was not made by a clock (:meth:`attach`): no
            hook will be called.
        """
        loop = self._loop or asyncio.get_running_loop()
        if not isinstance(loop, _IdleAwareLoop):
            return False
        loop.idle_hooks.append(hook)
        return True

    def remove_idle_hook(self, hook: Callable[[bool], object]) -> None:
        """Stop calling ``hook`` (no error if it was not added)."""
        loop = self._loop
        if isinstance(loop, _IdleAwareLoop) and hook in loop.idle_hooks:
            loop.idle_hooks.remove(hook)

    # -- waiting -----------------------------------------------------------------
    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` of this clock's time (negative is treated as 0)."""
        await asyncio.sleep(max(0.0, seconds))

    async def sleep_until(self, t: float) -> None:
        """Wait until clock time ``t`` (returns at once if it has passed)."""
        await self.sleep(t - self.now())

    async def wait_for(self, awaitable: Awaitable[T], timeout: float | None) -> T:
        """Await with a timeout in this clock's seconds.

        Raises:
            TimeoutError: when ``timeout`` elapsed first.
        """
        return await asyncio.wait_for(awaitable, timeout)


class WallClock(Clock):
    """Real time, for hardware: t is the real seconds since ``origin`` (default: the
    moment the clock is made), so calendar times of records are the real ones and a
    resumed run's clock continues from its first start."""

    virtual = False

    def _default_origin(self) -> datetime:
        return datetime.now(timezone.utc)

    def _bind(self, loop: asyncio.AbstractEventLoop) -> None:
        super()._bind(loop)
        self._start = self._since_origin()  # then monotonic, from the loop

    def now(self) -> float:
        """Real seconds since the origin (``start`` is ignored: real time decides)."""
        return self._since_origin() if self._loop is None else super().now()

    def _since_origin(self) -> float:
        return (datetime.now(timezone.utc) - self._origin).total_seconds()

    def _new_loop(self) -> asyncio.AbstractEventLoop:
        return _IdleAwareLoop(_IdleSelector())


class VirtualClock(Clock):
    """Virtual time that jumps to the next timer whenever all tasks wait.

    Args:
        origin: calendar time of t=0 (default :data:`DEFAULT_VIRTUAL_ORIGIN`).
        io_grace_s: real seconds to wait for bytes on registered descriptors
            before jumping ahead (only when such descriptors exist).
    """

    virtual = True

    def __init__(self, origin: datetime | None = None, start: float = 0.0, io_grace_s: float = 0.02) -> None:
        super().__init__(origin, start)
        self.io_grace_s = io_grace_s

    def _new_loop(self) -> asyncio.AbstractEventLoop:
        return VirtualEventLoop(io_grace_s=self.io_grace_s)


class VirtualDeadlock(RuntimeError):
    """Raised by the virtual loop when all tasks wait and nothing can wake them."""


class _IdleAwareLoop(asyncio.SelectorEventLoop):
    """A selector loop that calls :meth:`Clock.add_idle_hook` hooks before it waits."""

    def __init__(self, selector: "_IdleSelector") -> None:
        self.idle_hooks: list[Callable[[bool], object]] = []
        selector.loop = self
        super().__init__(selector)


class _IdleSelector(selectors.DefaultSelector):
    """Selector that calls the loop's idle hooks whenever the loop would wait."""

    loop: _IdleAwareLoop

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        if timeout != 0 and self.loop.idle_hooks:
            real_wait = self._waits_in_real_time(timeout)
            for hook in list(self.loop.idle_hooks):
                hook(real_wait)
        return self._wait(timeout)

    def _waits_in_real_time(self, timeout: float | None) -> bool:
        return True

    def _wait(self, timeout: float | None) -> list[tuple[selectors.SelectorKey, int]]:
        return super().select(timeout)


class _VirtualSelector(_IdleSelector):
    """Selector that turns a would-block wait into a jump of virtual time."""

    loop: "VirtualEventLoop"

    def _waits_in_real_time(self, timeout: float | None) -> bool:
        return timeout is None or self.loop.executor_jobs > 0 or len(self.get_map()) > 1

    def _wait(self, timeout: float | None) -> list[tuple[selectors.SelectorKey, int]]:
        ready = super()._wait(0)
        if ready or timeout == 0:
            return ready
        loop = self.loop
        if loop.executor_jobs > 0:
            # Real work in a thread: wait for it in real time, do not advance.
            return super()._wait(0.05 if timeout is None else min(timeout, 0.05))
        if timeout is None:
            if len(self.get_map()) <= 1 and loop.detect_deadlock:
                # Nothing scheduled, no thread working, no descriptor to wait on: every
                # task waits for something only another task could give. Say so, do not hang.
                raise VirtualDeadlock("every task is waiting and nothing is scheduled: the simulated "
                                      "workcell is deadlocked (a plate holds a place another run waits for?)")
            return super()._wait(None)
        if len(self.get_map()) > 1:  # descriptors besides the loop's self-pipe
            ready = super()._wait(min(timeout, loop.io_grace_s))
            if ready:
                return ready
        loop.advance(timeout)
        return []


class VirtualEventLoop(_IdleAwareLoop):
    """An asyncio loop whose ``time()`` is virtual (see :class:`VirtualClock`)."""

    def __init__(self, io_grace_s: float = 0.02) -> None:
        self._virtual_now = 0.0
        self.executor_jobs = 0
        self.io_grace_s = io_grace_s
        self.detect_deadlock = True
        """False while shutting down (the executor's shutdown thread is not tracked)."""
        super().__init__(_VirtualSelector())

    def time(self) -> float:
        return self._virtual_now

    def advance(self, seconds: float) -> None:
        """Move virtual time forward by ``seconds`` (>= 0)."""
        if seconds > 0:
            self._virtual_now += seconds

    def run_in_executor(self, executor: Any, func: Callable[..., T], *args: Any) -> asyncio.Future[T]:  # type: ignore[override]
        self.executor_jobs += 1
        future = super().run_in_executor(executor, func, *args)

        def _done(_: asyncio.Future[T]) -> None:
            self.executor_jobs -= 1

        future.add_done_callback(_done)
        return future


def _cancel_all(loop: asyncio.AbstractEventLoop) -> None:
    tasks = [t for t in asyncio.all_tasks(loop) if not t.done()]
    for task in tasks:
        task.cancel()
    if tasks:
        loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))


def make_clock(kind: str, origin: datetime | None = None, start: float = 0.0) -> Clock:
    """Clock by name: ``virtual`` or ``wall``; ``start`` is the clock time at :meth:`Clock.run`.

    Raises:
        ValueError: for any other name.
    """
    if kind == "virtual":
        return VirtualClock(origin, start)
    if kind == "wall":
        return WallClock(origin, start)
    raise ValueError(f"unknown clock {kind!r}: expected 'virtual' or 'wall'")
