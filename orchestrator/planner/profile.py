"""Resource usage profiles: a step function of units in use over time (SECONDS).

Breakpoints are kept in sorted lists and found by bisection, so an insertion or a query costs
O(log n) plus the number of breakpoints inside the window it touches.
"""

from __future__ import annotations

from bisect import bisect_right

NEG_INF = float("-inf")


class Profile:
    """Usage of one resource over time; intervals are half-open ``[start, end)``.

    Args:
        capacity: Units available at any instant (>= 1).
    """

    __slots__ = ("cap", "load", "t", "u")

    def __init__(self, capacity: int) -> None:
        self.cap = capacity
        self.t: list[float] = [NEG_INF]  # breakpoints
        self.u: list[int] = [0]  # usage on [t[i], t[i+1])
        self.load = 0.0  # total unit-seconds booked

    def _breakpoint(self, x: float) -> int:
        t = self.t
        i = bisect_right(t, x) - 1
        if t[i] != x:
            i += 1
            t.insert(i, x)
            self.u.insert(i, self.u[i - 1])
        return i

    def _merge(self, i: int) -> None:
        if 0 < i < len(self.t) and self.u[i] == self.u[i - 1]:
            del self.t[i]
            del self.u[i]

    def add(self, start: float, end: float, units: int = 1) -> None:
        """Book ``units`` over ``[start, end)`` (negative ``units`` releases). Never fails."""
        if end <= start:
            return
        i = self._breakpoint(start)
        j = self._breakpoint(end)
        u = self.u
        for x in range(i, j):
            u[x] += units
        self.load += units * (end - start)
        self._merge(j)
        self._merge(i)

    def remove(self, start: float, end: float, units: int = 1) -> None:
        """Release a booking made with `add`."""
        self.add(start, end, -units)

    def earliest(self, start: float, duration: float) -> float:
        """Earliest ``x >= start`` with a free unit throughout ``[x, x + duration)``."""
        if duration <= 0:
            return start
        t, u, cap = self.t, self.u, self.cap
        n = len(t)
        i = bisect_right(t, start) - 1
        x = start
        while True:
            while u[i] >= cap:  # the last segment is always empty, so this stops
                i += 1
                x = t[i]
            end = x + duration
            j = i + 1
            while j < n and t[j] < end and u[j] < cap:
                j += 1
            if j >= n or t[j] >= end:
                return x
            i = j

    def usage_at(self, x: float) -> int:
        """Units in use at instant ``x``."""
        return self.u[bisect_right(self.t, x) - 1]
