"""Run a scenario of the virtual pack: ``python -m hil.sim [scenario] [options]`` (``make sim ARGS=...``).

Default: ``full_cycle`` — 48 LFP cells on 4 modules with a seeded spread, charge to full, balance to <= 1 mV,
discharge to cut-off.  Writes ``out/<scenario>/`` (timeline.csv, events.log, PNG plots, summary.json) and shows a
live view in a terminal.  Exit status 0 when the scenario's checks passed, 1 when they failed, 2 on bad usage.
"""

import argparse
import json
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("BLINKA_OS_AGNOSTIC", "1")
for _sub in ("shared", "module_fw/lib", "host_fw/lib"):
    _p = os.path.join(ROOT, _sub)
    if _p not in sys.path:
        sys.path.insert(0, _p)


def main(argv=None) -> int:
    from hil import scenarios
    from hil.cells import CHEMISTRY

    ap = argparse.ArgumentParser(prog="python -m hil.sim", description=__doc__.split("\n\n")[0])
    ap.add_argument("scenario", nargs="?", default=scenarios.DEFAULT, help="scenario name (see --list)")
    ap.add_argument("--scenario", dest="scenario_opt", metavar="NAME", help="the same as giving the name first")
    ap.add_argument("--list", action="store_true", help="list the scenarios and exit")
    ap.add_argument("--seed", type=int, default=1, help="seed of the cell spread (default 1)")
    ap.add_argument("--speed", type=float, default=0.0,
                    help="pace: at most this many times real time (default 0 = as fast as possible)")
    ap.add_argument("--cells", type=int, help="cells in the pack (default: the scenario's)")
    ap.add_argument("--modules", type=int, help="module boards (default: the scenario's)")
    ap.add_argument("--chemistry", choices=sorted(CHEMISTRY), help="cell chemistry (default: the scenario's)")
    ap.add_argument("--out", default=os.path.join("out"), help="report folder root (default out/)")
    ap.add_argument("--no-live", action="store_true", help="no live view")
    ap.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    args = ap.parse_args(argv)
    if args.scenario_opt:
        args.scenario = args.scenario_opt

    if args.list:
        width = max(len(n) for n in scenarios.SCENARIOS)
        for name, cls in scenarios.SCENARIOS.items():
            mark = " (default)" if name == scenarios.DEFAULT else ""
            print("%-*s  %2d cells / %d modules  %s%s" % (width, name, cls.cells, cls.modules, cls.doc, mark))
        return 0
    if args.scenario not in scenarios.SCENARIOS:
        print("unknown scenario %r; one of: %s" % (args.scenario, ", ".join(scenarios.SCENARIOS)), file=sys.stderr)
        return 2

    from hil.live import LiveView

    sc_cls = scenarios.SCENARIOS[args.scenario]
    out_dir = os.path.join(args.out, args.scenario)
    t0 = time.perf_counter()
    try:
        with LiveView(args.scenario, sc_cls.estimate_s, enabled=not args.no_live) as live:
            summary, fails, rig = scenarios.run_scenario(
                args.scenario, out_dir=None, live=live, cells=args.cells, modules=args.modules,
                chemistry=args.chemistry, seed=args.seed, pace_x=args.speed)
    except ValueError as e:  # a pack layout the rig refuses (e.g. 60 cells on 4 modules)
        print("error: %s" % e, file=sys.stderr)
        return 2
    summary["wall_total_s"] = round(time.perf_counter() - t0, 2)
    paths = rig.recorder.write(out_dir, summary, plots=not args.no_plots)
    print(json.dumps({k: v for k, v in summary.items() if k not in ("onsets", "allowed_s")}, indent=1))
    print("report: %s" % ", ".join(paths))
    if fails:
        print("FAILED: " + "; ".join(fails))
        return 1
    speed = summary["simulated_s"] / max(1e-9, summary["wall_s"])
    print("PASSED: %s, %.0f s simulated in %.1f s (%.0f× real time)" % (
        args.scenario, summary["simulated_s"], summary["wall_s"], speed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
