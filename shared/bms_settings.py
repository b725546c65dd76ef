"""
`bms_settings`
================================================================================

The one settings schema of the host (DESIGN.md §1, §7): name, unit, integer range, default,
cross-field rules, chemistry presets (LFP, NMC, LTO) and factory reset. Every interface (USB
commands now, display and Bluetooth later) changes settings only through :class:`Settings`,
so a bad value is refused the same way everywhere. See ``docs/settings.md``.

Pure Python, integers only: runs unchanged on CircuitPython, MicroPython and CPython.

API (the firmware uses these)::

    s = Settings()                      # factory defaults (NMC, 1 module x 12 cells)
    s.get("ov_trip_mv") -> int          # KeyError for an unknown name
    s.set("ov_trip_mv", 4200) -> None   # raises ValueError("<rule broken>"), nothing changes
    s.set_many((("modules", 2), ("mod2_cells", 4), ("cells_total", 16)))  # all or nothing
    s.apply_preset(CHEM_LFP)            # chemistry and its consistent voltage defaults
    s.factory_reset()
    s.changes                           # bumped by every successful change (re-read limits when it moves)

Settings IDs (``SCHEMA`` position) are stored in flash next to each value: append new settings at
the end, never reorder or reuse a position (a removed setting keeps its row, renamed ``_unused<n>``).
"""

from micropython import const

try:
    from typing import Iterable, Tuple  # noqa: F401
except ImportError:
    pass

SCHEMA_VERSION = const(1)

CHEM_LFP = const(0)
CHEM_NMC = const(1)
CHEM_LTO = const(2)
CHEMISTRY_NAMES = ("LFP", "NMC", "LTO")

MAX_MODULES = const(8)
MODULE_MIN_CELLS = const(4)
MODULE_MAX_CELLS = const(12)

# Protection conditions: (name, unit suffix, "high" or "low" side).
HIGH = const(1)
LOW = const(0)
CONDITIONS = (
    ("ov", "mv", HIGH),
    ("uv", "mv", LOW),
    ("chg_oc", "ma", HIGH),
    ("dsg_oc", "ma", HIGH),
    ("chg_ot", "dc", HIGH),
    ("chg_ut", "dc", LOW),
    ("dsg_ot", "dc", HIGH),
    ("dsg_ut", "dc", LOW),
    ("fet_ot", "dc", HIGH),
)

# (name, unit, min, max, factory default); the position is the setting's stored ID. Written out literally
# (not built from the condition table at import) so every name is an interned string and no builder code,
# helper table or name dict stays in the board's RAM; tests/test_host_settings_schema.py checks the rows.
SCHEMA = (
    ('ov_warn_mv', 'mV', 1000, 4800, 4220),
    ('ov_trip_mv', 'mV', 1000, 4800, 4250),
    ('ov_release_mv', 'mV', 1000, 4800, 4050),
    ('ov_delay_ms', 'ms', 0, 600000, 2000),
    ('ov_release_ms', 'ms', 0, 3600000, 2000),
    ('uv_warn_mv', 'mV', 1000, 4800, 3200),
    ('uv_trip_mv', 'mV', 1000, 4800, 3000),
    ('uv_release_mv', 'mV', 1000, 4800, 3500),
    ('uv_delay_ms', 'ms', 0, 600000, 2000),
    ('uv_release_ms', 'ms', 0, 3600000, 2000),
    ('chg_oc_warn_ma', 'mA', 100, 1000000, 45000),
    ('chg_oc_trip_ma', 'mA', 100, 1000000, 50000),
    ('chg_oc_release_ma', 'mA', 100, 1000000, 40000),
    ('chg_oc_delay_ms', 'ms', 0, 600000, 2000),
    ('chg_oc_release_ms', 'ms', 0, 3600000, 30000),
    ('dsg_oc_warn_ma', 'mA', 100, 1000000, 90000),
    ('dsg_oc_trip_ma', 'mA', 100, 1000000, 100000),
    ('dsg_oc_release_ma', 'mA', 100, 1000000, 80000),
    ('dsg_oc_delay_ms', 'ms', 0, 600000, 1000),
    ('dsg_oc_release_ms', 'ms', 0, 3600000, 30000),
    ('chg_ot_warn_dc', '0.1C', -400, 1500, 420),
    ('chg_ot_trip_dc', '0.1C', -400, 1500, 450),
    ('chg_ot_release_dc', '0.1C', -400, 1500, 400),
    ('chg_ot_delay_ms', 'ms', 0, 600000, 2000),
    ('chg_ot_release_ms', 'ms', 0, 3600000, 5000),
    ('chg_ut_warn_dc', '0.1C', -400, 1500, 30),
    ('chg_ut_trip_dc', '0.1C', -400, 1500, 0),
    ('chg_ut_release_dc', '0.1C', -400, 1500, 50),
    ('chg_ut_delay_ms', 'ms', 0, 600000, 2000),
    ('chg_ut_release_ms', 'ms', 0, 3600000, 5000),
    ('dsg_ot_warn_dc', '0.1C', -400, 1500, 550),
    ('dsg_ot_trip_dc', '0.1C', -400, 1500, 600),
    ('dsg_ot_release_dc', '0.1C', -400, 1500, 500),
    ('dsg_ot_delay_ms', 'ms', 0, 600000, 2000),
    ('dsg_ot_release_ms', 'ms', 0, 3600000, 5000),
    ('dsg_ut_warn_dc', '0.1C', -400, 1500, -170),
    ('dsg_ut_trip_dc', '0.1C', -400, 1500, -200),
    ('dsg_ut_release_dc', '0.1C', -400, 1500, -150),
    ('dsg_ut_delay_ms', 'ms', 0, 600000, 2000),
    ('dsg_ut_release_ms', 'ms', 0, 3600000, 5000),
    ('fet_ot_warn_dc', '0.1C', -400, 1500, 650),
    ('fet_ot_trip_dc', '0.1C', -400, 1500, 700),
    ('fet_ot_release_dc', '0.1C', -400, 1500, 600),
    ('fet_ot_delay_ms', 'ms', 0, 600000, 1000),
    ('fet_ot_release_ms', 'ms', 0, 3600000, 10000),
    ('sc_trip_ma', 'mA', 1000, 2000000, 300000),
    ('module_missing_ms', 'ms', 200, 60000, 2000),
    ('plaus_tol_mv', 'mV', 50, 100000, 2000),
    ('plaus_delay_ms', 'ms', 0, 600000, 5000),
    ('chemistry', 'code', 0, 2, 1),
    ('cells_total', 'cells', 4, 96, 12),
    ('modules', 'count', 1, 8, 1),
    ('mod1_cells', 'cells', 0, 12, 12),
    ('mod2_cells', 'cells', 0, 12, 0),
    ('mod3_cells', 'cells', 0, 12, 0),
    ('mod4_cells', 'cells', 0, 12, 0),
    ('mod5_cells', 'cells', 0, 12, 0),
    ('mod6_cells', 'cells', 0, 12, 0),
    ('mod7_cells', 'cells', 0, 12, 0),
    ('mod8_cells', 'cells', 0, 12, 0),
    ('capacity_mah', 'mAh', 100, 2000000, 100000),
    ('full_charge_mv', 'mV', 1000, 4800, 4200),
    ('cutoff_mv', 'mV', 1000, 4800, 3000),
    ('tail_current_ma', 'mA', 0, 100000, 2000),
    ('full_hold_ms', 'ms', 0, 3600000, 30000),
    ('empty_hold_ms', 'ms', 0, 600000, 5000),
    ('rest_current_ma', 'mA', 0, 100000, 1000),
    ('bal_rest_soc_pct', '%', 50, 101, 95),
    ('bal_start_mv', 'mV', 2, 500, 10),
    ('bal_timeout_s', 's', 10, 600, 30),
    ('cal_offset_ma', 'mA', -2000, 2000, 0),  # = calibration.OFFSET_MAX_MA: more is a load, not an offset
    ('cal_gain_ppm', 'ppm', 900000, 1100000, 1000000),  # = calibration.GAIN_MIN/MAX_PPM (+-10 %)
    ('soc_save_min', 'min', 30, 1440, 360),
    # 1: no cell temperature known at all (every module sensor absent) blocks charging; 0: a warning only.
    ('temp_required', 'flag', 0, 1, 1),
)
_NAMES = tuple([row[0] for row in SCHEMA])  # lookups scan this in C (no dict of 74 entries in RAM)

# Chemistry presets: the cell-voltage settings they fill (ov warn/trip/release, uv warn/trip/release,
# full_charge_mv, cutoff_mv). Temperatures and currents are not chemistry-specific here.
PRESETS = (
    (3600, 3650, 3400, 2800, 2500, 3100, 3550, 2500),  # LFP
    (4220, 4250, 4050, 3200, 3000, 3500, 4200, 3000),  # NMC
    (2800, 2850, 2700, 2000, 1900, 2100, 2750, 1900),  # LTO
)

# The original product's settings -> names here (docs/settings.md).
ORIGINAL_SETTINGS = (
    ("discharge cut-off voltage", ("cutoff_mv", "uv_trip_mv")),
    ("discharge protection current", ("dsg_oc_trip_ma",)),
    ("battery capacity", ("capacity_mah",)),
    ("total cell count", ("cells_total",)),
    ("full-charge voltage", ("full_charge_mv",)),
    ("protection temperature", ("fet_ot_trip_dc",)),
)

# Strict chains a < b < c ... of settings (the warn level between trip and release on each condition's side).
CHAIN_RULES = (
    ('uv_trip_mv', 'uv_release_mv', 'ov_release_mv', 'ov_trip_mv'),
    ('ov_release_mv', 'ov_warn_mv', 'ov_trip_mv'),
    ('uv_trip_mv', 'uv_warn_mv', 'uv_release_mv'),
    ('chg_oc_release_ma', 'chg_oc_warn_ma', 'chg_oc_trip_ma'),
    ('dsg_oc_release_ma', 'dsg_oc_warn_ma', 'dsg_oc_trip_ma'),
    ('chg_ot_release_dc', 'chg_ot_warn_dc', 'chg_ot_trip_dc'),
    ('chg_ut_trip_dc', 'chg_ut_warn_dc', 'chg_ut_release_dc'),
    ('dsg_ot_release_dc', 'dsg_ot_warn_dc', 'dsg_ot_trip_dc'),
    ('dsg_ut_trip_dc', 'dsg_ut_warn_dc', 'dsg_ut_release_dc'),
    ('fet_ot_release_dc', 'fet_ot_warn_dc', 'fet_ot_trip_dc'),
    ('chg_ut_release_dc', 'chg_ot_release_dc'),
    ('dsg_ut_release_dc', 'dsg_ot_release_dc'),
    ('dsg_oc_trip_ma', 'sc_trip_ma'),
    ('chg_oc_trip_ma', 'sc_trip_ma'),
    ('uv_release_mv', 'full_charge_mv', 'ov_trip_mv'),
    ('cutoff_mv', 'uv_release_mv'),
)


def index_of(name: str) -> int:
    """Schema position (stored ID) of ``name``; raises ``KeyError`` for an unknown name."""
    try:
        return _NAMES.index(name)
    except ValueError:
        raise KeyError(name) from None


_I_CHEMISTRY = index_of("chemistry")
_I_MODULES = index_of("modules")
_I_CELLS_TOTAL = index_of("cells_total")
_I_MOD1_CELLS = index_of("mod1_cells")  # mod1_cells .. mod8_cells are consecutive
_I_UV_TRIP = index_of("uv_trip_mv")
_I_CUTOFF = index_of("cutoff_mv")
_PRESET_IDX = tuple([index_of(n) for n in (
    "ov_warn_mv", "ov_trip_mv", "ov_release_mv", "uv_warn_mv", "uv_trip_mv", "uv_release_mv",
    "full_charge_mv", "cutoff_mv")])
_CHAIN_IDX = tuple([tuple([index_of(n) for n in names]) for names in CHAIN_RULES])


def factory_values(chemistry: int = CHEM_NMC) -> list:
    """A fresh list of factory values with ``chemistry``'s preset applied."""
    values = [row[4] for row in SCHEMA]
    _fill_preset(values, chemistry)
    return values


def _fill_preset(values, chemistry):
    values[_I_CHEMISTRY] = chemistry
    p = PRESETS[chemistry]
    for k in range(len(_PRESET_IDX)):
        values[_PRESET_IDX[k]] = p[k]


def check_values(values) -> str:
    """Check every range and cross-field rule of a full value list.

    Returns ``""`` when all hold, else a message naming the first rule broken.
    """
    for i in range(len(SCHEMA)):
        name, unit, lo, hi, _ = SCHEMA[i]
        v = values[i]
        if not isinstance(v, int) or isinstance(v, bool):
            return "%s: must be an integer (%s)" % (name, unit)
        if v < lo or v > hi:
            return "%s: range %d..%d %s, got %d" % (name, lo, hi, unit, v)
    for r in range(len(_CHAIN_IDX)):
        idx = _CHAIN_IDX[r]
        for k in range(len(idx) - 1):
            a = idx[k]
            b = idx[k + 1]
            if not values[a] < values[b]:
                return "rule %s: %s=%d must be < %s=%d" % (
                    " < ".join(CHAIN_RULES[r]), _NAMES[a], values[a], _NAMES[b], values[b])
    trip = values[_I_UV_TRIP]
    cut = values[_I_CUTOFF]
    if cut < trip:
        return "rule uv_trip_mv <= cutoff_mv: cutoff_mv=%d is below uv_trip_mv=%d" % (cut, trip)
    modules = values[_I_MODULES]
    total = 0
    for i in range(1, MAX_MODULES + 1):
        n = values[_I_MOD1_CELLS + i - 1]
        total += n
        if i <= modules and (n < MODULE_MIN_CELLS or n > MODULE_MAX_CELLS):
            return "rule module cells 4..12: mod%d_cells=%d but modules=%d" % (i, n, modules)
        if i > modules and n != 0:
            return "rule unused module has 0 cells: mod%d_cells=%d but modules=%d" % (i, n, modules)
    cells = values[_I_CELLS_TOTAL]
    if cells != total:
        return "rule cells_total = sum of modN_cells: cells_total=%d, sum=%d" % (cells, total)
    return ""


class Settings:
    """The live settings of the host. ``get`` is a dict lookup plus a list read (no allocation)."""

    def __init__(self, chemistry: int = CHEM_NMC) -> None:
        self._values = factory_values(chemistry)
        self._scratch = list(self._values)
        self.changes = 0

    def get(self, name: str) -> int:
        return self._values[index_of(name)]

    def value_at(self, i: int) -> int:
        return self._values[i]

    def values(self) -> list:
        """A copy of all values in schema order."""
        return list(self._values)

    def _commit(self, candidate) -> None:
        msg = check_values(candidate)
        if msg:
            raise ValueError(msg)
        for i in range(len(candidate)):
            self._values[i] = candidate[i]
        self.changes += 1

    def _candidate(self):
        c = self._scratch
        for i in range(len(self._values)):
            c[i] = self._values[i]
        return c

    def set(self, name: str, value: int) -> None:
        """Change one setting; raises ``ValueError`` naming the broken rule (nothing changes)."""
        self.set_many(((name, value),))

    def set_many(self, pairs) -> None:
        """Change several settings together, all or nothing (for changes that must move in step)."""
        c = self._candidate()
        for name, value in pairs:
            if name not in _NAMES:
                raise ValueError("unknown setting %s" % name)
            if name == "chemistry" and value != c[_I_CHEMISTRY]:
                # A new chemistry brings its consistent voltage defaults; other pairs may override them.
                if not isinstance(value, int) or value < 0 or value >= len(PRESETS):
                    raise ValueError("chemistry: one of 0=LFP 1=NMC 2=LTO")
                _fill_preset(c, value)
        for name, value in pairs:
            if name != "chemistry":
                c[index_of(name)] = value
        self._commit(c)

    def apply_preset(self, chemistry: int) -> None:
        """Set ``chemistry`` and fill its cell-voltage defaults (OV/UV, full charge, cut-off)."""
        if not isinstance(chemistry, int) or chemistry < 0 or chemistry >= len(PRESETS):
            raise ValueError("chemistry: one of 0=LFP 1=NMC 2=LTO")
        c = self._candidate()
        _fill_preset(c, chemistry)
        self._commit(c)

    def factory_reset(self) -> None:
        self._commit(factory_values(CHEM_NMC))

    def load_values(self, values) -> str:
        """Replace every value at once (from storage); returns "" or the broken rule (nothing changes)."""
        msg = check_values(values)
        if msg:
            return msg
        for i in range(len(values)):
            self._values[i] = values[i]
        self.changes += 1
        return ""
