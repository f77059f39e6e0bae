"""First code run in the sandbox: drop privileges, then set up and serve.

Run by path, isolated: ``python -I -B [-P] /opt/nn-grader-runtime/grader/runtime/boot.py
RUNTIME_DIR UID GID CONFIG_JSON``, from the read-only runtime directory. ``-I`` keeps the
working directory, the script's directory, the user site and every ``PYTHON*`` variable
off ``sys.path``; the only modules importable are the interpreter's (read-only) and the
staged runtime code, which this script puts on ``sys.path`` itself.

Where bubblewrap ran as root (no user namespace), UID and GID name the unprivileged
account to become; the drop happens before anything is imported or the configuration is
read, using only ``os`` and ``sys``, which the interpreter loaded before this script ran.
Changing every uid from root to another clears all capabilities.
"""

import os
import sys

_DROP_FAILED = 70  # exit code when the uid could not be dropped (never serve as root)


def drop_privileges(uid_text: str, gid_text: str) -> None:
    """Become ``uid``/``gid`` for good ("-": nothing to drop: already unprivileged)."""
    if uid_text == "-":
        return
    uid, gid = int(uid_text), int(gid_text)
    os.setgroups([])
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)
    if 0 in os.getresuid() or 0 in os.getresgid():
        os._exit(_DROP_FAILED)


def copy_input(source: str, workspace: str) -> None:
    """Copy the submission's files from the read-only input into the bounded workspace.

    Contents only (no modes or times, which the workspace's root refuses); links are skipped.
    """
    import shutil

    for directory, dirs, files in os.walk(source):
        target = os.path.join(workspace, os.path.relpath(directory, source))
        os.makedirs(target, exist_ok=True)
        for name in files:
            path = os.path.join(directory, name)
            if not os.path.islink(path):
                shutil.copyfile(path, os.path.join(target, name))
        dirs[:] = [name for name in dirs if not os.path.islink(os.path.join(directory, name))]


def main() -> None:
    """Entry point (see the module docstring for the arguments)."""
    runtime_dir, uid_text, gid_text, config_text = sys.argv[1:5]
    drop_privileges(uid_text, gid_text)
    if not sys.flags.isolated:
        sys.exit("the runtime must be started with python -I")
    here = os.path.dirname(os.path.abspath(__file__))
    # Absolute entries only, the script's directory dropped (Python < 3.11 has no -P).
    kept = [path for path in sys.path if os.path.isabs(path) and path != here]
    sys.path[:] = [runtime_dir, *kept]
    import json
    import resource

    config = json.loads(config_text)
    for name, (soft, hard) in config.get("rlimits", {}).items():
        resource.setrlimit(getattr(resource, name), (soft, hard))
    source, workspace = config.get("workspace_source"), config["workspace"]
    if source:
        copy_input(source, workspace)
    os.chdir(workspace)  # relative paths in student code land in the workspace
    from grader.runtime import server

    server.main(config)


if __name__ == "__main__":
    main()
