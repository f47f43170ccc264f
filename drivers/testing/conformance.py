"""The driver conformance suite: does a driver keep the interface contract?

:func:`run_conformance` builds the driver from its registry spec in the requested
mode, on a :class:`~drivers.clock.VirtualClock`, and runs a list of checks, each on a
fresh instance and a fresh ``shared`` dict:

=====================  ===============================================================
check                  contract
=====================  ===============================================================
``spec``               a DriverSpec of the right class; config parses; build gives one
``actions``            every action of the class is implemented
``before_connect``     status is ``offline``; identify and the main action raise StateError
``connect``            connect twice is fine; status ``idle`` after
``identify``           an :class:`Identity` with vendor and model
``status``             an :class:`InstrumentStatus` of a known state, plates as strings
``main_action``        the class scenario works, returns the documented type, and
                       advances the clock (durations are waited on the clock)
``absent_plate``       an action on a plate that is not there raises StateError and
                       leaves the status unchanged (skipped when the driver cannot know)
``timeout``            the main action under a clock timeout shorter than its duration
                       ends with TimeoutError in bounded real time; after ``abort`` and
                       ``reset_error`` the status is ``idle``
``wire_fault``         emulator mode: a lost reply becomes an InstrumentError carrying
                       the bytes (``raw`` not None), never a hang or a bare exception
``error_reset``        a non-recoverable fault puts it in ``error``; ``reset_error`` -> ``idle``
``disconnect``         disconnect twice is fine; status ``offline``; connect again works
=====================  ===============================================================
"""

from __future__ import annotations

import asyncio
import threading
import traceback
from collections.abc import Awaitable, Callable
from typing import Any

from drivers.actions import actions_of
from drivers.base import Instrument
from drivers.clock import VirtualClock
from drivers.errors import CellwrightError, InstrumentError, StateError
from drivers.labware import Plate
from drivers.results import Identity, InstrumentStatus
from drivers.spec import DriverContext, DriverSpec, get_driver
from drivers.testing.report import Check, ConformanceReport
from drivers.testing.scenarios import SCENARIOS, Scenario, check_environment, make_plate

STATES = ("offline", "idle", "busy", "error", "maintenance")
REAL_TIME_LIMIT_S = 60.0
"""A check still running after this many real seconds has hung: it fails."""


class _Skip(Exception):
    pass


class _Env:
    """A fresh driver on a fresh clock and shared dict, for one check."""

    def __init__(self, spec: DriverSpec, mode: str, config: dict[str, Any] | None, name: str) -> None:
        self.spec, self.mode, self.raw, self.name = spec, mode, dict(config or {}), name

    async def build(self, clock: VirtualClock) -> tuple[Instrument, dict[str, Any]]:
        shared: dict[str, Any] = {}
        ctx = DriverContext(name=self.name, clock=clock, seed=7, shared=shared)
        return self.spec.build(self.mode, self.spec.parse_config(self.raw), ctx), shared


def run_conformance(spec_name: str, mode: str = "simulator", config: dict[str, Any] | None = None,
                    *, spec: DriverSpec | None = None, instrument_name: str | None = None) -> ConformanceReport:
    """Run the suite against a registered driver (or an unregistered ``spec``).

    Args:
        spec_name: registry name (``plr.cytomat``).
        mode: ``simulator``, ``emulator`` or ``real``.
        config: the driver's workcell config (``config:`` mapping).
        spec: check this spec instead of looking ``spec_name`` up.
        instrument_name: instrument name used (default: the instrument class).

    Returns:
        The report; never raises for a misbehaving driver (that is a failed check).

    Raises:
        ConfigurationError: unknown driver name.
    """
    spec = spec or get_driver(spec_name)
    cls = spec.instrument_class.instrument_class
    report = ConformanceReport(spec.name, mode, cls)
    env = _Env(spec, mode, config, instrument_name or cls)
    scenario = SCENARIOS.get(cls)
    checks: list[tuple[str, Callable[[Instrument, dict[str, Any], VirtualClock], Awaitable[str]]]] = [
        ("actions", lambda i, s, c: _actions(i, spec)),
        ("before_connect", lambda i, s, c: _before_connect(i, s, scenario)),
        ("connect", lambda i, s, c: _connect(i)),
        ("identify", lambda i, s, c: _identify(i)),
        ("status", lambda i, s, c: _status(i)),
        ("main_action", lambda i, s, c: _main(i, s, c, scenario)),
        ("absent_plate", lambda i, s, c: _absent(i, s, scenario)),
        ("timeout", lambda i, s, c: _timeout(i, s, c, scenario)),
        ("wire_fault", lambda i, s, c: _wire_fault(i, s, scenario, mode)),
        ("error_reset", lambda i, s, c: _error_reset(i, s, scenario)),
        ("disconnect", lambda i, s, c: _disconnect(i)),
    ]
    report.checks.append(_spec_check(spec, env))
    if report.checks[-1].status == "fail":
        return report
    for name, body in checks:
        report.checks.append(_run_one(name, env, body))
    return report


def _spec_check(spec: DriverSpec, env: _Env) -> Check:
    if not isinstance(spec, DriverSpec):
        return Check("spec", "fail", f"{type(spec).__name__} is not a DriverSpec")
    try:
        clock = VirtualClock()

        async def build() -> str:
            inst, _ = await env.build(clock)
            if not isinstance(inst, spec.instrument_class):
                return f"FAIL built a {type(inst).__name__}, not a {spec.instrument_class.__name__}"
            await _quietly(inst.disconnect())
            return ""

        message = clock.run(build())
    except CellwrightError as exc:
        return Check("spec", "fail", f"{type(exc).__name__}: {exc}")
    except Exception as exc:  # a broken factory is a finding
        return Check("spec", "fail", f"building raised {type(exc).__name__}: {exc}")
    return Check("spec", "fail", message[5:]) if message.startswith("FAIL") else Check("spec", "pass")


def _run_one(name: str, env: _Env, body: Callable[[Instrument, dict[str, Any], VirtualClock], Awaitable[str]]) -> Check:
    clock = VirtualClock()

    async def go() -> str:
        inst, shared = await env.build(clock)
        try:
            return await _guard(body(inst, shared, clock))
        finally:
            await _quietly(inst.abort())
            await _quietly(inst.disconnect())

    try:
        message = clock.run(go())
    except _Skip as skip:
        return Check(name, "skip", str(skip))
    except AssertionError as exc:
        return Check(name, "fail", str(exc) or "assertion failed")
    except Exception as exc:  # anything else the driver raised is a failure of the contract
        tb = traceback.extract_tb(exc.__traceback__)[-1]
        return Check(name, "fail", f"unexpected {type(exc).__name__}: {exc} (at {tb.filename}:{tb.lineno})")
    return Check(name, "pass", message)


async def _guard(coro: Awaitable[str]) -> str:
    """Fail (instead of hanging the suite) when a check runs longer than REAL_TIME_LIMIT_S real seconds."""
    task = asyncio.ensure_future(coro)
    loop = asyncio.get_running_loop()
    timer = threading.Timer(REAL_TIME_LIMIT_S, lambda: loop.call_soon_threadsafe(task.cancel))
    timer.daemon = True
    timer.start()
    try:
        return await task
    except asyncio.CancelledError:
        raise AssertionError(f"hung: still running after {REAL_TIME_LIMIT_S:g} real seconds") from None
    finally:
        timer.cancel()


async def _quietly(coro: Awaitable[Any]) -> None:
    try:
        await coro
    except Exception:  # teardown of a failed check
        pass


def _need(scenario: Scenario | None) -> Scenario:
    if scenario is None:
        raise _Skip("no scenario for this instrument class")
    return scenario


async def _staged(
    inst: Instrument, shared: dict[str, Any], scenario: Scenario | None, name: str
) -> tuple[Scenario, Plate]:
    """Connect and stage plate ``name`` for the scenario's main action; skip when that cannot be done."""
    sc = _need(scenario)
    await inst.connect()
    plate = make_plate(name)
    if not await sc.prepare(inst, plate, shared):
        raise _Skip("cannot stage a plate for this driver")
    return sc, plate


async def _expect_state(inst: Instrument, expected: str, when: str) -> None:
    """Assert the instrument reports ``expected`` ``when`` (``after connect``)."""
    state = (await inst.status()).state
    assert state == expected, f"status {when} is {state!r}, expected {expected!r}"


# -- checks -----------------------------------------------------------------------------------

async def _actions(inst: Instrument, spec: DriverSpec) -> str:
    wanted = set(actions_of(spec.instrument_class))
    have = set(actions_of(type(inst)))
    assert wanted <= have, f"missing actions: {', '.join(sorted(wanted - have))}"
    abstract = sorted(getattr(type(inst), "__abstractmethods__", ()))
    assert not abstract, f"abstract methods left: {', '.join(abstract)}"
    extra = sorted(have - wanted)
    return f"extra actions: {', '.join(extra)}" if extra else ""


async def _before_connect(inst: Instrument, shared: dict[str, Any], scenario: Scenario | None) -> str:
    status = await inst.status()
    assert isinstance(status, InstrumentStatus) and status.state == "offline", \
        f"status before connect is {getattr(status, 'state', status)!r}, expected 'offline'"
    try:
        await inst.identify()
    except StateError:
        pass
    else:
        raise AssertionError("identify() before connect did not raise StateError")
    if scenario is not None:
        plate = make_plate("early")
        try:
            await scenario.main(inst, plate)
        except StateError:
            return ""
        raise AssertionError(f"{scenario.main_name}() before connect did not raise StateError")
    return ""


async def _connect(inst: Instrument) -> str:
    await inst.connect()
    await inst.connect()
    await _expect_state(inst, "idle", "after connect")
    return ""


async def _identify(inst: Instrument) -> str:
    await inst.connect()
    ident = await inst.identify()
    assert isinstance(ident, Identity), f"identify returned {type(ident).__name__}, not Identity"
    assert ident.vendor and ident.model, f"identify has an empty vendor or model: {ident!r}"
    return f"{ident.vendor} {ident.model}"


async def _status(inst: Instrument) -> str:
    await inst.connect()
    s = await inst.status()
    assert isinstance(s, InstrumentStatus), f"status returned {type(s).__name__}"
    assert s.state in STATES, f"unknown state {s.state!r}"
    assert isinstance(s.plates, tuple) and all(isinstance(p, str) for p in s.plates), "plates must be a tuple of ids"
    return ""


async def _main(inst: Instrument, shared: dict[str, Any], clock: VirtualClock, scenario: Scenario | None) -> str:
    sc, plate = await _staged(inst, shared, scenario, "main")
    expected = inst.duration_of(sc.main_name, plate=plate)
    t0 = clock.now()
    result = await sc.main(inst, plate)
    took = clock.now() - t0
    sc.check_result(result, plate)
    if hasattr(inst, "environment"):
        check_environment(await inst.environment())  # type: ignore[attr-defined]
    if expected > 0:
        assert took > 0, f"{sc.main_name} took no clock time (expected ~{expected:g} s): wait on the injected clock"
    await _expect_state(inst, "idle", f"after {sc.main_name}")
    return f"{sc.main_name} took {took:.0f} clock s (expected {expected:.0f})"


async def _absent(inst: Instrument, shared: dict[str, Any], scenario: Scenario | None) -> str:
    sc = _need(scenario)
    if sc.absent is None:
        raise _Skip("no way to make a plate absent for this class")
    await inst.connect()
    before = await inst.status()
    try:
        outcome = await sc.absent(inst, make_plate("absent"), shared)
    except StateError:
        after = await inst.status()
        assert (after.state, after.plates) == (before.state, before.plates), \
            f"state changed by a rejected call: {before} -> {after}"
        return ""
    if outcome is None and "culture" not in shared:
        raise _Skip("the driver keeps no plate locations (hardware trusts the workcell)")
    raise AssertionError("an action on a plate that is not there did not raise StateError")


async def _timeout(inst: Instrument, shared: dict[str, Any], clock: VirtualClock, scenario: Scenario | None) -> str:
    sc, plate = await _staged(inst, shared, scenario, "timeout")
    budget = max(0.5, min(5.0, inst.duration_of(sc.main_name, plate=plate) / 10))
    try:
        await clock.wait_for(sc.main(inst, plate), budget)
    except TimeoutError:
        pass
    else:
        raise _Skip(f"{sc.main_name} finished within {budget:g} clock s: nothing to time out")
    await inst.abort()
    await clock.sleep(1.0)
    await inst.reset_error()
    await _expect_state(inst, "idle", "after a timeout, abort and reset_error")
    return f"timed out after {budget:g} clock s"


async def _wire_fault(inst: Instrument, shared: dict[str, Any], scenario: Scenario | None, mode: str) -> str:
    emulator = getattr(inst, "emulator", None)
    if mode != "emulator" or emulator is None or not hasattr(emulator, "inject"):
        raise _Skip("only for drivers on a wire-level emulator with inject()")
    sc, plate = await _staged(inst, shared, scenario, "wire")
    seen = []
    for fault in ("no_reply", "garbled"):
        emulator.inject(fault)
        try:
            await sc.main(inst, plate)
        except InstrumentError as exc:
            assert exc.raw is not None, f"{fault}: {type(exc).__name__} carries no bytes (raw is None)"
            seen.append(f"{fault}->{type(exc).__name__}")
            if (await inst.status()).state == "error":
                await inst.reset_error()
            continue
        except StateError:
            seen.append(f"{fault}->StateError")  # the first fault left the plate in doubt
            continue
        raise AssertionError(f"{fault}: the action succeeded although its reply was lost")
    return ", ".join(seen)


async def _error_reset(inst: Instrument, shared: dict[str, Any], scenario: Scenario | None) -> str:
    sc, plate = await _staged(inst, shared, scenario, "error")
    if not _arm_fault(inst, sc.main_name):
        await inst.reset_error()
        await _expect_state(inst, "idle", "after reset_error on a healthy instrument")
        raise _Skip("no way to inject a fault into this driver (reset_error on idle checked)")
    try:
        await sc.main(inst, plate)
    except InstrumentError as exc:
        assert not exc.recoverable, "the injected fault came back recoverable"
    else:
        raise AssertionError("the injected fault did not surface")
    await _expect_state(inst, "error", "after a non-recoverable fault")
    await inst.reset_error()
    await _expect_state(inst, "idle", "after reset_error")
    return ""


def _arm_fault(inst: Instrument, action: str) -> bool:
    """A non-recoverable device fault on the next ``action``: through a simulator's
    ``inject(FaultSpec)`` or an emulator's ``device_fault_next()``."""
    emulator = getattr(inst, "emulator", None)
    if emulator is not None and hasattr(emulator, "device_fault_next"):
        emulator.device_fault_next()
        return True
    if hasattr(inst, "faults") and hasattr(inst, "inject"):
        from simulators.faults import FaultSpec  # the behavioural simulators' own fault type

        inst.inject(FaultSpec(action=action, kind="device_fault", recoverable=False, detail="conformance"))
        return True
    return False


async def _disconnect(inst: Instrument) -> str:
    await inst.connect()
    await inst.disconnect()
    await inst.disconnect()
    await _expect_state(inst, "offline", "after disconnect")
    await inst.connect()
    await _expect_state(inst, "idle", "after reconnecting")
    return ""
