"""The student runtime: a process, inside the sandbox, that holds the student's code.

Started by :mod:`grader.runtime.boot` (which has dropped privileges, applied
resource limits and filled the workspace). It moves its two protocol pipes out of the
student's way, then serves requests
until ``shutdown`` or end of stream. Every object that is not plain data stays
here in a handle table. Only :mod:`protocol`, :mod:`callables` and (under a GPU memory
cap) :mod:`gpu_memory` are imported from the grader; nothing else of the grader is
visible in the sandbox, and no grader tool runs here: verdicts are computed in the
grader's process or in the evaluator (`grader.evaluator`), never beside student code.
"""

from __future__ import annotations

import errno
import fcntl
import importlib
import importlib.abc
import importlib.util
import os
import random
import sys
import traceback
from types import ModuleType
from typing import Any

from grader.runtime import callables, protocol

_HIGH_FD = 200  # protocol pipes move above the fds student code is likely to use


class BadRequest(Exception):
    """The grader asked for something that does not exist (e.g. a released handle)."""


class _DefinitionsLoader(importlib.abc.Loader):
    """Runs a module's definitions-only source under the student's real file name."""

    def __init__(self, filename: str, source: str) -> None:
        self.filename = filename
        self.source = source

    def create_module(self, spec: Any) -> None:
        return None

    def exec_module(self, module: ModuleType) -> None:
        code = compile(self.source, self.filename, "exec", dont_inherit=True)
        exec(code, module.__dict__)  # noqa: S102 - this is the point of the runtime


class _DefinitionsFinder(importlib.abc.MetaPathFinder):
    """Serves the submission's modules from their definitions-only sources.

    Installed first on ``sys.meta_path``, so a student module importing
    another student module gets the definitions-only version too.
    """

    def __init__(self) -> None:
        self.sources: dict[str, tuple[str, str]] = {}

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if fullname not in self.sources:
            return None
        filename, source = self.sources[fullname]
        loader = _DefinitionsLoader(filename, source)
        return importlib.util.spec_from_file_location(fullname, filename, loader=loader)


def _safe_repr(value: Any, limit: int = 200) -> str:
    """A short repr that survives a hostile ``__repr__``."""
    try:
        text = repr(value)
        if type(text) is not str:
            return "<repr returned a non-str>"
    except Exception as exc:  # noqa: BLE001 - any failure becomes a placeholder
        return f"<repr failed: {type(exc).__name__}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _type_name(value: Any) -> str:
    """The qualified name of ``value``'s type, always a str."""
    name = getattr(type(value), "__qualname__", None)
    return name[:100] if type(name) is str else "object"


class Server:
    """Serves one grader over two pipes.

    Args:
        request_fd: Pipe the grader writes requests to.
        response_fd: Pipe the runtime writes responses to.
        workspace: The submission's directory inside the sandbox.
        max_message_bytes: Largest reply the grader accepts (larger ones are refused here).
    """

    def __init__(
        self, request_fd: int, response_fd: int, workspace: str, max_message_bytes: int
    ) -> None:
        self.request_fd = request_fd
        self.response_fd = response_fd
        self.workspace = workspace.rstrip("/") + "/"
        self.max_message_bytes = max_message_bytes
        self.handles: dict[int, Any] = {}
        self.by_identity: dict[int, int] = {}
        self.next_id = 1
        self.modules: dict[str, ModuleType] = {}
        self.finder = _DefinitionsFinder()
        sys.meta_path.insert(0, self.finder)

    # -- values ---------------------------------------------------------------

    def _register(self, value: Any) -> dict[str, Any]:
        """Keep a non-plain object here and describe it as a handle."""
        if isinstance(value, protocol.np.ndarray):
            array = protocol.np.asarray(value)  # ndarray subclasses cross as plain arrays
            if type(array) is protocol.np.ndarray and protocol.is_numeric_dtype(array.dtype):
                frames: list[bytes] = self._frames
                return protocol.encode_value(array, frames, self._register)
            raise protocol.ProtocolError(
                f"a numpy array of dtype {value.dtype} cannot be returned; expected a numeric "
                "or bool dtype"
            )
        key = id(value)
        handle_id = self.by_identity.get(key)
        if handle_id is None or self.handles.get(handle_id) is not value:
            handle_id = self.next_id
            self.next_id += 1
            self.handles[handle_id] = value
            self.by_identity[key] = handle_id
        return {"t": "h", "id": handle_id, "type": _type_name(value), "repr": _safe_repr(value)}

    def _resolve(self, node: dict[str, Any]) -> Any:
        """Turn a reference tag from the grader into the object it names."""
        tag = node["t"]
        if tag == "h":
            if node["id"] not in self.handles:
                raise BadRequest(f"handle {node['id']} was released or never existed")
            return self.handles[node["id"]]
        if tag == "m":
            if node["name"] not in self.modules:
                raise BadRequest(f"module {node['name']!r} is not imported")
            return self.modules[node["name"]]
        if tag == "f":
            if node["name"] not in callables.REGISTRY:
                raise BadRequest(f"no grader callable named {node['name']!r}")
            return callables.REGISTRY[node["name"]]
        raise protocol.ProtocolError(f"unknown reference tag {tag!r}")

    def _decode(self, node: Any, frames: list[bytes]) -> Any:
        return protocol.decode_value(node, frames, self._resolve)

    # -- errors ---------------------------------------------------------------

    def _student_frames(self, exc: BaseException) -> list[list[Any]]:
        """Traceback frames that lie in the student's files, relative to the workspace."""
        frames = []
        for frame in traceback.extract_tb(exc.__traceback__):
            if frame.filename.startswith(self.workspace):
                name = frame.filename[len(self.workspace) :]
                frames.append([name, frame.lineno, frame.name, frame.line or ""])
        return frames

    def _error(self, exc: BaseException) -> dict[str, Any]:
        """Describe an exception raised while serving a request."""
        if isinstance(exc, SystemExit):
            return {"kind": "exit", "code": _safe_repr(exc.code, 100),
                    "traceback": self._student_frames(exc)}
        if isinstance(exc, protocol.ProtocolError):
            return {"kind": "protocol", "message": str(exc)}
        if isinstance(exc, BadRequest):
            return {"kind": "bad_request", "message": str(exc)}
        try:
            message = str(exc)
        except Exception:  # noqa: BLE001 - a hostile __str__
            message = "<str() of the exception failed>"
        return {
            "kind": "student",
            "type": _type_name(exc),
            "message": message[:4000],
            "traceback": self._student_frames(exc),
            "memory": isinstance(exc, MemoryError),
            "file_too_large": isinstance(exc, OSError) and exc.errno == errno.EFBIG,
            "disk_full": isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT),
        }

    # -- operations -----------------------------------------------------------

    def op_import(self, header: dict[str, Any], frames: list[bytes]) -> Any:
        """Import the submission's modules; report each one's outcome."""
        for module in header["sources"]:
            filename = self.workspace + module["name"] + ".py"
            self.finder.sources[module["name"]] = (filename, module["source"])
        results = {}
        for name in header["names"]:
            try:
                self.modules[name] = importlib.import_module(name)
                results[name] = None
            except BaseException as exc:  # noqa: BLE001 - SystemExit at import included
                sys.modules.pop(name, None)
                results[name] = self._error(exc)
        return results

    def op_getattr(self, header: dict[str, Any], frames: list[bytes]) -> Any:
        target = self._decode(header["target"], frames)
        return getattr(target, header["name"])

    def op_setattr(self, header: dict[str, Any], frames: list[bytes]) -> Any:
        target = self._decode(header["target"], frames)
        setattr(target, header["name"], self._decode(header["value"], frames))
        return None

    def op_call(self, header: dict[str, Any], frames: list[bytes]) -> Any:
        target = self._decode(header["target"], frames)
        args = self._decode(header["args"], frames)
        kwargs = self._decode(header["kwargs"], frames)
        return target(*args, **kwargs)

    def op_call_method(self, header: dict[str, Any], frames: list[bytes]) -> Any:
        target = self._decode(header["target"], frames)
        args = self._decode(header["args"], frames)
        kwargs = self._decode(header["kwargs"], frames)
        return getattr(target, header["name"])(*args, **kwargs)

    def op_getitem(self, header: dict[str, Any], frames: list[bytes]) -> Any:
        return self._decode(header["target"], frames)[self._decode(header["key"], frames)]

    def op_len(self, header: dict[str, Any], frames: list[bytes]) -> Any:
        return len(self._decode(header["target"], frames))

    def op_to_array(self, header: dict[str, Any], frames: list[bytes]) -> Any:
        """``np.asarray`` of a handle, done here; only a plain numeric array may result."""
        array = protocol.np.asarray(self._decode(header["target"], frames))
        if type(array) is not protocol.np.ndarray or not protocol.is_numeric_dtype(array.dtype):
            raise protocol.ProtocolError(
                f"converting it to an array gave {_type_name(array)} of dtype "
                f"{getattr(array, 'dtype', '?')}; expected a numeric or bool numpy array"
            )
        return array

    def op_release(self, header: dict[str, Any], frames: list[bytes]) -> Any:
        return None  # releases ride on every request; see _handle

    def op_ping(self, header: dict[str, Any], frames: list[bytes]) -> Any:
        return {"pid": os.getpid(), "uid": os.getuid(), "modules": sorted(self.modules)}

    def op_seed(self, header: dict[str, Any], frames: list[bytes]) -> Any:
        """Seed random, and numpy/TensorFlow only if the submission imported them."""
        seed = int(header["seed"])
        random.seed(seed)
        if "numpy" in sys.modules:
            sys.modules["numpy"].random.seed(seed)
        if "tensorflow" in sys.modules:
            sys.modules["tensorflow"].random.set_seed(seed)
        if "keras" in sys.modules and hasattr(sys.modules["keras"], "utils"):
            sys.modules["keras"].utils.set_random_seed(seed)
        return None

    # -- loop -----------------------------------------------------------------

    def _handle(self, header: dict[str, Any], frames: list[bytes]) -> dict[str, Any]:
        """Run one request and build the response header (frames go to self._frames)."""
        for handle_id in header.get("releases", ()):
            value = self.handles.pop(handle_id, None)
            if value is not None and self.by_identity.get(id(value)) == handle_id:
                del self.by_identity[id(value)]
        method = getattr(self, "op_" + str(header.get("op")), None)
        if method is None:
            return {"ok": False, "error": {"kind": "bad_request",
                                           "message": f"unknown op {header.get('op')!r}"}}
        self._frames = []
        try:
            result = method(header, frames)
            encoded = protocol.encode_value(result, self._frames, self._register)
        except BaseException as exc:  # noqa: BLE001 - everything becomes a response
            self._frames = []
            return {"ok": False, "error": self._error(exc)}
        return {"ok": True, "v": encoded}

    def serve(self) -> None:
        """Answer requests until ``shutdown`` or until the grader closes the pipe."""
        while True:
            try:
                header, frames = protocol.read_message(
                    self.request_fd, max_bytes=protocol.MAX_REQUEST_BYTES,
                    max_header=protocol.MAX_REQUEST_HEADER_BYTES,
                )
            except protocol.ChannelClosed:
                return
            if header.get("op") == "shutdown":
                return
            response = self._handle(header, frames)
            self._flush_output()
            out_frames, self._frames = self._frames, []
            try:
                pieces = protocol.pack_message(response, out_frames)
            except (ValueError, TypeError, RecursionError) as exc:
                pieces = protocol.pack_message({"ok": False, "error": {
                    "kind": "protocol", "message": f"the value cannot be sent: {exc}"}}, [])
            size = sum(len(piece) for piece in pieces)
            if size > self.max_message_bytes:
                pieces = protocol.pack_message({"ok": False, "error": {
                    "kind": "protocol", "message": (
                        f"the value is {size / 2**20:.1f} MB, over the limit of "
                        f"{self.max_message_bytes / 2**20:.1f} MB")}}, [])
            elif len(pieces[1]) > protocol.MAX_HEADER_BYTES:  # lists and numbers, not arrays
                pieces = protocol.pack_message({"ok": False, "error": {
                    "kind": "protocol", "message": (
                        f"the value's lists, numbers and strings take "
                        f"{len(pieces[1]) / 2**20:.1f} MB, over the limit of "
                        f"{protocol.MAX_HEADER_BYTES / 2**20:.1f} MB; return numbers as a "
                        "numpy array")}}, [])
            try:
                protocol.write_pieces(self.response_fd, pieces)
            except protocol.ChannelClosed:
                return

    @staticmethod
    def _flush_output() -> None:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:  # noqa: BLE001 - the student may have replaced the stream
                pass


def _move_fd(fd: int) -> int:
    """Duplicate ``fd`` above the low numbers, close-on-exec, and close the original."""
    moved = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, _HIGH_FD)
    os.close(fd)
    return moved


def main(config: dict[str, Any]) -> None:
    """Serve one grader; called by :mod:`grader.runtime.boot` after it dropped privileges."""
    request_fd = _move_fd(config["request_fd"])
    response_fd = _move_fd(config["response_fd"])
    # The workspace is never put on sys.path: the submission's modules come from the
    # definitions finder, so no file the student writes is imported by grader code.
    workspace = config["workspace"]
    if os.environ.get("GRADER_GPU_MEMORY_MB"):
        from grader.runtime import gpu_memory

        gpu_memory.apply_gpu_memory_cap()  # before any student code touches the GPU
    server = Server(request_fd, response_fd, workspace, config["max_message_bytes"])
    protocol.write_message(response_fd, {"ok": True, "v": "ready"}, [])
    server.serve()
    os._exit(0)  # skip interpreter teardown: student atexit hooks and threads do not run
