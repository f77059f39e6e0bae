"""Prints a lot."""
import sys


def flood(megabytes):
    line = "x" * 1023 + "\n"
    for _ in range(megabytes * 1024):
        sys.stdout.write(line)
    return "done"


def chatty(lines):
    for index in range(lines):
        print(f"line {index}")
    return lines
