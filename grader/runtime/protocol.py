"""Framed messages between the grader and the student runtime.

A message is a fixed prefix (magic, header length), a JSON header, then zero
or more binary frames whose lengths the header lists. Values travel as a
tagged JSON tree: scalars as JSON, containers as tagged objects, numpy arrays
as ``.npy`` frames read back with ``np.load(..., allow_pickle=False)``.
Nothing is ever pickled. Both sides use this module; the grader additionally
validates every array's dtype before loading it.

Reading is bounded before anything is allocated or parsed: the header's size
(``max_header``), the number of frames (:data:`MAX_FRAMES`) and the whole message's size
(``max_bytes``) are checked first; JSON nesting is bounded by the parser's recursion
limit and values by :data:`MAX_DEPTH`; an array is a view of its frame, whose length
must equal its declared shape times its item size. So a message never costs much more
memory than its size (see tests/test_runtime_protocol.py's fuzz test for the figure).

Tags (JSON objects are always tags, so a student's dict never looks like one):
``{"t": "l", "v": [...]}`` list, ``{"t": "T", "v": [...]}`` tuple,
``{"t": "d", "k": [...], "v": [...]}`` dict with str keys,
``{"t": "nd", "i": frame}`` array, ``{"t": "c", "re": x, "im": y}`` complex,
``{"t": "h", "id": n, "type": s, "repr": s}`` handle,
``{"t": "f", "name": s}`` named grader-side callable,
``{"t": "m", "name": s}`` student module.
"""

from __future__ import annotations

import io
import json
import os
import select
import struct
import time
from collections.abc import Callable as _Fn
from dataclasses import dataclass
from typing import Any

import numpy as np

MAGIC = b"NNG1"
_PREFIX = struct.Struct(">4sI")
MAX_DEPTH = 64
"""Deepest nesting of lists/dicts/tuples that may cross."""
MAX_HEADER_BYTES = 1 << 20
"""Largest JSON header accepted from the runtime: 1 MiB. The reference suites' largest is
measured by bench/protocol_sizes.py (bench/results/protocol-sizes.md)."""
MAX_REQUEST_HEADER_BYTES = 64 << 20
"""Largest JSON header the runtime accepts from the grader (which sends source files)."""
MAX_REQUEST_BYTES = 4 << 30
"""Largest request the runtime accepts from the grader (training data; the grader is trusted)."""
MAX_FRAMES = 4096
"""Most arrays in one message."""
MAX_CONTAINERS = 100_000
"""Most JSON objects and arrays in one header (``{`` and ``[`` bytes, strings included):
each costs about 60 bytes once parsed, so a header cannot grow much beyond its size."""
NUMERIC_KINDS = frozenset("biufc")
"""numpy dtype kinds that may cross: bool, signed, unsigned, float, complex."""
_NPY_HEADER_MAX = 65_536 + 16  # magic, version, length and the longest header numpy reads
_F_SETPIPE_SZ = 1031
_READ_CHUNK = 1 << 20


class ProtocolError(Exception):
    """A message or value broke the protocol's rules."""


class ChannelClosed(ProtocolError):
    """The other end closed its pipe (usually: the process died)."""


class ChannelTimeout(ProtocolError):
    """No complete message arrived before the deadline."""


@dataclass(frozen=True)
class Handle:
    """An opaque reference to an object that stays in the student runtime.

    Attributes:
        id: The runtime's handle-table key.
        type_name: The object's type, e.g. ``"FullConnectionModel"``.
        repr_snippet: The start of the object's repr, for messages only.
    """

    id: int
    type_name: str
    repr_snippet: str


@dataclass(frozen=True)
class Callable:
    """A grader-side function passed to student code by name.

    The runtime resolves the name in ``grader.runtime.callables.REGISTRY``;
    no code crosses the pipe.

    Attributes:
        name: A key of the registry, e.g. ``"square"``.
    """

    name: str


@dataclass(frozen=True)
class ModuleRef:
    """A student module, named as a target or an argument."""

    name: str


def is_numeric_dtype(dtype: np.dtype) -> bool:
    """Whether arrays of ``dtype`` may cross: plain bool/int/float/complex."""
    return dtype.kind in NUMERIC_KINDS and dtype.fields is None and dtype.subdtype is None


def array_to_npy(array: np.ndarray) -> bytes:
    """Serialise a numeric array to ``.npy`` bytes (no pickle).

    Raises:
        ProtocolError: If the dtype is not numeric or bool.
    """
    if not is_numeric_dtype(array.dtype):
        raise ProtocolError(
            f"a numpy array of dtype {array.dtype} cannot cross; expected a numeric or bool dtype"
        )
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def npy_to_array(frame: bytes | bytearray | memoryview) -> np.ndarray:
    """Load ``.npy`` bytes after checking the declared dtype and size.

    The array is a view of ``frame`` (no copy): it costs no memory beyond the frame.

    Raises:
        ProtocolError: On a non-numeric dtype, a size that does not match the declared
            shape, or malformed bytes.
    """
    # Only the header goes through BytesIO (which copies): numpy reads at most 64 KiB of it.
    buffer = io.BytesIO(bytes(memoryview(frame)[:_NPY_HEADER_MAX]))
    try:
        version = np.lib.format.read_magic(buffer)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(buffer)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(buffer)
        else:
            raise ValueError(f"unsupported .npy version {version}")
    except Exception as exc:  # noqa: BLE001 - numpy's header parser raises many types
        # (ValueError, SyntaxError, tokenize.TokenError, ...) on hostile bytes: found by fuzzing
        raise ProtocolError(f"malformed .npy frame: {type(exc).__name__}: "
                            f"{str(exc)[:200]}") from None
    if not is_numeric_dtype(dtype):
        raise ProtocolError(
            f"received a numpy array of dtype {dtype}; only numeric and bool arrays may "
            "cross from the student runtime"
        )
    count = 1
    for dimension in shape:
        if type(dimension) is not int or dimension < 0:
            raise ProtocolError(f"malformed .npy frame: bad shape {shape!r:.100}")
        count *= dimension
    offset = buffer.tell()
    if count * dtype.itemsize != len(frame) - offset:
        raise ProtocolError(
            f"malformed .npy frame: shape {shape!r:.100} of {dtype} needs "
            f"{count * dtype.itemsize} bytes; the frame holds {len(frame) - offset}")
    try:
        flat = np.frombuffer(frame, dtype=dtype, count=count, offset=offset)
        return flat.reshape(shape, order="F" if fortran else "C")
    except (ValueError, TypeError) as exc:
        raise ProtocolError(f"malformed .npy frame: {exc}") from None


def encode_value(
    value: Any, frames: list[bytes], fallback: _Fn[[Any], dict[str, Any]], _depth: int = 0
) -> Any:
    """Turn a value into a JSON-able tagged tree, appending arrays to ``frames``.

    Exact types only: a subclass of list, dict, int or str is not plain data
    (its methods are student code), so it goes to ``fallback``.

    Args:
        value: The value to encode.
        frames: Receives the ``.npy`` bytes of every array, in order.
        fallback: Encodes anything that is not plain data (a handle on the
            runtime side; an error or a reference on the grader side).

    Returns:
        The JSON-able tree.

    Raises:
        ProtocolError: On nesting deeper than ``MAX_DEPTH`` or a dict key that
            is not a str.
    """
    if _depth > MAX_DEPTH:
        raise ProtocolError(f"value nested deeper than {MAX_DEPTH} levels")
    kind = type(value)
    if value is None or kind in (bool, int, float, str):
        return value
    if kind is complex:
        return {"t": "c", "re": value.real, "im": value.imag}
    if kind is list or kind is tuple:
        items = [encode_value(item, frames, fallback, _depth + 1) for item in value]
        return {"t": "l" if kind is list else "T", "v": items}
    if kind is dict:
        keys = list(value.keys())
        for key in keys:
            if type(key) is not str:
                raise ProtocolError(f"dict key {key!r:.60} is not a str; only str keys may cross")
        values = [encode_value(value[key], frames, fallback, _depth + 1) for key in keys]
        return {"t": "d", "k": keys, "v": values}
    if kind is np.ndarray:
        frames.append(array_to_npy(value))
        return {"t": "nd", "i": len(frames) - 1}
    if isinstance(value, np.generic) and kind.__module__ == "numpy":
        return encode_value(value.item(), frames, fallback, _depth)
    return fallback(value)


def decode_value(
    node: Any, frames: list[bytes], resolve: _Fn[[dict[str, Any]], Any], _depth: int = 0
) -> Any:
    """Inverse of :func:`encode_value`.

    Args:
        node: The JSON tree.
        frames: The message's binary frames.
        resolve: Turns a reference tag (``h``, ``f``, ``m``) into an object;
            raises ProtocolError for tags the receiving side does not accept.

    Raises:
        ProtocolError: On an unknown tag, a bad frame index or a bad array.
    """
    if _depth > MAX_DEPTH + 1:
        raise ProtocolError(f"value nested deeper than {MAX_DEPTH} levels")
    if node is None or type(node) in (bool, int, float, str):
        return node
    if type(node) is list:
        raise ProtocolError("untagged JSON list in a value")
    if type(node) is not dict:
        raise ProtocolError(f"unexpected JSON node {type(node).__name__}")
    tag = node.get("t")
    try:
        if tag == "l":
            return [decode_value(item, frames, resolve, _depth + 1) for item in node["v"]]
        if tag == "T":
            return tuple(decode_value(item, frames, resolve, _depth + 1) for item in node["v"])
        if tag == "d":
            keys, values = node["k"], node["v"]
            if len(keys) != len(values) or any(type(key) is not str for key in keys):
                raise ProtocolError("malformed dict")
            return {
                key: decode_value(item, frames, resolve, _depth + 1)
                for key, item in zip(keys, values, strict=True)
            }
        if tag == "nd":
            index = node["i"]
            if type(index) is not int or not 0 <= index < len(frames):
                raise ProtocolError(f"bad frame index {index!r}")
            return npy_to_array(frames[index])
        if tag == "c":
            return complex(float(node["re"]), float(node["im"]))
        if tag in ("h", "f", "m"):
            return resolve(node)
    except (KeyError, TypeError, ValueError, OverflowError) as exc:
        raise ProtocolError(f"malformed {str(tag)[:20]!r} node: {str(exc)[:200]}") from None
    raise ProtocolError(f"unknown tag {str(tag)[:20]!r}")


def enlarge_pipe(fd: int, size: int = 1 << 20) -> None:
    """Grow a pipe's kernel buffer so large arrays need fewer wake-ups."""
    try:
        import fcntl

        fcntl.fcntl(fd, _F_SETPIPE_SZ, size)
    except OSError:
        pass  # the default 64 KiB still works, only slower


def pack_message(header: dict[str, Any], frames: list[bytes]) -> list[bytes]:
    """Return the byte pieces of one message (prefix, header, frames)."""
    header = dict(header, frames=[len(frame) for frame in frames])
    header_bytes = json.dumps(header, separators=(",", ":")).encode()
    return [_PREFIX.pack(MAGIC, len(header_bytes)), header_bytes, *frames]


def _wait(fd: int, event: int, deadline: float | None) -> None:
    """Block until ``fd`` is ready for ``event`` or the deadline passes."""
    if deadline is None:
        return
    poller = select.poll()
    poller.register(fd, event)
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise ChannelTimeout("deadline passed")
        if poller.poll(min(remaining, 1.0) * 1000):
            return


def write_message(
    fd: int, header: dict[str, Any], frames: list[bytes], deadline: float | None = None
) -> None:
    """Write one message; with a deadline ``fd`` must be non-blocking.

    Raises:
        ChannelClosed: If the reader is gone.
        ChannelTimeout: If the deadline passes first.
    """
    write_pieces(fd, pack_message(header, frames), deadline)


def write_pieces(fd: int, pieces: list[bytes], deadline: float | None = None) -> None:
    """Write the pieces of a packed message (see :func:`write_message`)."""
    for piece in pieces:
        view = memoryview(piece)
        while view:
            _wait(fd, select.POLLOUT, deadline)
            try:
                written = os.write(fd, view)
            except BlockingIOError:
                continue
            except (BrokenPipeError, OSError) as exc:
                raise ChannelClosed(str(exc)) from None
            view = view[written:]


def _read_exact(fd: int, size: int, deadline: float | None) -> bytearray:
    """Read exactly ``size`` bytes or raise."""
    buffer = bytearray(size)
    view = memoryview(buffer)
    position = 0
    while position < size:
        _wait(fd, select.POLLIN, deadline)
        try:
            count = os.readv(fd, [view[position : position + _READ_CHUNK]])
        except BlockingIOError:
            continue
        except OSError as exc:
            raise ChannelClosed(str(exc)) from None
        if count == 0:
            raise ChannelClosed("end of stream")
        position += count
    return buffer


def read_message(
    fd: int, *, max_bytes: int, deadline: float | None = None,
    max_header: int = MAX_HEADER_BYTES,
) -> tuple[dict[str, Any], list[bytes]]:
    """Read one message, refusing before allocating or parsing if it is over a limit.

    Args:
        fd: The pipe to read.
        max_bytes: Largest message (header and frames together).
        deadline: ``time.monotonic()`` value to give up at; None waits forever.
        max_header: Largest JSON header (at most ``max_bytes`` applies too).

    Returns:
        The header dict and the list of frames.

    Raises:
        ProtocolError: On a bad prefix, bad JSON or an oversized message.
        ChannelClosed: At end of stream.
        ChannelTimeout: If the deadline passes first.
    """
    magic, header_size = _PREFIX.unpack(_read_exact(fd, _PREFIX.size, deadline))
    if magic != MAGIC:
        raise ProtocolError(f"bad message prefix {bytes(magic)!r}")
    header_limit = min(max_header, max_bytes)
    if header_size > header_limit:
        raise ProtocolError(f"message header of {header_size} bytes exceeds the limit of "
                            f"{header_limit} bytes")
    header_bytes = _read_exact(fd, header_size, deadline)
    containers = header_bytes.count(b"{") + header_bytes.count(b"[")
    if containers > MAX_CONTAINERS:
        raise ProtocolError(f"message header of {containers} lists and dicts exceeds the limit "
                            f"of {MAX_CONTAINERS}")
    try:
        header = json.loads(header_bytes)
    except (ValueError, RecursionError, MemoryError) as exc:
        raise ProtocolError(f"bad message header: {str(exc)[:200]}") from None
    sizes = header.get("frames") if type(header) is dict else None
    if type(sizes) is not list or any(type(size) is not int or size < 0 for size in sizes):
        raise ProtocolError("bad frame list in message header")
    if len(sizes) > MAX_FRAMES:
        raise ProtocolError(f"message of {len(sizes)} arrays exceeds the limit of "
                            f"{MAX_FRAMES} arrays")
    if header_size + sum(sizes) > max_bytes:
        raise ProtocolError(
            f"message of {header_size + sum(sizes)} bytes exceeds the limit of {max_bytes} bytes"
        )
    frames: list[bytes] = [_read_exact(fd, size, deadline) for size in sizes]  # type: ignore[misc]
    return header, frames
