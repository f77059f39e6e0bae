"""Writes a file far larger than allowed."""


def write_big(megabytes):
    block = b"\0" * 2**20
    with open("big.bin", "wb") as handle:
        for _ in range(megabytes):
            handle.write(block)
    return megabytes
