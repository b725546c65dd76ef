"""Live terminal view of a running scenario (``rich``): progress, pack state, per-module min/max, active faults.

Falls back to one plain line every few seconds when stdout is not a terminal (CI logs stay short)."""

import sys
import time


class LiveView:
    def __init__(self, scenario: str, total_s: float, enabled: bool = True) -> None:
        self.scenario = scenario
        self.total_s = max(1.0, total_s)
        self.enabled = enabled
        self.tty = enabled and sys.stdout.isatty()
        self._live = None
        self._last_plain = 0.0
        self._t0 = time.monotonic()

    def __enter__(self):
        if self.tty:
            from rich.live import Live

            self._live = Live(refresh_per_second=4, transient=False)
            self._live.__enter__()
        return self

    def __exit__(self, *exc):
        if self._live is not None:
            self._live.__exit__(*exc)
            self._live = None

    def update(self, snap: dict) -> None:
        if not self.enabled:
            return
        if self._live is not None:
            self._live.update(self._render(snap))
            return
        now = time.monotonic()
        if now - self._last_plain >= 10.0:
            self._last_plain = now
            print("%s t=%7.0f s  phase=%-10s I=%+7.1f A  V=%7.2f V  SOC %5.1f%% (true %5.1f%%)  spread %6.1f mV  %s"
                  % (self.scenario, snap["t_s"], snap["phase"], snap["current_a"], snap["pack_v"],
                     snap["soc_pct"], snap["true_soc_pct"], snap["spread_mv"], ",".join(snap["faults"]) or "-"),
                  flush=True)

    def _render(self, snap: dict):
        from rich.console import Group
        from rich.progress_bar import ProgressBar
        from rich.table import Table

        wall = time.monotonic() - self._t0
        head = Table.grid(padding=(0, 2))
        head.add_row(
            "[b]%s[/b]" % self.scenario,
            "t = %.0f s of ~%.0f s" % (snap["t_s"], self.total_s),
            "%.0f× real time" % (snap["t_s"] / wall if wall > 0 else 0.0),
            "phase [cyan]%s[/cyan]" % snap["phase"],
        )
        bar = ProgressBar(total=self.total_s, completed=min(snap["t_s"], self.total_s), width=60)
        pack = Table(title="pack", show_header=False, box=None)
        pack.add_row("current", "%+.2f A" % snap["current_a"])
        pack.add_row("voltage", "%.3f V" % snap["pack_v"])
        pack.add_row("SOC host / true", "%.1f %% / %.1f %%" % (snap["soc_pct"], snap["true_soc_pct"]))
        pack.add_row("cell spread", "%.1f mV" % snap["spread_mv"])
        pack.add_row("switches", "charge %s, discharge %s" % (
            "closed" if snap["charge_closed"] else "[red]open[/red]",
            "closed" if snap["discharge_closed"] else "[red]open[/red]"))
        pack.add_row("host state", str(snap.get("host_state", "")))
        mods = Table(title="modules")
        for col in ("module", "min mV", "max mV", "bleeding", "board °C", "cells °C", "awake"):
            mods.add_column(col, justify="right")
        for m in snap["modules"]:
            mods.add_row(str(m["n"]), "%.1f" % m["min_mv"], "%.1f" % m["max_mv"], str(m["bleeding"]),
                         "%.1f" % m["board_c"], "%.1f" % m["cells_c"], "yes" if m["awake"] else "[yellow]asleep[/]")
        faults = "[red]" + ", ".join(snap["faults"]) + "[/red]" if snap["faults"] else "none"
        trips = ", ".join("%s@%.0fs" % (t["cause"], t["t_s"]) for t in snap["trips"][-4:]) or "none"
        return Group(head, bar, pack, mods, "active faults: " + faults, "trips: " + trips)
