"""One simulated student: "Restart kernel and run all" in a fresh kernel (jupyter_client, which
builds, signs and parses the messages), then slider moves as a browser sends them, each timed to
the panel's new picture."""

from __future__ import annotations

import asyncio
import math
import queue
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import nbformat
from jupyter_client import AsyncKernelManager

from benchmarks.classroom.results import StudentResult

SLIDER_MODELS = ("FloatSliderModel", "IntSliderModel", "FloatLogSliderModel")


class StudentError(RuntimeError):
    """A step of the student's work failed (the message says which)."""


def msg_type(message: Mapping[str, Any]) -> str:
    return str(message.get("header", {}).get("msg_type", ""))


def has_figure(message: Mapping[str, Any]) -> bool:
    """True for an output message that shows a PNG (the inline backend's and the panels')."""
    return (msg_type(message) in ("display_data", "execute_result", "update_display_data")
            and "image/png" in (message.get("content", {}).get("data") or {}))


def error_text(message: Mapping[str, Any]) -> str | None:
    """``"ename: evalue"`` for an ``error`` output or an ``execute_reply`` with status error."""
    content = message.get("content", {})
    if msg_type(message) == "error" or (msg_type(message) == "execute_reply" and content.get("status") == "error"):
        return f"{content.get('ename', 'Error')}: {content.get('evalue', '')}".rstrip(": ")
    return None


def code_cells(path: Path) -> list[str]:
    """The source of every non-empty code cell of notebook ``path``, in order (read and
    validated by nbformat, which raises for a file that is not a notebook)."""
    return [c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code" and c.source.strip()]


def widget_opened(message: Mapping[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """``(comm_id, state)`` for a ``comm_open`` of an ipywidgets model; None otherwise."""
    content = message.get("content", {})
    if msg_type(message) != "comm_open" or content.get("target_name") != "jupyter.widget":
        return None
    return str(content.get("comm_id")), dict((content.get("data") or {}).get("state") or {})


def is_picture_update(message: Mapping[str, Any], image_ids: set[str] | frozenset[str]) -> bool:
    """True for a ``comm_msg`` that puts a new picture (``value``) into one of ``image_ids``."""
    content = message.get("content", {})
    data = content.get("data") or {}
    return (msg_type(message) == "comm_msg" and content.get("comm_id") in image_ids
            and data.get("method") in ("update", "echo_update")
            and ("value" in (data.get("state") or {}) or ["value"] in (data.get("buffer_paths") or [])))


def widget_update(comm_id: str, state: Mapping[str, Any]) -> dict[str, Any]:
    """The content of the ``comm_msg`` a browser sends when a widget's ``state`` changes.

    Raises:
        ValueError: naming ``comm_id`` or ``state`` when it is empty.
    """
    if not comm_id or not state:
        raise ValueError(f"comm_id and state must not be empty, got {comm_id!r} and {state!r}")
    return {"comm_id": comm_id, "data": {"method": "update", "state": dict(state), "buffer_paths": []}}


def slider_and_images(widgets: Mapping[str, Mapping[str, Any]]) -> tuple[tuple[str, dict[str, Any]] | None,
                                                                         frozenset[str]]:
    """Among ``widgets`` (comm id → state, in the order opened): the first slider's
    ``(comm_id, state)`` (None if there is none) and the comm ids of the ``Image`` widgets."""
    slider = next(((c, dict(s)) for c, s in widgets.items() if s.get("_model_name") in SLIDER_MODELS), None)
    return slider, frozenset(c for c, s in widgets.items() if s.get("_model_name") == "ImageModel")


def slider_values(state: Mapping[str, Any], count: int) -> list[float]:
    """``count`` positions evenly over a slider's range (both ends when ``count`` >= 2), swept
    low to high, each differing from the one before and the first from the current value (an
    unchanged value redraws nothing); for a log slider, ``base ** exponent``.

    Raises:
        TypeError: if ``state`` is not a mapping or ``count`` not an int.
        ValueError: if ``count`` < 1, the state is not a slider's, or its range is empty.
    """
    if not isinstance(state, Mapping) or isinstance(count, bool) or not isinstance(count, int):
        raise TypeError(f"state must be a mapping and count an int, got {type(state).__name__}, {count!r}")
    model, low, high = state.get("_model_name"), float(state.get("min", 0)), float(state.get("max", 0))
    if count < 1 or model not in SLIDER_MODELS or not high > low:
        raise ValueError(f"need count >= 1 and a slider's state with a range, got {count}, model {model!r}, "
                         f"range {low}..{high}")
    step = float(state.get("step") or 0) or (high - low) / 100
    log, base, current = model == "FloatLogSliderModel", float(state.get("base", 10.0)), float(state["value"])
    if log:
        current = math.log(current, base) if current > 0 else low
    grid, intervals = max(1, round((high - low) / step)), max(count - 1, 1)
    positions = sorted({min(max(low + round(k * grid / intervals) * step, low), high) for k in range(intervals + 1)})
    start = next(i for i, p in enumerate(positions) if not math.isclose(p, current, rel_tol=1e-9, abs_tol=step / 1000))
    values = [positions[(start + i) % len(positions)] for i in range(count)]
    if model == "IntSliderModel":
        return [int(round(v)) for v in values]
    return [base ** v for v in values] if log else [round(v, 10) for v in values]


async def run_student(notebook: Path, env: dict[str, str], result: StudentResult, *, moves: int, think_s: float,
                      cell_timeout_s: float, on_kernel: Callable[[int], None] = lambda pid: None,
                      before_shutdown: Callable[[int], None] = lambda pid: None) -> None:
    """Run ``notebook`` in a new kernel (in its folder, with ``env``), then move its first slider
    ``moves`` times, ``think_s`` s apart; fills ``result``.  ``on_kernel(pid)`` is called once
    the kernel runs, ``before_shutdown(pid)`` before it stops.

    Raises:
        StudentError, TimeoutError, OSError: when a step fails.
    """
    cells, widgets, start = code_cells(notebook), {}, time.monotonic()

    def note(message: dict[str, Any]) -> None:
        if (opened := widget_opened(message)) is not None:
            widgets[opened[0]] = opened[1]
        if math.isnan(result.first_figure_s) and has_figure(message):
            result.first_figure_s = time.monotonic() - start

    manager = AsyncKernelManager(kernel_name="python3")
    await manager.start_kernel(cwd=str(notebook.parent), env=env)
    on_kernel(pid := int(manager.provisioner.pid))  # type: ignore[union-attr]
    client = manager.client()
    client.start_channels()
    try:
        await client.wait_for_ready(timeout=cell_timeout_s)
        for code in cells:
            reply = await client.execute_interactive(code, allow_stdin=False, timeout=cell_timeout_s, output_hook=note)
            if error_text(reply):
                raise StudentError(f"cell failed: {error_text(reply)} in {code.strip()[:60]!r}")
            result.cells += 1
        result.run_all_s = time.monotonic() - start
        slider, images = slider_and_images(widgets)
        if slider is None or not images:
            raise StudentError(f"{notebook.name} showed no slider panel ({len(widgets)} widgets)")
        for value in slider_values(slider[1], moves):
            await asyncio.sleep(think_s)
            result.redraws_ms.append(await _move(client, slider[0], value, images, cell_timeout_s))
    finally:
        before_shutdown(pid)
        client.stop_channels()
        await manager.shutdown_kernel(now=True)


async def _move(client: Any, comm_id: str, value: float, images: frozenset[str], timeout_s: float) -> float:
    """Move slider ``comm_id`` to ``value``; milliseconds until the new picture arrived."""
    message = client.session.msg("comm_msg", widget_update(comm_id, {"value": value}))
    start, picture_ms = time.monotonic(), math.nan
    client.shell_channel.send(message)
    while True:
        try:
            reply = await client.get_iopub_msg(timeout=max(0.0, start + timeout_s - time.monotonic()))
        except queue.Empty:
            raise StudentError(f"no redraw within {timeout_s:.0f} s of moving the slider to {value}") from None
        if reply["parent_header"].get("msg_id") != message["header"]["msg_id"]:
            continue
        if math.isnan(picture_ms) and is_picture_update(reply, images):
            picture_ms = (time.monotonic() - start) * 1000
        elif msg_type(reply) == "status" and reply["content"].get("execution_state") == "idle":
            if math.isnan(picture_ms):
                raise StudentError(f"moving the slider to {value} redrew no picture")
            return picture_ms
