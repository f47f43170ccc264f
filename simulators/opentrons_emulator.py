"""Loopback emulator of the Opentrons robot HTTP API, and the emulator factory of
``opentrons.ot2``.

Serves the documented endpoints the driver uses on ``127.0.0.1`` with an ephemeral
port (stdlib ``ThreadingHTTPServer`` in a daemon thread): ``GET /health``,
``POST /protocols`` (multipart), ``GET /protocols/{id}/analyses/{aid}``, ``POST /runs``,
``GET /runs``, ``GET /runs/{id}``, ``POST /runs/{id}/actions``. Requests without the
``Opentrons-Version`` header are refused (400) as the robot does.

An uploaded protocol is analysed with the same preflight the driver uses
(``opentrons.simulate``); a run "executes" for the preflight's simulated duration
(times ``speed``) on ``time_fn`` (the driver's clock): ``idle`` -> ``running`` ->
``succeeded``, with ``pause``/``play`` and ``stop``. Only one run may be current and
active (409 otherwise).

Faults on demand: :meth:`OpentronsEmulator.fail_next_run` (``failed`` at a fraction of
the run, with an error code), :meth:`recover_next_run` (``awaiting-recovery``),
:meth:`http_error_next` (an error status with the robot's error body),
:meth:`garble_next` (a body that is not JSON), :meth:`drop_next` (close the
connection without a response) and :meth:`hang_next` (answer after ``seconds`` real).
"""

from __future__ import annotations

import json
import re
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from drivers.opentrons.preflight import preflight


@dataclass
class _Run:
    id: str
    protocol_id: str
    duration: float
    values: dict[str, Any]
    status: str = "idle"
    started: float | None = None
    elapsed: float = 0.0
    fail_at: float | None = None
    fail_code: str = "4000"
    recovery: bool = False
    errors: list[dict[str, Any]] = field(default_factory=list)
    actions: list[dict[str, Any]] = field(default_factory=list)


class OpentronsEmulator:
    """An OT-2 behind its HTTP API.

    Args:
        time_fn: robot time in seconds (pass ``clock.now``).
        speed: multiplier on the preflight duration of every run.
    """

    def __init__(self, time_fn: Callable[[], float] | None = None, speed: float = 1.0) -> None:
        self.time_fn = time_fn or time.monotonic
        self.speed = speed
        self.protocols: dict[str, dict[str, Any]] = {}
        self.runs: dict[str, _Run] = {}
        self.requests: list[tuple[str, str]] = []
        self._lock = threading.RLock()
        self._faults: list[tuple[str, Any]] = []
        self._run_faults: list[tuple[str, Any]] = []
        self._dir = Path(tempfile.mkdtemp(prefix="ot-emulator-"))
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.port = 0
        self.stopping = threading.Event()

    # -- faults ------------------------------------------------------------------------
    def fail_next_run(self, at_fraction: float = 0.5, code: str = "2001", detail: str = "tip not picked up") -> None:
        """The next run fails after ``at_fraction`` of its duration with error ``code``."""
        with self._lock:
            self._run_faults.append(("fail", (at_fraction, code, detail)))

    def recover_next_run(self, at_fraction: float = 0.5) -> None:
        """The next run stops in ``awaiting-recovery`` (error recovery waits for a person)."""
        with self._lock:
            self._run_faults.append(("recovery", at_fraction))

    def device_fault_next(self) -> None:
        """Conformance hook: the next run fails (error 2001)."""
        self.fail_next_run(0.5)

    def inject(self, fault: str) -> None:
        """Wire faults by the names of :mod:`simulators.serial_emulator`: ``no_reply`` and
        ``disconnect`` close the connection unanswered, ``garbled`` and ``partial`` send a body
        that is not JSON."""
        if fault in ("no_reply", "disconnect"):
            self.drop_next()
        elif fault in ("garbled", "partial"):
            self.garble_next()
        else:
            raise ValueError(f"unknown wire fault {fault!r}")

    def http_error_next(self, status: int = 500, code: str = "4000", detail: str = "robot server error") -> None:
        """The next request gets HTTP ``status`` with the robot's error body."""
        with self._lock:
            self._faults.append(("http", (status, code, detail)))

    def garble_next(self) -> None:
        """The next request gets a 200 whose body is not JSON."""
        with self._lock:
            self._faults.append(("garble", None))

    def drop_next(self) -> None:
        """The next request's connection is closed without a response."""
        with self._lock:
            self._faults.append(("drop", None))

    def hang_next(self, seconds: float) -> None:
        """The next request is answered after ``seconds`` real seconds."""
        with self._lock:
            self._faults.append(("hang", seconds))

    # -- serving -----------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> int:
        """Serve on 127.0.0.1 with an ephemeral port; returns the port."""
        self.stop()
        self.stopping.clear()
        emulator = self

        class Handler(_Handler):
            em = emulator

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="opentrons-emulator", daemon=True)
        self._thread.start()
        return self.port

    def stop(self) -> None:
        """Stop serving (idempotent); protocols and runs are kept."""
        self.stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    # -- the robot -------------------------------------------------------------------------
    def take_fault(self) -> tuple[str, Any] | None:
        with self._lock:
            return self._faults.pop(0) if self._faults else None

    def route(self, method: str, path: str, body: Any, files: dict[str, bytes]) -> tuple[int, dict[str, Any]]:
        """Answer one request: (status, JSON body)."""
        with self._lock:
            self.requests.append((method, path))
            for run in self.runs.values():
                self._advance(run)
            if method == "GET" and path == "/health":
                return 200, {"name": "emulated-ot2", "robot_model": "OT-2 Standard", "api_version": "8.8.2",
                             "fw_version": "emulated", "robot_serial": "OT2EMU001", "system_version": "8.8.2"}
            if method == "POST" and path == "/protocols":
                return self._upload(files)
            m = re.fullmatch(r"/protocols/([\w-]+)/analyses/([\w-]+)", path)
            if method == "GET" and m:
                p = self.protocols.get(m[1])
                if p is None or p["analysis"]["id"] != m[2]:
                    return _error(404, "ProtocolNotFound", f"no analysis {m[2]}")
                return 200, {"data": p["analysis"]}
            if method == "POST" and path == "/runs":
                return self._create_run(body)
            if method == "GET" and path == "/runs":
                return 200, {"data": [self._run_view(r) for r in self.runs.values()]}
            m = re.fullmatch(r"/runs/([\w-]+)(/actions)?", path)
            if m and m[1] in self.runs:
                run = self.runs[m[1]]
                if method == "GET" and not m[2]:
                    return 200, {"data": self._run_view(run)}
                if method == "POST" and m[2]:
                    return self._action(run, body)
            if m:
                return _error(404, "RunNotFound", f"run {m[1]} not found")
            return _error(404, "NotFound", f"{method} {path}")

    def _upload(self, files: dict[str, bytes]) -> tuple[int, dict[str, Any]]:
        if len(files) != 1:
            return _error(422, "InvalidRequest", "upload exactly one protocol file")
        (name, content), = files.items()
        pid = uuid.uuid4().hex[:12]
        path = self._dir / pid / Path(name).name
        path.parent.mkdir(parents=True)
        path.write_bytes(content)
        report = preflight(path)
        analysis = {"id": uuid.uuid4().hex[:12], "status": "completed", "result": "ok" if report.ok else "not-ok",
                    "errors": [{"errorType": "AnalysisError", "detail": e} for e in report.errors]}
        self.protocols[pid] = {"id": pid, "path": path, "analysis": analysis}
        return 201, {"data": {"id": pid, "protocolType": "python", "files": [{"name": path.name, "role": "main"}],
                              "metadata": {}, "analysisSummaries": [{"id": analysis["id"], "status": "completed"}]}}

    def _create_run(self, body: Any) -> tuple[int, dict[str, Any]]:
        data = (body or {}).get("data") or {}
        protocol = self.protocols.get(str(data.get("protocolId")))
        if protocol is None:
            return _error(404, "ProtocolNotFound", f"protocol {data.get('protocolId')!r} not found")
        if any(r.status not in ("succeeded", "failed", "stopped") for r in self.runs.values()):
            return _error(409, "RunAlreadyActive", "another run is current and not finished")
        values = data.get("runTimeParameterValues") or {}
        report = preflight(protocol["path"], values)
        if not report.ok:
            return _error(422, "InvalidRunTimeParameters", "; ".join(report.errors))
        run = _Run(uuid.uuid4().hex[:12], protocol["id"], report.simulated_duration_s * self.speed, values)
        if self._run_faults:
            kind, arg = self._run_faults.pop(0)
            if kind == "fail":
                run.fail_at, run.fail_code, detail = arg[0] * run.duration, arg[1], arg[2]
                run.errors = [{"id": uuid.uuid4().hex[:8], "errorType": "PipetteError", "errorCode": arg[1],
                               "detail": detail}]
            else:
                run.fail_at, run.recovery = arg * run.duration, True
        self.runs[run.id] = run
        return 201, {"data": self._run_view(run)}

    def _action(self, run: _Run, body: Any) -> tuple[int, dict[str, Any]]:
        kind = ((body or {}).get("data") or {}).get("actionType")
        now = self.time_fn()
        allowed = {"play": ("idle", "paused"), "pause": ("running",), "stop": ("idle", "running", "paused",
                   "awaiting-recovery"), "resume-from-recovery": ("awaiting-recovery",)}
        if kind not in allowed:
            return _error(422, "InvalidActionType", f"unknown actionType {kind!r}")
        if run.status not in allowed[kind]:
            return _error(409, "RunActionNotAllowed", f"cannot {kind} a run that is {run.status}")
        if kind in ("play", "resume-from-recovery"):
            run.status, run.started = "running", now
            if kind == "resume-from-recovery":
                run.fail_at, run.recovery = None, False
        elif kind == "pause":
            run.elapsed += now - (run.started or now)
            run.status, run.started = "paused", None
        else:
            run.status = "stopped"
        action = {"id": uuid.uuid4().hex[:8], "actionType": kind, "createdAt": now}
        run.actions.append(action)
        return 201, {"data": action}

    def _advance(self, run: _Run) -> None:
        if run.status != "running" or run.started is None:
            return
        done = run.elapsed + self.time_fn() - run.started
        if run.fail_at is not None and done >= run.fail_at:
            run.status = "awaiting-recovery" if run.recovery else "failed"
            run.elapsed, run.started = run.fail_at, None
        elif done >= run.duration:
            run.status, run.elapsed, run.started = "succeeded", run.duration, None

    def _run_view(self, run: _Run) -> dict[str, Any]:
        return {"id": run.id, "status": run.status, "protocolId": run.protocol_id, "current": True,
                "actions": run.actions, "errors": run.errors if run.status == "failed" else [],
                "runTimeParameters": [{"variableName": k, "value": v} for k, v in run.values.items()]}


def _error(status: int, error_id: str, detail: str) -> tuple[int, dict[str, Any]]:
    return status, {"errors": [{"id": error_id, "title": error_id, "detail": detail, "errorCode": "4000"}]}


class _Handler(BaseHTTPRequestHandler):
    em: OpentronsEmulator
    protocol_version = "HTTP/1.0"

    def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
        pass

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def _serve(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        fault = self.em.take_fault()
        if fault and fault[0] == "drop":
            self.close_connection = True
            return
        if fault and fault[0] == "hang":
            # Real time on purpose (a robot that answers too late to a real HTTP client);
            # cut short when the emulator stops, so no server thread outlives it.
            self.em.stopping.wait(fault[1])
        if fault and fault[0] == "garble":
            return self._send(200, b"<html>502 Bad Gateway</html>", "text/html")
        if fault and fault[0] == "http":
            status, body = _error(fault[1][0], "RobotServerError", fault[1][2])
            body["errors"][0]["errorCode"] = fault[1][1]
            return self._send(status, json.dumps(body).encode())
        if "opentrons-version" not in {k.lower() for k in self.headers.keys()}:
            status, body = _error(400, "MissingHeader", "Opentrons-Version header is required")
            return self._send(status, json.dumps(body).encode())
        files: dict[str, bytes] = {}
        body_json: Any = None
        ctype = self.headers.get("Content-Type", "")
        if ctype.startswith("multipart/form-data"):
            files = _multipart(raw, ctype)
        elif raw:
            try:
                body_json = json.loads(raw)
            except ValueError:
                status, body = _error(422, "InvalidRequest", "body is not JSON")
                return self._send(status, json.dumps(body).encode())
        status, body = self.em.route(method, self.path, body_json, files)
        self._send(status, json.dumps(body).encode())

    def _send(self, status: int, payload: bytes, ctype: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


def _multipart(raw: bytes, ctype: str) -> dict[str, bytes]:
    boundary = ctype.split("boundary=", 1)[-1].strip().strip('"').encode()
    files: dict[str, bytes] = {}
    for part in raw.split(b"--" + boundary):
        head, sep, content = part.partition(b"\r\n\r\n")
        m = re.search(rb'name="files"; filename="([^"]+)"', head)
        if sep and m:
            files[m.group(1).decode()] = content[:-2] if content.endswith(b"\r\n") else content
    return files


def create_emulated(config: Any, ctx: Any) -> Any:
    """``DriverSpec.create_emulator`` of ``opentrons.ot2``: the real HTTP driver against a
    loopback robot (started on connect, stopped on disconnect), mirrored into the
    workcell's culture model."""
    from drivers.opentrons.driver import OpentronsLiquidHandler
    from simulators.culture import culture_of
    from simulators.culture_sync import SyncedLiquidHandler

    emulator = OpentronsEmulator(time_fn=ctx.clock.now, speed=config.emulator.speed)

    class EmulatedOpentrons(OpentronsLiquidHandler):
        async def connect(self) -> None:
            if not self._connected and not emulator.running:
                port = emulator.start()
                self.config = self.config.model_copy(update={"host": "127.0.0.1", "port": port})
                self.client.host, self.client.port = "127.0.0.1", port
            await super().connect()

        async def disconnect(self) -> None:
            await super().disconnect()
            emulator.stop()

    driver = EmulatedOpentrons(ctx.name, ctx.clock, config)
    driver.emulator = emulator  # type: ignore[attr-defined]
    return SyncedLiquidHandler(driver, culture_of(ctx))
