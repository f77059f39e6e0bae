"""How one student runtime is started: limits, file-system view, privileges, command line.

:func:`build_command` is pure: limits + paths + device assignment in, argv and
environment out, so the sandbox's shape can be unit-tested. The impure helpers
(:func:`default_paths`, :func:`stage_runtime_code`, :func:`stage_workspace`,
:func:`bwrap_usable`, :func:`userns_usable`) look at the machine.

Under bubblewrap the runtime sees: the system directories and the Python
installation read-only, a copy of the ``grader.runtime`` code it needs at
``/opt/nn-grader-runtime`` (not the grader's repository: no hidden tests, no
references), a read-only copy of the submission at ``/opt/nn-grader-input`` that
it copies into ``/submission``, a size-limited tmpfs (the only writable places are
that one and a private, size-limited ``/tmp``), fresh ``/proc`` and ``/dev``, no
network, no capabilities, and a seccomp filter (:mod:`grader.runtime.seccomp`).

The interpreter starts isolated (``python -I``: no environment variables, no user
site, no script or working directory on ``sys.path``) from the read-only runtime
directory, so no file the student can write is ever imported by grader code.

Privileges, in order of preference (:class:`Isolation`):

- ``userns``: bubblewrap runs unprivileged in a user namespace. A root grader starts
  it as a fresh unprivileged uid (Popen's ``user``), so the runtime is never root,
  not even inside the sandbox, and the host sees that uid.
- ``setuid``: a root grader whose interpreter an unprivileged uid cannot reach (a
  Python under ``/root``) runs bubblewrap as root with only CAP_SETUID/CAP_SETGID;
  the boot script drops to the sandbox uid before it imports or reads anything,
  which clears every capability.
- no bubblewrap: rlimits, a separate uid (a root grader refuses to run student
  code when it cannot switch uid) and a process group only.
"""

from __future__ import annotations

import atexit
import glob
import importlib.util
import itertools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from grader.i18n import Domain

_, _n = Domain("cli").functions()

WORKSPACE_INSIDE = "/submission"
RUNTIME_INSIDE = "/opt/nn-grader-runtime"
INPUT_INSIDE = "/opt/nn-grader-input"
"""The submission's files, read-only; the runtime copies them into the workspace."""
RUNTIME_FILES = ("__init__.py", "boot.py", "protocol.py", "server.py", "callables.py",
                 "gpu_memory.py")
"""The only grader files the sandbox sees (no grader tool: verdicts are computed outside)."""
SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib64", "/lib32", "/etc/alternatives")
SYSTEM_FILES = (
    "/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/localtime",
    "/etc/passwd", "/etc/group", "/etc/nsswitch.conf",
)
HIDDEN_DIRS = ("/usr/share/datasets", "/usr/local/share/datasets")
"""Test data the runtime must never read (hidden when they exist)."""
_UID_BASE = 200_000  # sandbox uids: unused by real accounts, one per runtime
_uid_counter = itertools.count()
NO_DROP = "-"
"""The boot script's uid argument when it has no uid to drop to."""


@dataclass(frozen=True)
class SandboxLimits:
    """Resource limits of one student runtime; ``[sandbox]`` in assignment.toml sets them.

    Attributes:
        cpu_seconds: RLIMIT_CPU for the runtime's whole life (all calls).
        memory_mb: Resident memory of the runtime's process tree; the
            grader's watchdog kills the runtime above it.
        address_space_mb: Optional RLIMIT_AS. Makes an oversized allocation
            fail at once with MemoryError, but breaks TensorFlow (which maps
            gigabytes of virtual memory): use for numpy-only assignments.
        file_size_mb: RLIMIT_FSIZE: the largest file the runtime may write.
        max_processes: RLIMIT_NPROC: processes and threads of the sandbox uid.
        open_files: RLIMIT_NOFILE.
        call_timeout_s: Wall-clock limit of one call.
        import_timeout_s: Wall-clock limit of starting and importing the submission.
        total_time_s: Wall-clock budget of the whole submission: every start, import and
            call of the runtime together. Each call's limit is the smaller of its own and
            the time left; past it the remaining calls fail as "time budget exhausted".
        output_limit_mb: Printed output above this kills the runtime.
        output_keep_kb: How much of the start and of the end of the output is kept.
        max_message_mb: Largest message (JSON header and arrays) accepted from the
            runtime; a larger reply kills it.
        workspace_mb: Size of the workspace file system (bwrap only).
        workspace_files: Files and directories the workspace and ``/tmp`` may hold
            together (bwrap only); the watchdog kills the runtime past it.
        tmp_size_mb: Size of the private ``/tmp`` (bwrap only).
        watchdog_interval_s: How often the memory and file-count watchdog looks.
    """

    cpu_seconds: int = 900
    memory_mb: int = 4096
    address_space_mb: int | None = None
    file_size_mb: int = 256
    max_processes: int = 256
    open_files: int = 1024
    call_timeout_s: float = 120.0
    import_timeout_s: float = 60.0
    total_time_s: float = 1800.0
    output_limit_mb: int = 32
    output_keep_kb: int = 64
    max_message_mb: int = 64
    workspace_mb: int = 256
    workspace_files: int = 10_000
    tmp_size_mb: int = 512
    watchdog_interval_s: float = 0.1

    def rlimits(self) -> dict[str, list[int]]:
        """The rlimits the server applies to itself, by ``resource`` name."""
        mb = 1 << 20
        limits = {
            # The hard limit a second later turns an ignored SIGXCPU into SIGKILL.
            "RLIMIT_CPU": [self.cpu_seconds, self.cpu_seconds + 1],
            "RLIMIT_FSIZE": [self.file_size_mb * mb] * 2,
            "RLIMIT_CORE": [0, 0],
            "RLIMIT_NOFILE": [self.open_files] * 2,
            "RLIMIT_NPROC": [self.max_processes] * 2,
        }
        if self.address_space_mb is not None:
            limits["RLIMIT_AS"] = [self.address_space_mb * mb] * 2
        return limits

    def workspace_full(self) -> str:
        """The sentence a student reads when the workspace or ``/tmp`` is full."""
        return _("the workspace is full: limit {size} MB / {files} files (and {tmp} MB in "
                 "/tmp)", size=self.workspace_mb, files=self.workspace_files,
                 tmp=self.tmp_size_mb)


@dataclass(frozen=True)
class GpuAssignment:
    """A GPU lent to one runtime (see `grader.devices.gpu_assignments`).

    Attributes:
        visible_devices: The value of CUDA_VISIBLE_DEVICES, e.g. ``"0"``.
        device_files: The ``/dev/nvidia*`` files to bind into the sandbox.
        memory_limit_mb: None: TensorFlow grows its GPU memory as needed
            (``TF_FORCE_GPU_ALLOW_GROWTH=true``), so runtimes sharing a GPU take
            only what they use. A number: a hard per-process cap, passed as
            ``GRADER_GPU_MEMORY_MB`` and applied by the runtime with
            ``tf.config.set_logical_device_configuration`` before student code runs.
    """

    visible_devices: str
    device_files: tuple[str, ...] = ()
    memory_limit_mb: int | None = None


GPU_MEMORY_ENV = "GRADER_GPU_MEMORY_MB"
"""The variable that carries a GPU memory cap into the runtime (read by its server)."""


def gpu_env(gpu: GpuAssignment | None) -> dict[str, str]:
    """The runtime's device variables: which GPU it may use and how much of its memory.

    Args:
        gpu: The GPU lent to the runtime, or None for the CPU only.

    Returns:
        ``CUDA_VISIBLE_DEVICES`` ("" hides every GPU), and for a GPU either
        ``TF_FORCE_GPU_ALLOW_GROWTH=true`` or ``GRADER_GPU_MEMORY_MB``.
    """
    if gpu is None:
        return {"CUDA_VISIBLE_DEVICES": ""}
    env = {"CUDA_VISIBLE_DEVICES": gpu.visible_devices}
    if gpu.memory_limit_mb is None:
        env["TF_FORCE_GPU_ALLOW_GROWTH"] = "true"
    else:  # a virtual device with a memory limit and memory growth exclude each other
        env[GPU_MEMORY_ENV] = str(int(gpu.memory_limit_mb))
    return env


@dataclass(frozen=True)
class SandboxPaths:
    """Host paths the runtime needs.

    Attributes:
        python: The interpreter to run.
        python_roots: Directories of the interpreter and its packages (bound read-only).
        runtime_code: A directory holding ``grader/runtime`` (see :func:`stage_runtime_code`).
        workspace: The submission's files. Under bwrap a read-only copy (see
            :func:`stage_workspace`) that the runtime copies into its own workspace;
            without bwrap the workspace itself, writable.
        bwrap: The bubblewrap binary.
        hidden: Directories inside the bound ones that the sandbox must not
            see (datasets, an installed copy of the grader or the references);
            each is covered by an empty read-only tmpfs.
    """

    python: str
    python_roots: tuple[str, ...]
    runtime_code: str
    workspace: str
    bwrap: str = "/usr/bin/bwrap"
    hidden: tuple[str, ...] = ()


@dataclass(frozen=True)
class SandboxCommand:
    """Everything needed to ``Popen`` one runtime.

    Attributes:
        argv: The command line.
        env: The complete environment.
        cwd: The working directory to start in (host path; read-only for the runtime).
        uses_bwrap: Whether the command runs under bubblewrap.
        run_as: ``(uid, gid)`` for Popen's ``user``/``group``, or None.
        notes: Protections that are missing here, one sentence each (they reach the
            submission's results).
        isolation: "userns", "setuid" or "none" (see the module's docstring).
        pass_fds: Extra fds the command needs open (the seccomp filter).
    """

    argv: tuple[str, ...]
    env: Mapping[str, str]
    cwd: str
    uses_bwrap: bool
    run_as: tuple[int, int] | None = None
    notes: tuple[str, ...] = field(default=())
    isolation: str = "none"
    pass_fds: tuple[int, ...] = ()


def interpreter_flags() -> tuple[str, ...]:
    """``-I`` (isolated), ``-B`` (no .pyc files), and ``-P`` where the interpreter has it."""
    return ("-I", "-B", "-P") if sys.version_info >= (3, 11) else ("-I", "-B")


def build_command(
    limits: SandboxLimits,
    paths: SandboxPaths,
    *,
    request_fd: int,
    response_fd: int,
    use_bwrap: bool,
    sandbox_uid: tuple[int, int] | None,
    gpu: GpuAssignment | None = None,
    extra_env: Mapping[str, str] | None = None,
    userns: bool | None = None,
    seccomp_fd: int | None = None,
) -> SandboxCommand:
    """Build the argv and environment of one runtime (pure).

    Args:
        limits: The resource limits.
        paths: Host paths (interpreter, runtime code, workspace).
        request_fd: Pipe fd the runtime reads requests from.
        response_fd: Pipe fd the runtime writes responses to.
        use_bwrap: Run under bubblewrap; otherwise only rlimits and a process group.
        sandbox_uid: ``(uid, gid)`` the runtime runs as (the grader is root), or None
            to keep the grader's uid (the grader is not root).
        gpu: The GPU lent to this runtime, or None for the CPU only.
        extra_env: Variables added last (e.g. an assignment's settings).
        userns: Run bubblewrap unprivileged in a user namespace (as ``sandbox_uid``
            when given); False: bubblewrap as root, the boot script drops to
            ``sandbox_uid``. Default: a user namespace unless the grader is root.
        seccomp_fd: An fd holding the seccomp filter (:func:`seccomp.filter_fd`), or None.

    Returns:
        The command.
    """
    if userns is None:
        userns = sandbox_uid is None
    workspace = WORKSPACE_INSIDE if use_bwrap else paths.workspace
    runtime_code = RUNTIME_INSIDE if use_bwrap else paths.runtime_code
    config = {
        "request_fd": request_fd,
        "response_fd": response_fd,
        "workspace": workspace,
        "workspace_source": INPUT_INSIDE if use_bwrap else None,
        "rlimits": limits.rlimits(),
        "max_message_bytes": limits.max_message_mb << 20,
    }
    notes: list[str] = []
    if sandbox_uid is None:
        del config["rlimits"]["RLIMIT_NPROC"]  # would count every process of the user
        notes.append("RLIMIT_NPROC not applied: the grader is not root")
    drops = use_bwrap and not userns and sandbox_uid is not None
    drop = [str(sandbox_uid[0]), str(sandbox_uid[1])] if drops and sandbox_uid else [NO_DROP] * 2
    boot = os.path.join(runtime_code, "grader", "runtime", "boot.py")
    server = (paths.python, *interpreter_flags(), boot, runtime_code, *drop, json.dumps(config))
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": "/tmp" if use_bwrap else paths.workspace,
        "USER": "student",
        "LOGNAME": "student",
        "LANG": "C.UTF-8",
        "MPLBACKEND": "Agg",
        "TF_CPP_MIN_LOG_LEVEL": "2",
        **gpu_env(gpu),
    }
    env.update(extra_env or {})
    if not use_bwrap:
        notes.append("no bubblewrap: the runtime's file system view is not restricted and "
                     "its workspace has no size limit")
        return SandboxCommand(server, env, paths.runtime_code, False, sandbox_uid,
                              tuple(notes), "none")
    argv: list[str] = [paths.bwrap]
    if userns:
        argv += ["--unshare-all", "--unshare-user", "--disable-userns", "--cap-drop", "ALL"]
        run_as = sandbox_uid
    else:
        # bwrap as root without a user namespace: the uid the boot script drops to is a
        # real one, and dropping from root to it clears the two capabilities kept here.
        argv += ["--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts",
                 "--unshare-cgroup-try", "--cap-drop", "ALL",
                 "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
        run_as = None
        notes.append("no user namespace: the runtime starts as root inside bubblewrap "
                     "with only CAP_SETUID and CAP_SETGID and drops to an unprivileged uid "
                     "before it imports anything")
    argv += ["--die-with-parent", "--new-session", "--hostname", "sandbox"]
    if seccomp_fd is not None:
        argv += ["--seccomp", str(seccomp_fd)]
    else:
        notes.append("no seccomp filter: libseccomp is not available")
    for directory in SYSTEM_DIRS + SYSTEM_FILES:
        argv += ["--ro-bind-try", directory, directory]
    # The private /tmp first: a Python installation under /tmp (a CI checkout's venv) is
    # bound on top of it below, where a later tmpfs would hide it.
    argv += ["--perms", "1777", "--size", str(limits.tmp_size_mb << 20), "--tmpfs", "/tmp"]
    # bwrap as root makes missing parents 0700, unreadable after the uid drop.
    for parent in _parents([*paths.python_roots, RUNTIME_INSIDE, INPUT_INSIDE,
                            WORKSPACE_INSIDE]):
        argv += ["--perms", "0755", "--dir", parent]
    for root in paths.python_roots:
        argv += ["--ro-bind", root, root]
    argv += ["--ro-bind", paths.runtime_code, RUNTIME_INSIDE]
    argv += ["--ro-bind", paths.workspace, INPUT_INSIDE]
    for directory in paths.hidden:
        argv += ["--tmpfs", directory, "--remount-ro", directory]
    argv += ["--proc", "/proc", "--dev", "/dev"]
    # The workspace: a tmpfs of its own, so its size is bounded and nothing the student
    # writes reaches the host; the runtime starts in its read-only code directory.
    argv += ["--perms", "1777", "--size", str(limits.workspace_mb << 20),
             "--tmpfs", WORKSPACE_INSIDE, "--chdir", RUNTIME_INSIDE]
    if gpu:
        # Only a runtime lent a GPU sees the NVIDIA device files and /sys (CUDA reads the
        # PCI topology there); `--dev /dev` above gives every other runtime a bare /dev.
        for device in gpu.device_files:
            argv += ["--dev-bind-try", device, device]
        argv += ["--ro-bind", "/sys", "/sys"]
    argv += ["--", *server]
    fds = (seccomp_fd,) if seccomp_fd is not None else ()
    return SandboxCommand(tuple(argv), env, paths.runtime_code, True, run_as, tuple(notes),
                          "userns" if userns else "setuid", fds)


def _parents(paths: list[str]) -> list[str]:
    """Every proper ancestor of ``paths`` outside the system dirs, outermost first."""
    found: list[str] = []
    for path in paths:
        for parent in reversed(Path(path).parents):
            text = str(parent)
            if text != "/" and text not in found and text not in SYSTEM_DIRS \
                    and not text.startswith("/usr/"):
                found.append(text)
    return found


def detect_gpu_device_files() -> tuple[str, ...]:
    """The NVIDIA device files present on this machine."""
    return tuple(sorted(glob.glob("/dev/nvidia*")))


def default_paths(workspace: str | os.PathLike[str]) -> SandboxPaths:
    """Paths for running the grader's own interpreter on ``workspace``."""
    roots = {os.path.realpath(sys.prefix), os.path.realpath(sys.base_prefix)}
    executable_dir = os.path.dirname(os.path.realpath(sys.executable))
    if not any(executable_dir.startswith(root + os.sep) for root in roots):
        roots.add(executable_dir)
    # A root inside another (e.g. a venv inside /usr) is already visible.
    kept = sorted(root for root in roots if not any(
        root != other and root.startswith(other + os.sep) for other in roots))
    return SandboxPaths(
        python=sys.executable,
        python_roots=tuple(kept),
        runtime_code=stage_runtime_code(),
        workspace=os.path.realpath(workspace),
        bwrap=shutil.which("bwrap") or "/usr/bin/bwrap",
        hidden=_hidden_dirs(kept),
    )


def _hidden_dirs(roots: list[str]) -> tuple[str, ...]:
    """Secret directories that a read-only system bind would otherwise expose."""
    candidates = list(HIDDEN_DIRS)
    for package in ("grader", "reference", "autograde_tests"):
        spec = importlib.util.find_spec(package)
        for location in (spec.submodule_search_locations or []) if spec else []:
            candidates.append(os.path.realpath(location))  # a non-editable install
    visible = [*roots, *SYSTEM_DIRS]
    return tuple(sorted({path for path in candidates if os.path.isdir(path) and any(
        path.startswith(root + os.sep) for root in visible)}))


@cache
def stage_runtime_code() -> str:
    """Copy the few runtime modules the sandbox needs into a world-readable temp dir.

    Returns:
        A directory containing ``grader/__init__.py`` and ``grader/runtime/``.
    """
    staging = tempfile.mkdtemp(prefix="nn-grader-runtime-")
    atexit.register(shutil.rmtree, staging, ignore_errors=True)
    package = Path(staging, "grader", "runtime")
    package.mkdir(parents=True)
    Path(staging, "grader", "__init__.py").write_text('"""Runtime-only copy."""\n')
    here = Path(__file__).parent
    for name in RUNTIME_FILES:
        shutil.copyfile(here / name, package / name)
    for directory, _dirs, files in os.walk(staging):
        os.chmod(directory, 0o755)
        for name in files:
            os.chmod(os.path.join(directory, name), 0o644)
    return staging


def stage_workspace(workspace: str | os.PathLike[str]) -> str:
    """A read-only-to-others copy of the submission's files, for binding into the sandbox.

    Owned by the grader, directories 0755 and files 0644, in a directory any uid can
    reach: the sandbox binds it read-only and copies it into its own workspace.

    Returns:
        The copy's directory; the caller removes it.
    """
    staging = tempfile.mkdtemp(prefix="nn-grader-input-")
    os.chmod(staging, 0o755)
    shutil.copytree(workspace, staging, symlinks=True, dirs_exist_ok=True)
    for directory, dirs, files in os.walk(staging):
        os.chmod(directory, 0o755)
        for name in [*dirs, *files]:
            path = os.path.join(directory, name)
            if os.path.islink(path):
                os.unlink(path)  # intake drops links; never bind one into the sandbox
            elif name in files:
                os.chmod(path, 0o644)
    return staging


def next_sandbox_uid() -> tuple[int, int] | None:
    """A fresh unprivileged (uid, gid) when the grader is root, else None.

    One uid per runtime keeps RLIMIT_NPROC per runtime: parallel submissions
    never count each other's threads.
    """
    if os.geteuid() != 0:
        return None
    uid = _UID_BASE + (os.getpid() % 65536) * 16 + next(_uid_counter) % 16
    return uid, uid


@cache
def bwrap_usable(bwrap: str = "/usr/bin/bwrap") -> bool:
    """Whether bubblewrap exists and can build a sandbox here (checked once)."""
    if not os.access(bwrap, os.X_OK):
        _warn_fallback(f"{bwrap} not found")
        return False
    flags = ["--unshare-pid", "--unshare-net"] if os.geteuid() == 0 else [
        "--unshare-all", "--unshare-user"]
    probe = [bwrap, *flags, "--ro-bind", "/", "/", "--proc", "/proc", "--dev", "/dev", "true"]
    try:
        result = subprocess.run(probe, capture_output=True, timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        _warn_fallback(f"bwrap failed to start: {exc}")
        return False
    if result.returncode != 0:
        _warn_fallback(f"bwrap cannot build a sandbox: {result.stderr.decode(errors='replace')}")
        return False
    return True


@cache
def userns_usable(bwrap: str, run_as: tuple[int, int] | None) -> bool:
    """Whether bubblewrap can build a user namespace as ``run_as`` (None: as the grader)."""
    probe = [bwrap, "--unshare-all", "--unshare-user", "--disable-userns", "--cap-drop", "ALL",
             "--ro-bind", "/", "/", "--proc", "/proc", "--dev", "/dev", "true"]
    extra = {} if run_as is None else {"user": run_as[0], "group": run_as[1],
                                       "extra_groups": []}
    try:
        result = subprocess.run(probe, capture_output=True, timeout=20, check=False,
                                cwd="/", **extra)
    except (OSError, subprocess.SubprocessError):
        return False
    return result.returncode == 0


def choose_userns(paths: SandboxPaths, sandbox_uid: tuple[int, int] | None) -> bool:
    """Whether to run bubblewrap unprivileged in a user namespace (else as root, see above).

    A root grader can do so only if the sandbox uid reaches the interpreter and the
    staged directories by path (bubblewrap resolves bind sources as the caller).
    """
    needed = (*paths.python_roots, paths.runtime_code, paths.workspace, paths.bwrap)
    if sandbox_uid is not None and not all(traversable_by_others(path) for path in needed):
        return False
    # One probe per process: any unprivileged uid answers for all of them.
    return userns_usable(paths.bwrap, None if sandbox_uid is None else (_UID_BASE, _UID_BASE))


def fallback_usable(paths: SandboxPaths | None = None) -> bool:
    """Whether student code may run without bubblewrap here: never as root.

    A root grader runs it as an unprivileged uid, which must reach the interpreter (the
    workspace is staged where any uid can reach it).
    """
    if os.geteuid() != 0:
        return True
    paths = paths or default_paths(tempfile.gettempdir())
    return all(traversable_by_others(path) for path in paths.python_roots)


# Messages already said in this process: every runtime keeps its own notes, the
# terminal hears each one once.
_WARNED: set[str] = set()


def warn_once(message: str) -> bool:
    """Warn about a missing protection once per message and process.

    One RuntimeWarning (one line on stderr, catchable by tests) and no log record beside
    it: the two together printed every note twice.

    Returns:
        True when the message was said now, False when this process had said it already.
    """
    if message in _WARNED:
        return False
    _WARNED.add(message)
    warnings.warn(message, RuntimeWarning, stacklevel=3)
    return True


def _warn_fallback(reason: str) -> None:
    warn_once(f"student code will run without bubblewrap ({reason}): only rlimits, a "
              "separate uid and a process group contain it; its file system view is not "
              "restricted")


def prepare_workspace(workspace: str | os.PathLike[str], owner: tuple[int, int] | None) -> None:
    """Give the sandbox uid the workspace (the only place it may write)."""
    if owner is None:
        return
    for directory, dirs, files in os.walk(workspace):
        os.chown(directory, *owner)
        for name in dirs + files:
            os.chown(os.path.join(directory, name), *owner, follow_symlinks=False)


def traversable_by_others(path: str) -> bool:
    """Whether a uid other than the owner can reach ``path`` (o+x on every directory)."""
    current = Path(path).resolve()
    for directory in [current, *current.parents]:
        try:
            if directory.is_dir() and not directory.stat().st_mode & 0o001:
                return False
        except OSError:
            return False
    return True
