"""The report of a scenario run, in ``out/<scenario>/``: ``timeline.csv``, ``events.log``, PNG plots and
``summary.json``.  Plots use matplotlib's Agg backend (no display needed)."""

import csv
import json
import math
import os


class Recorder:
    """Collects timeline rows (dicts with the same keys) and events, then writes the report."""

    def __init__(self, scenario: str, cells: int, modules: int) -> None:
        self.scenario = scenario
        self.cells = cells
        self.modules = modules
        self.rows = []
        self.events = []  # (t_s, source, text)

    def sample(self, row: dict) -> None:
        self.rows.append(row)

    def event(self, t_s: float, source: str, text: str) -> None:
        self.events.append((t_s, source, text))

    def events_text(self) -> str:
        return "".join("%10.1f s  %-8s %s\n" % e for e in self.events)

    # -- writing -------------------------------------------------------------------------------------------
    def write(self, out_dir: str, summary: dict, plots: bool = True) -> list:
        """Write every file; returns their paths."""
        os.makedirs(out_dir, exist_ok=True)
        paths = []
        p = os.path.join(out_dir, "timeline.csv")
        with open(p, "w", newline="") as f:
            if self.rows:
                w = csv.DictWriter(f, fieldnames=list(self.rows[0].keys()))
                w.writeheader()
                for r in self.rows:
                    w.writerow({k: _fmt(v) for k, v in r.items()})
        paths.append(p)
        p = os.path.join(out_dir, "events.log")
        with open(p, "w") as f:
            f.write(self.events_text())
        paths.append(p)
        p = os.path.join(out_dir, "summary.json")
        with open(p, "w") as f:
            json.dump(_clean(summary), f, indent=2, sort_keys=False)
            f.write("\n")
        paths.append(p)
        if plots and self.rows:
            paths += self._plots(out_dir, summary)
        return paths

    def _col(self, key):
        return [r.get(key, float("nan")) for r in self.rows]

    def _plots(self, out_dir: str, summary: dict) -> list:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        t = self._col("t_s")
        span = t[-1] if t else 0
        unit, div = ("h", 3600.0) if span > 3 * 3600 else ("min", 60.0)
        x = [v / div for v in t]
        title = "%s — %d cells / %d modules" % (self.scenario, self.cells, self.modules)
        paths = []

        def save(fig, name):
            fig.tight_layout()
            p = os.path.join(out_dir, name)
            fig.savefig(p, dpi=110)
            plt.close(fig)
            paths.append(p)

        phases = []  # (start, end, name) of each contiguous phase
        for xv, name in zip(x, self._col("phase"), strict=True):
            if phases and phases[-1][2] == name:
                phases[-1][1] = xv
            else:
                phases.append([xv, xv, name])

        def shade_trips(ax):
            for i, (a, b, name) in enumerate(phases):
                if i % 2:
                    ax.axvspan(a, b, color="0.93", zorder=0)
                if span > 0 and (b - a) * div >= 0.04 * span:  # label only phases wide enough to read
                    ax.text((a + b) / 2, 1.0, name, transform=ax.get_xaxis_transform(), ha="center", va="bottom",
                            fontsize=8, color="0.35")
            for trip in summary.get("trips", []):
                ax.axvline(trip["t_s"] / div, color="red", lw=0.8, ls="--")
                ax.text(trip["t_s"] / div, 0.02, " " + trip["cause"], transform=ax.get_xaxis_transform(),
                        color="red", fontsize=8)

        # cell voltages: every cell thin, min/max bold
        fig, ax = plt.subplots(figsize=(11, 5.5))
        for i in range(self.cells):
            ax.plot(x, self._col("cell%02d_mv" % (i + 1)), lw=0.5, alpha=0.6)
        ax.plot(x, self._col("cell_min_mv"), color="k", lw=1.2, label="min")
        ax.plot(x, self._col("cell_max_mv"), color="k", lw=1.2, ls=":", label="max")
        ax.set(title=title + ": cell voltages\n", xlabel="time (%s)" % unit, ylabel="cell voltage (mV)")
        shade_trips(ax)
        ax.grid(alpha=0.3)
        ax.legend(loc="best")
        save(fig, "cell_voltages.png")

        fig, ax = plt.subplots(figsize=(11, 4))
        ax.plot(x, self._col("current_a"), label="true current")
        ax.plot(x, self._col("host_current_a"), lw=0.8, ls="--", label="host (INA228)")
        ax.set(title=title + ": pack current (charge > 0)\n", xlabel="time (%s)" % unit, ylabel="current (A)")
        shade_trips(ax)
        ax.grid(alpha=0.3)
        ax.legend(loc="best")
        save(fig, "current.png")

        fig, (ax, ax2) = plt.subplots(2, 1, figsize=(11, 6), sharex=True, gridspec_kw={"height_ratios": [3, 1]})
        ax.plot(x, self._col("true_soc_pct"), label="true SOC (model)")
        ax.plot(x, self._col("soc_pct"), ls="--", label="host estimate")
        ax.set(title=title + ": state of charge\n", ylabel="SOC (%)")
        shade_trips(ax)
        ax.grid(alpha=0.3)
        ax.legend(loc="best")
        err = [(a - b) if _ok(a) and _ok(b) else float("nan")
               for a, b in zip(self._col("soc_pct"), self._col("true_soc_pct"), strict=True)]
        ax2.plot(x, err, color="C3")
        ax2.axhline(3, color="grey", lw=0.6, ls=":")
        ax2.axhline(-3, color="grey", lw=0.6, ls=":")
        ax2.set(xlabel="time (%s)" % unit, ylabel="error (% pts)")
        ax2.grid(alpha=0.3)
        save(fig, "soc.png")

        fig, ax = plt.subplots(figsize=(11, 4.5))
        for m in range(self.modules):
            ax.plot(x, self._col("m%d_board_c" % (m + 1)), label="module %d board" % (m + 1))
        for m in range(self.modules):
            ax.plot(x, self._col("m%d_cells_c" % (m + 1)), ls=":", label="module %d cells" % (m + 1))
        ax.plot(x, self._col("fet_c"), color="k", lw=0.8, label="host MOSFET")
        for key, text in (("board_warn_c", "board derates"), ("board_limit_c", "board stops bleeding")):
            if summary.get(key) is not None:
                ax.axhline(summary[key], color="0.5", lw=0.7, ls=":")
                ax.text(x[0] if x else 0, summary[key], " " + text, va="bottom", fontsize=7, color="0.4")
        ax.set(title=title + ": temperatures (model)\n", xlabel="time (%s)" % unit, ylabel="°C")
        shade_trips(ax)
        ax.grid(alpha=0.3)
        ax.legend(loc="best", fontsize=7, ncol=2)
        save(fig, "temperatures.png")

        fig, ax = plt.subplots(figsize=(11, 4.5))
        for m in range(self.modules):
            ax.step(x, self._col("m%d_bleeding" % (m + 1)), where="post", label="module %d" % (m + 1))
        ax.set(title=title + ": balancing\n", xlabel="time (%s)" % unit, ylabel="cells bleeding")
        shade_trips(ax)
        ax.grid(alpha=0.3)
        ax2 = ax.twinx()
        ax2.plot(x, self._col("spread_mv"), color="k", lw=1.0, label="spread (mV, right)")
        ax2.set_yscale("symlog", linthresh=1.0)
        ax2.axhline(1.0, color="grey", lw=0.6, ls=":")
        ax2.set_ylabel("cell spread (mV)")
        h1, l1 = ax.get_legend_handles_labels()
        h2, l2 = ax2.get_legend_handles_labels()
        ax.legend(h1 + h2, l1 + l2, loc="upper right", fontsize=8)
        save(fig, "balancing.png")
        return paths


def _clean(v):
    """JSON has no NaN: unknown numbers become null."""
    if isinstance(v, float) and (math.isnan(v) or math.isinf(v)):
        return None
    if isinstance(v, dict):
        return {k: _clean(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_clean(x) for x in v]
    return v


def _ok(v) -> bool:
    return isinstance(v, (int, float)) and not math.isnan(v)


def _fmt(v):
    if isinstance(v, float):
        return "" if math.isnan(v) else "%.4g" % v if abs(v) < 1e4 else "%.1f" % v
    return v
