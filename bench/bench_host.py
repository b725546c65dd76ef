"""Host superloop on MicroPython: heap allocated per ``HostApp.step()`` after warm-up, and the host's heap.

Runs the real host modules (host_app, pack, protection, switches, indicators, bms_settings, soc,
balance_policy, calibration, chain's constants) on the ``micropython`` interpreter with a fake chain
master (fresh 8 x 12 cells every 200 ms, values changing), fake pins and a fake current sensor, then:

* the same with the real ``ChainMaster`` and 8 real ``ModuleLink``s with minimal module apps on in-memory
  cables (only ``HostApp.step()``, which includes the chain master's step, is measured);
* allocations: ``gc.disable()``, N steps, the growth of ``gc.mem_alloc()`` less the same loop around a
  do-nothing function (bytes; limit 0);
* heap: ``gc.mem_alloc()`` after imports and after building the app (limit: 100 kB, the low end of
  the nRF52840's free heap with BLE on, DESIGN.md §4).

The heap figures come from two interpreters running the same script: the ``micropython`` command (64-bit
unix port: pointers and GC blocks twice the boards') and MicroPython compiled to WebAssembly under Node.js
(32-bit, as the nRF52840; ``upy_tools.run_script_wasm``, skipped with a note without node/npm). The 32-bit
one is the board's figure; both are printed as ratios against the limit.
"""

import sys

from upy_tools import mpy_size, run_script, run_script_wasm, tool

HEAP_LIMIT = 100_000  # bytes: the low end of the nRF52840's free heap with BLE on (DESIGN.md §4)

SCRIPT = r'''
import gc
import micropython
gc.collect()
base = gc.mem_alloc()
import host_app
from host_app import HostApp, ST_RUNNING
from bms_settings import Settings
from soc import SocCounter
from balance_policy import BalancePolicy
from switches import MosfetSwitches
from indicators import Indicators
from array import array
gc.collect()
after_import = gc.mem_alloc()

class Pin:
    def __init__(self):
        self.value = False
    def switch_to_output(self, value=False, drive_mode=None):
        self.value = value

class Chain:
    max_cells = 12
    max_temps = 4
    def __init__(self, n):
        self.module_count = 0
        self.n = n
        self.state = 0
        self.enumerations = 0
        self.cycle_count = 0
        self.cell_count = bytearray(n + 1)
        self.fresh = bytearray(n + 1)
        self.missing = bytearray(n + 1)
        self.present = bytearray(n + 1)
        self.temp_count = bytearray(n + 1)
        self.config_acked = bytearray(n + 1)
        self.cells_100uv = array("H", [37000] * (n * 12))
        self.temps_dc = array("h", [250] * (n * 4))
        self.flags = array("H", [0] * (n + 1))
        self.open_wire = array("H", [0] * (n + 1))
        self.wiring = array("H", [0] * (n + 1))
        self.balance = array("H", [0] * (n + 1))
        self._next = 0
    def step(self, now_ms):
        if self.state == 0:
            self.state = 3
            self.enumerations += 1
            self.module_count = self.n
            for a in range(1, self.n + 1):
                self.cell_count[a] = 12
            return
        if now_ms - self._next >= 0:
            self._next = now_ms + 200
            k = self.cycle_count % (self.n * 12)
            self.cells_100uv[k] = 37000 + (self.cycle_count % 50)
            for a in range(1, self.n + 1):
                self.fresh[a] = 7
                self.temp_count[a] = 2
            self.cycle_count += 1
    def queue_config(self, a, *args):
        self.config_acked[a] = 1
        return True
    def queue_balance(self, a, t, s):
        return True
    def queue_sleep(self):
        return True
    def wake(self):
        pass
    def request_enumerate(self):
        pass

class Current:
    def __init__(self):
        self.current_ma = 0
        self.bus_mv = 355200
        self.sc_alert = False
        self.ok = True
        self.n = 0
    def read(self):
        self.n += 1
        self.current_ma = 5000 if self.n % 2 else -5000
        return True
    def clear_alert(self):
        pass

s = Settings()
pairs = [("modules", 8), ("cells_total", 96)]
for i in range(1, 9):
    pairs.append(("mod%d_cells" % i, 12))
s.set_many(pairs)
chain = Chain(8)
soc = SocCounter(s.get("capacity_mah"), s.get("full_charge_mv"), s.get("cutoff_mv"), s.get("tail_current_ma"),
                 s.get("full_hold_ms"), s.get("empty_hold_ms"))
app = HostApp(chain, s, switches=MosfetSwitches(Pin(), Pin()), current=Current(),
              indicators=Indicators(Pin(), Pin()), fet_temp=lambda: 300, soc=soc,
              balance=BalancePolicy(10, 95, 1000, 30))
gc.collect()
after_build = gc.mem_alloc()
t = 1000
for _ in range(5000):
    app.step(t)
    t += 1
assert app.state == ST_RUNNING, app.state_text

def loop(fn, t, n):
    # The same loop around a do-nothing function measures the harness itself (its range iterator).
    gc.collect()
    gc.disable()
    a0 = gc.mem_alloc()
    for _ in range(n):
        fn(t)
        t += 1
    a1 = gc.mem_alloc()
    gc.enable()
    return a1 - a0


def nop(t):
    pass


N = 20000
harness = loop(nop, t, N)
c0 = chain.cycle_count
total = loop(app.step, t, N)
cycles = chain.cycle_count - c0
print("RESULT", total - harness, N, cycles, after_import - base, after_build - base, app.state_text)
'''


# The same app over the real ChainMaster and 8 real ModuleLinks with minimal module apps on in-memory
# cables (bench/upy_chain.py: a write is readable at the other end at once); only HostApp.step() is measured.
_HEAD = SCRIPT.split("class Chain:")[0]
_CURRENT = "class Current:" + SCRIPT.split("class Current:")[1].split("s = Settings()")[0]
SCRIPT_CHAIN = _HEAD + _CURRENT + r'''
import sys
from module_link import ModuleLink
from chain import ChainMaster
sys.path.insert(0, "bench")
from upy_chain import cable, MiniModule  # in-memory cables (no timing) and the least module app

s = Settings()
pairs = [("modules", 8), ("cells_total", 96)]
for i in range(1, 9):
    pairs.append(("mod%d_cells" % i, 12))
s.set_many(pairs)
cables = [cable(4096) for _ in range(9)]
chain = ChainMaster(cables[0][0], max_modules=8)
mods = [MiniModule(ModuleLink(cables[k][1], cables[k + 1][0]), 37000, (250, 260)) for k in range(8)]
soc = SocCounter(s.get("capacity_mah"), s.get("full_charge_mv"), s.get("cutoff_mv"), s.get("tail_current_ma"),
                 s.get("full_hold_ms"), s.get("empty_hold_ms"))
app = HostApp(chain, s, switches=MosfetSwitches(Pin(), Pin()), current=Current(),
              indicators=Indicators(Pin(), Pin()), fet_temp=lambda: 300, soc=soc,
              balance=BalancePolicy(10, 95, 1000, 30))
t = 1000
def run(n, measure):
    global t
    acc = 0
    for _ in range(n):
        if measure:
            a0 = gc.mem_alloc()
        app.step(t)
        if measure:
            acc += gc.mem_alloc() - a0
        for m in mods:
            m.step(t)
        t += 1
    return acc
run(5000, False)
assert app.state == ST_RUNNING, app.state_text
gc.collect()
gc.disable()
c0 = chain.cycle_count
total = run(10000, True)
gc.enable()
print("RESULT", total, 10000, chain.cycle_count - c0, 0, 0, app.state_text)
'''


def run_upy(script_text, wasm=False):
    r = run_script_wasm(script_text) if wasm else run_script(script_text)
    if r is None:
        return None
    line = [x for x in r.stdout.splitlines() if x.startswith("RESULT")]
    if r.returncode != 0 or not line:
        print(r.stdout + r.stderr)
        return None
    _, alloc, steps, cycles, heap_import, heap_build, state = line[0].split(" ", 6)
    return int(alloc), int(steps), int(cycles), int(heap_import), int(heap_build), state


def main():
    if not tool("micropython"):
        print("bench_host: micropython not found (make setup)")
        return 1
    fake = run_upy(SCRIPT)
    real = run_upy(SCRIPT_CHAIN)
    if fake is None or real is None:
        print("bench_host: FAILED")
        return 1
    alloc, steps, cycles, heap_import, heap_build, state = fake
    per_cycle = alloc / max(1, cycles)
    print("host step() on MicroPython, 8 modules x 12 cells, %d steps = %d cycles, state %r" % (steps, cycles, state))
    print("  heap allocated per cycle after warm-up: %.1f bytes (limit 0): %s"
          % (per_cycle, "OK" if alloc == 0 else "ALLOCATES"))
    print("  heap allocated per step:                %.2f bytes" % (alloc / steps))
    print_heap("64-bit unix", heap_import, heap_build)
    wasm = run_upy(SCRIPT, wasm=True)
    if wasm is not None:
        print_heap("32-bit wasm", wasm[3], wasm[4])
        print("  (32-bit, docstrings stripped as the boards' builds drop them, is the nRF52840's figure;")
        print("   the 64-bit one has pointers and GC blocks twice its size)")
    alloc2, steps2, cycles2, _, _, state2 = real
    print("host step() with the real ChainMaster and 8 ModuleLinks on in-memory cables: %d steps = %d cycles, %r"
          % (steps2, cycles2, state2))
    print("  heap allocated per cycle after warm-up: %.1f bytes (limit 0): %s"
          % (alloc2 / max(1, cycles2), "OK" if alloc2 == 0 else "ALLOCATES"))
    mpy = mpy_bytes()
    if mpy:
        print("  bytecode of those modules (mpy-cross, architecture-neutral): %d bytes = %.2f of 100 kB"
              % (mpy, mpy / 100000))
    return 0


def print_heap(label, heap_import, heap_build):
    print("  host heap after imports (%s): %6d bytes = %.2f of a %d kB budget"
          % (label, heap_import, heap_import / HEAP_LIMIT, HEAP_LIMIT // 1000))
    print("  host heap with the app  (%s): %6d bytes = %.2f of a %d kB budget"
          % (label, heap_build, heap_build / HEAP_LIMIT, HEAP_LIMIT // 1000))


MODULES = ("shared/bms_link.py", "shared/bms_packet.py", "shared/bms_settings.py", "host_fw/lib/protection.py",
           "host_fw/lib/pack.py", "host_fw/lib/calibration.py", "host_fw/lib/chain.py", "host_fw/lib/switches.py",
           "host_fw/lib/indicators.py", "host_fw/lib/soc.py", "host_fw/lib/balance_policy.py",
           "host_fw/lib/host_app.py")


def mpy_bytes() -> int:
    """Total .mpy size of the modules the bench imports: a floor for what their code takes on the board."""
    return sum(mpy_size(rel) for rel in MODULES)


if __name__ == "__main__":
    sys.exit(main())
