"""Put the firmware folders on sys.path, as they land flat in CIRCUITPY/lib/ on a board."""

import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("BLINKA_OS_AGNOSTIC", "1")
for sub in ("shared", "module_fw/lib", "host_fw/lib", "tests/pure", ""):
    p = os.path.join(ROOT, sub) if sub else ROOT
    if p not in sys.path:
        sys.path.insert(0, p)
