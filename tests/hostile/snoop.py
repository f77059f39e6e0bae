"""Looks for files the grader can see and the sandbox must not."""
import os
import socket


def read_head(path):
    with open(path, "rb") as handle:
        return list(handle.read(16))


def listdir(path):
    return sorted(os.listdir(path))


def connect(port):
    with socket.create_connection(("127.0.0.1", port), timeout=2):
        return "connected"
