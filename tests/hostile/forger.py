"""Writes forged protocol messages straight into the runtime's response pipe (issue 9, item 7)."""
import fcntl
import json
import os
import struct
import time


def _response_fd():
    """The runtime's write end of the response pipe: a write-only fd above 200."""
    for name in sorted(os.listdir("/proc/self/fd"), key=int):
        fd = int(name)
        try:
            flags = fcntl.fcntl(fd, fcntl.F_GETFL)
        except OSError:
            continue
        if fd >= 200 and flags & os.O_ACCMODE == os.O_WRONLY:
            return fd
    raise RuntimeError("no response pipe found")


def _write(fd, data):
    view = memoryview(data)
    while view:
        try:
            view = view[os.write(fd, view):]
        except OSError:
            return  # the grader stopped reading: it refused the message


def forge_header(megabytes):
    """A message whose JSON header claims ``megabytes`` MB, then as many bytes of '['."""
    fd = _response_fd()
    _write(fd, b"NNG1" + struct.pack(">I", megabytes << 20))
    for _ in range(megabytes):
        _write(fd, b"[" * (1 << 20))
    time.sleep(30)


def forge_frames(count, megabytes):
    """A small header declaring ``count`` frames of ``megabytes`` MB each, then the bytes."""
    fd = _response_fd()
    header = json.dumps({"ok": True, "v": None, "frames": [megabytes << 20] * count}).encode()
    _write(fd, b"NNG1" + struct.pack(">I", len(header)) + header)
    for _ in range(count * megabytes):
        _write(fd, b"\0" * (1 << 20))
    time.sleep(30)


def honest(megabytes):
    """An honest answer of about ``megabytes`` MB: a float64 array."""
    import numpy as np

    return np.ones((megabytes << 20) // 8)
