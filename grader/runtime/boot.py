"""First code run in the sandbox: drop privileges and apply limits, then serve.

Kept to the standard library so that nothing (numpy included) is imported
while the process may still be root inside the sandbox.
"""

from __future__ import annotations

import json
import os
import resource
import sys


def drop_privileges(uid: int, gid: int) -> None:
    """Become an unprivileged user; bwrap ran as root only to build the sandbox."""
    os.setgroups([])
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)


def apply_rlimits(limits: dict[str, list[int]]) -> None:
    """Lower soft and hard limits so student code cannot raise them again."""
    for name, (soft, hard) in limits.items():
        resource.setrlimit(getattr(resource, name), (soft, hard))


def main() -> None:
    """Entry point: ``python -m grader.runtime.boot CONFIG_JSON``."""
    config = json.loads(sys.argv[1])
    if config.get("drop_to"):
        drop_privileges(*config["drop_to"])
    apply_rlimits(config.get("rlimits", {}))
    from grader.runtime import server

    server.main(config)


if __name__ == "__main__":
    main()
