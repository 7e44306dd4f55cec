"""The kernel websocket messages a simulated student sends and reads (pure functions).

The single-user server relays the Jupyter messaging protocol over a websocket at
``/user/<name>/api/kernels/<id>/channels``.  Without a negotiated subprotocol it speaks the
default ("legacy") encoding that JupyterLab also understands: a message without binary
buffers is one JSON text frame with a ``channel`` key; a message with buffers (an ipywidgets
``Image`` update carries its PNG that way) is one binary frame laid out as

    nbufs (uint32, big-endian) | nbufs offsets (uint32 each) | JSON | buffer 1 | buffer 2 ...

where the first offset points at the JSON part and the others at the buffers.  The
functions here build, encode and decode those messages and read what a student needs out
of them: cell sources, figures, widget sliders and redrawn pictures.
"""

from __future__ import annotations

import json
import math
import struct
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from itertools import pairwise
from typing import Any

#: The messaging protocol version the messages claim.
PROTOCOL_VERSION = "5.3"
#: The channels a message may travel on.
CHANNELS = ("shell", "iopub", "stdin", "control")
#: Output messages that can carry a figure.
OUTPUT_TYPES = ("display_data", "execute_result", "update_display_data")
#: ipywidgets models that a student drags (with a numeric ``value``, ``min``, ``max``).
SLIDER_MODELS = ("FloatSliderModel", "IntSliderModel", "FloatLogSliderModel")
#: The ipywidgets model that shows a panel's picture.
IMAGE_MODEL = "ImageModel"


def new_message(msg_type: str, content: Mapping[str, Any], *, channel: str = "shell",
                session: str, username: str = "student") -> dict[str, Any]:
    """A protocol message ready for :func:`encode` (no parent, no buffers).

    Raises:
        TypeError: if ``msg_type`` or ``session`` is not a string or ``content`` not a mapping.
        ValueError: if ``msg_type`` or ``session`` is empty or ``channel`` unknown.
    """
    if not isinstance(msg_type, str):
        raise TypeError(f"msg_type must be a string, got {type(msg_type).__name__}")
    if not msg_type:
        raise ValueError("msg_type must not be empty")
    if not isinstance(content, Mapping):
        raise TypeError(f"content must be a mapping, got {type(content).__name__}")
    if channel not in CHANNELS:
        raise ValueError(f"channel must be one of {CHANNELS}, got {channel!r}")
    if not isinstance(session, str):
        raise TypeError(f"session must be a string, got {type(session).__name__}")
    if not session:
        raise ValueError("session must not be empty")
    return {
        "header": {
            "msg_id": uuid.uuid4().hex,
            "msg_type": msg_type,
            "username": username,
            "session": session,
            "date": datetime.now(timezone.utc).isoformat(),
            "version": PROTOCOL_VERSION,
        },
        "parent_header": {},
        "metadata": {},
        "content": dict(content),
        "channel": channel,
        "buffers": [],
    }


def execute_request(code: str, *, session: str) -> dict[str, Any]:
    """An ``execute_request`` for ``code``, as JupyterLab sends when a cell is run.

    Raises:
        TypeError: if ``code`` is not a string.
    """
    if not isinstance(code, str):
        raise TypeError(f"code must be a string, got {type(code).__name__}")
    return new_message("execute_request", {
        "code": code, "silent": False, "store_history": True, "user_expressions": {},
        "allow_stdin": False, "stop_on_error": True,
    }, session=session)


def widget_update(comm_id: str, state: Mapping[str, Any], *, session: str) -> dict[str, Any]:
    """The ``comm_msg`` the browser's widget manager sends when a control moves: it sets
    ``state`` (e.g. ``{"value": 2.5}``) on the kernel-side widget ``comm_id``.

    Raises:
        TypeError: if ``comm_id`` is not a string or ``state`` not a mapping.
        ValueError: if ``comm_id`` or ``state`` is empty.
    """
    if not isinstance(comm_id, str):
        raise TypeError(f"comm_id must be a string, got {type(comm_id).__name__}")
    if not comm_id:
        raise ValueError("comm_id must not be empty")
    if not isinstance(state, Mapping):
        raise TypeError(f"state must be a mapping, got {type(state).__name__}")
    if not state:
        raise ValueError("state must set at least one attribute")
    return new_message("comm_msg", {
        "comm_id": comm_id,
        "data": {"method": "update", "state": dict(state), "buffer_paths": []},
    }, session=session)


# -- encoding ---------------------------------------------------------------------------


def encode(message: Mapping[str, Any]) -> str | bytes:
    """A message as a websocket frame: JSON text, or the binary layout when it has buffers.

    Raises:
        TypeError: if ``message`` is not a mapping or a buffer is not bytes-like.
        ValueError: if ``message`` has no ``channel``.
    """
    if not isinstance(message, Mapping):
        raise TypeError(f"message must be a mapping, got {type(message).__name__}")
    if message.get("channel") not in CHANNELS:
        raise ValueError(f"message must name a channel in {CHANNELS}, got {message.get('channel')!r}")
    body = dict(message)
    buffers = list(body.pop("buffers", None) or [])
    for index, buffer in enumerate(buffers):
        if not isinstance(buffer, (bytes, bytearray, memoryview)):
            raise TypeError(f"message buffer {index} must be bytes, got {type(buffer).__name__}")
    if not buffers:
        return json.dumps(body)
    parts = [json.dumps(body).encode("utf-8"), *(bytes(b) for b in buffers)]
    offsets = [4 * (len(parts) + 1)]
    for part in parts[:-1]:
        offsets.append(offsets[-1] + len(part))
    return struct.pack(f"!{len(parts) + 1}I", len(parts), *offsets) + b"".join(parts)


def decode(frame: str | bytes) -> dict[str, Any]:
    """A websocket frame read back into a message; ``buffers`` holds the binary parts.

    Raises:
        TypeError: if ``frame`` is neither text nor bytes.
        ValueError: if a binary frame's offsets do not fit its length, or the JSON is not
            an object with a ``channel``.
    """
    if isinstance(frame, str):
        message = json.loads(frame)
        buffers: list[bytes] = []
    elif isinstance(frame, (bytes, bytearray, memoryview)):
        data = bytes(frame)
        if len(data) < 8:
            raise ValueError(f"frame too short for the binary layout: {len(data)} bytes")
        (count,) = struct.unpack_from("!I", data, 0)
        if count < 1 or 4 * (count + 1) > len(data):
            raise ValueError(f"frame announces {count} parts, which do not fit {len(data)} bytes")
        offsets = list(struct.unpack_from(f"!{count}I", data, 4)) + [len(data)]
        if offsets[0] < 4 * (count + 1) or any(b < a for a, b in pairwise(offsets)):
            raise ValueError(f"frame offsets {offsets[:-1]} are not increasing within {len(data)} bytes")
        parts = [data[a:b] for a, b in pairwise(offsets)]
        message = json.loads(parts[0].decode("utf-8"))
        buffers = parts[1:]
    else:
        raise TypeError(f"frame must be str or bytes, got {type(frame).__name__}")
    if not isinstance(message, dict) or "channel" not in message:
        raise ValueError("frame does not hold a message with a channel")
    message["buffers"] = buffers
    return message


# -- reading messages -------------------------------------------------------------------


def msg_type(message: Mapping[str, Any]) -> str:
    """The message's type ("" if it has none)."""
    return str(message.get("header", {}).get("msg_type", ""))


def parent_id(message: Mapping[str, Any]) -> str:
    """The id of the request this message answers ("" if none)."""
    return str((message.get("parent_header") or {}).get("msg_id", ""))


def is_idle(message: Mapping[str, Any], request_id: str) -> bool:
    """True for the kernel's ``status: idle`` that ends the handling of ``request_id``."""
    return (message.get("channel") == "iopub" and msg_type(message) == "status"
            and message.get("content", {}).get("execution_state") == "idle"
            and parent_id(message) == request_id)


def has_figure(message: Mapping[str, Any]) -> bool:
    """True for an output message that shows a picture (a PNG, as the inline backend and
    the course's panels produce)."""
    return (msg_type(message) in OUTPUT_TYPES
            and "image/png" in (message.get("content", {}).get("data") or {}))


def error_text(message: Mapping[str, Any]) -> str | None:
    """``"ename: evalue"`` for an ``error`` output or an ``execute_reply`` with status error;
    None otherwise."""
    content = message.get("content", {})
    if msg_type(message) == "error" or (msg_type(message) == "execute_reply"
                                        and content.get("status") == "error"):
        return f"{content.get('ename', 'Error')}: {content.get('evalue', '')}".rstrip(": ")
    return None


def code_cells(notebook: Mapping[str, Any]) -> list[str]:
    """The source of every non-empty code cell of a notebook (nbformat 4 JSON), in order.

    Raises:
        TypeError: if ``notebook`` is not a mapping.
        ValueError: if it has no ``cells`` list.
    """
    if not isinstance(notebook, Mapping):
        raise TypeError(f"notebook must be a mapping, got {type(notebook).__name__}")
    cells = notebook.get("cells")
    if not isinstance(cells, list):
        raise ValueError("notebook has no 'cells' list (is it nbformat 4?)")
    sources = []
    for cell in cells:
        if cell.get("cell_type") != "code":
            continue
        source = cell.get("source", "")
        source = "".join(source) if isinstance(source, list) else str(source)
        if source.strip():
            sources.append(source)
    return sources


def widget_opened(message: Mapping[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """``(comm_id, state)`` for a ``comm_open`` of an ipywidgets model; None otherwise."""
    if msg_type(message) != "comm_open":
        return None
    content = message.get("content", {})
    if content.get("target_name") != "jupyter.widget":
        return None
    return str(content.get("comm_id")), dict((content.get("data") or {}).get("state") or {})


def is_picture_update(message: Mapping[str, Any], image_ids: set[str] | frozenset[str]) -> bool:
    """True for a kernel's ``comm_msg`` that puts a new picture into one of the ``Image``
    widgets ``image_ids`` (its ``value``, usually sent as a binary buffer)."""
    if msg_type(message) != "comm_msg":
        return False
    content = message.get("content", {})
    if content.get("comm_id") not in image_ids:
        return False
    data = content.get("data") or {}
    if data.get("method") not in ("update", "echo_update"):
        return False
    return "value" in (data.get("state") or {}) or ["value"] in (data.get("buffer_paths") or [])


def slider_values(state: Mapping[str, Any], count: int) -> list[float]:
    """``count`` slider positions spread evenly over a slider's range (both ends included
    when ``count`` >= 2), swept from low to high, in which each differs from the one before
    and the first from the current value, so every move changes the value (an unchanged
    value redraws nothing).

    Works on the ``state`` of an ``IntSlider``, ``FloatSlider`` or ``FloatLogSlider`` model
    (for the log slider, ``min``/``max`` are exponents and the values returned are
    ``base ** exponent``).

    Raises:
        TypeError: if ``state`` is not a mapping or ``count`` not an int.
        ValueError: if ``count`` < 1, the state is not a slider's, or its range is empty.
    """
    if not isinstance(state, Mapping):
        raise TypeError(f"state must be a mapping, got {type(state).__name__}")
    if isinstance(count, bool) or not isinstance(count, int):
        raise TypeError(f"count must be an int, got {type(count).__name__}")
    if count < 1:
        raise ValueError(f"count must be >= 1, got {count}")
    model = state.get("_model_name")
    if model not in SLIDER_MODELS:
        raise ValueError(f"state must be a slider's ({SLIDER_MODELS}), got model {model!r}")
    low, high = float(state["min"]), float(state["max"])
    if not high > low:
        raise ValueError(f"state's slider range is empty: min {low}, max {high}")
    step = float(state.get("step") or 0) or (high - low) / 100
    current = float(state.get("value", low))
    log = model == "FloatLogSliderModel"
    base = float(state.get("base", 10.0))
    if log:
        current = math.log(current, base) if current > 0 else low
    grid = max(1, round((high - low) / step))
    intervals = max(count - 1, 1)
    positions = sorted({min(max(low + round(k * grid / intervals) * step, low), high)
                        for k in range(intervals + 1)})
    # from low to high and round again, starting at the first position that is not the
    # current value: consecutive positions always differ, and so does the wrap-around
    tolerance = step / 1000
    start = next(i for i, p in enumerate(positions)
                 if not math.isclose(p, current, rel_tol=1e-9, abs_tol=tolerance))
    values = [positions[(start + i) % len(positions)] for i in range(count)]
    if model == "IntSliderModel":
        return [int(round(v)) for v in values]
    if log:
        return [base ** v for v in values]
    return [round(v, 10) for v in values]


def find_slider(widgets: Mapping[str, Mapping[str, Any]]) -> tuple[str, dict[str, Any]] | None:
    """The first slider, in the order the widgets were opened, among ``widgets``
    (comm id → state); None if there is none."""
    for comm_id, state in widgets.items():
        if state.get("_model_name") in SLIDER_MODELS:
            return comm_id, dict(state)
    return None


def image_ids(widgets: Mapping[str, Mapping[str, Any]]) -> frozenset[str]:
    """The comm ids of the ``Image`` widgets among ``widgets`` (comm id → state)."""
    return frozenset(c for c, s in widgets.items() if s.get("_model_name") == IMAGE_MODEL)


def message_summary(messages: Sequence[Mapping[str, Any]]) -> str:
    """A short description of a list of messages for error reports (types and channels)."""
    return ", ".join(f"{m.get('channel')}:{msg_type(m)}" for m in messages[-8:]) or "none"
