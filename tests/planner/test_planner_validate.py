"""The independent validator catches each kind of violation on deliberately broken schedules."""

import dataclasses

import pytest

from orchestrator.planner import Lag, Operation, Problem, Resource, Schedule, Span, check

PROBLEM = Problem(
    [
        Operation("a", 10, ("m",), release=0, deadline=20),
        Operation("b", 10, ("m",)),
        Operation("c", 5, (("lh1", "lh2"),)),
        Operation("f", 5, ("lh2",), frozen_start=40),
    ],
    [Resource("m"), Resource("lh1"), Resource("lh2"), Resource("out", 1)],
    [Lag("a", "b", 0, 5), Lag("b", "c", 0, None, "start_start")],
    [Span("out", "a", "b")],
    horizon=100,
)
GOOD = Schedule({"a": 0, "b": 10, "c": 10, "f": 40},
                {"a": ("m",), "b": ("m",), "c": ("lh1",), "f": ("lh2",)}, 45.0, "feasible")


def _broken(**changes):
    starts = {**GOOD.starts, **changes.pop("starts", {})}
    assign = {**GOOD.assignment, **changes.pop("assignment", {})}
    return dataclasses.replace(GOOD, starts=starts, assignment=assign, **changes)


def test_good_schedule_has_no_violation():
    assert check(PROBLEM, GOOD) == []


@pytest.mark.parametrize(
    ("schedule", "kind"),
    [
        (_broken(starts={"a": float("nan")}), "missing"),
        (_broken(starts={"a": -1, "b": 9}), "release"),
        (_broken(starts={"a": 11, "b": 21, "c": 21}), "deadline"),
        (_broken(starts={"f": 96}, makespan=101), "horizon"),
        (_broken(starts={"b": 12, "c": 11}), "lag_min"),  # c starts before b (start_start min 0)
        (_broken(starts={"b": 16, "c": 16}), "lag_max"),  # waits 6 s > max 5 s
        (_broken(starts={"c": 38}, assignment={"c": ("lh2",)}), "capacity"),  # overlaps frozen f on lh2
        (_broken(assignment={"c": ("m",)}), "assignment"),
        (_broken(assignment={"c": ()}), "assignment"),
        (_broken(starts={"f": 41}, makespan=46), "frozen"),
        (_broken(assignment={"f": ("lh1",)}), "frozen"),
        (_broken(makespan=44), "makespan"),
    ],
)
def test_each_violation_kind_is_caught(schedule, kind):
    kinds = {v.kind for v in check(PROBLEM, schedule)}
    assert kind in kinds, kinds


def test_capacity_from_spans_and_cumulative():
    # Two plates out at once on an "out" resource of capacity 1 (span-held capacity).
    p = Problem(
        [Operation(f"{x}{k}", 10, (f"r{k}",)) for x in "pq" for k in (1, 2)],
        [Resource("r1", 2), Resource("r2", 2), Resource("out", 1)],
        [Lag("p1", "p2"), Lag("q1", "q2")],
        [Span("out", "p1", "p2"), Span("out", "q1", "q2")],
    )
    s = Schedule({"p1": 0, "p2": 10, "q1": 5, "q2": 15},
                 {o.id: o.choices[0] for o in p.operations}, 25.0, "feasible")
    v = [x for x in check(p, s) if x.kind == "capacity"]
    assert v and v[0].resource == "out" and (v[0].start, v[0].end) == (5, 20)
    s2 = dataclasses.replace(s, starts={"p1": 0, "p2": 10, "q1": 20, "q2": 30}, makespan=40.0)
    assert check(p, s2) == []  # back-to-back holdings [0,20) and [20,40) do not overlap


def test_span_order_violation():
    p = Problem([Operation("a", 1), Operation("b", 1)], [Resource("out", 3)], spans=[Span("out", "a", "b")])
    s = Schedule({"a": 5, "b": 0}, {"a": (), "b": ()}, 6.0, "feasible")
    assert "span" in {v.kind for v in check(p, s)}
