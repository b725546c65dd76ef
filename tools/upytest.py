"""Run pure tests on MicroPython (or CPython): plain ``test_*`` functions with ``assert``.

Usage: micropython tools/upytest.py tests/pure/test_a.py [tests/pure/test_b.py ...]
Prints each failure and a closing 'N passed, N failed' line; exits 1 on any failure.
"""

import sys

ROOT = "."
for sub in ("shared", "module_fw/lib", "host_fw/lib", "tests/pure"):
    sys.path.insert(0, ROOT + "/" + sub)


def _module_name(path):
    name = path.replace("\\", "/").split("/")[-1]
    if name.endswith(".py"):
        name = name[:-3]
    return name


def main(paths):
    passed = 0
    failed = 0
    for path in paths:
        name = _module_name(path)
        try:
            mod = __import__(name)
        except Exception as e:  # noqa: BLE001 - an import error is a failed file, not a crash
            failed += 1
            print("FAIL import %s: %s: %s" % (path, type(e).__name__, e))
            continue
        tests = [k for k in dir(mod) if k.startswith("test_")]
        tests.sort()
        for t in tests:
            fn = getattr(mod, t)
            if not callable(fn):
                continue
            try:
                fn()
                passed += 1
            except Exception as e:  # noqa: BLE001
                failed += 1
                print("FAIL %s::%s: %s: %s" % (path, t, type(e).__name__, e))
    print("micropython: %d passed, %d failed" % (passed, failed))
    return failed


if __name__ == "__main__":
    args = sys.argv[1:]
    if not args:
        print("usage: upytest.py tests/pure/test_*.py")
        sys.exit(2)
    sys.exit(1 if main(args) else 0)
