"""The seccomp filter bubblewrap installs in the student runtime (``bwrap --seccomp FD``).

The filter is built with libseccomp (through ``pyseccomp``, a ctypes binding) as a raw BPF
program. Everything is allowed except the system calls below, which fail with EPERM: they
reach the host's file system by handle, inspect or control other processes, change mounts
or namespaces, or expose large kernel attack surfaces no submission needs. ``clone3`` fails
with ENOSYS so that the C library falls back to ``clone``, whose flags a filter can read
(a new user namespace is refused there). System calls of another architecture (x86's
32-bit ABI on x86_64) kill the process, libseccomp's default for a foreign architecture.
"""

from __future__ import annotations

import errno
import os
import tempfile
from functools import cache

DENIED_SYSCALLS = (
    # the host's file system by handle: the escape issue 9 reproduced
    "open_by_handle_at", "name_to_handle_at",
    # other processes
    "ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "pidfd_getfd",
    # mounts, namespaces, the kernel itself
    "mount", "umount2", "pivot_root", "chroot", "move_mount", "open_tree", "fsopen",
    "fsconfig", "fsmount", "fspick", "unshare", "setns", "swapon", "swapoff", "reboot",
    "kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module",
    "acct", "quotactl", "settimeofday", "clock_settime", "adjtimex", "syslog",
    # large kernel attack surfaces
    "keyctl", "add_key", "request_key", "bpf", "userfaultfd", "perf_event_open",
    "io_uring_setup", "io_uring_enter", "io_uring_register",
)
"""System calls that fail with EPERM inside the runtime."""

_CLONE_NEWUSER = 0x10000000


class SeccompUnavailable(RuntimeError):
    """libseccomp or its Python binding is missing: the runtime runs without a filter."""


@cache
def filter_bpf() -> bytes:
    """The compiled filter, as the raw ``struct sock_filter`` array bwrap reads.

    Returns:
        The BPF program's bytes (8 bytes per instruction).

    Raises:
        SeccompUnavailable: If ``pyseccomp`` or ``libseccomp.so.2`` cannot be loaded.
    """
    try:
        import pyseccomp as seccomp
    except (ImportError, OSError) as exc:  # the binding loads libseccomp.so.2 at import
        raise SeccompUnavailable(f"libseccomp is not available ({exc})") from None
    denied = seccomp.ERRNO(errno.EPERM)
    rules = seccomp.SyscallFilter(defaction=seccomp.ALLOW)
    for name in DENIED_SYSCALLS:
        try:
            rules.add_rule(denied, name)
        except (OSError, RuntimeError, ValueError):
            continue  # a call this architecture does not have
    rules.add_rule(seccomp.ERRNO(errno.ENOSYS), "clone3")
    rules.add_rule(denied, "clone",
                   seccomp.Arg(0, seccomp.MASKED_EQ, _CLONE_NEWUSER, _CLONE_NEWUSER))
    with tempfile.TemporaryFile() as handle:
        rules.export_bpf(handle)
        handle.seek(0)
        return handle.read()


def filter_fd() -> int:
    """A readable fd holding :func:`filter_bpf`, positioned at its start (for ``--seccomp``).

    Raises:
        SeccompUnavailable: As :func:`filter_bpf`.
    """
    program = filter_bpf()
    fd = os.memfd_create("nn-grader-seccomp", 0)
    os.write(fd, program)
    os.lseek(fd, 0, os.SEEK_SET)
    return fd
