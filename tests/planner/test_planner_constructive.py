"""Constructive planner: known answers, max-lag repair, alternatives, capacities, spans."""

from orchestrator.planner import Lag, Operation, Problem, Resource, Span, check, plan, validate_problem
from orchestrator.planner.components import prepare
from orchestrator.planner.constructive import construct
from orchestrator.planner.feasibility import analyze


def _first_pass(p):
    """Only the first construction (no improvement), to test the repair itself."""
    validate_problem(p)
    return construct(prepare(p, analyze(p)), time_limit=0, iterations=0)


def test_small_job_shop_known_optimum():
    # 3x3 instance (ft03-like); optimum 11 by enumeration of the single bottleneck order.
    jobs = [[("m0", 3), ("m1", 2), ("m2", 2)], [("m0", 2), ("m2", 1), ("m1", 4)], [("m1", 4), ("m2", 3)]]
    ops, lags = [], []
    for j, job in enumerate(jobs):
        for k, (m, d) in enumerate(job):
            ops.append(Operation(f"j{j}.{k}", d, (m,), job=f"j{j}"))
            if k:
                lags.append(Lag(f"j{j}.{k - 1}", f"j{j}.{k}"))
    p = Problem(ops, [Resource(f"m{i}") for i in range(3)], lags)
    s = plan(p, time_limit=0.5, iterations=200)
    assert s.status in ("optimal", "feasible") and check(p, s) == []
    assert s.makespan == 11


def test_max_lag_repair_shifts_the_predecessor():
    # b must start <= 5 s after a ends; m2 is busy [10, 30) (frozen), so a naive
    # earliest-start schedule (a at 0, b at 30) breaks the max lag. Repair moves a to 15.
    p = Problem(
        [Operation("a", 10, ("m1",)), Operation("b", 10, ("m2",)),
         Operation("x", 20, ("m2",), frozen_start=10)],
        [Resource("m1"), Resource("m2")],
        [Lag("a", "b", 0, 5)],
    )
    s = _first_pass(p)
    assert check(p, s) == [] and s.status == "feasible"
    assert s.starts["a"] == 15 and s.starts["b"] == 30


def test_max_lag_repair_through_a_chain_and_unfrozen_blocker():
    # Chain a -> b -> c with zero waiting; c's machine is taken by y (earlier deadline) at [0, 40).
    p = Problem(
        [Operation("a", 5, ("m1",)), Operation("b", 5, ("m2",)), Operation("c", 5, ("m3",)),
         Operation("y", 40, ("m3",), deadline=40)],
        [Resource("m1"), Resource("m2"), Resource("m3")],
        [Lag("a", "b", 0, 0), Lag("b", "c", 0, 0)],
    )
    s = _first_pass(p)
    assert check(p, s) == []
    assert (s.starts["a"], s.starts["b"], s.starts["c"]) == (30, 35, 40)


def test_alternatives_choose_earliest_completion():
    ops = [Operation(f"o{i}", 10, (("lh1", "lh2"),)) for i in range(4)]
    p = Problem(ops, [Resource("lh1"), Resource("lh2")])
    s = plan(p, iterations=0)
    assert s.status == "optimal" and s.makespan == 20 and check(p, s) == []
    used = [s.assignment[o.id][0] for o in ops]
    assert used.count("lh1") == 2 and used.count("lh2") == 2


def test_multi_resource_operation_with_alternative():
    p = Problem(
        [Operation("t", 10, ("arm", ("lh1", "lh2"))), Operation("u", 10, ("lh1",)),
         Operation("v", 10, ("arm",), release=0)],
        [Resource("arm"), Resource("lh1"), Resource("lh2")],
    )
    s = plan(p, iterations=5)
    assert check(p, s) == [] and s.makespan == 20 and s.status == "optimal"


def test_cumulative_capacity():
    p = Problem([Operation(f"o{i}", 10, ("slots",)) for i in range(5)], [Resource("slots", 2)])
    s = plan(p, iterations=0)
    assert check(p, s) == [] and s.makespan == 30 and s.status in ("optimal", "feasible")


def test_span_limits_plates_out_at_once():
    # Each plate: fetch -> process -> store, held "out" from fetch to store; only 2 out at once.
    ops, lags, spans = [], [], []
    for k in range(4):
        for name, d, r in (("fetch", 2, "inc"), ("proc", 10, ("a", "b", "c", "d")), ("store", 2, "inc")):
            ops.append(Operation(f"p{k}.{name}", d, (r,)))
        lags += [Lag(f"p{k}.fetch", f"p{k}.proc", 0, 1), Lag(f"p{k}.proc", f"p{k}.store", 0, 1)]
        spans.append(Span("out", f"p{k}.fetch", f"p{k}.store"))
    p = Problem(ops, [Resource(r) for r in ("inc", "a", "b", "c", "d")] + [Resource("out", 2)], lags, spans)
    s = _first_pass(p)
    assert check(p, s) == []
    out = sorted((s.starts[f"p{k}.fetch"], s.starts[f"p{k}.store"] + 2) for k in range(4))
    for t in {a for a, _ in out}:
        assert sum(a <= t < b for a, b in out) <= 2


def test_frozen_operations_are_kept():
    p = Problem([Operation("f", 10, (("m", "n"),), frozen_start=3, frozen_resources=("n",)),
                 Operation("g", 10, ("n",))], [Resource("m"), Resource("n")])
    s = plan(p, iterations=0)
    assert s.starts["f"] == 3 and s.assignment["f"] == ("n",) and check(p, s) == []
    assert s.starts["g"] == 13


def test_deterministic_for_a_seed():
    from planner_campaign import make_campaign

    p = make_campaign(4, 3, stagger=60, max_wait=60)
    a = plan(p, seed=7, iterations=10, time_limit=30)
    b = plan(p, seed=7, iterations=10, time_limit=30)
    assert a.starts == b.starts and a.assignment == b.assignment


def test_unsolvable_but_unproved_is_unknown_not_infeasible():
    # b must run inside [5, 15] and a 10 s op a inside [0, 20] on the same machine: no room,
    # but the energy (20 s of work in 20 s) fits, so nothing is proved -> "unknown" with notes.
    p = Problem([Operation("a", 10, ("m",), deadline=20), Operation("b", 10, ("m",), release=5, deadline=15)],
                [Resource("m")])
    s = plan(p, time_limit=0.2)
    assert s.status == "unknown"
    assert any("deadline" in n for n in s.notes)


def test_pooled_alternatives_overload_is_proved():
    p = Problem([Operation(f"o{i}", 10, (("a", "b"),), deadline=10) for i in range(3)],
                [Resource("a"), Resource("b")])
    s = plan(p)
    assert s.status == "infeasible" and any("a|b (capacity 2) is overloaded" in n for n in s.notes)


def test_empty_and_resource_free_problems():
    assert plan(Problem([], [])).status == "optimal"
    p = Problem([Operation("a", 3), Operation("b", 4)], [], [Lag("a", "b", 2)])
    s = plan(p)
    assert s.starts == {"a": 0, "b": 5} and s.makespan == 9 and s.status == "optimal"
