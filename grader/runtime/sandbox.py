"""How one student runtime is started: limits, file-system view, command line.

:func:`build_command` is pure: limits + paths + device assignment in, argv and
environment out, so the sandbox's shape can be unit-tested. The impure helpers
(:func:`default_paths`, :func:`stage_runtime_code`, :func:`bwrap_usable`)
look at the machine.

Under bubblewrap the runtime sees: the system directories and the Python
installation read-only, a copy of the ``grader.runtime`` code it needs at
``/opt/nn-grader-runtime`` (not the grader's repository: no hidden tests, no
references), the submission's workspace at ``/submission`` (the only writable
place besides a private, size-capped ``/tmp``), fresh ``/proc`` and ``/dev``,
and no network. When the grader is root, bwrap runs as root only to build the
mounts; the server then drops to an unprivileged uid before any student code
runs, so RLIMIT_NPROC (never enforced for uid 0) contains fork bombs.
"""

from __future__ import annotations

import atexit
import glob
import importlib.util
import itertools
import json
import logging
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

logger = logging.getLogger(__name__)

WORKSPACE_INSIDE = "/submission"
RUNTIME_INSIDE = "/opt/nn-grader-runtime"
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


@dataclass(frozen=True)
class SandboxLimits:
    """Resource limits of one student runtime.

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
        output_limit_mb: Printed output above this kills the runtime.
        output_keep_kb: How much of the start and of the end of the output is kept.
        max_message_mb: Largest message accepted from the runtime.
        tmp_size_mb: Size of the private ``/tmp`` (bwrap only).
        watchdog_interval_s: How often the memory watchdog looks.
    """

    cpu_seconds: int = 900
    memory_mb: int = 4096
    address_space_mb: int | None = None
    file_size_mb: int = 256
    max_processes: int = 256
    open_files: int = 1024
    call_timeout_s: float = 120.0
    import_timeout_s: float = 60.0
    output_limit_mb: int = 32
    output_keep_kb: int = 64
    max_message_mb: int = 512
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
        workspace: The submission's private workspace copy (bound writable).
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
        cwd: The working directory to start in (host path).
        uses_bwrap: Whether the command runs under bubblewrap.
        run_as: ``(uid, gid)`` for Popen's ``user``/``group``, or None.
    """

    argv: tuple[str, ...]
    env: Mapping[str, str]
    cwd: str
    uses_bwrap: bool
    run_as: tuple[int, int] | None = None
    notes: tuple[str, ...] = field(default=())


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
) -> SandboxCommand:
    """Build the argv and environment of one runtime (pure).

    Args:
        limits: The resource limits.
        paths: Host paths (interpreter, runtime code, workspace).
        request_fd: Pipe fd the runtime reads requests from.
        response_fd: Pipe fd the runtime writes responses to.
        use_bwrap: Run under bubblewrap; otherwise only rlimits and a process group.
        sandbox_uid: ``(uid, gid)`` the server drops to (the grader is root),
            or None to keep the grader's uid (the grader is not root).
        gpu: The GPU lent to this runtime, or None for the CPU only.
        extra_env: Variables added last (e.g. an assignment's settings).

    Returns:
        The command.
    """
    workspace = WORKSPACE_INSIDE if use_bwrap else paths.workspace
    runtime_code = RUNTIME_INSIDE if use_bwrap else paths.runtime_code
    config = {
        "request_fd": request_fd,
        "response_fd": response_fd,
        "workspace": workspace,
        "rlimits": limits.rlimits(),
        "max_message_bytes": limits.max_message_mb << 20,
        "drop_to": list(sandbox_uid) if sandbox_uid else None,
    }
    notes: list[str] = []
    if sandbox_uid is None:
        del config["rlimits"]["RLIMIT_NPROC"]  # would count every process of the user
        notes.append("RLIMIT_NPROC not applied: the grader is not root")
    server = (paths.python, "-s", "-B", "-m", "grader.runtime.boot", json.dumps(config))
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": "/tmp" if use_bwrap else paths.workspace,
        "USER": "student",
        "LOGNAME": "student",
        "LANG": "C.UTF-8",
        "PYTHONPATH": runtime_code,
        "PYTHONHASHSEED": "0",
        "PYTHONDONTWRITEBYTECODE": "1",
        "MPLBACKEND": "Agg",
        "TF_CPP_MIN_LOG_LEVEL": "2",
        **gpu_env(gpu),
    }
    env.update(extra_env or {})
    if not use_bwrap:
        return SandboxCommand(server, env, paths.workspace, False, None, tuple(notes))
    argv: list[str] = [paths.bwrap]
    if sandbox_uid is not None:
        # As root: no user namespace, so the dropped uid is a real one and RLIMIT_NPROC holds.
        argv += ["--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts",
                 "--unshare-cgroup-try", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
    else:
        argv += ["--unshare-all", "--disable-userns"]
    argv += ["--die-with-parent", "--new-session", "--hostname", "sandbox"]
    for directory in SYSTEM_DIRS + SYSTEM_FILES:
        argv += ["--ro-bind-try", directory, directory]
    # The private /tmp first: a Python installation under /tmp (a CI checkout's venv) is
    # bound on top of it below, where a later tmpfs would hide it.
    argv += ["--size", str(limits.tmp_size_mb << 20), "--tmpfs", "/tmp"]
    # bwrap as root makes missing parents 0700, unreadable after the uid drop.
    for parent in _parents([*paths.python_roots, RUNTIME_INSIDE, WORKSPACE_INSIDE]):
        argv += ["--perms", "0755", "--dir", parent]
    for root in paths.python_roots:
        argv += ["--ro-bind", root, root]
    argv += ["--ro-bind", paths.runtime_code, RUNTIME_INSIDE]
    for directory in paths.hidden:
        argv += ["--tmpfs", directory, "--remount-ro", directory]
    argv += ["--proc", "/proc", "--dev", "/dev"]
    argv += ["--bind", paths.workspace, WORKSPACE_INSIDE, "--chdir", WORKSPACE_INSIDE]
    if gpu:
        # Only a runtime lent a GPU sees the NVIDIA device files and /sys (CUDA reads the
        # PCI topology there); `--dev /dev` above gives every other runtime a bare /dev.
        for device in gpu.device_files:
            argv += ["--dev-bind-try", device, device]
        argv += ["--ro-bind", "/sys", "/sys"]
    argv += ["--", *server]
    return SandboxCommand(tuple(argv), env, paths.workspace, True, None, tuple(notes))


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
    flags = ["--unshare-pid", "--unshare-net"] if os.geteuid() == 0 else ["--unshare-all"]
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


def _warn_fallback(reason: str) -> None:
    message = (f"student code will run without bubblewrap ({reason}): only rlimits, a separate "
               "uid and a process group contain it; its file system view is not restricted")
    logger.warning(message)
    warnings.warn(message, RuntimeWarning, stacklevel=3)


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
