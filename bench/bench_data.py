"""Figures for the host's data path: per-cycle cost and allocation on MicroPython, flash wear over a year,
record sizes. Printed as ratios against a limit (ratio <= 1 is within the limit).

Runs the hot calls on the ``micropython`` interpreter from the venv (the closest thing to the board's VM;
an nRF52840 at 64 MHz is roughly 10-20x slower than this PC, so the time limit is 1/20 of a 200 ms cycle).
"""

import os
import sys

from upy_tools import ROOT, mpy_size, run_script

sys.path[:0] = [os.path.join(ROOT, "shared"), os.path.join(ROOT, "host_fw", "lib"), ROOT]

CYCLE_MS = 200
PC_SPEEDUP = 20  # board assumed this many times slower than micropython on this PC

UPY_SCRIPT = r"""
import sys, gc, time
sys.path[:0] = ["shared", "host_fw/lib"]
from soc import SocCounter
from soc_persist import SocPersist, NVM_LEN
from settings_store import SettingsStore
from bms_settings import Settings
from balance_policy import BalancePolicy
from calibration import apply
from usb_console import UsbConsole

class Sink:
    in_waiting = 0
    def write(self, b):
        return len(b)

class Facade:
    def __init__(self):
        self.settings = Settings()
    def settings_changed(self, t):
        pass
    def fill_status(self, st):
        st.n_cells = 96
        for i in range(96):
            st.cells_mv[i] = 3300 + i
        st.n_temps = 17
        for i in range(17):
            st.temps_dc[i] = 250 + i
        st.pack_mv = 320000
        st.current_ma = -123456
        st.warnings = 3

s = Settings()
store = SettingsStore(bytearray(b"\xff" * 8192), NVM_LEN)
soc = SocCounter(100000, 4200, 3000, 2000, 30000, 5000)
p = SocPersist(soc, bytearray(256), store)
bp = BalancePolicy()
con = UsbConsole(Sink(), Facade())
t = [0]

def f_soc():
    t[0] += 200
    soc.update(-123456, t[0], 3300, 3400)
def f_persist():
    p.step(t[0], 0, False)
def f_store():
    store.step(t[0], s)
def f_balance():
    bp.decide(t[0], 33000, 33500, 100, True, False, 0)
def f_cal():
    apply(-123456, 37, 1001234)
def f_status():
    con.write_status(t[0])
def f_poll():
    con.poll(t[0])

CALLS = (("soc.update", f_soc), ("persist.step", f_persist), ("store.step", f_store),
         ("balance.decide", f_balance), ("calibration.apply", f_cal),
         ("console.write_status(96 cells)", f_status), ("console.poll (idle)", f_poll))
def measure(fn, n=300):
    for _ in range(20):
        fn()
    gc.collect()
    gc.disable()
    a0 = gc.mem_alloc()
    t0 = time.ticks_us()
    for _ in range(n):
        fn()
    us = time.ticks_diff(time.ticks_us(), t0)
    alloc = gc.mem_alloc() - a0
    gc.enable()
    return us, alloc

def f_none():
    pass

# the loop itself (its range object, the timer) allocates a little: subtract it so 0 means nothing allocated
base_us, base_alloc = measure(f_none)
for name, fn in CALLS:
    us, alloc = measure(fn)
    print("%s|%.1f|%.1f" % (name, (us - base_us) / 300, max(0, alloc - base_alloc) / 300))
"""


def upy_figures():
    r = run_script(UPY_SCRIPT)
    if r is None:
        print("micropython not found: skipping the per-call figures")
        return
    if r.returncode:
        print("micropython bench failed:", r.stderr.strip()[-500:])
        return
    limit_us = CYCLE_MS * 1000 / PC_SPEEDUP
    print("per call on micropython (unix, this PC); time limit %.0f us = a 200 ms cycle / %d; allocation limit 0"
          % (limit_us, PC_SPEEDUP))
    total = 0.0
    for line in r.stdout.strip().splitlines():
        name, us, alloc = line.split("|")
        us = float(us)
        total += us
        print("  %-34s %8.1f us  ratio %.3f   %6.1f bytes allocated/call" % (name, us, us / limit_us, float(alloc)))
    print("  %-34s %8.1f us  ratio %.3f" % ("all of the above, one cycle", total, total / limit_us))


def flash_figures():
    from bms_settings import SCHEMA
    from settings_store import PAGE_SIZE, record_len
    from soc_persist import NVM_LEN, SLEEP_LEN

    rec = record_len(len(SCHEMA), NVM_LEN)
    print("settings record %d bytes: ratio %.3f of a 4 KiB page (limit: one page, one erase per write)"
          % (rec, rec / PAGE_SIZE))
    print("sleep_memory copy %d bytes (+4 safemode note): ratio %.3f of 256" % (SLEEP_LEN, (SLEEP_LEN + 4) / 256))

    from bms_settings import Settings
    from settings_store import SettingsStore
    from soc import SocCounter
    from soc_persist import SocPersist

    settings = Settings()
    nvm = bytearray(b"\xff" * 8192)
    store = SettingsStore(nvm, NVM_LEN)
    store.load(settings)
    soc = SocCounter(100000, 4200, 3000, 2000, 30000, 5000)
    p = SocPersist(soc, bytearray(256), store)
    cap = 100000 * 3600000
    true = cap // 2
    step = 600000
    t = 0
    charging = False
    for _day in range(365):
        for k in range(144):
            v = 3000 + 1200 * true // cap
            if not charging:
                cur = -min(8000, true // step)
                if true <= 0 and k >= 84:
                    charging = True
            else:
                cur = min(15000 if true < cap * 97 // 100 else 1500, (cap - true) // step)
                if true >= cap and k < 12:
                    charging = False
            ev = soc.update(cur, t, v, v)
            p.step(t, ev, False)
            store.step(t, settings)
            true = max(0, min(cap, true + cur * step))
            t = (t + step) % (1 << 29)
    per_page_day = max(store.erases) / 365.0
    print("a year of daily full-to-empty cycles: %d record writes, page erases %s, %d deferred"
          % (store.writes, store.erases, store.deferred))
    print("  worst page %.2f erases/day: ratio %.3f of the 10-year budget (10 000 / 3650 days = 2.74/day)"
          % (per_page_day, per_page_day / (10000 / 3650.0)))


def mpy_sizes():
    print(".mpy sizes (limit 16 KiB per module, so each imports comfortably on the board):")
    for rel in ("shared/bms_settings.py", "host_fw/lib/settings_store.py", "host_fw/lib/soc.py",
                "host_fw/lib/soc_persist.py", "host_fw/lib/calibration.py", "host_fw/lib/balance_policy.py",
                "host_fw/lib/usb_console.py"):
        n = mpy_size(rel)
        if not n:
            print("  mpy-cross not found (or %s did not compile)" % rel)
            return
        print("  %-32s %6d bytes  ratio %.3f" % (rel, n, n / 16384.0))


if __name__ == "__main__":
    upy_figures()
    flash_figures()
    mpy_sizes()
