"""The grader's side of the student runtime: ``StudentRuntime``, one sandboxed submission.

A hidden test writes::

    with StudentRuntime(workspace, ["mlp_numpy"]) as runtime:
        student = runtime.student
        out = student.mlp_numpy.relu(x)             # a numpy array comes back
        model = student.mlp_numpy.FullConnectionModel([100])   # a handle
        model.W1 = w                                 # attribute set
        probs = model.forward(X)                     # method call

Plain data (numbers, strings, None, lists, tuples, str-keyed dicts, numeric
numpy arrays) comes back as values; everything else stays in the runtime and
comes back as a :class:`~grader.runtime.proxy.HandleProxy`. Failures raise subclasses of
:class:`~grader.runtime.errors.StudentFailure`.

If the runtime dies (crash, timeout, memory), the call that caused it fails
and the next call starts a fresh runtime and re-imports the submission: the
state of the old one (trained weights, handles, files it wrote) is lost, and
using an old handle raises :class:`StudentCrashed`.

Every start, import and call counts against the submission's total time budget
(``SandboxLimits.total_time_s``): a call's limit is the smaller of its own and the time
left, and once the budget is spent every further call fails at once with
:class:`TimeBudgetExhausted`. Time the grader spends between calls is not counted.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import threading
import time
import weakref
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from grader.i18n import Domain
from grader.intake.notebooks import NotebookLines
from grader.runtime import protocol
from grader.runtime.definitions import DefinitionsResult, SkippedStatement, definitions_only
from grader.runtime.errors import (
    ImportFailed,
    ProtocolViolation,
    StudentAttributeError,
    StudentCrashed,
    StudentError,
    StudentTimeout,
    TimeBudgetExhausted,
    TracebackLine,
    in_notebook_cells,
)
from grader.runtime.process import RuntimeProcess, SandboxError
from grader.runtime.protocol import Callable, Handle, ModuleRef
from grader.runtime.proxy import HandleProxy, ModuleProxy, StudentProxy
from grader.runtime.sandbox import (
    GpuAssignment,
    SandboxLimits,
    build_command,
    bwrap_usable,
    choose_userns,
    default_paths,
    fallback_usable,
    next_sandbox_uid,
    prepare_workspace,
    stage_workspace,
    warn_once,
)
from grader.runtime.seccomp import SeccompUnavailable, filter_fd

__all__ = ["StudentRuntime"]

_, _n = Domain("cli").functions()


def _frames(raw: Any) -> tuple[TracebackLine, ...]:
    """Traceback lines from the runtime's wire format ``[[file, line, function, text], ...]``.

    The reply is written by the student's process and may be forged: a line that is not
    four fields with an integer line number is dropped, never an exception in the grader.
    """
    if not isinstance(raw, (list, tuple)):
        return ()
    return tuple(TracebackLine(str(f[0]), f[1], str(f[2]), str(f[3]).strip()) for f in raw
                 if isinstance(f, (list, tuple)) and len(f) == 4 and type(f[1]) is int)


MAX_LENGTH = (1 << 63) - 1
"""Largest length `len()` of a handle may return (Py_ssize_t on 64-bit machines)."""


class StudentRuntime:
    """A sandboxed process holding one submission, restarted lazily after a crash.

    Args:
        workspace: The submission's private workspace copy; never written to. Under
            bubblewrap the runtime works on a copy of it in a size-limited tmpfs; without
            bubblewrap, on a staged copy (chowned to the sandbox uid when root).
        modules: Module names to import, e.g. ``["mlp_numpy"]`` for ``mlp_numpy.py``.
        limits: Resource limits.
        env: Extra environment variables for the runtime.
        gpu: A GPU lent to this runtime, or None.
        use_bwrap: Force bubblewrap on or off; None uses it where it works.
    """

    def __init__(
        self,
        workspace: str | os.PathLike[str],
        modules: Sequence[str],
        *,
        limits: SandboxLimits | None = None,
        env: Mapping[str, str] | None = None,
        gpu: GpuAssignment | None = None,
        use_bwrap: bool | None = None,
    ) -> None:
        self.workspace = Path(workspace).resolve()
        self.modules = tuple(modules)
        self.limits = limits or SandboxLimits()
        self.env = dict(env or {})
        self.gpu = gpu
        self.use_bwrap = bwrap_usable() if use_bwrap is None else use_bwrap
        self.definitions: dict[str, DefinitionsResult] = {}
        self.import_errors: dict[str, ImportFailed] = {}
        self.crashes: list[str] = []
        # Modules converted from notebooks: tracebacks name the notebook's cell and line.
        self.notebooks: dict[str, NotebookLines] = {}
        self._sources: list[dict[str, str]] | None = None
        self._process: RuntimeProcess | None = None
        self._generation = 0
        self._closed = False
        self._outputs: list[str] = []
        self._lock = threading.RLock()
        self._proxies: weakref.WeakValueDictionary[int, HandleProxy] = (
            weakref.WeakValueDictionary())
        self._pending_releases: set[int] = set()
        self._call_timeout: float | None = None
        self._label: str | None = None
        self._encoding_frames: list[bytes] = []
        self._spent_s = 0.0
        self._staged: str | None = None
        self.sandbox_uid = next_sandbox_uid()
        self.userns = False
        self.notes: list[str] = []

    def _note(self, text: str) -> None:
        """Record a missing protection with this runtime (it reaches the results).

        The terminal hears it once per process (`warn_once`), however many runtimes start.
        """
        if text not in self.notes:
            self.notes.append(text)
            warn_once(f"student runtime: {text}")

    # -- life cycle -------------------------------------------------------------

    def __enter__(self) -> StudentRuntime:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def student(self) -> StudentProxy:
        """The ``student`` object hidden tests use: ``student.<module>.<name>``."""
        return StudentProxy(self)

    @property
    def skipped(self) -> dict[str, tuple[SkippedStatement, ...]]:
        """Top-level statements not run at import, per module (for the report)."""
        return {name: result.skipped for name, result in self.definitions.items()}

    def start(self) -> None:
        """Start the runtime and import the submission (done lazily if not called)."""
        with self._lock:
            if self._closed:
                raise RuntimeError("this StudentRuntime is closed")
            if self._process is None or not self._process.alive():
                self._check_budget("starting the runtime")
                self._charged(self._launch_and_import)

    def _charged(self, work: Any) -> None:
        """Run ``work`` (a start), charging the time outside calls to the budget."""
        started, spent = time.monotonic(), self._spent_s
        try:
            work()
        finally:  # the import calls inside were charged already; add the rest
            self._spent_s = spent + (time.monotonic() - started)

    def close(self) -> None:
        """Stop the runtime; its processes are killed if they do not exit."""
        with self._lock:
            self._closed = True
            self._retire()
            if self._staged is not None:
                shutil.rmtree(self._staged, ignore_errors=True)
                self._staged = None

    @property
    def time_left_s(self) -> float:
        """What is left of the submission's total time budget."""
        return self.limits.total_time_s - self._spent_s

    def output(self) -> str:
        """Printed output of the submission (every run, head and tail kept)."""
        with self._lock:
            current = [self._process.output()] if self._process else []
            return "\n--- the runtime was restarted ---\n".join(self._outputs + current)

    @contextmanager
    def time_limit(self, seconds: float) -> Iterator[None]:
        """Use another wall-clock limit for the calls made inside the block."""
        previous, self._call_timeout = self._call_timeout, seconds
        try:
            yield
        finally:
            self._call_timeout = previous

    def seed(self, seed: int) -> None:
        """Seed Python's ``random``, and numpy and TensorFlow if the submission imported them."""
        self._request("seed", {"seed": int(seed)}, [], f"seed({seed})")

    def ping(self) -> dict[str, Any]:
        """Round trip without student code: pid, uid and imported modules of the runtime."""
        return self._request("ping", {}, [], "ping")

    # -- starting ---------------------------------------------------------------

    def _prepare_sources(self) -> list[dict[str, str]]:
        """Read and filter each module once; record missing files and syntax errors."""
        if self._sources is not None:
            return self._sources
        sources = []
        present = sorted(p.name for p in self.workspace.glob("*.py"))
        for name in self.modules:
            path = self.workspace / f"{name}.py"
            if not path.is_file():
                self.import_errors[name] = ImportFailed(name, _(
                    "{file} was not found in the submission; found: {found}", file=f"{name}.py",
                    found=", ".join(present) or _("no .py files")))
                continue
            try:
                text = path.read_bytes()  # decoded as Python would (BOM, coding line)
            except OSError as exc:
                self.import_errors[name] = ImportFailed(name, _(
                    "{file} could not be read: {error}", file=f"{name}.py", error=exc))
                continue
            lines = NotebookLines.from_module(text)
            if lines is not None:
                self.notebooks[f"{name}.py"] = lines
            result = definitions_only(text, f"{name}.py")
            self.definitions[name] = result
            if result.error is not None:
                error, where = result.error, lines.position(result.error.line) if lines else None
                if where is not None:  # "act.ipynb, cell 3, line 2", as the student sees it
                    error = dataclasses.replace(error, filename=_(
                        "{notebook}, cell {cell}", notebook=lines.notebook, cell=where[0]),
                        line=where[1])
                self.import_errors[name] = ImportFailed(name, str(error))
                continue
            sources.append({"name": name, "source": result.source or ""})
        self._sources = sources
        return sources

    def _paths(self) -> Any:
        """The sandbox's host paths; the submission comes from a staged copy of the workspace.

        Under bwrap the copy is bound read-only and the runtime works on its own tmpfs;
        without bwrap the runtime works in the copy itself (chowned to the sandbox uid when
        the grader is root). Either way the intake's workspace is never written to.
        """
        paths = default_paths(self.workspace)
        if self._staged is None:
            if not self.use_bwrap and self.sandbox_uid is not None and \
                    not fallback_usable(paths):
                raise SandboxError(
                    "the grader is root and bubblewrap is not usable, and the unprivileged "
                    f"uid {self.sandbox_uid[0]} cannot reach the interpreter "
                    f"({', '.join(paths.python_roots)}): student code would run as root, so "
                    "it is not run; install bubblewrap or run the grader as a non-root user")
            self._staged = stage_workspace(self.workspace)
            staged = dataclasses.replace(paths, workspace=self._staged)
            if self.use_bwrap:
                self.userns = choose_userns(staged, self.sandbox_uid)
        if not self.use_bwrap:
            prepare_workspace(self._staged, self.sandbox_uid)
        return dataclasses.replace(paths, workspace=self._staged)

    def _spawn(self) -> RuntimeProcess:
        """Start a runtime process and wait for its handshake."""
        paths = self._paths()

        def build(request_fd: int, response_fd: int) -> Any:
            seccomp_fd = None
            if self.use_bwrap:
                try:
                    seccomp_fd = filter_fd()
                except SeccompUnavailable:
                    pass  # build_command records the missing filter in the notes
            command = build_command(self.limits, paths, request_fd=request_fd,
                                    response_fd=response_fd, use_bwrap=self.use_bwrap,
                                    sandbox_uid=self.sandbox_uid, gpu=self.gpu,
                                    extra_env=self.env, userns=self.userns,
                                    seccomp_fd=seccomp_fd)
            for note in command.notes:
                self._note(note)
            return command

        budget_left = self.time_left_s
        process = RuntimeProcess.launch(self.limits, build)
        deadline = time.monotonic() + min(self.limits.import_timeout_s, budget_left)
        try:
            header, _ = protocol.read_message(process.response_r, max_bytes=1 << 16,
                                              deadline=deadline)
        except protocol.ProtocolError as exc:
            process.kill("did not start")
            process.close()
            if isinstance(exc, protocol.ChannelTimeout) and \
                    budget_left < self.limits.import_timeout_s:
                raise TimeBudgetExhausted(self.limits.total_time_s, "starting the runtime",
                                          stopped=True) from None
            raise SandboxError(f"the student runtime did not start ({exc}); its output:\n"
                               f"{process.output()[-3000:]}") from None
        if header.get("v") != "ready":
            process.close()
            raise SandboxError(f"unexpected handshake from the runtime: {header!r:.200}")
        return process

    def _launch_and_import(self) -> None:
        """(Re)start the runtime and import every module that has not failed before."""
        sources = self._prepare_sources()
        self._retire()
        self._generation += 1
        self._process = self._spawn()
        for module in sources:
            name = module["name"]
            if name in self.import_errors:
                continue
            what = f"importing {name}"
            try:
                results = self._exchange("import", {"sources": sources, "names": [name]}, [],
                                         what, self.limits.import_timeout_s)
            except TimeBudgetExhausted:
                raise  # not the module's fault: it may import fine in a later run
            except (StudentCrashed, StudentTimeout, ProtocolViolation) as exc:
                self.import_errors[name] = ImportFailed(name, f"{what}: {exc}")
                self._retire()
                self._generation += 1
                self._process = self._spawn()
                continue
            error = results.get(name) if isinstance(results, dict) else None
            if error is not None:  # a forged record that is not a dict reads as an empty one
                self.import_errors[name] = self._import_failure(
                    name, error if isinstance(error, Mapping) else {})

    def _import_failure(self, name: str, error: Mapping[str, Any]) -> ImportFailed:
        """Build ImportFailed from the runtime's error record."""
        frames = in_notebook_cells(_frames(error.get("traceback", ())), self.notebooks)
        if error.get("kind") == "exit":
            return ImportFailed(name, f"the submission called sys.exit({error.get('code')}) "
                                      "while being imported", frames)
        return ImportFailed(name, f"{error.get('type')}: {error.get('message')}", frames)

    def _retire(self) -> None:
        """Stop the current process, keeping its output."""
        if self._process is not None:
            self._process.close()
            self._outputs.append(self._process.output())
            self._process = None

    # -- requests ---------------------------------------------------------------

    def _request(self, op: str, fields: dict[str, Any], frames: list[bytes], what: str,
                 timeout: float | None = None) -> Any:
        """Send one request (restarting the runtime if it died) and decode the answer."""
        with self._lock:
            if self._closed:
                raise RuntimeError("this StudentRuntime is closed")
            self._check_budget(what)
            if self._process is None or not self._process.alive():
                if self._process is not None:
                    self.crashes.append(self._process.exit_reason()[0])
                self._charged(self._launch_and_import)
                self._check_budget(what)
            limit = timeout or self._call_timeout or self.limits.call_timeout_s
            return self._exchange(op, fields, frames, what, limit)

    def _check_budget(self, what: str) -> None:
        """Refuse a call once the submission's total time budget is spent."""
        if self.time_left_s <= 0:
            raise TimeBudgetExhausted(self.limits.total_time_s, what)

    def _exchange(self, op: str, fields: dict[str, Any], frames: list[bytes], what: str,
                  limit: float) -> Any:
        """One request/response on the current process; maps every failure to StudentFailure.

        The call's limit is cut to what is left of the total time budget, and the time it
        takes is charged to that budget.
        """
        process = self._process
        assert process is not None
        self._check_budget(what)
        by_budget = self.time_left_s < limit
        limit = min(limit, self.time_left_s)
        releases, self._pending_releases = self._pending_releases, set()
        header = {"op": op, **fields, "releases": sorted(releases)}
        started = time.monotonic()
        deadline = started + limit
        max_bytes = self.limits.max_message_mb << 20
        try:
            protocol.write_message(process.request_w, header, frames, deadline)
            response, out_frames = protocol.read_message(
                process.response_r, max_bytes=max_bytes, deadline=deadline)
        except protocol.ChannelTimeout:
            if by_budget:
                process.kill(f"{TimeBudgetExhausted.__name__}: total budget spent")
                self.crashes.append(f"{what}: stopped: the time budget ran out")
                raise TimeBudgetExhausted(self.limits.total_time_s, what, stopped=True) \
                    from None
            process.kill(f"timed out after {limit:g} s")
            self.crashes.append(f"{what}: timed out after {limit:g} s")
            raise StudentTimeout(limit, what) from None
        except protocol.ChannelClosed:
            reason, code, sig = process.exit_reason()
            self.crashes.append(f"{what}: {reason}")
            raise StudentCrashed(reason, code, sig,
                                 memory=process.killed_for_memory) from None
        except protocol.ProtocolError as exc:
            process.kill(f"protocol violation: {exc}")
            self.crashes.append(f"{what}: protocol violation: {exc}")
            raise ProtocolViolation(
                f"the answer of {what} was refused and the runtime was stopped: {exc} "
                f"(max_message_mb = {self.limits.max_message_mb})") from None
        finally:
            self._spent_s += time.monotonic() - started
        if response.get("ok") is True:
            self._label = what if op == "getattr" else None  # names a returned function
            try:
                return protocol.decode_value(response.get("v"), out_frames, self._resolve)
            except (protocol.ProtocolError, RecursionError) as exc:
                raise ProtocolViolation(f"{what} returned something that may not cross: "
                                        f"{exc}") from None
        error = response.get("error")
        raise self._failure(error if isinstance(error, Mapping) else {}, op, what)

    def _failure(self, error: Mapping[str, Any], op: str, what: str) -> Exception:
        """The exception for an error response."""
        kind = error.get("kind")
        frames = in_notebook_cells(_frames(error.get("traceback", ())), self.notebooks)
        if kind == "student":
            type_name = str(error.get("type"))
            message = str(error.get("message"))
            if error.get("memory") and self.limits.address_space_mb:
                message = _("{message} (memory limit {limit} MB)", message=message,
                            limit=self.limits.address_space_mb)
            if error.get("file_too_large"):
                message = _("{message} (file size limit {limit} MB)", message=message,
                            limit=self.limits.file_size_mb)
            if error.get("disk_full"):
                message = _("{message} ({full})", message=message,
                            full=self.limits.workspace_full())
            cls = StudentAttributeError if (op == "getattr" and type_name == "AttributeError") \
                else StudentError
            return cls(type_name, message, frames)
        if kind == "exit":
            return StudentCrashed(_("the submission called sys.exit({code}) during {what}",
                                    code=error.get("code"), what=what))
        if kind == "protocol":
            return ProtocolViolation(f"{what}: {error.get('message')}")
        return ProtocolViolation(f"{what}: the runtime refused the request: "
                                 f"{error.get('message')}")

    # -- values -----------------------------------------------------------------

    def _resolve(self, node: dict[str, Any]) -> Any:
        """Handles from the runtime become proxies; nothing else may be referenced."""
        if node.get("t") != "h":
            raise protocol.ProtocolError(f"the runtime may not send {node.get('t')!r} references")
        handle = Handle(int(node["id"]), str(node.get("type"))[:100], str(node.get("repr"))[:200])
        proxy = self._proxies.get(handle.id)
        if proxy is None or proxy._generation != self._generation:
            proxy = HandleProxy(self, handle, self._generation, self._label or handle.type_name)
            self._proxies[handle.id] = proxy
        self._pending_releases.discard(handle.id)  # alive again: keep it in the runtime
        return proxy

    def _encode_reference(self, value: Any) -> dict[str, Any]:
        """Grader-side values that are not plain data: handles, modules, named callables."""
        if isinstance(value, HandleProxy):
            value._check_alive()
            return {"t": "h", "id": value._handle.id}
        if isinstance(value, ModuleProxy):
            return {"t": "m", "name": value._name}
        if isinstance(value, ModuleRef):
            return {"t": "m", "name": value.name}
        if isinstance(value, Callable):
            return {"t": "f", "name": value.name}
        if isinstance(value, protocol.np.ndarray):
            return protocol.encode_value(protocol.np.asarray(value), self._encoding_frames,
                                         self._encode_reference)
        raise TypeError(f"cannot send a {type(value).__name__} to student code; expected plain "
                        "data, a numeric numpy array, a student object or Callable(name)")

    def _encode(self, values: dict[str, Any]) -> tuple[dict[str, Any], list[bytes]]:
        """Encode request fields that hold values."""
        frames: list[bytes] = []
        self._encoding_frames = frames
        try:
            fields = {key: protocol.encode_value(value, frames, self._encode_reference)
                      for key, value in values.items()}
        except protocol.ProtocolError as exc:
            raise TypeError(f"cannot send this value to student code: {exc}") from None
        return fields, frames

    def _release(self, handle_id: int, generation: int) -> None:
        """Called when a proxy is garbage-collected: free the object on the next request."""
        if generation == self._generation and not self._closed:
            self._pending_releases.add(handle_id)

    def call(self, target: Any, name: str | None, args: tuple[Any, ...],
             kwargs: dict[str, Any], what: str) -> Any:
        """Call ``target(*args, **kwargs)`` or ``target.name(*args, **kwargs)`` in the runtime."""
        fields, frames = self._encode({"target": target, "args": list(args), "kwargs": kwargs})
        if name is None:
            return self._request("call", fields, frames, what)
        return self._request("call_method", {**fields, "name": name}, frames, what)

    def getattr(self, target: Any, name: str, what: str) -> Any:
        fields, frames = self._encode({"target": target})
        return self._request("getattr", {**fields, "name": name}, frames, what)

    def setattr(self, target: Any, name: str, value: Any, what: str) -> None:
        fields, frames = self._encode({"target": target, "value": value})
        self._request("setattr", {**fields, "name": name}, frames, what)

    def getitem(self, target: Any, key: Any, what: str) -> Any:
        fields, frames = self._encode({"target": target, "key": key})
        return self._request("getitem", fields, frames, what)

    def len(self, target: Any, what: str) -> int:
        fields, frames = self._encode({"target": target})
        value = self._request("len", fields, frames, what)
        # a forged reply of 10**400, -1 or "x" made len() raise OverflowError or ValueError
        # in the grader: a length is an int that len() accepts, or the reply is refused
        if type(value) is not int or not 0 <= value <= MAX_LENGTH:
            raise ProtocolViolation(f"{what}: expected a length (an integer from 0 to "
                                    f"{MAX_LENGTH:,}), received {type(value).__name__} "
                                    f"{repr(value)[:40]}")
        return value

    def to_array(self, target: Any, what: str) -> Any:
        fields, frames = self._encode({"target": target})
        value = self._request("to_array", fields, frames, what)
        if type(value) is not protocol.np.ndarray:
            raise ProtocolViolation(f"{what}: expected an array, received {type(value).__name__}")
        return value

    def module(self, name: str) -> ModuleProxy:
        """The proxy of one submission module; raises ImportFailed if it did not import."""
        with self._lock:
            self._check_budget(f"importing {name}")
            self.start()
        if name in self.import_errors:
            raise self.import_errors[name]
        return ModuleProxy(self, name)
