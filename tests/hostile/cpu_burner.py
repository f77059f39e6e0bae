"""Burns CPU time in a loop and ignores SIGXCPU."""
import signal


def burn():
    signal.signal(signal.SIGXCPU, signal.SIG_IGN)
    total = 0
    while True:
        total += 1
