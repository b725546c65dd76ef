"""Speed and balancing of the virtual pack's default scenario (full_cycle: 48 LFP cells on 4 modules).

Prints, as ratios against their limits:
- simulated seconds per wall second (target >= 50x real time);
- balancing time / ideal balancing time, where ideal = charge to remove / bleed current, every module bleeding as
  many cells at once as "no two neighbours" and its thermal budget allow (1.0 would be perfect);
- wall time of the whole scenario against the 3-minute budget of `make sim`.
Usage: python bench/bench_sim.py [--cells N --modules M --seed S] [--profile]
``--profile`` instead runs 60 simulated seconds of the default pack under cProfile and prints where the time goes
(rig and physics, SPI + LTC6811 model, UART model, link codec, module firmware, host firmware, drivers).
"""

import argparse
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("BLINKA_OS_AGNOSTIC", "1")
for sub in ("shared", "module_fw/lib", "host_fw/lib", ""):
    p = os.path.join(ROOT, sub) if sub else ROOT
    if p not in sys.path:
        sys.path.insert(0, p)

from hil import scenarios  # noqa: E402

TARGET_X = 50.0
BUDGET_S = 180.0


AREAS = (  # (label, path fragments) in the order they are matched
    ("SPI bus + LTC6811 model", ("hil/sim_spi.py", "hil/ltc6811_model.py")),
    ("UART model", ("hil/sim_uart.py",)),
    ("I2C bus + INA228 model + driver", ("hil/sim_i2c.py", "hil/ina228_model.py", "adafruit_ina228",
                                         "adafruit_register", "adafruit_bus_device")),
    ("SimPin + VirtualClock (read by the bus models)", ("hil/sim_pins.py", "hil/clock.py")),
    ("rig, physics, report", ("hil/",)),
    ("link codec (CRC, COBS, packets)", ("shared/bms_link.py", "shared/bms_packet.py")),
    ("module firmware", ("module_fw/",)),
    ("host firmware", ("host_fw/",)),
)


def profile(args) -> int:
    import cProfile
    import pstats

    from hil.profiles import Load
    from hil.rig import Rig

    rig = Rig(cells=args.cells or 48, modules=args.modules or 4, soc=0.9, seed=args.seed)
    rig.run_for(5.0)
    rig.set_profile(Load(20.0), "discharge")
    prof = cProfile.Profile()
    prof.enable()
    rig.run_for(60.0)
    prof.disable()
    stats = pstats.Stats(prof).stats
    total = sum(v[2] for v in stats.values())  # own time of every function
    share = {}
    for (path, _line, _name), v in stats.items():
        path = path.replace(os.sep, "/")
        label = next((lab for lab, frags in AREAS if any(f in path for f in frags)), "Python runtime, other")
        share[label] = share.get(label, 0.0) + v[2]
    print("where 60 simulated seconds of %d cells / %d modules go (own time, under cProfile):" % (
        len(rig.pack.cells), rig.pack.modules))
    for label, t in sorted(share.items(), key=lambda kv: -kv[1]):
        print("  %-46s %5.1f %%" % (label, 100.0 * t / total))
    return 0


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cells", type=int)
    ap.add_argument("--modules", type=int)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--profile", action="store_true")
    args = ap.parse_args()
    if args.profile:
        return profile(args)
    t0 = time.perf_counter()
    summary, fails, rig = scenarios.run_scenario("full_cycle", cells=args.cells, modules=args.modules, seed=args.seed)
    wall = time.perf_counter() - t0
    speed = summary["simulated_s"] / summary["wall_s"]
    print("full_cycle: %d cells / %d modules, %.0f s simulated" % (summary["cells"], summary["modules"],
                                                                   summary["simulated_s"]))
    print("speed      : %6.1fx real time   ratio to the %.0fx target: %.2f  (%s)" % (
        speed, TARGET_X, speed / TARGET_X, "ok" if speed >= TARGET_X else "BELOW TARGET"))
    print("wall       : %6.1f s (rig %.1f s)  ratio to the %.0f s budget of make sim: %.2f" % (
        wall, summary["wall_s"], BUDGET_S, wall / BUDGET_S))
    ideal = summary.get("ideal_balance_s")
    took = summary.get("balance_time_s")
    if ideal and took is not None:
        print("balancing  : %6.0f s for %.1f mV -> %.2f mV; ideal %.0f s; ratio %.2f" % (
            took, summary.get("spread_before_balance_mv", float("nan")), summary["final_spread_mv"], ideal,
            took / ideal))
    print("SOC error  : max %.2f %% (limit 3 %%), after the full re-anchor %.2f %% (limit 1 %%)" % (
        summary["soc_error_max_pct"], summary.get("soc_error_after_full_pct", float("nan"))))
    print("checks     : %s" % ("passed" if not fails else "; ".join(fails)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
