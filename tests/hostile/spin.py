"""Endless loops in calls, one of them deaf to SIGTERM."""
import signal


def spin():
    while True:
        pass


def spin_ignoring_sigterm():
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    while True:
        pass
