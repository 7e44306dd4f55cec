"""One simulated student: open a notebook, run every cell, then move a slider.

Everything goes through the hub's proxy, with the student's own token, the way JupyterLab
in a browser talks to the single-user server:

1. ``GET /user/<name>/api/contents/<notebook>``: the notebook's cells.
2. ``POST /user/<name>/api/sessions``: a new kernel for that notebook (the clock starts).
3. The websocket ``/user/<name>/api/kernels/<id>/channels``: ``kernel_info_request``, then
   one ``execute_request`` per code cell, each waited for (reply and ``idle``), as "Run all"
   does; the first output carrying a PNG is the *first figure*.
4. The panel's slider is moved by the ``comm_msg`` the widget manager sends when a student
   releases it (``{"method": "update", "state": {"value": ...}}``); a redraw is timed from
   sending that message to receiving the panel's new picture (the ``Image`` widget's
   update), i.e. everything but the browser's painting.
"""

from __future__ import annotations

import asyncio
import math
import time
import uuid
from typing import Any
from urllib.parse import quote

from tornado.httpclient import HTTPRequest
from tornado.websocket import WebSocketClientConnection, websocket_connect

from benchmarks.classroom import wire
from benchmarks.classroom.hub import Hub
from benchmarks.classroom.results import StudentResult


class StudentError(RuntimeError):
    """A step of the student's work failed; the message says which."""


class KernelChannel:
    """A kernel websocket with the bookkeeping a student needs: widgets opened so far and
    the time of the first figure."""

    def __init__(self, ws: WebSocketClientConnection, session: str, clock_start: float) -> None:
        self.ws = ws
        self.session = session
        self.clock_start = clock_start
        self.widgets: dict[str, dict[str, Any]] = {}
        self.first_figure_s = math.nan
        self.recent: list[dict[str, Any]] = []

    async def read(self, timeout_s: float) -> dict[str, Any]:
        """The next message (widgets and figures are noted on the way)."""
        frame = await asyncio.wait_for(self.ws.read_message(), timeout_s)
        if frame is None:
            raise StudentError("the kernel websocket closed")
        message = wire.decode(frame)
        self.recent = (self.recent + [message])[-8:]
        opened = wire.widget_opened(message)
        if opened is not None:
            self.widgets[opened[0]] = opened[1]
        if math.isnan(self.first_figure_s) and wire.has_figure(message):
            self.first_figure_s = time.monotonic() - self.clock_start
        return message

    async def send(self, message: dict[str, Any]) -> str:
        await self.ws.write_message(wire.encode(message), binary=bool(message.get("buffers")))
        return str(message["header"]["msg_id"])

    async def kernel_info(self, timeout_s: float) -> None:
        """Ask until the kernel answers (it may still be starting)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            request = await self.send(wire.new_message("kernel_info_request", {}, session=self.session))
            try:
                while True:
                    message = await self.read(min(5.0, max(0.1, deadline - time.monotonic())))
                    if wire.msg_type(message) == "kernel_info_reply" and wire.parent_id(message) == request:
                        return
            except asyncio.TimeoutError:
                continue
        raise StudentError(f"the kernel did not answer kernel_info within {timeout_s:.0f} s")

    async def execute(self, code: str, timeout_s: float) -> None:
        """Run one cell and wait for its reply and the kernel's ``idle``.

        Raises:
            StudentError: if the cell raised or did not finish within ``timeout_s``.
        """
        request = await self.send(wire.execute_request(code, session=self.session))
        replied = idle = False
        failure: str | None = None
        deadline = time.monotonic() + timeout_s
        while not (replied and idle):
            left = deadline - time.monotonic()
            if left <= 0:
                raise StudentError(f"a cell did not finish within {timeout_s:.0f} s: {code[:60]!r}")
            message = await self.read(left)
            if wire.parent_id(message) != request:
                continue
            failure = failure or wire.error_text(message)
            if wire.msg_type(message) == "execute_reply":
                replied = True
            elif wire.is_idle(message, request):
                idle = True
        if failure:
            raise StudentError(f"cell failed: {failure} in {code.strip().splitlines()[0][:60]!r}")

    async def move(self, comm_id: str, value: float, images: frozenset[str],
                   timeout_s: float) -> float:
        """Move slider ``comm_id`` to ``value``; milliseconds until the new picture arrived.

        Raises:
            StudentError: if no picture came before the kernel went idle or the timeout.
        """
        start = time.monotonic()
        request = await self.send(wire.widget_update(comm_id, {"value": value}, session=self.session))
        picture_ms = math.nan
        deadline = start + timeout_s
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise StudentError(f"no redraw within {timeout_s:.0f} s after moving the slider to {value}")
            message = await self.read(left)
            if wire.parent_id(message) != request:
                continue
            if math.isnan(picture_ms) and wire.is_picture_update(message, images):
                picture_ms = (time.monotonic() - start) * 1000
            elif wire.is_idle(message, request):
                if math.isnan(picture_ms):
                    raise StudentError(f"moving the slider to {value} redrew no picture "
                                       f"(last messages: {wire.message_summary(self.recent)})")
                return picture_ms


async def run_student(hub: Hub, name: str, token: str, notebook: str, *, moves: int,
                      think_s: float, cell_timeout_s: float, result: StudentResult) -> StudentResult:
    """Run ``notebook`` (a path relative to the server's root) as student ``name`` and move
    its first slider ``moves`` times, ``think_s`` seconds apart; fills and returns ``result``.

    Raises:
        ValueError: if ``moves`` < 1 or ``think_s`` / ``cell_timeout_s`` is not positive.
        StudentError, HubError, OSError, asyncio.TimeoutError: when a step fails.
    """
    if moves < 1:
        raise ValueError(f"moves must be >= 1, got {moves}")
    if think_s < 0:
        raise ValueError(f"think_s must be >= 0, got {think_s}")
    if not cell_timeout_s > 0:
        raise ValueError(f"cell_timeout_s must be > 0, got {cell_timeout_s}")
    base = f"{hub.url}/user/{quote(name)}"
    model = await hub.request("GET", f"{base}/api/contents/{quote(notebook)}?content=1&type=notebook",
                              token=token)
    cells = wire.code_cells(model["content"])
    start = time.monotonic()
    session = await hub.request("POST", f"{base}/api/sessions", token=token, body={
        "path": notebook, "name": notebook.rsplit("/", 1)[-1], "type": "notebook",
        "kernel": {"name": "python3"}})
    kernel_id = session["kernel"]["id"]
    session_id = uuid.uuid4().hex
    ws_url = base.replace("http://", "ws://", 1) + f"/api/kernels/{kernel_id}/channels?session_id={session_id}"
    ws = await websocket_connect(HTTPRequest(ws_url, headers={"Authorization": f"token {token}"},
                                             connect_timeout=cell_timeout_s,
                                             request_timeout=cell_timeout_s),
                                 max_message_size=64 * 2**20)
    try:
        channel = KernelChannel(ws, session_id, start)
        await channel.kernel_info(cell_timeout_s)
        result.kernel_ready_s = time.monotonic() - start
        for code in cells:
            await channel.execute(code, cell_timeout_s)
            result.cells += 1
        result.run_all_s = time.monotonic() - start
        result.first_figure_s = channel.first_figure_s
        found = wire.find_slider(channel.widgets)
        images = wire.image_ids(channel.widgets)
        if found is None or not images:
            raise StudentError(f"{notebook} showed no slider panel ({len(channel.widgets)} widgets)")
        comm_id, state = found
        for value in wire.slider_values(state, moves):
            if think_s:
                await asyncio.sleep(think_s)
            result.redraws_ms.append(await channel.move(comm_id, value, images, cell_timeout_s))
    finally:
        ws.close()
    return result
