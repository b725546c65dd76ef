"""Cascade link cycle time in simulated time, as a ratio to the wire limit (docs/protocol.md §5).

One cycle = SAMPLE (sent twice) + COLLECT + every module's CELLS/TEMPS/STATUS. The wire limit is the sum over
every cable of the bytes that crossed it during the cycle x 10 bits / baud: each relay hop's serialisation is
counted, as if every byte were sent one after another with no gaps. Target: <= 1.5x at 250 000 baud.
Pipelining (answers travel up all cables at once) can bring the ratio below 1.

``step_us`` is how often every board runs its loop (a module's superloop period).
Run: ``.venv/bin/python bench/bench_link.py``
"""

import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
for sub in ("shared", "module_fw/lib", "host_fw/lib", ""):
    sys.path.insert(0, os.path.join(ROOT, sub) if sub else ROOT)
os.environ.setdefault("BLINKA_OS_AGNOSTIC", "1")

from hil.chain_rig import ChainRig  # noqa: E402

TARGET = 1.5


def measure(n_modules=8, baudrate=250_000, step_us=1000, cycles=5, corrupt=0.0):
    rig = ChainRig(n_modules, baudrate=baudrate, seed=2)
    h = rig.host
    assert rig.run_until(lambda: h.cycle_count >= 1, 3000, step_us)
    if corrupt:
        rig.links[0].byte_corrupt_prob = corrupt
    ratios = []
    durs = []
    for _ in range(cycles):
        # wait for the idle gap before the next cycle, then time the cycle from its first byte to its end
        c = h.cycle_count
        assert rig.run_until(lambda c=c: h.state == 4 or h.cycle_count > c, 1000, step_us)  # S_SETTLE: SAMPLE sent
        t0 = rig.clock.total_us - step_us  # SAMPLE went out during the last step
        b0 = rig.bytes_on_wire()
        assert rig.run_until(lambda c=c: h.cycle_count > c, 1000, step_us)
        dt_us = rig.clock.total_us - t0
        wire_us = (rig.bytes_on_wire() - b0) * 10 * 1_000_000 / baudrate
        ratios.append(dt_us / wire_us)
        durs.append(dt_us / 1000)
    return max(ratios), max(durs), wire_us / 1000


def decoder_speed():
    import bms_packet as P

    frames = b"".join(P.build_frame(0, a, P.CELLS, 1, bytes([1, 12]) + bytes(range(1, 25))) for a in range(1, 9))
    dec = P.PacketDecoder()
    data = frames * 50
    t = time.perf_counter()
    n = 0
    i = 0
    while i < len(data):
        i = dec.feed(data, i, len(data))
        n += dec.ready
    dt = time.perf_counter() - t
    return len(data) / dt, n


UPY_SCRIPT = r"""
import sys, gc
sys.path.insert(0, "shared"); sys.path.insert(0, "module_fw/lib")
import bms_packet as P
from module_link import ModuleLink

class FakeUART:
    def __init__(self):
        self.rx = bytearray(4096); self.n = 0; self.pos = 0
    @property
    def in_waiting(self):
        return self.n - self.pos
    def readinto(self, buf):
        k = min(len(buf), self.n - self.pos)
        if k <= 0:
            return None
        for i in range(k):
            buf[i] = self.rx[self.pos + i]
        self.pos += k
        return k
    def write(self, b):
        return len(b)
    def load(self, data):
        for i in range(len(data)):
            self.rx[i] = data[i]
        self.n = len(data); self.pos = 0

frame = P.build_frame(0, 2, P.CELLS, 1, bytes([1, 12]) + bytes(range(1, 25)))
stream = frame * 100
dec = P.PacketDecoder()
w = P.PacketWriter()
up = FakeUART(); down = FakeUART()
link = ModuleLink(up, down)
up.load(P.build_frame(0xFF, 0, P.ENUMERATE, 1, b"\x00"))
link.poll(0)

def decode():
    i = 0
    while i < len(stream):
        i = dec.feed(stream, i, len(stream))

def build():
    for k in range(100):
        m = P.pack_status_into(w.payload, 0, 1, 2, 3, 4, 5, 6, 12)
        w.finish(0, 1, P.STATUS, k, m)

six = frame * 6  # six CELLS answers from below, forwarded up whole in one poll

def relay():
    down.load(six)
    link.poll(1)

def idle():
    for k in range(100):
        link.poll(2 + k)

def warm_up(fn):
    for k in range(4):  # a queue slot's view for a frame length is made once (8 slots x lengths used)
        fn()

a0 = a1 = 0  # globals made before measuring (a new global grows the module's dict: that is the bench, not the link)
for name, fn, count in (("decode", decode, 100), ("build", build, 100), ("relay", relay, 6), ("idle", idle, 100)):
    warm_up(fn)
    gc.collect(); gc.disable()
    a0 = gc.mem_alloc()
    fn()
    a1 = gc.mem_alloc()
    gc.enable()
    print(name, count, a1 - a0)
"""


UPY_CHAIN = r"""import sys, gc
sys.path.insert(0, "shared"); sys.path.insert(0, "module_fw/lib"); sys.path.insert(0, "host_fw/lib")
sys.path.insert(0, "bench")
from upy_chain import cable, MiniModule  # in-memory cables (no timing) and the least module app
from module_link import ModuleLink
from chain import ChainMaster

N = 4
cables = [cable() for _ in range(N + 1)]
host = ChainMaster(cables[0][0], max_modules=8)
apps = [MiniModule(ModuleLink(cables[k][1], cables[k + 1][0])) for k in range(N)]
now = 0
acc = [0, 0]
def run(ms, measure=False):
    global now
    for _ in range(ms):
        now += 1
        if measure:
            a0 = gc.mem_alloc()
        host.step(now)
        if measure:
            a1 = gc.mem_alloc()
        for a in apps:
            a.step(now)
        if measure:
            a2 = gc.mem_alloc()
            acc[0] += a1 - a0; acc[1] += a2 - a1
run(5000)
c0 = host.cycle_count
gc.collect(); gc.disable()
a0 = gc.mem_alloc()
run(1000, True)
a1 = gc.mem_alloc()
gc.enable()
cycles = host.cycle_count - c0
print("chain_host", cycles, acc[0])
print("chain_modules", cycles, acc[1])
assert all(host.fresh[a] == 7 for a in range(1, N + 1))
"""


def micropython_allocations():
    """Heap bytes allocated per packet on a real MicroPython interpreter (None if it is not installed)."""
    import shutil
    import subprocess
    import tempfile

    upy = os.path.join(os.path.dirname(sys.executable), "micropython")
    if not os.path.exists(upy):
        upy = shutil.which("micropython")
    if not upy:
        return None
    import adafruit_ticks

    with tempfile.TemporaryDirectory() as d:
        shutil.copy(adafruit_ticks.__file__, d)
        lines = []
        for k, text in enumerate((UPY_SCRIPT, UPY_CHAIN)):
            script = os.path.join(d, "mem%d.py" % k)
            with open(script, "w") as f:
                f.write(text)
            r = subprocess.run([upy, "-X", "heapsize=8M", script], cwd=ROOT, capture_output=True, text=True,
                               env=dict(os.environ, MICROPYPATH=d + ":.frozen"), timeout=120)
            lines += r.stdout.splitlines()
    out = {}
    for line in lines:
        name, count, nbytes = line.split()
        out[name] = int(nbytes) / int(count)
    return out


def main():
    print("cycle time vs wire limit (simulated time; ratio = cycle / wire limit, target <= %.1f)" % TARGET)
    worst = 0.0
    for n, baud, step in ((8, 250_000, 1000), (8, 250_000, 250), (8, 115_200, 1000), (16, 250_000, 1000)):
        ratio, dur_ms, wire_ms = measure(n, baud, step)
        if baud == 250_000 and n == 8:
            worst = max(worst, ratio)
        print("  %2d modules %6d baud, loop %4d us: cycle %6.1f ms, wire limit %6.1f ms, ratio %.2fx (%.2f of target)"
              % (n, baud, step, dur_ms, wire_ms, ratio, ratio / TARGET))
    ratio, dur_ms, wire_ms = measure(8, 250_000, 1000, cycles=20, corrupt=0.01)
    print("  8 modules, 1 %% of bytes corrupted on the host cable: worst cycle %.1f ms of a %d ms period (%.2f)"
          % (dur_ms, 200, dur_ms / 200))
    bps, n = decoder_speed()
    print("decoder on this PC (CPython): %.0f bytes/s = %.1fx one 250 000 baud port (%d packets)"
          % (bps, bps / 25_000, n))
    mem = micropython_allocations()
    if mem:
        print("heap allocated on MicroPython, bytes per packet: decode %.0f, build %.0f, relay up %.0f, idle poll %.0f"
              % (mem["decode"], mem["build"], mem["relay"], mem["idle"]))
        print("  whole chain (host + 4 module links + minimal apps, in-memory cables), steady state, bytes per cycle:"
              " host %.0f, all modules %.0f (limit 0)" % (mem["chain_host"], mem["chain_modules"]))
    print("RESULT: 8 modules at 250 000 baud: %.2fx the wire limit (target <= %.1fx): %s"
          % (worst, TARGET, "OK" if worst <= TARGET else "OVER"))


if __name__ == "__main__":
    main()
