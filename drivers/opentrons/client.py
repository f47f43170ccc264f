"""A small client of the Opentrons robot HTTP API (port 31950), stdlib only.

Endpoints used (robot software 7/8, header ``Opentrons-Version: *``):

* ``GET /health`` — name, model, API and firmware versions, serial;
* ``POST /protocols`` — multipart upload (field ``files``); ``GET /protocols/{id}/analyses/{aid}``;
* ``POST /runs`` with ``{"data": {"protocolId", "runTimeParameterValues"}}``;
* ``POST /runs/{id}/actions`` with ``{"data": {"actionType": "play"|"pause"|"stop"|"resume-from-recovery"}}``;
* ``GET /runs/{id}`` — ``status`` and ``errors``.

Every request has a timeout (real seconds: bytes move in real time). Calls block and
are meant for a worker thread (:meth:`RobotClient.call`). Failures become
:mod:`drivers.errors` errors with the response bytes: refused / reset connection →
:class:`ConnectionLost`; no response in time → :class:`InstrumentTimeout`; a body that
is not the documented JSON → :class:`WireProtocolError`; an error status →
:class:`DeviceFault` with the robot's ``errorCode`` (409 conflicts and 5xx are
recoverable).
"""

from __future__ import annotations

import asyncio
import http.client
import json
import socket
import uuid
from pathlib import Path
from typing import Any

from drivers.errors import ConnectionLost, DeviceFault, InstrumentError, InstrumentTimeout, WireProtocolError

API_VERSION_HEADER = "Opentrons-Version"
TERMINAL = frozenset({"succeeded", "failed", "stopped"})
"""Run statuses after which nothing more happens."""


class RobotClient:
    """HTTP client of one robot.

    Args:
        device: instrument name (for errors).
        host: robot address.
        port: API port (31950).
        timeout_s: per-request timeout, real seconds.
    """

    def __init__(self, device: str, host: str, port: int = 31950, timeout_s: float = 10.0) -> None:
        self.device, self.host, self.port, self.timeout_s = device, host, port, timeout_s

    async def call(self, method: str, path: str, body: Any = None, **kwargs: Any) -> dict[str, Any]:
        """:meth:`request` in a worker thread."""
        return await asyncio.get_running_loop().run_in_executor(
            None, lambda: self.request(method, path, body, **kwargs))

    def request(self, method: str, path: str, body: Any = None, *, files: dict[str, bytes] | None = None) -> dict[str, Any]:
        """One request; returns the decoded JSON body.

        Args:
            body: JSON-serialisable request body.
            files: ``{filename: content}`` sent as multipart field ``files``.

        Raises:
            InstrumentError: see the module docstring.
        """
        headers = {API_VERSION_HEADER: "*", "Accept": "application/json"}
        payload: bytes | None = None
        if files is not None:
            boundary = uuid.uuid4().hex
            parts = []
            for name, content in files.items():
                parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="{name}"\r\n'
                             f"Content-Type: text/x-python\r\n\r\n".encode() + content + b"\r\n")
            payload = b"".join(parts) + f"--{boundary}--\r\n".encode()
            headers["Content-Type"] = f"multipart/form-data; boundary={boundary}"
        elif body is not None:
            payload = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout_s)
        raw = b""
        try:
            conn.request(method, path, body=payload, headers=headers)
            response = conn.getresponse()
            raw = response.read()
            status = response.status
        except (socket.timeout, TimeoutError) as exc:
            raise InstrumentTimeout(self.device, f"{method} {path}: no response within {self.timeout_s:g} s",
                                    raw=raw) from exc
        except (ConnectionError, http.client.RemoteDisconnected, http.client.IncompleteRead, OSError) as exc:
            raise ConnectionLost(self.device, f"{method} {path}: {type(exc).__name__}: {exc}", raw=raw) from exc
        finally:
            conn.close()
        try:
            data = json.loads(raw.decode("utf-8")) if raw else {}
            if not isinstance(data, dict):
                raise ValueError("not a JSON object")
        except (UnicodeDecodeError, ValueError) as exc:
            raise WireProtocolError(self.device, f"{method} {path}: HTTP {status}, body is not JSON: {exc}",
                                    raw=raw[:512]) from None
        if status >= 400:
            raise self._http_error(method, path, status, data, raw)
        return data

    def _http_error(self, method: str, path: str, status: int, data: dict[str, Any], raw: bytes) -> InstrumentError:
        errors = data.get("errors") or []
        first = errors[0] if errors and isinstance(errors[0], dict) else {}
        code = str(first.get("errorCode") or f"HTTP{status}")
        if code == "4000" and first.get("id"):  # 4000 is the generic code: the id says more
            code = str(first["id"])
        detail = first.get("detail") or first.get("title") or data.get("message") or f"HTTP {status}"
        return DeviceFault(self.device, f"{method} {path}: HTTP {status}: {detail}", code=code,
                           recoverable=status == 409 or status >= 500, raw=raw[:512])

    # -- endpoints -------------------------------------------------------------------------
    async def health(self) -> dict[str, Any]:
        """``GET /health``."""
        return await self.call("GET", "/health")

    async def upload(self, path: Path) -> dict[str, Any]:
        """``POST /protocols``: the protocol resource (``data``)."""
        reply = await self.call("POST", "/protocols", files={path.name: path.read_bytes()})
        return _data(self.device, reply, "POST /protocols")

    async def analysis(self, protocol_id: str, analysis_id: str) -> dict[str, Any]:
        """``GET /protocols/{id}/analyses/{aid}`` (``data``)."""
        reply = await self.call("GET", f"/protocols/{protocol_id}/analyses/{analysis_id}")
        return _data(self.device, reply, "GET analysis")

    async def create_run(self, protocol_id: str, values: dict[str, Any]) -> dict[str, Any]:
        """``POST /runs`` (``data``)."""
        body = {"data": {"protocolId": protocol_id, "runTimeParameterValues": values}}
        return _data(self.device, await self.call("POST", "/runs", body), "POST /runs")

    async def action(self, run_id: str, action: str) -> dict[str, Any]:
        """``POST /runs/{id}/actions`` with ``actionType`` ``action`` (``data``)."""
        body = {"data": {"actionType": action}}
        return _data(self.device, await self.call("POST", f"/runs/{run_id}/actions", body), "POST actions")

    async def run(self, run_id: str) -> dict[str, Any]:
        """``GET /runs/{id}`` (``data``)."""
        return _data(self.device, await self.call("GET", f"/runs/{run_id}"), "GET run")


def _data(device: str, reply: dict[str, Any], what: str) -> dict[str, Any]:
    data = reply.get("data")
    if not isinstance(data, dict) or not isinstance(data.get("id"), str):
        raise WireProtocolError(device, f"{what}: response has no data.id", raw=json.dumps(reply)[:512].encode())
    return data
