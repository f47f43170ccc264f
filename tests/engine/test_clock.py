import asyncio
import time

import pytest

from drivers.clock import VirtualClock, WallClock, make_clock


def test_virtual_time_jumps_to_next_timer():
    clock = VirtualClock()
    seen = []

    async def main():
        async def worker(name, every, n):
            for _ in range(n):
                await clock.sleep(every)
                seen.append((clock.now(), name))

        await asyncio.gather(worker("a", 3600, 3), worker("b", 5400, 2))
        return clock.now()

    started = time.perf_counter()
    end = clock.run(main)
    assert end == 10800
    assert [t for t, _ in seen] == [3600, 5400, 7200, 10800, 10800]
    assert time.perf_counter() - started < 5  # three hours of virtual time, not real time


def test_virtual_timeout_fires_in_virtual_time():
    clock = VirtualClock()

    async def main():
        with pytest.raises(TimeoutError):
            await clock.wait_for(asyncio.Event().wait(), 600)
        return clock.now()

    assert clock.run(main) == 600


def test_virtual_time_holds_while_thread_works():
    clock = VirtualClock()

    async def main():
        loop = asyncio.get_running_loop()
        sleeper = asyncio.ensure_future(clock.sleep(10))
        await loop.run_in_executor(None, time.sleep, 0.05)
        held = clock.now()
        await sleeper
        return held, clock.now()

    held, end = clock.run(main)
    assert held == 0.0
    assert end == 10.0


def test_calendar_time_is_fixed_for_virtual_clock():
    a, b = VirtualClock(), VirtualClock()

    async def main(c):
        await c.sleep(86400)
        return c.datetime()

    assert a.run(main(a)) == b.run(main(b))


def test_make_clock_rejects_unknown():
    assert isinstance(make_clock("wall"), WallClock)
    with pytest.raises(ValueError, match="virtual"):
        make_clock("fast")


def test_virtual_deadlock_is_reported_not_hung():
    from drivers.clock import VirtualDeadlock

    clock = VirtualClock()

    async def main():
        await asyncio.Event().wait()  # nobody will ever set it

    with pytest.raises(VirtualDeadlock, match="deadlocked"):
        clock.run(main)


def test_a_wall_clock_counts_real_seconds_since_its_origin():
    """Records of a hardware run carry real calendar times, and a resumed run's clock
    continues from its first start (no real waiting: only the origin is moved)."""
    from datetime import datetime, timedelta, timezone

    before = datetime.now(timezone.utc)
    fresh = WallClock()
    assert before <= fresh.datetime_at(0.0) <= datetime.now(timezone.utc)

    resumed = WallClock(datetime.now(timezone.utc) - timedelta(hours=5))
    assert 5 * 3600 <= resumed.now() < 5 * 3600 + 60

    async def main():
        return resumed.now()

    assert 5 * 3600 <= resumed.run(main()) < 5 * 3600 + 60
