"""
`protection`
================================================================================

The pack's protection: one diagnosis table (after foxBMS) and, per condition, a small state
machine with a warning level, a trip level and its debounce, a release level (hysteresis) and
its release delay, and a latch for the conditions only a user reset may clear (short circuit).
Charge and discharge are blocked separately. Every transition goes into a bounded event ring
the status interfaces read.

Pure: fed integers (``cell_mv``, ``current_ma``, ``temp_dc``, counts) and ``now_ms``; no hardware.
Steady-state ``update()`` allocates nothing (preallocated lists of small ints).
See ``docs/protection.md``.
"""

from adafruit_ticks import ticks_diff
from micropython import const

try:
    import typing  # noqa: F401
except ImportError:
    pass

# Unknown value (a missing module, an absent sensor): never 0 and never the last good value.
UNKNOWN = const(-0x20000000)

# Condition ids (index into the table and into the caller's value list).
OV = const(0)
UV = const(1)
CHG_OC = const(2)
DSG_OC = const(3)
SC = const(4)
CHG_OT = const(5)
CHG_UT = const(6)
DSG_OT = const(7)
DSG_UT = const(8)
FET_OT = const(9)
MISSING = const(10)
OPEN_WIRE = const(11)
WIRING = const(12)
PLAUS = const(13)
SENSOR = const(14)
NO_TEMP = const(15)
N_COND = const(16)

# What a trip blocks.
BLOCK_CHG = const(1)
BLOCK_DSG = const(2)
BLOCK_BOTH = const(3)

# Event kinds in the ring.
EV_WARN = const(1)
EV_WARN_CLEAR = const(2)
EV_TRIP = const(3)
EV_RELEASE = const(4)
EV_RESET = const(5)
EV_STATE = const(6)  # host state change (cause = state id), logged by the host app
EV_SWITCH = const(7)  # switch fault (precharge), logged by the host app
EV_CONFIG = const(8)  # limits refused / chain does not match the settings

_HIGH = const(1)
_LOW = const(0)
_NO_TIMER = const(-1)

# The diagnosis table: (name, settings unit suffix or None, direction, blocks, latch, text).
# Conditions with a unit take their five limits from the settings as "<name>_warn_<unit>",
# "<name>_trip_<unit>", "<name>_release_<unit>", "<name>_delay_ms", "<name>_release_ms".
TABLE = (
    ("ov", "mv", _HIGH, BLOCK_CHG, False, "Cell over-voltage"),
    ("uv", "mv", _LOW, BLOCK_DSG, False, "Cell under-voltage"),
    ("chg_oc", "ma", _HIGH, BLOCK_CHG, False, "Charge over-current"),
    ("dsg_oc", "ma", _HIGH, BLOCK_DSG, False, "Discharge over-current"),
    ("sc", None, _HIGH, BLOCK_BOTH, True, "Short circuit"),
    ("chg_ot", "dc", _HIGH, BLOCK_CHG, False, "Charge over-temperature"),
    ("chg_ut", "dc", _LOW, BLOCK_CHG, False, "Charge under-temperature"),
    ("dsg_ot", "dc", _HIGH, BLOCK_DSG, False, "Discharge over-temperature"),
    ("dsg_ut", "dc", _LOW, BLOCK_DSG, False, "Discharge under-temperature"),
    ("fet_ot", "dc", _HIGH, BLOCK_BOTH, False, "MOSFET over-temperature"),
    ("missing", None, _HIGH, BLOCK_BOTH, False, "Module missing"),
    ("open_wire", None, _HIGH, BLOCK_BOTH, False, "Open sense wire"),
    ("wiring", None, _HIGH, BLOCK_BOTH, False, "Wiring fault"),
    # Latched: the check needs the load side connected, and a trip opens it, so no reading can ever
    # say "over"; the user reset clears it and the check reruns.
    ("plaus", None, _HIGH, BLOCK_BOTH, True, "Pack voltage implausible"),
    # A host sensor that should answer and does not (the INA228; a fitted MOSFET NTC reading open or
    # short): value = how many, where = 1 current sensor, 2 MOSFET sensor. Not latched: a sensor that
    # answers again for SENSOR_RELEASE_MS shows it is over.
    ("sensor", None, _HIGH, BLOCK_BOTH, False, "Sensor fault"),
    # Every module answers and not one cell temperature is known: charging lithium below 0 degC plates
    # it, so charging is blocked (``temp_required`` = 1, the default) or only warned about (0).
    ("no_temp", None, _HIGH, BLOCK_CHG, False, "No cell temperature"),
)

# Conditions whose value is an aggregate over every module's cells or sensors: while any module is
# missing (some cells unknown) the aggregate covers only the modules that answered, so it may look
# fine while the cell or sensor that caused the trip is the unknown one. These trips (and warnings)
# do not release until every module answers again; they can still trip on the known ones.
_NEEDS_ALL = const((1 << OV) | (1 << UV) | (1 << CHG_OT) | (1 << CHG_UT) | (1 << DSG_OT) | (1 << DSG_UT))

# Fixed timings of the count conditions (no user setting; see docs/protection.md).
MISSING_RELEASE_MS = const(1000)
OPEN_WIRE_DELAY_MS = const(0)  # the module already confirms an open wire with two ADOW passes
OPEN_WIRE_RELEASE_MS = const(5000)
WIRING_DELAY_MS = const(1000)
WIRING_RELEASE_MS = const(5000)
SENSOR_DELAY_MS = const(1000)  # a current sensor fault, independent of plaus_delay_ms (up to 600 s)
SENSOR_RELEASE_MS = const(5000)
NO_TEMP_DELAY_MS = const(0)  # temperatures come in the same full answer as the cells: nothing to debounce
NO_TEMP_RELEASE_MS = const(1000)
_NEVER = const(0x3FFFFFFF)  # a trip level no value reaches (no_temp with temp_required = 0: warning only)

# Limits row layout in Protection._lim.
_WARN = const(0)
_TRIP = const(1)
_REL = const(2)
_DELAY = const(3)
_REL_MS = const(4)


def cond_name(cond: int) -> str:
    return TABLE[cond][0]


def cond_text(cond: int) -> str:
    return TABLE[cond][5]


def cond_blocks(cond: int) -> int:
    return TABLE[cond][3]


KIND_NAMES = ("", "warn", "warn-clear", "trip", "release", "reset", "state", "switch", "config")


class EventLog:
    """A bounded ring of events, oldest overwritten. Preallocated; ``add`` allocates nothing.

    Each event: ``time_ms`` (the tick it happened), ``kind`` (``EV_*``), ``cause`` (a condition id,
    or a state id for ``EV_STATE``), ``value`` (what caused it, in the condition's unit) and
    ``where`` (cell or module number, 1-based; 0 when not applicable). ``seq`` counts every event
    ever added, so a reader polling the ring knows what is new and what it missed.
    """

    def __init__(self, capacity: int = 32) -> None:
        if capacity < 1:
            raise ValueError("event log capacity must be >= 1")
        self.capacity = capacity
        self.time_ms = [0] * capacity
        self.kind = [0] * capacity
        self.cause = [0] * capacity
        self.value = [0] * capacity
        self.where = [0] * capacity
        self.seq = 0

    def add(self, now_ms: int, kind: int, cause: int, value: int, where: int = 0) -> None:
        i = self.seq % self.capacity
        self.time_ms[i] = now_ms
        self.kind[i] = kind
        self.cause[i] = cause
        self.value[i] = value
        self.where[i] = where
        self.seq += 1

    def __len__(self) -> int:
        return self.seq if self.seq < self.capacity else self.capacity

    def get(self, n: int) -> tuple:
        """The n-th oldest event still in the ring: ``(time_ms, kind, cause, value, where)``.

        Allocates a tuple: for status interfaces, not for the protection loop.
        """
        count = len(self)
        if n < 0 or n >= count:
            raise IndexError("event index out of range")
        i = (self.seq - count + n) % self.capacity
        return (self.time_ms[i], self.kind[i], self.cause[i], self.value[i], self.where[i])

    def find(self, kind: int, cause: int) -> int:
        """Index (for ``get``) of the newest event of this kind and cause, or -1."""
        for n in range(len(self) - 1, -1, -1):
            i = (self.seq - len(self) + n) % self.capacity
            if self.kind[i] == kind and self.cause[i] == cause:
                return n
        return -1


def _get(settings, name: str) -> int:
    try:
        v = settings.get(name)
    except KeyError:
        v = None
    if v is None:
        raise ValueError("protection: setting %s is missing" % name)
    return int(v)


class Protection:
    """Per-condition warning/trip/release state machines over the diagnosis ``TABLE``.

    Use: ``p = Protection(); p.load(settings)``; then every cycle fill a list of ``N_COND`` values
    (``UNKNOWN`` where there is no data) and the matching ``where`` list, and call
    ``p.update(now_ms, values, where)``. Read ``charge_allowed``, ``discharge_allowed``,
    ``tripped`` and ``warnings`` (bit masks, bit n = condition n) and ``events``.

    Before ``load`` succeeds nothing is allowed (both paths blocked).
    """

    def __init__(self, event_capacity: int = 32) -> None:
        self.events = EventLog(event_capacity)
        self._lim = [[0, 0, 0, 0, 0] for _ in range(N_COND)]
        self._trip_since = [_NO_TIMER] * N_COND
        self._rel_since = [_NO_TIMER] * N_COND
        self._warn_since = [_NO_TIMER] * N_COND
        self._wrel_since = [_NO_TIMER] * N_COND
        self.tripped = 0
        self.warnings = 0
        self.loaded = False
        # The value and place of the latest trip of each condition (for status pages).
        self.trip_value = [0] * N_COND
        self.trip_where = [0] * N_COND

    # -- limits --------------------------------------------------------------------------------
    def load(self, settings) -> None:
        """Read every limit from ``settings`` (an object with ``get(name) -> int``).

        All setting names the protection uses live here. Raises ``ValueError`` naming the
        setting or the rule when a limit is missing or contradictory; on error the previous
        limits stay (or, before the first load, both paths stay blocked).
        """
        new = [[0, 0, 0, 0, 0] for _ in range(N_COND)]
        for c in range(N_COND):
            name, unit, direction, _, _, _ = TABLE[c]
            row = new[c]
            if unit is not None:
                row[_WARN] = _get(settings, "%s_warn_%s" % (name, unit))
                row[_TRIP] = _get(settings, "%s_trip_%s" % (name, unit))
                row[_REL] = _get(settings, "%s_release_%s" % (name, unit))
                row[_DELAY] = _get(settings, "%s_delay_ms" % name)
                row[_REL_MS] = _get(settings, "%s_release_ms" % name)
                if direction == _HIGH:
                    ok = row[_WARN] <= row[_TRIP] and row[_REL] < row[_TRIP]
                    rule = "warn <= trip and release < trip"
                else:
                    ok = row[_WARN] >= row[_TRIP] and row[_REL] > row[_TRIP]
                    rule = "warn >= trip and release > trip"
                if not ok:
                    raise ValueError("protection: %s limits break the rule %s" % (name, rule))
            elif c == PLAUS:
                tol = _get(settings, "plaus_tol_mv")
                d = _get(settings, "plaus_delay_ms")
                if tol < 1:
                    raise ValueError("protection: plaus_tol_mv must be >= 1")
                # value = |sum of cells - measured pack voltage|; trip above the tolerance.
                row[_WARN] = tol + 1
                row[_TRIP] = tol + 1
                row[_REL] = tol
                row[_DELAY] = d
                row[_REL_MS] = 0  # latched: released only by the user reset, never by a delay
            else:
                # Count conditions: value >= 1 trips, value 0 releases.
                row[_WARN] = 1
                row[_TRIP] = 1
                row[_REL] = 0
                if c == SC:
                    row[_DELAY] = 0
                elif c == MISSING:
                    row[_DELAY] = _get(settings, "module_missing_ms")
                    row[_REL_MS] = MISSING_RELEASE_MS
                elif c == OPEN_WIRE:
                    row[_DELAY] = OPEN_WIRE_DELAY_MS
                    row[_REL_MS] = OPEN_WIRE_RELEASE_MS
                elif c == SENSOR:
                    row[_DELAY] = SENSOR_DELAY_MS
                    row[_REL_MS] = SENSOR_RELEASE_MS
                elif c == NO_TEMP:
                    if not _get(settings, "temp_required"):
                        row[_TRIP] = _NEVER  # the warning still shows
                    row[_DELAY] = NO_TEMP_DELAY_MS
                    row[_REL_MS] = NO_TEMP_RELEASE_MS
                else:
                    row[_DELAY] = WIRING_DELAY_MS
                    row[_REL_MS] = WIRING_RELEASE_MS
            if row[_DELAY] < 0 or row[_REL_MS] < 0:
                raise ValueError("protection: %s delays must be >= 0 ms" % name)
        # The short-circuit value is the hardware alert (0/1); its level is set in the sensor.
        self._lim = new
        self.loaded = True

    def limit(self, cond: int, which: str) -> int:
        """One loaded limit: ``which`` in warn, trip, release, delay_ms, release_ms."""
        return self._lim[cond][("warn", "trip", "release", "delay_ms", "release_ms").index(which)]

    # -- evaluation ----------------------------------------------------------------------------
    @property
    def blocked(self) -> int:
        """BLOCK_CHG | BLOCK_DSG bits of every active trip (both before limits are loaded)."""
        if not self.loaded:
            return BLOCK_BOTH
        b = 0
        t = self.tripped
        c = 0
        while t:
            if t & 1:
                b |= TABLE[c][3]
            t >>= 1
            c += 1
        return b

    @property
    def charge_allowed(self) -> bool:
        return not (self.blocked & BLOCK_CHG)

    @property
    def discharge_allowed(self) -> bool:
        return not (self.blocked & BLOCK_DSG)

    @property
    def latched(self) -> int:
        """Bit mask of the active trips only a user ``reset`` clears (short circuit, plausibility)."""
        m = 0
        for c in range(N_COND):
            if TABLE[c][4]:
                m |= 1 << c
        return self.tripped & m

    def is_tripped(self, cond: int) -> bool:
        return bool(self.tripped & (1 << cond))

    def is_warning(self, cond: int) -> bool:
        return bool(self.warnings & (1 << cond))

    def first_tripped(self) -> int:
        """The condition to show first (table order is priority order), or -1."""
        for c in range(N_COND):
            if self.tripped & (1 << c):
                return c
        return -1

    def first_warning(self) -> int:
        for c in range(N_COND):
            if self.warnings & (1 << c):
                return c
        return -1

    def update(self, now_ms: int, values, where=None) -> None:
        """Advance every condition with this cycle's ``values`` (one per condition id)."""
        if not self.loaded:
            return
        m = values[MISSING]
        incomplete = m != 0  # some module's cells are unknown (UNKNOWN counts as incomplete too)
        for c in range(N_COND):
            v = values[c]
            w = where[c] if where is not None else 0
            self._step(c, now_ms, v, w, incomplete and (_NEEDS_ALL >> c) & 1)

    def _step(self, c: int, now_ms: int, v: int, w: int, hold: int = 0) -> None:
        bit = 1 << c
        if v == UNKNOWN:
            # No data breaks every pending timer; a trip stays until real data says it is over.
            self._trip_since[c] = _NO_TIMER
            self._rel_since[c] = _NO_TIMER
            self._warn_since[c] = _NO_TIMER
            self._wrel_since[c] = _NO_TIMER
            return
        lim = self._lim[c]
        high = TABLE[c][2] == _HIGH
        if high:
            beyond_trip = v >= lim[_TRIP]
            beyond_warn = v >= lim[_WARN]
            safe = v <= lim[_REL]
        else:
            beyond_trip = v <= lim[_TRIP]
            beyond_warn = v <= lim[_WARN]
            safe = v >= lim[_REL]

        # Trip / release.
        if not self.tripped & bit:
            self._rel_since[c] = _NO_TIMER
            if beyond_trip:
                if self._trip_since[c] == _NO_TIMER:
                    self._trip_since[c] = now_ms
                if ticks_diff(now_ms, self._trip_since[c]) >= lim[_DELAY]:
                    self.tripped |= bit
                    self._trip_since[c] = _NO_TIMER
                    self.trip_value[c] = v
                    self.trip_where[c] = w
                    self.events.add(now_ms, EV_TRIP, c, v, w)
            else:
                self._trip_since[c] = _NO_TIMER
        elif not TABLE[c][4]:
            self._trip_since[c] = _NO_TIMER
            if safe and not hold:
                if self._rel_since[c] == _NO_TIMER:
                    self._rel_since[c] = now_ms
                if ticks_diff(now_ms, self._rel_since[c]) >= lim[_REL_MS]:
                    self.tripped &= ~bit
                    self._rel_since[c] = _NO_TIMER
                    self.events.add(now_ms, EV_RELEASE, c, v, w)
            else:
                self._rel_since[c] = _NO_TIMER

        # Warning (debounced by the same delays, cleared once back inside the warning level).
        # Count conditions (no unit) have no warning stage: they trip or they do not. ``no_temp`` has one:
        # it always warns, and trips only when temp_required is on.
        if TABLE[c][1] is None and c != NO_TEMP:
            return
        if not self.warnings & bit:
            self._wrel_since[c] = _NO_TIMER
            if beyond_warn:
                if self._warn_since[c] == _NO_TIMER:
                    self._warn_since[c] = now_ms
                if ticks_diff(now_ms, self._warn_since[c]) >= lim[_DELAY]:
                    self.warnings |= bit
                    self._warn_since[c] = _NO_TIMER
                    self.events.add(now_ms, EV_WARN, c, v, w)
            else:
                self._warn_since[c] = _NO_TIMER
        else:
            self._warn_since[c] = _NO_TIMER
            if not beyond_warn and not self.tripped & bit and not hold:
                if self._wrel_since[c] == _NO_TIMER:
                    self._wrel_since[c] = now_ms
                if ticks_diff(now_ms, self._wrel_since[c]) >= lim[_REL_MS]:
                    self.warnings &= ~bit
                    self._wrel_since[c] = _NO_TIMER
                    self.events.add(now_ms, EV_WARN_CLEAR, c, v, w)
            else:
                self._wrel_since[c] = _NO_TIMER

    def reset(self, now_ms: int, values=None) -> bool:
        """User reset: clear latched trips (short circuit, plausibility) whose input is no longer active.

        ``values`` (optional) is this cycle's value list; a latched condition whose value still
        says "active" stays tripped. Returns True when something was cleared. Logged.
        """
        cleared = False
        for c in range(N_COND):
            bit = 1 << c
            if TABLE[c][4] and self.tripped & bit:
                v = values[c] if values is not None else 0
                if v != UNKNOWN and v >= self._lim[c][_TRIP]:
                    continue
                self.tripped &= ~bit
                self.warnings &= ~bit
                self.events.add(now_ms, EV_RESET, c, v if v != UNKNOWN else 0, 0)
                cleared = True
        return cleared
