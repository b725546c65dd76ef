"""Tiny assertion helpers for pure tests that run on CPython (pytest) and MicroPython alike."""


def raises(exc_type, fn, *args, **kwargs):
    """Call ``fn`` and return the exception it raised; fail if it raised nothing or something else."""
    try:
        fn(*args, **kwargs)
    except exc_type as e:  # noqa: PERF203
        return e
    raise AssertionError("expected %s from %s" % (exc_type.__name__, getattr(fn, "__name__", fn)))
