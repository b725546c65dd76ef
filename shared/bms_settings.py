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

_UNIT_TEXT = {"mv": "mV", "ma": "mA", "dc": "0.1C"}
_RANGE = {"mv": (1000, 4800), "ma": (100, 1000000), "dc": (-400, 1500)}
# (warn, trip, release, delay_ms, release_ms) defaults per condition; the cell-voltage rows
# are replaced by the chemistry preset.
_COND_DEFAULTS = {
    "ov": (4220, 4250, 4050, 2000, 2000),
    "uv": (3200, 3000, 3500, 2000, 2000),
    "chg_oc": (45000, 50000, 40000, 2000, 30000),
    "dsg_oc": (90000, 100000, 80000, 1000, 30000),
    "chg_ot": (420, 450, 400, 2000, 5000),  # charge allowed 0-45 C
    "chg_ut": (30, 0, 50, 2000, 5000),
    "dsg_ot": (550, 600, 500, 2000, 5000),  # discharge allowed -20-60 C
    "dsg_ut": (-170, -200, -150, 2000, 5000),
    "fet_ot": (650, 700, 600, 1000, 10000),  # the original's "protection temperature" 70.0 C
}


def _build_schema():
    rows = []
    for cond, unit, _side in CONDITIONS:
        lo, hi = _RANGE[unit]
        d = _COND_DEFAULTS[cond]
        u = _UNIT_TEXT[unit]
        rows.append((cond + "_warn_" + unit, u, lo, hi, d[0]))
        rows.append((cond + "_trip_" + unit, u, lo, hi, d[1]))
        rows.append((cond + "_release_" + unit, u, lo, hi, d[2]))
        rows.append((cond + "_delay_ms", "ms", 0, 600000, d[3]))
        rows.append((cond + "_release_ms", "ms", 0, 3600000, d[4]))
    rows += [
        ("sc_trip_ma", "mA", 1000, 2000000, 300000),
        ("module_missing_ms", "ms", 200, 60000, 2000),
        ("plaus_tol_mv", "mV", 50, 100000, 2000),
        ("plaus_delay_ms", "ms", 0, 600000, 5000),
        ("chemistry", "code", 0, 2, CHEM_NMC),
        ("cells_total", "cells", 4, MAX_MODULES * MODULE_MAX_CELLS, 12),
        ("modules", "count", 1, MAX_MODULES, 1),
    ]
    for i in range(1, MAX_MODULES + 1):
        rows.append(("mod%d_cells" % i, "cells", 0, MODULE_MAX_CELLS, 12 if i == 1 else 0))
    rows += [
        ("capacity_mah", "mAh", 100, 2000000, 100000),
        ("full_charge_mv", "mV", 1000, 4800, 4200),
        ("cutoff_mv", "mV", 1000, 4800, 3000),
        ("tail_current_ma", "mA", 0, 100000, 2000),
        ("full_hold_ms", "ms", 0, 3600000, 30000),
        ("empty_hold_ms", "ms", 0, 600000, 5000),
        ("rest_current_ma", "mA", 0, 100000, 1000),
        ("bal_rest_soc_pct", "%", 50, 101, 95),
        ("bal_start_mv", "mV", 2, 500, 10),
        ("bal_timeout_s", "s", 10, 600, 30),
        ("cal_offset_ma", "mA", -100000, 100000, 0),
        ("cal_gain_ppm", "ppm", 500000, 1500000, 1000000),
        ("soc_save_min", "min", 30, 1440, 360),
    ]
    return tuple(rows)


# (name, unit, min, max, factory default); the position is the setting's stored ID.
SCHEMA = _build_schema()
_INDEX = {}
for _i in range(len(SCHEMA)):
    _INDEX[SCHEMA[_i][0]] = _i

# Chemistry presets: the cell-voltage settings they fill (ov warn/trip/release, uv warn/trip/release,
# full_charge_mv, cutoff_mv). Temperatures and currents are not chemistry-specific here.
_PRESET_NAMES = (
    "ov_warn_mv", "ov_trip_mv", "ov_release_mv",
    "uv_warn_mv", "uv_trip_mv", "uv_release_mv",
    "full_charge_mv", "cutoff_mv",
)
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


def index_of(name: str) -> int:
    """Schema position (stored ID) of ``name``; raises ``KeyError`` for an unknown name."""
    return _INDEX[name]


def factory_values(chemistry: int = CHEM_NMC) -> list:
    """A fresh list of factory values with ``chemistry``'s preset applied."""
    values = [row[4] for row in SCHEMA]
    _fill_preset(values, chemistry)
    return values


def _fill_preset(values, chemistry):
    values[_INDEX["chemistry"]] = chemistry
    p = PRESETS[chemistry]
    for k in range(len(_PRESET_NAMES)):
        values[_INDEX[_PRESET_NAMES[k]]] = p[k]


def _lt_chain(values, names):
    """First ``(a, b)`` of the strict chain ``names[0] < names[1] < ...`` that fails, or ``None``."""
    for k in range(len(names) - 1):
        if not values[_INDEX[names[k]]] < values[_INDEX[names[k + 1]]]:
            return names[k], names[k + 1]
    return None


def _chain_text(names):
    return " < ".join(names)


def _chain_rules():
    rules = [("uv_trip_mv", "uv_release_mv", "ov_release_mv", "ov_trip_mv")]
    for cond, unit, side in CONDITIONS:
        t = cond + "_trip_" + unit
        w = cond + "_warn_" + unit
        r = cond + "_release_" + unit
        rules.append((r, w, t) if side == HIGH else (t, w, r))
    rules += [
        ("chg_ut_release_dc", "chg_ot_release_dc"),
        ("dsg_ut_release_dc", "dsg_ot_release_dc"),
        ("dsg_oc_trip_ma", "sc_trip_ma"),
        ("chg_oc_trip_ma", "sc_trip_ma"),
        ("uv_release_mv", "full_charge_mv", "ov_trip_mv"),
        ("cutoff_mv", "uv_release_mv"),
    ]
    return tuple(rules)


CHAIN_RULES = _chain_rules()


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
    for names in CHAIN_RULES:
        bad = _lt_chain(values, names)
        if bad:
            a, b = bad
            return "rule %s: %s=%d must be < %s=%d" % (
                _chain_text(names), a, values[_INDEX[a]], b, values[_INDEX[b]])
    trip = values[_INDEX["uv_trip_mv"]]
    cut = values[_INDEX["cutoff_mv"]]
    if cut < trip:
        return "rule uv_trip_mv <= cutoff_mv: cutoff_mv=%d is below uv_trip_mv=%d" % (cut, trip)
    modules = values[_INDEX["modules"]]
    total = 0
    for i in range(1, MAX_MODULES + 1):
        n = values[_INDEX["mod%d_cells" % i]]
        total += n
        if i <= modules and (n < MODULE_MIN_CELLS or n > MODULE_MAX_CELLS):
            return "rule module cells 4..12: mod%d_cells=%d but modules=%d" % (i, n, modules)
        if i > modules and n != 0:
            return "rule unused module has 0 cells: mod%d_cells=%d but modules=%d" % (i, n, modules)
    cells = values[_INDEX["cells_total"]]
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
        return self._values[_INDEX[name]]

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
            if name not in _INDEX:
                raise ValueError("unknown setting %s" % name)
            if name == "chemistry" and value != c[_INDEX["chemistry"]]:
                # A new chemistry brings its consistent voltage defaults; other pairs may override them.
                if not isinstance(value, int) or value < 0 or value >= len(PRESETS):
                    raise ValueError("chemistry: one of 0=LFP 1=NMC 2=LTO")
                _fill_preset(c, value)
        for name, value in pairs:
            if name != "chemistry":
                c[_INDEX[name]] = value
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
