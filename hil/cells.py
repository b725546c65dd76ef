"""One battery cell for the virtual rig: OCV curve per chemistry, internal resistance, capacity,
self-discharge and a lumped thermal model.

PC-only physics (floats are fine here); the tables are integers (SOC in 0.1 %, voltage in mV) so they read like a
datasheet and can be copied into firmware if it ever needs them. Sign convention: current > 0 charges the cell.
"""

import bisect
import math

# Open-circuit voltage at 25 °C: (soc_pm = SOC in per mille, ocv_mv).  Typical curves of commercial cells:
# LFP has its long flat plateau (why balancing only makes sense near full), NMC slopes, LTO is low and flat-ish.
# Points above 1000 are overcharge (SOC up to 105 %): the voltage shoots up, which is what over-voltage protects.
OCV_TABLES = {
    "LFP": (
        (0, 2500), (10, 2800), (30, 3000), (50, 3100), (100, 3200), (200, 3250), (300, 3275), (400, 3290),
        (500, 3300), (600, 3310), (700, 3325), (800, 3335), (900, 3345), (950, 3360), (980, 3400),
        (990, 3440), (1000, 3580), (1010, 3800), (1050, 4300),
    ),
    "NMC": (
        (0, 3000), (20, 3300), (50, 3450), (100, 3550), (200, 3620), (300, 3660), (400, 3710), (500, 3760),
        (600, 3830), (700, 3910), (800, 3990), (900, 4080), (950, 4130), (1000, 4190), (1010, 4300), (1050, 4700),
    ),
    "LTO": (
        (0, 1700), (20, 1950), (50, 2080), (100, 2150), (200, 2200), (300, 2230), (400, 2250), (500, 2270),
        (600, 2290), (700, 2320), (800, 2360), (900, 2420), (950, 2480), (990, 2580), (1000, 2700),
        (1010, 2900), (1050, 3300),
    ),
}

# Per chemistry: nominal capacity (Ah), internal resistance at 25 °C (mΩ), self-discharge (% per month at 25 °C),
# reversible (entropic) OCV coefficient (µV/K), mass (g) for the heat capacity.
CHEMISTRY = {
    "LFP": {"capacity_ah": 10.0, "r_mohm": 3.0, "self_discharge_pct_month": 2.0, "dvdt_uv_per_k": -80, "mass_g": 300},
    "NMC": {"capacity_ah": 10.0, "r_mohm": 2.5, "self_discharge_pct_month": 3.0, "dvdt_uv_per_k": -200, "mass_g": 200},
    "LTO": {"capacity_ah": 10.0, "r_mohm": 1.5, "self_discharge_pct_month": 1.5, "dvdt_uv_per_k": -50, "mass_g": 350},
}

CELL_SPECIFIC_HEAT_J_PER_GK = 1.0  # typical for Li-ion cells
CELL_COOLING_W_PER_K = 0.05  # natural convection of one cell in a pack
SECONDS_PER_MONTH = 30 * 24 * 3600
SOC_MAX = 1.05  # overcharged


def ocv_mv(chemistry: str, soc: float) -> float:
    """Open-circuit voltage (mV, float) at 25 °C for a state of charge ``soc`` in 0…1.05 (clamped)."""
    table = OCV_TABLES[chemistry]
    pm = min(SOC_MAX * 1000.0, max(0.0, soc * 1000.0))
    keys = _KEYS[chemistry]
    i = bisect.bisect_right(keys, pm)
    if i >= len(table):
        return float(table[-1][1])
    if i == 0:
        return float(table[0][1])
    (s0, v0), (s1, v1) = table[i - 1], table[i]
    return v0 + (v1 - v0) * (pm - s0) / (s1 - s0)


def soc_from_ocv(chemistry: str, mv: float) -> float:
    """Inverse of ``ocv_mv`` (the curves are strictly increasing): SOC 0…1.05 for a rest voltage at 25 °C."""
    table = OCV_TABLES[chemistry]
    if mv <= table[0][1]:
        return 0.0
    for (s0, v0), (s1, v1) in zip(table, table[1:], strict=False):
        if mv <= v1:
            return (s0 + (s1 - s0) * (mv - v0) / (v1 - v0)) / 1000.0
    return SOC_MAX


_KEYS = {k: [p[0] for p in t] for k, t in OCV_TABLES.items()}


class Cell:
    """A cell: true SOC (the model's truth), capacity, resistance, temperature.

    ``capacity_as`` is in ampere-seconds; ``temp_c`` is the cell's own lumped temperature.
    ``open_circuit`` marks a cell whose tab broke (no current flows, the pack is open).
    """

    __slots__ = ("chemistry", "capacity_as", "soc", "r25_ohm", "temp_c", "heat_j_per_k", "self_discharge_per_s",
                 "dvdt_v_per_k", "extra_heat_w", "_ocv_lut")

    def __init__(self, chemistry: str = "LFP", capacity_ah: float = None, soc: float = 0.5, r_mohm: float = None,
                 temp_c: float = 25.0) -> None:
        if chemistry not in CHEMISTRY:
            raise ValueError("unknown chemistry %r (one of %s)" % (chemistry, ", ".join(sorted(CHEMISTRY))))
        p = CHEMISTRY[chemistry]
        self.chemistry = chemistry
        self.capacity_as = (capacity_ah if capacity_ah is not None else p["capacity_ah"]) * 3600.0
        if self.capacity_as <= 0:
            raise ValueError("capacity must be positive")
        self.soc = min(SOC_MAX, max(0.0, soc))
        self.r25_ohm = (r_mohm if r_mohm is not None else p["r_mohm"]) / 1000.0
        self.temp_c = temp_c
        self.heat_j_per_k = p["mass_g"] * CELL_SPECIFIC_HEAT_J_PER_GK
        self.self_discharge_per_s = p["self_discharge_pct_month"] / 100.0 / SECONDS_PER_MONTH
        self.dvdt_v_per_k = p["dvdt_uv_per_k"] / 1e6
        self.extra_heat_w = 0.0  # fault injection: an internal short / bad tab that heats the cell

    @property
    def capacity_ah(self) -> float:
        return self.capacity_as / 3600.0

    def r_ohm(self) -> float:
        """Internal resistance: rises in the cold (about 2 %/K below 25 °C), falls a little when warm."""
        k = 1.0 + 0.02 * (25.0 - self.temp_c)
        return self.r25_ohm * min(4.0, max(0.6, k))

    def ocv_v(self) -> float:
        return ocv_mv(self.chemistry, self.soc) / 1000.0 + self.dvdt_v_per_k * (self.temp_c - 25.0)

    def terminal_v(self, current_a: float) -> float:
        """Voltage at the tabs with ``current_a`` flowing (charge > 0)."""
        return self.ocv_v() + current_a * self.r_ohm()

    def step(self, dt_s: float, current_a: float, ambient_c: float) -> float:
        """Integrate ``dt_s`` seconds at ``current_a`` (charge > 0). Returns the charge moved (A·s)."""
        dq = current_a * dt_s - self.soc * self.capacity_as * self.self_discharge_per_s * dt_s
        self.soc = min(SOC_MAX, max(0.0, self.soc + dq / self.capacity_as))
        heat_w = current_a * current_a * self.r_ohm() + self.extra_heat_w
        self.temp_c = thermal_step(self.temp_c, heat_w, ambient_c, self.heat_j_per_k, CELL_COOLING_W_PER_K, dt_s)
        return current_a * dt_s


def thermal_step(temp_c: float, heat_w: float, ambient_c: float, heat_j_per_k: float, cooling_w_per_k: float,
                 dt_s: float) -> float:
    """Exact step of a lumped body (C dT/dt = P − G (T − Ta)): stable for any ``dt_s``."""
    t_inf = ambient_c + heat_w / cooling_w_per_k
    return t_inf + (temp_c - t_inf) * math.exp(-cooling_w_per_k * dt_s / heat_j_per_k)
