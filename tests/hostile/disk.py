"""Fills the workspace: with bytes, then with files."""


def fill(megabytes):
    block = b"\0" * 2**20
    for index in range(megabytes):  # 1 MB files: the file size limit is not what stops it
        with open(f"fill{index}.bin", "wb") as handle:
            handle.write(block)
    return megabytes


def many_files(count):
    for index in range(count):
        open(f"empty{index}", "w").close()
    return count
