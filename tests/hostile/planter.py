"""Plants modules named like the standard library, then crashes (issue 9, item 1)."""
import os
import sys

PLANT = ('import os, sys\nprint("PLANTED " + __name__, flush=True)\n'
         'open("/tmp/PLANTED-" + __name__, "w").close()\n')
NAMES = ("json", "resource", "site", "sitecustomize", "usercustomize", "shutil", "csv",
         "codecs", "decimal", "traceback")


def plant_and_crash():
    for name in NAMES:
        with open(f"{name}.py", "w") as handle:
            handle.write(PLANT)
    os.makedirs("encodings", exist_ok=True)
    with open("encodings/__init__.py", "w") as handle:
        handle.write(PLANT)
    os._exit(3)


def where(name):
    """Where the module ``name`` comes from when this runtime imports it."""
    module = __import__(name)
    return getattr(module, "__file__", None) or "built-in"


def view():
    """What this runtime sees: its workspace, /tmp markers and sys.path."""
    return {"workspace": sorted(os.listdir(".")), "tmp": sorted(os.listdir("/tmp")),
            "path": list(sys.path), "cwd": os.getcwd()}
