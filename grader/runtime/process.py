"""One running student runtime, seen from the grader: pipes, output, watchdog, kill.

The runtime's stdout and stderr go to one pipe that a thread drains, keeping
the first and last ``output_keep_kb`` KiB; past ``output_limit_mb`` the
runtime is killed. A second thread sums the resident memory of the runtime's
process tree and kills it above ``memory_mb``, and counts the files in the sandbox's
workspace and ``/tmp`` (tmpfs mounts: one ``statvfs`` each) and kills it above
``workspace_files``. Killing means SIGKILL to every
process in the tree and to the process group, so a process that ignores
SIGTERM still dies.
"""

from __future__ import annotations

import ctypes
import os
import select
import signal
import subprocess
import threading
import time
from collections import defaultdict
from collections.abc import Callable

from grader.i18n import Domain
from grader.runtime import protocol
from grader.runtime.sandbox import (
    RUNTIME_INSIDE,
    WORKSPACE_INSIDE,
    SandboxCommand,
    SandboxLimits,
)

_, _n = Domain("cli").functions()
_PR_SET_PDEATHSIG = 1
_LIBC = ctypes.CDLL(None, use_errno=True)


class SandboxError(RuntimeError):
    """The sandbox itself could not start: a grader or machine problem, not the student's."""


def _child_setup() -> None:
    """In the child before exec: die with the grader, never dump core."""
    _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    import resource

    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def process_tree(root: int) -> list[int]:
    """``root`` and all its descendants, from /proc (children of children included)."""
    children: dict[int, list[int]] = defaultdict(list)
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as stat:
                fields = stat.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue  # exited meanwhile
        children[int(fields[1])].append(int(entry.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, ()))
    return found


def resident_mb(pids: list[int]) -> float:
    """Summed VmRSS of ``pids`` in MiB (threads share their process's memory)."""
    total_kb = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status", "rb") as status:
                for line in status:
                    if line.startswith(b"VmRSS:"):
                        total_kb += int(line.split()[1])
                        break
        except (OSError, ValueError):
            continue
    return total_kb / 1024


def sandbox_files(pids: list[int]) -> int:
    """Files and directories in the sandbox's workspace and /tmp, seen through ``pids``.

    Both are tmpfs mounts in the sandbox's mount namespace, reached through
    ``/proc/<pid>/root``; their used inode counts (``f_files - f_ffree``) cost one
    ``statvfs`` each, however many files there are. The first pid inside the sandbox
    answers; 0 when none does (not started yet, or already gone).
    """
    for pid in pids:
        try:
            used = [os.statvfs(f"/proc/{pid}/root{inside}")
                    for inside in (WORKSPACE_INSIDE, "/tmp")]
            os.stat(f"/proc/{pid}/root{RUNTIME_INSIDE}")  # inside the sandbox, not the host
        except OSError:
            continue
        return sum(stat.f_files - stat.f_ffree for stat in used)
    return 0


def _running(pid: int) -> bool:
    """Whether ``pid`` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return stat.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except (OSError, IndexError):
        return False


def _wait_gone(pids: set[int], timeout_s: float = 2.0) -> None:
    """Wait until killed processes have exited and been reaped by their parents."""
    deadline = time.monotonic() + timeout_s
    while pids and time.monotonic() < deadline:
        pids = {pid for pid in pids if _running(pid)}
        if pids:
            time.sleep(0.01)


class RuntimeProcess:
    """A started runtime process and the threads that watch it.

    Args:
        command: What to run (from :func:`grader.runtime.sandbox.build_command`).
        limits: The limits the watchdogs enforce.
        request_w: The grader's end of the request pipe.
        response_r: The grader's end of the response pipe.
        popen: The started process.
        output_r: The read end of the output pipe.
    """

    def __init__(self, command: SandboxCommand, limits: SandboxLimits, request_w: int,
                 response_r: int, popen: subprocess.Popen[bytes], output_r: int) -> None:
        self.command = command
        self.limits = limits
        self.request_w = request_w
        self.response_r = response_r
        self.popen = popen
        self.kill_reason: str | None = None
        self.killed_for_memory = False  # the outcome's kind, set where it is known
        self._output_r = output_r
        self._keep = limits.output_keep_kb << 10
        self._head = bytearray()
        self._tail = bytearray()
        self.output_bytes = 0
        self._output_closed = False
        self._stopped = threading.Event()
        self._kill_lock = threading.Lock()
        self._output_lock = threading.Lock()
        self._drain = threading.Thread(target=self._drain_output, daemon=True)
        self._watch = threading.Thread(target=self._watch_memory, daemon=True)
        self._drain.start()
        self._watch.start()

    @classmethod
    def launch(cls, limits: SandboxLimits,
               build: Callable[[int, int], SandboxCommand]) -> RuntimeProcess:
        """Create the pipes, build the command around their fds and start it.

        Args:
            limits: The limits.
            build: Called with ``(request_fd, response_fd)``; returns the command.
        """
        request_r, request_w = os.pipe()
        response_r, response_w = os.pipe()
        output_r, output_w = os.pipe()
        for fd in (request_w, response_w):
            protocol.enlarge_pipe(fd)
        command = build(request_r, response_w)
        # A root grader starts bubblewrap (or the bare runtime) as the sandbox uid.
        user = {} if command.run_as is None else {
            "user": command.run_as[0], "group": command.run_as[1], "extra_groups": []}
        try:
            popen = subprocess.Popen(  # noqa: S603 - the argv is ours
                command.argv, env=dict(command.env), cwd=command.cwd,
                stdin=subprocess.DEVNULL, stdout=output_w, stderr=output_w,
                pass_fds=(request_r, response_w, *command.pass_fds), start_new_session=True,
                preexec_fn=_child_setup,  # noqa: PLW1509 - only async-signal-safe calls
                **user,
            )
        except (OSError, subprocess.SubprocessError) as exc:
            for fd in (request_r, request_w, response_r, response_w, output_r, output_w,
                       *command.pass_fds):
                os.close(fd)
            raise SandboxError(f"could not start the student runtime: {exc}") from exc
        for fd in (request_r, response_w, output_w, *command.pass_fds):
            os.close(fd)
        os.set_blocking(request_w, False)
        os.set_blocking(response_r, False)
        return cls(command, limits, request_w, response_r, popen, output_r)

    # -- watching ---------------------------------------------------------------

    def _drain_output(self) -> None:
        """Keep the head and the tail of the output; kill past the output limit."""
        limit = self.limits.output_limit_mb << 20
        poller = select.poll()
        poller.register(self._output_r, select.POLLIN)
        while True:
            poller.poll()  # waits without the lock: output() may read meanwhile
            # Read and keep under one lock: output() then never sees a chunk in between.
            with self._output_lock:
                try:
                    chunk = os.read(self._output_r, 1 << 16)
                except OSError:
                    chunk = b""
                if not chunk:
                    self._output_closed = True
                    os.close(self._output_r)
                    return
                self.output_bytes += len(chunk)
                if len(self._head) < self._keep:
                    room = self._keep - len(self._head)
                    self._head += chunk[:room]
                    chunk = chunk[room:]
                self._tail += chunk
                if len(self._tail) > 2 * self._keep:
                    del self._tail[: len(self._tail) - self._keep]
            if self.output_bytes > limit and self.kill_reason is None:
                self.kill(_("killed: output limit exceeded (the submission printed more "
                            "than {limit} MB)", limit=self.limits.output_limit_mb))

    def _watch_memory(self) -> None:
        """Poll the tree's resident memory and the sandbox's file count; kill above a limit."""
        interval = self.limits.watchdog_interval_s
        while not self._stopped.wait(interval):
            if self.popen.poll() is not None:
                return
            tree = process_tree(self.popen.pid)
            if resident_mb(tree) > self.limits.memory_mb:
                self.killed_for_memory = True
                self.kill(_("killed: memory limit {limit} MB exceeded",
                            limit=self.limits.memory_mb))
                return
            if self.command.uses_bwrap and \
                    sandbox_files(tree[1:]) > self.limits.workspace_files:
                self.kill(_("killed: {full} (the submission created more than {files} "
                            "files)", full=self.limits.workspace_full(),
                            files=self.limits.workspace_files))
                return

    # -- ending -----------------------------------------------------------------

    def alive(self) -> bool:
        return self.popen.poll() is None

    def kill(self, reason: str) -> None:
        """SIGKILL the whole tree and process group; the first reason given is kept."""
        with self._kill_lock:
            if self.kill_reason is None and self.popen.poll() is None:
                self.kill_reason = reason
            seen: set[int] = set()
            for _attempt in range(5):  # repeat: a fork bomb makes children while we kill
                pids = process_tree(self.popen.pid) if self.popen.poll() is None else []
                if not pids:
                    break
                seen.update(pids)
                for pid in pids:
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except (ProcessLookupError, PermissionError):
                        pass
            try:
                os.killpg(self.popen.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        try:
            self.popen.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        _wait_gone(seen - {self.popen.pid})

    def close(self, grace_s: float = 1.0) -> None:
        """Ask the runtime to stop, then kill what is left and release the fds."""
        tree = process_tree(self.popen.pid) if self.alive() else []
        if self.alive():
            try:
                protocol.write_message(self.request_w, {"op": "shutdown"}, [],
                                       time.monotonic() + grace_s)
                self.popen.wait(timeout=grace_s)
            except (protocol.ProtocolError, subprocess.TimeoutExpired):
                pass
        if self.alive():
            self.kill("stopped by the grader")
        for pid in tree[1:]:  # children the student left behind outlive a clean exit
            if _running(pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
        _wait_gone(set(tree[1:]))
        self._stopped.set()
        self._drain.join(timeout=5)
        for fd in (self.request_w, self.response_r):
            try:
                os.close(fd)
            except OSError:
                pass

    def exit_reason(self) -> tuple[str, int | None, int | None]:
        """Why the runtime ended: (human reason, exit code, signal)."""
        try:
            code = self.popen.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.kill("stopped responding")
            code = self.popen.wait()
        self._drain.join(timeout=2)  # the output limit may be the reason
        sig = -code if code < 0 else None
        if sig is None and self.command.uses_bwrap and code > 128:
            sig = code - 128  # bwrap reports a signal death as 128 + signal
        if self.kill_reason:
            return self.kill_reason, (None if sig else code), sig
        limits = self.limits
        if sig == signal.SIGXCPU or sig == signal.SIGKILL:
            return (_("killed: CPU time limit of {limit} s exceeded (CPU time of all calls "
                      "so far)", limit=limits.cpu_seconds), None, sig)
        if sig == signal.SIGXFSZ:
            return (_("killed: file size limit of {limit} MB exceeded",
                      limit=limits.file_size_mb), None, sig)
        if sig is not None:
            name = signal.Signals(sig).name if sig in signal.valid_signals() else str(sig)
            return _("the runtime was killed by signal {signal}", signal=name), None, sig
        return (_("the runtime exited with code {code}: the submission called os._exit(), "
                  "exit() in another thread, or crashed the interpreter", code=code), code, None)

    def _unread_output(self) -> bool:
        """Whether the pipe holds output not kept yet (call with the output lock held)."""
        if self._output_closed:
            return False
        poller = select.poll()
        poller.register(self._output_r, select.POLLIN)
        return any(events & select.POLLIN for _fd, events in poller.poll(0))

    def output(self) -> str:
        """The kept output: head, a marker for what was dropped, tail."""
        # Output printed before the last answer is in the pipe by now; wait until the
        # drain thread has kept it (bounded: a flooding process never stops writing).
        deadline = time.monotonic() + 0.5
        while True:
            with self._output_lock:
                if not self._unread_output() or time.monotonic() > deadline:
                    head = bytes(self._head)
                    tail = bytes(self._tail[-self._keep :]) if self._tail else b""
                    omitted = self.output_bytes - len(head) - len(tail)
                    break
            time.sleep(0.005)
        if omitted > 0:
            marker = f"\n... [{omitted} bytes of output omitted] ...\n".encode()
            return (head + marker + tail).decode("utf-8", errors="replace")
        return (head + tail).decode("utf-8", errors="replace")
