"""The simulated pack: series cells in modules, a balancing resistor per cell, a board thermal mass per module,
a host switch (MOSFET) thermal mass, and the ambient.  It is the single source of truth the chip models read:

- ``cells_fn(m)`` → a callable giving the 12 channel voltages (µV, cell 1 first) of module ``m`` for ``LTC6811Model``;
- ``gpio_fn(m)`` → a callable giving GPIO1…5 (µV): GPIO1 and GPIO2 the two cell NTCs of the block (GPIO1 taped to
  the lower half of the cells, GPIO2 to the upper half; each sees the hottest cell of its half), GPIO3…5 unconnected
  (they read VREF2 through the pull-up).  The board itself (bleed resistors) is ``board_temp_c[m]``: the rig gives
  it to the LTC6811 model as its die temperature, which is what the board's own heat limit watches;
- ``current_ma()`` and ``bus_mv()`` for the INA228 model.

Sign convention: pack current > 0 charges.  Bleeding is driven by ``set_bleed_mask(m, mask)`` (the switches the
LTC6811 model reports closed): a closed switch puts ``bleed_ohm`` across its cell, so the bleed current is V/R and it
really drains that cell and heats that board.
"""

import math
import random

from hil.cells import CHEMISTRY, Cell, thermal_step

CHANNELS = 12  # LTC6811 cell inputs per module
GPIOS = 5

# NTC circuit of the module boards: 10 kΩ B3435 NTC to ground, 10 kΩ pull-up to VREF2 (3.0 V).
NTC_R25_OHM = 10000.0
NTC_BETA = 3435.0  # the module firmware and the LTC6811 model assume a B3435 NTC
NTC_PULLUP_OHM = 10000.0
VREF2_UV = 3000000

BOARD_HEAT_J_PER_K = 40.0  # module board with its bleed resistors and copper
BOARD_COOLING_W_PER_K = 0.15  # six bleeding cells (~4 W) settle ~26 K above ambient
FET_HEAT_J_PER_K = 60.0  # host MOSFETs + shunt on their heatsink
FET_COOLING_W_PER_K = 1.0
FET_R_OHM = 0.002


def ntc_uv(temp_c: float) -> int:
    """GPIO voltage (µV) of the NTC divider at ``temp_c`` (beta model)."""
    t_k = temp_c + 273.15
    r = NTC_R25_OHM * math.exp(NTC_BETA * (1.0 / t_k - 1.0 / 298.15))
    return int(VREF2_UV * r / (r + NTC_PULLUP_OHM))


def ntc_temp_c(gpio_uv: int) -> float:
    """Inverse of ``ntc_uv`` (for tests and plots); ``nan`` for an open (absent) or shorted sensor."""
    if gpio_uv >= VREF2_UV - 1000 or gpio_uv <= 1000:
        return float("nan")
    r = NTC_PULLUP_OHM * gpio_uv / (VREF2_UV - gpio_uv)
    return 1.0 / (math.log(r / NTC_R25_OHM) / NTC_BETA + 1.0 / 298.15) - 273.15


def split_cells(cells: int, modules: int) -> list:
    """Cells per module, as even as possible (48 on 4 → 12 ×4; 14 on 2 → 7, 7). Each module carries 4…12."""
    if modules < 1:
        raise ValueError("need at least one module")
    base, extra = divmod(cells, modules)
    counts = [base + (1 if i < extra else 0) for i in range(modules)]
    if min(counts) < 4 or max(counts) > CHANNELS:
        raise ValueError("%d cells on %d modules: each module must carry 4..12 cells" % (cells, modules))
    return counts


class Spread:
    """Cell-to-cell spread, each a standard deviation (clipped at 2.5 σ): capacity (%), initial SOC (% points),
    internal resistance (%)."""

    def __init__(self, capacity_pct: float = 0.5, soc_pct: float = 0.0, r_pct: float = 10.0) -> None:
        self.capacity_pct = capacity_pct
        self.soc_pct = soc_pct
        self.r_pct = r_pct


def _clipped_gauss(rng, sigma):
    return max(-2.5 * sigma, min(2.5 * sigma, rng.gauss(0.0, sigma)))


class PackModel:
    """``cells`` series cells of ``chemistry`` on ``modules`` boards, drawn from ``seed`` with ``spread``."""

    def __init__(self, chemistry: str = "LFP", cells: int = 48, modules: int = 4, seed: int = 1, soc: float = 0.5,
                 capacity_ah: float = None, spread: Spread = None, ambient_c: float = 25.0,
                 bleed_ohm: float = 16.5) -> None:
        if chemistry not in CHEMISTRY:
            raise ValueError("unknown chemistry %r (one of %s)" % (chemistry, ", ".join(sorted(CHEMISTRY))))
        self.chemistry = chemistry
        self.counts = split_cells(cells, modules)
        self.starts = [sum(self.counts[:i]) for i in range(modules)]
        spread = spread if spread is not None else Spread()
        rng = random.Random(seed)
        cap = capacity_ah if capacity_ah is not None else CHEMISTRY[chemistry]["capacity_ah"]
        r = CHEMISTRY[chemistry]["r_mohm"]
        self.cells = []
        for _ in range(cells):
            self.cells.append(Cell(
                chemistry,
                capacity_ah=cap * (1.0 + _clipped_gauss(rng, spread.capacity_pct) / 100.0),
                soc=soc + _clipped_gauss(rng, spread.soc_pct) / 100.0,
                r_mohm=r * (1.0 + _clipped_gauss(rng, spread.r_pct) / 100.0),
                temp_c=ambient_c,
            ))
        self.nominal_capacity_ah = cap
        self.ambient_c = ambient_c
        self.bleed_ohm = bleed_ohm
        self.current_a = 0.0
        self.bleed_masks = [0] * modules
        self.board_temp_c = [ambient_c] * modules
        self.board_ambient_offset_c = [0.0] * modules  # fault: a board in a hot corner / blocked airflow
        self.fet_temp_c = ambient_c
        self.sensor_absent = set()  # {(module, gpio_index)}: an unplugged NTC reads VREF2 through its pull-up
        self.bleed_as = [0.0] * cells  # charge each cell has bled (A·s)
        self.charge_as = 0.0  # through the pack terminals
        self.discharge_as = 0.0
        self.time_s = 0.0
        self._uv = None  # terminal voltages (µV) of every cell, valid until the current or the state changes

    # -- structure --------------------------------------------------------------------------------------------
    @property
    def modules(self) -> int:
        return len(self.counts)

    def module_cells(self, m: int) -> list:
        return self.cells[self.starts[m]:self.starts[m] + self.counts[m]]

    # -- inputs ----------------------------------------------------------------------------------------------
    def set_current(self, current_a: float) -> None:
        self.current_a = float(current_a)
        self._uv = None

    def invalidate(self) -> None:
        """Forget the cached chip readings (call after changing a cell's state directly)."""
        self._uv = None

    def set_bleed_mask(self, m: int, mask: int) -> None:
        """Switches closed on module ``m`` (bit n-1 = cell n); bits above its cell count are ignored."""
        self.bleed_masks[m] = mask & ((1 << self.counts[m]) - 1)

    # -- physics -----------------------------------------------------------------------------------------------
    def step(self, dt_s: float) -> None:
        """Integrate ``dt_s`` seconds with the present current and bleed masks."""
        if dt_s <= 0:
            return
        i_pack = self.current_a
        for m in range(self.modules):
            mask = self.bleed_masks[m]
            board_heat_w = 0.0
            base = self.starts[m]
            for k in range(self.counts[m]):
                cell = self.cells[base + k]
                i_cell = i_pack
                if mask >> k & 1:
                    v = cell.terminal_v(i_pack)
                    i_bleed = v / self.bleed_ohm
                    board_heat_w += v * i_bleed
                    i_cell -= i_bleed
                    self.bleed_as[base + k] += i_bleed * dt_s
                cell.step(dt_s, i_cell, self.ambient_c)
            self.board_temp_c[m] = thermal_step(self.board_temp_c[m], board_heat_w,
                                                self.ambient_c + self.board_ambient_offset_c[m],
                                                BOARD_HEAT_J_PER_K, BOARD_COOLING_W_PER_K, dt_s)
        self.fet_temp_c = thermal_step(self.fet_temp_c, i_pack * i_pack * FET_R_OHM, self.ambient_c,
                                       FET_HEAT_J_PER_K, FET_COOLING_W_PER_K, dt_s)
        self._uv = None
        if i_pack > 0:
            self.charge_as += i_pack * dt_s
        else:
            self.discharge_as -= i_pack * dt_s
        self.time_s += dt_s

    # -- what the chips measure ------------------------------------------------------------------------------
    def cell_v(self, index: int) -> float:
        """Terminal voltage of a cell (V) at the present pack current (bleed switch open, as with DCP = 0)."""
        return self.cells[index].terminal_v(self.current_a)

    def cells_uv(self, m: int) -> list:
        """12 channel voltages of module ``m`` in µV; unused channels are tied to the top cell (0 V)."""
        uv = self._uv
        if uv is None:  # the chips convert far more often than the physics step: compute once per state
            i = self.current_a
            uv = self._uv = [int(c.terminal_v(i) * 1e6) for c in self.cells]
        out = uv[self.starts[m]:self.starts[m] + self.counts[m]]
        return out + [0] * (CHANNELS - len(out))

    def gpio_uv(self, m: int) -> list:
        out = [VREF2_UV] * GPIOS
        cells = self.module_cells(m)
        half = (len(cells) + 1) // 2
        out[0] = ntc_uv(max(c.temp_c for c in cells[:half]))
        out[1] = ntc_uv(max(c.temp_c for c in cells[half:]))
        for g in range(GPIOS):
            if (m, g) in self.sensor_absent:
                out[g] = VREF2_UV
        return out

    def cells_fn(self, m: int):
        return lambda: self.cells_uv(m)

    def gpio_fn(self, m: int):
        return lambda: self.gpio_uv(m)

    def current_ma(self) -> int:
        return int(round(self.current_a * 1000.0))

    def bus_mv(self) -> int:
        if self._uv is None:
            self.cells_uv(0)
        return (sum(self._uv) + 500) // 1000

    # -- truth for the report --------------------------------------------------------------------------------
    def ocv_sum_v(self) -> float:
        return sum(c.ocv_v() for c in self.cells)

    def r_sum_ohm(self) -> float:
        return sum(c.r_ohm() for c in self.cells)

    def true_soc(self) -> float:
        """Usable pack SOC (0…1): charge until the first cell is empty ÷ (that + charge until the first is full).

        That is what a BMS anchored at "first cell full" and "first cell at cut-off" can know.
        """
        remaining = min(min(1.0, c.soc) * c.capacity_as for c in self.cells)
        room = min(max(0.0, 1.0 - c.soc) * c.capacity_as for c in self.cells)
        total = remaining + room
        return remaining / total if total > 0 else 0.0

    def cell_mv_list(self) -> list:
        i = self.current_a
        return [c.terminal_v(i) * 1000.0 for c in self.cells]

    def spread_mv(self) -> float:
        """Spread of the open-circuit voltages (mV): what is left to balance."""
        v = [c.ocv_v() * 1000.0 for c in self.cells]
        return max(v) - min(v)

    def bleeding_cells(self) -> int:
        return sum(bin(m).count("1") for m in self.bleed_masks)
