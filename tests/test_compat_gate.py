"""The compatibility gate itself: it must fail on each thing CircuitPython would reject."""

import os
import subprocess
import sys
import textwrap

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COMPAT = os.path.join(ROOT, "tools", "compat.py")


def make_tree(tmp_path, files):
    base = {
        "shared/bms_ok.py": (
            "import struct\nfrom micropython import const\n_X = const(3)\n\ndef double(x):\n    return 2 * x\n"
        ),
        "module_fw/requirements.txt": "adafruit_bus_device\n",
        "module_fw/lib/mod_ok.py": "from adafruit_bus_device.spi_device import SPIDevice\nimport bms_ok\n",
        "host_fw/requirements.txt": "adafruit_ina228\nadafruit_bus_device\n",
        "host_fw/lib/host_ok.py": "import adafruit_ina228\ntry:\n    import typing\nexcept ImportError:\n    pass\n",
        "tests/pure/upy_check.py": open(os.path.join(ROOT, "tests/pure/upy_check.py")).read(),
        "tests/pure/test_ok.py": "from bms_ok import double\n\ndef test_double():\n    assert double(2) == 4\n",
    }
    base.update(files)
    for rel, text in base.items():
        p = tmp_path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(textwrap.dedent(text))
    return tmp_path


def run_gate(root, *extra):
    r = subprocess.run(
        [sys.executable, COMPAT, "--root", str(root), *extra], capture_output=True, text=True, timeout=300
    )
    return r.returncode, r.stdout + r.stderr


def test_clean_tree_passes(tmp_path):
    rc, out = run_gate(make_tree(tmp_path, {}))
    assert rc == 0, out
    assert "micropython: 1 passed, 0 failed" in out


def test_dataclasses_import_fails_with_file_and_line(tmp_path):
    root = make_tree(tmp_path, {"module_fw/lib/bad.py": "import struct\nimport dataclasses\n"})
    rc, out = run_gate(root, "--skip-micropython")
    assert rc == 1
    assert "bad.py:2: import dataclasses" in out


def test_library_not_in_board_requirements_fails(tmp_path):
    # adafruit_ina228 is in the host's requirements only: the module board would not have it.
    root = make_tree(tmp_path, {"module_fw/lib/bad.py": "import adafruit_ina228\n"})
    rc, out = run_gate(root, "--skip-micropython")
    assert rc == 1
    assert "bad.py:1: import adafruit_ina228" in out


def test_shared_may_only_use_what_both_boards_have(tmp_path):
    root = make_tree(tmp_path, {"shared/bms_bad.py": "import adafruit_ina228\n"})
    rc, out = run_gate(root, "--skip-micropython")
    assert rc == 1
    assert "bms_bad.py:1" in out


def test_optional_import_in_try_except_importerror_is_allowed(tmp_path):
    root = make_tree(
        tmp_path, {"shared/bms_opt.py": "try:\n    from typing import Optional\nexcept ImportError:\n    pass\n"}
    )
    rc, out = run_gate(root, "--skip-micropython")
    assert rc == 0, out


def test_relative_import_fails(tmp_path):
    root = make_tree(tmp_path, {"host_fw/lib/bad.py": "from . import host_ok\n"})
    rc, out = run_gate(root, "--skip-micropython")
    assert rc == 1
    assert "relative import" in out


def test_syntax_that_mpy_cross_rejects_fails(tmp_path):
    # CPython 3.10+ accepts a match statement; MicroPython's compiler does not.
    src = "def f(x):\n    match x:\n        case 1:\n            return 2\n    return 0\n"
    compile(src, "ok_on_cpython", "exec")
    root = make_tree(tmp_path, {"shared/bms_match.py": src})
    rc, out = run_gate(root, "--skip-micropython")
    assert rc == 1
    assert "bms_match.py: mpy-cross" in out


def test_pure_test_failing_only_on_micropython_fails(tmp_path):
    # str.removeprefix exists on CPython 3.9+, not on MicroPython: the gate must catch it.
    src = "def test_prefix():\n    assert 'abc'.removeprefix('a') == 'bc'\n"
    exec(compile(src, "t", "exec"), ns := {})
    ns["test_prefix"]()
    root = make_tree(tmp_path, {"tests/pure/test_cpython_only.py": src})
    rc, out = run_gate(root)
    assert rc == 1
    assert "FAIL tests/pure/test_cpython_only.py::test_prefix: AttributeError" in out
