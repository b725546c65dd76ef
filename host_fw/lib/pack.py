"""
`pack`
================================================================================

The host's picture of the pack, built each cycle from the chain master's answers: every cell
in pack order (module 1 cell 1 is cell 1; up to 96), total, min/max/average with their cell
numbers, spread, temperatures (module sensors and the host MOSFET/shunt sensor) and module
health. Unknown data (a missing module, a stale answer, an absent sensor) is ``UNKNOWN``:
never 0 and never the last good value.

Pure: fed integers; no hardware. ``begin``/``set_module``/``finish`` allocate nothing.
Also the host thermistor's integer conversion (``ntc_temp_dc``), so the MOSFET sensor needs no
floats.
"""

from micropython import const

# The wire's sentinels and STATUS flags are the protocol's (docs/protocol.md), defined once there.
from bms_packet import CELL_UNKNOWN, FLAG_SAMPLE_STALE, TEMP_ABSENT
from protection import UNKNOWN

try:
    import typing  # noqa: F401
except ImportError:
    pass

# chain.TEMP_UNKNOWN, the chain master's "this sensor's value did not arrive" (host side only, not on the
# wire); repeated so the pure pack picture does not import the chain master.
TEMP_UNKNOWN = const(-32767)


def _popcount(x: int) -> int:
    n = 0
    while x:
        n += x & 1
        x >>= 1
    return n


class Pack:
    """Aggregated pack state. Call ``begin()``, then ``set_module()`` for every expected module
    (and ``set_fet_temp()``), then ``finish()``; read the attributes.

    Attributes after ``finish()`` (cell and module numbers are 1-based, 0 = none):
    ``n_cells``, ``cells_mv`` (pack order, ``UNKNOWN`` where unknown), ``known_cells``,
    ``total_mv`` (``UNKNOWN`` unless every cell is known), ``min_mv``/``min_cell``,
    ``max_mv``/``max_cell``, ``avg_mv``, ``spread_mv`` (over the known cells; ``UNKNOWN`` when none),
    ``module_temp_dc`` (``m * temps_per_module + j``), ``temp_absent`` (bit ``m * temps_per_module + j``
    set when that sensor reports itself absent), ``temp_min_dc``/``temp_min_sensor``,
    ``temp_max_dc``/``temp_max_sensor`` (module sensors only), ``fet_temp_dc``,
    ``module_fresh``, ``module_flags``, ``module_open_wire``, ``module_wiring``, ``missing_count``,
    ``first_missing``, ``open_wire_count``, ``wiring_count``.
    """

    def __init__(self, max_modules: int = 8, cells_per_module: int = 12, temps_per_module: int = 2) -> None:
        self.max_modules = max_modules
        self.cells_per_module = cells_per_module
        self.temps_per_module = temps_per_module
        self.modules = 0
        self.cell_count = [0] * max_modules
        self._grid = [UNKNOWN] * (max_modules * cells_per_module)
        self.cells_mv = [UNKNOWN] * (max_modules * cells_per_module)
        self.module_temp_dc = [UNKNOWN] * (max_modules * temps_per_module)
        self.temp_absent = 0
        self.module_fresh = [False] * max_modules
        self.module_flags = [0] * max_modules
        self.module_open_wire = [0] * max_modules
        self.module_wiring = [0] * max_modules
        self.fet_temp_dc = UNKNOWN
        self._clear_stats()

    def _clear_stats(self) -> None:
        self.n_cells = 0
        self.known_cells = 0
        self.total_mv = UNKNOWN
        self.min_mv = UNKNOWN
        self.min_cell = 0
        self.max_mv = UNKNOWN
        self.max_cell = 0
        self.avg_mv = UNKNOWN
        self.spread_mv = UNKNOWN
        self.temp_min_dc = UNKNOWN
        self.temp_min_sensor = 0
        self.temp_max_dc = UNKNOWN
        self.temp_max_sensor = 0
        self.missing_count = 0
        self.first_missing = 0
        self.open_wire_count = 0
        self.wiring_count = 0

    def configure(self, cell_counts) -> None:
        """Set the expected modules and their cell counts (from enumeration, checked against the
        settings). Positions in pack order follow from these counts even when a module goes
        missing later."""
        if len(cell_counts) > self.max_modules:
            raise ValueError("pack: %d modules, at most %d" % (len(cell_counts), self.max_modules))
        for n in cell_counts:
            if n < 0 or n > self.cells_per_module:
                raise ValueError("pack: a module has %d cells, at most %d" % (n, self.cells_per_module))
        self.modules = len(cell_counts)
        for m in range(self.max_modules):
            self.cell_count[m] = cell_counts[m] if m < self.modules else 0
        self.begin()
        self.finish()

    def begin(self) -> None:
        """Start a cycle: everything unknown until a module's answer says otherwise."""
        for i in range(len(self._grid)):
            self._grid[i] = UNKNOWN
        for i in range(len(self.module_temp_dc)):
            self.module_temp_dc[i] = UNKNOWN
        for m in range(self.max_modules):
            self.module_fresh[m] = False
            self.module_flags[m] = 0
            self.module_open_wire[m] = 0
            self.module_wiring[m] = 0
        self.temp_absent = 0
        self.fet_temp_dc = UNKNOWN

    def set_module(self, m: int, cells_100uv=None, cell_off: int = 0, n_cells: int = 0, temps_dc=None,
                   temp_off: int = 0, n_temps: int = 0, flags: int = 0, open_wire: int = 0,
                   wiring: int = 0) -> None:
        """Feed module ``m`` (0-based) from this cycle's fresh answer.

        Do not call for a module without a fresh answer: it stays unknown and counts as missing.
        ``cells_100uv[cell_off + i]`` are the AFE readings (0xFFFF unknown); only the first
        ``min(n_cells, cell_count[m])`` are used. ``temps_dc[temp_off + j]`` are the sensors
        (-32768 absent). A STATUS with the stale flag makes the cells unknown.
        """
        if m < 0 or m >= self.modules:
            return
        self.module_fresh[m] = True
        self.module_flags[m] = flags
        self.module_open_wire[m] = open_wire
        self.module_wiring[m] = wiring
        base = m * self.cells_per_module
        n = self.cell_count[m]
        if n_cells < n:
            n = n_cells
        if cells_100uv is not None and not flags & FLAG_SAMPLE_STALE:
            for i in range(n):
                raw = cells_100uv[cell_off + i]
                self._grid[base + i] = UNKNOWN if raw == CELL_UNKNOWN else (raw + 5) // 10
        tbase = m * self.temps_per_module
        if temps_dc is not None:
            k = n_temps if n_temps < self.temps_per_module else self.temps_per_module
            for j in range(k):
                t = temps_dc[temp_off + j]
                if t == TEMP_ABSENT:
                    self.temp_absent |= 1 << (tbase + j)
                elif t != TEMP_UNKNOWN:
                    self.module_temp_dc[tbase + j] = t

    def set_fet_temp(self, temp_dc: int) -> None:
        """The host MOSFET/shunt sensor; ``UNKNOWN`` or -32768 when absent."""
        self.fet_temp_dc = UNKNOWN if temp_dc == TEMP_ABSENT or temp_dc == TEMP_UNKNOWN else temp_dc

    def is_module_missing(self, m: int) -> bool:
        """No fresh answer, or a fresh answer with any cell unknown."""
        if not self.module_fresh[m]:
            return True
        base = m * self.cells_per_module
        for i in range(self.cell_count[m]):
            if self._grid[base + i] == UNKNOWN:
                return True
        return False

    def finish(self) -> None:
        """Compute pack order and statistics from this cycle's answers."""
        self._clear_stats()
        pos = 0
        total = 0
        lo = UNKNOWN
        hi = UNKNOWN
        for m in range(self.modules):
            base = m * self.cells_per_module
            for i in range(self.cell_count[m]):
                v = self._grid[base + i]
                self.cells_mv[pos] = v
                pos += 1
                if v == UNKNOWN:
                    continue
                self.known_cells += 1
                total += v
                if lo == UNKNOWN or v < lo:
                    lo = v
                    self.min_cell = pos
                if hi == UNKNOWN or v > hi:
                    hi = v
                    self.max_cell = pos
            if self.is_module_missing(m):
                self.missing_count += 1
                if self.first_missing == 0:
                    self.first_missing = m + 1
            self.open_wire_count += _popcount(self.module_open_wire[m])
            self.wiring_count += _popcount(self.module_wiring[m])
        for i in range(pos, len(self.cells_mv)):
            self.cells_mv[i] = UNKNOWN
        self.n_cells = pos
        if self.known_cells:
            self.min_mv = lo
            self.max_mv = hi
            self.spread_mv = hi - lo
            self.avg_mv = (total + self.known_cells // 2) // self.known_cells
            if self.known_cells == pos:
                self.total_mv = total
        tlo = UNKNOWN
        thi = UNKNOWN
        for s in range(self.modules * self.temps_per_module):
            t = self.module_temp_dc[s]
            if t == UNKNOWN:
                continue
            if tlo == UNKNOWN or t < tlo:
                tlo = t
                self.temp_min_sensor = s + 1
            if thi == UNKNOWN or t > thi:
                thi = t
                self.temp_max_sensor = s + 1
        self.temp_min_dc = tlo
        self.temp_max_dc = thi

    def sensor_state(self, s: int) -> str:
        """'ok', 'absent' (the sensor is not connected) or 'unknown' (no answer) for sensor ``s`` (0-based)."""
        if self.module_temp_dc[s] != UNKNOWN:
            return "ok"
        if self.temp_absent & (1 << s):
            return "absent"
        return "unknown"


# Integer NTC table for the host MOSFET/shunt thermistor: a 10 kOhm B3950 NTC to ground with a
# 10 kOhm pull-up to the ADC reference (adafruit_thermistor's low-side circuit), read as a 16-bit
# ``AnalogIn.value``. Rows: (raw, temp_dc), raw falling as temperature rises, every 5 degC.
NTC_TABLE = (
    (63944, -400), (63287, -350), (62417, -300), (61288, -250), (59855, -200), (58079, -150), (55932, -100),
    (53405, -50), (50511, 0), (47293, 50), (43816, 100), (40170, 150), (36454, 200), (32768, 250),
    (29202, 300), (25830, 350), (22706, 400), (19860, 450), (17306, 500), (15040, 550), (13049, 600),
    (11313, 650), (9807, 700), (8507, 750), (7387, 800), (6423, 850), (5596, 900), (4885, 950), (4273, 1000),
    (3747, 1050), (3293, 1100), (2902, 1150), (2563, 1200), (2270, 1250), (2015, 1300),
)
NTC_OPEN_RAW = const(65000)  # above: the sensor is unplugged (the pull-up wins)
NTC_SHORT_RAW = const(500)  # below: the sensor or its wire is shorted


def ntc_temp_dc(raw: int) -> int:
    """ADC reading of the MOSFET thermistor to 0.1 degC by linear interpolation in ``NTC_TABLE``.

    Returns ``UNKNOWN`` for an open or shorted sensor (shown as absent, never as 0.0 degC).
    Outside the table but inside the open/short limits it clamps to the table's ends.
    """
    if raw >= NTC_OPEN_RAW or raw <= NTC_SHORT_RAW:
        return UNKNOWN
    t = NTC_TABLE
    if raw >= t[0][0]:
        return t[0][1]
    for i in range(1, len(t)):
        r1, d1 = t[i]
        if raw >= r1:
            r0, d0 = t[i - 1]
            return d0 + (d1 - d0) * (r0 - raw) // (r0 - r1)
    return t[len(t) - 1][1]
