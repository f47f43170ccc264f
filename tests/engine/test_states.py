import pytest

from orchestrator.engine.states import MachineError, RunState, StepState


def test_run_lifecycle_reports_each_transition_before_it_happens():
    log = []
    run = RunState("R1", lambda m, s, d, r: log.append((s, d, r, m.state)))
    run.validate()
    run.plan()
    run.start(reason="go")
    run.pause()
    run.resume()
    run.complete()
    assert [(s, d) for s, d, _, _ in log] == [
        ("created", "validated"), ("validated", "planned"), ("planned", "running"),
        ("running", "paused"), ("paused", "running"), ("running", "completed")]
    # the listener runs before the state changes: it still sees the source state
    assert all(state == s for s, _, _, state in log)
    assert log[2][2] == "go"
    assert run.final


def test_illegal_run_transition_is_refused():
    run = RunState("R2")
    with pytest.raises(MachineError):
        run.complete()
    assert run.state == "created"


def test_step_retry_path_and_detach():
    seen = []
    step = StepState("day[0].feed", lambda m, s, d, r: seen.append(d))
    step.ready(); step.start(); step.error(); step.recover(); step.retry(); step.start(); step.finish()
    assert seen == ["ready", "running", "failed", "recovering", "retrying", "running", "done"]
    from orchestrator.engine.states import STEP_MACHINE

    assert step in STEP_MACHINE.models
    step.close()
    assert step not in STEP_MACHINE.models
