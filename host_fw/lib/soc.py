"""
`soc`
================================================================================

State of charge of the pack by integer coulomb counting (DESIGN.md §7, ``docs/soc.md``).

Pure Python, integers only, no hardware: fed the pack current from the INA228 reading and the loop's
``now_ms`` (a wrapping ``adafruit_ticks`` value). Sign: ``current_ma`` > 0 charges the pack, < 0 discharges.
Each reading is applied to the time since the previous one (``current_ma * dt_ms`` in mA·ms), so the
count is exact: no float, no rounding, nothing lost between readings.

* re-anchored to 100 % at full charge: highest cell >= ``full_charge_mv`` and 0 <= current <= tail
  current, held for ``full_hold_ms``; to 0 % at the cut-off: lowest cell <= ``cutoff_mv`` while not
  charging, held for ``empty_hold_ms``;
* capacity learned from a full-to-empty run (accepted within 50..150 % of the design capacity);
* charged and discharged counters (mAh + mA·ms remainder, exact), cycle count (one per capacity discharged);
* :meth:`SocCounter.pack_into` / :meth:`SocCounter.unpack_from` serialise the whole state into a
  ``RECORD_LEN``-byte record for ``alarm.sleep_memory`` and ``nvm`` (``soc_persist``).

API::

    soc = SocCounter(capacity_mah, full_charge_mv, cutoff_mv, tail_current_ma, full_hold_ms, empty_hold_ms,
                     chemistry=-1)          # chemistry 0 LFP / 1 NMC / 2 LTO: first-start SOC from the rest voltage
    soc.configure(...same arguments...)     # after a settings change (keeps SOC %, forgets a learned capacity
                                            # only when the design capacity changes)
    events = soc.update(current_ma, now_ms, cell_min_mv, cell_max_mv)   # 0 or EV_* bits; cells 0 = unknown
    soc.soc_pct, soc.soc_permille, soc.charge_mah, soc.capacity_mah, soc.learned_mah,
    soc.charged_mah, soc.discharged_mah, soc.cycles, soc.full_seen
"""

import struct

from adafruit_ticks import ticks_diff
from micropython import const

try:
    from typing import Optional  # noqa: F401
except ImportError:
    pass

MAMS_PER_MAH = const(3600000)  # mA·ms in one mAh
_MAX_MAMS = const(1 << 29)  # integrate long gaps in slices so current * dt stays a small int on the board

EV_FULL = const(1)  # re-anchored to 100 %
EV_EMPTY = const(2)  # re-anchored to 0 %
EV_LEARNED = const(4)  # a new capacity was learned
EV_CYCLE = const(8)  # the cycle count moved
EV_SEEDED = const(16)  # first start: the charge was estimated from the rest voltage

# Typical open-circuit voltage at 25 C of commercial cells, (SOC per mille, cell mV) pairs, flat, increasing.
# Used only at the very first start (no saved state): a rest voltage is a better guess than 50 %.
# Index = chemistry code (bms_settings: 0 LFP, 1 NMC, 2 LTO). LFP is flat mid-range: a rough guess there.
OCV_MV = (
    (0, 2500, 10, 2800, 50, 3100, 100, 3200, 200, 3250, 300, 3275, 400, 3290, 500, 3300, 600, 3310,
     700, 3325, 800, 3335, 900, 3345, 950, 3360, 980, 3400, 1000, 3580),
    (0, 3000, 20, 3300, 50, 3450, 100, 3550, 200, 3620, 300, 3660, 400, 3710, 500, 3760, 600, 3830,
     700, 3910, 800, 3990, 900, 4080, 950, 4130, 1000, 4190),
    (0, 1700, 20, 1950, 50, 2080, 100, 2150, 200, 2200, 300, 2230, 400, 2250, 500, 2270, 600, 2290,
     700, 2320, 800, 2360, 900, 2420, 950, 2480, 990, 2580, 1000, 2700),
)


def ocv_soc_permille(cell_mv: int, chemistry: int) -> int:
    """SOC (per mille) of a cell resting at ``cell_mv``, by linear interpolation in ``OCV_MV``."""
    t = OCV_MV[chemistry]
    if cell_mv <= t[1]:
        return 0
    for k in range(2, len(t), 2):
        if cell_mv <= t[k + 1]:
            s0, v0, s1, v1 = t[k - 2], t[k - 1], t[k], t[k + 1]
            return s0 + (s1 - s0) * (cell_mv - v0) // (v1 - v0)
    return 1000

# accumulators: [mah, rem_mams] pairs, in one list so updating them allocates nothing
_NET = const(0)  # charge in the pack (clamped 0..capacity)
_CHG = const(2)  # charged throughput
_DSG = const(4)  # discharged throughput
_LEARN = const(6)  # net discharge since the last full anchor

_F_FULL = const(1)  # full latch (anchored full, not yet discharged below 97 %)
_F_EMPTY = const(2)  # empty latch
_F_LEARN = const(4)  # a full-to-empty run is in progress

_FMT = "<iiIIIIiiIIIIB"
RECORD_LEN = struct.calcsize(_FMT)  # 49 bytes


class SocCounter:
    """Coulomb counter with full/empty anchors, learned capacity and lifetime counters."""

    def __init__(
        self,
        capacity_mah: int,
        full_charge_mv: int,
        cutoff_mv: int,
        tail_current_ma: int,
        full_hold_ms: int,
        empty_hold_ms: int,
        chemistry: int = -1,
    ) -> None:
        self._acc = [0, 0, 0, 0, 0, 0, 0, 0]
        self.design_mah = capacity_mah
        self.learned_mah = 0
        self.cycles = 0
        self._cycle_mark_mah = 0
        self._flags = 0
        self._last_ms = 0
        self._have_last = False
        self._full_since_ms = 0
        self._full_timing = False
        self._empty_since_ms = 0
        self._empty_timing = False
        self.chemistry = -1
        self.configure(capacity_mah, full_charge_mv, cutoff_mv, tail_current_ma, full_hold_ms, empty_hold_ms,
                       chemistry)
        # Unknown at first start: 50 % until the first reading at rest (with a chemistry: its OCV estimate),
        # an anchor, a manual SOC or a restored record.
        self._acc[_NET] = capacity_mah // 2
        self.seeded = False

    def configure(
        self,
        capacity_mah: int,
        full_charge_mv: int,
        cutoff_mv: int,
        tail_current_ma: int,
        full_hold_ms: int,
        empty_hold_ms: int,
        chemistry: int = -1,
    ) -> None:
        """New settings. ``chemistry`` (0 LFP, 1 NMC, 2 LTO; -1 = keep) enables the first-start OCV estimate."""
        if capacity_mah <= 0:
            raise ValueError("capacity_mah must be > 0")
        if capacity_mah != self.design_mah:
            # A new design capacity means a different pack: keep the SOC %, forget what was learned.
            old = self.capacity_mah
            self._acc[_NET] = self._acc[_NET] * capacity_mah // old
            self._acc[_NET + 1] = 0
            self.design_mah = capacity_mah
            self.learned_mah = 0
            self._flags &= ~_F_LEARN
        self.full_charge_mv = full_charge_mv
        self.cutoff_mv = cutoff_mv
        self.tail_current_ma = tail_current_ma
        self.full_hold_ms = full_hold_ms
        self.empty_hold_ms = empty_hold_ms
        if 0 <= chemistry < len(OCV_MV):
            self.chemistry = chemistry

    # -- readings -----------------------------------------------------------------------------
    @property
    def capacity_mah(self) -> int:
        """Capacity the SOC refers to: the learned one once known, else the design capacity."""
        return self.learned_mah if self.learned_mah else self.design_mah

    @property
    def charge_mah(self) -> int:
        return self._acc[_NET]

    @property
    def charge_mams(self) -> int:
        """Exact charge in the pack in mA·ms (a long int on the board: for tests and reports only)."""
        return self._acc[_NET] * MAMS_PER_MAH + self._acc[_NET + 1]

    @property
    def soc_permille(self) -> int:
        cap = self.capacity_mah
        q = self._acc[_NET]
        if cap < 1000000:
            return q * 1000 // cap
        return q // (cap // 1000)

    @property
    def soc_pct(self) -> int:
        return self.soc_permille // 10

    @property
    def charged_mah(self) -> int:
        return self._acc[_CHG]

    @property
    def discharged_mah(self) -> int:
        return self._acc[_DSG]

    def throughput_mams(self, charged: bool) -> int:
        """Exact charged (or discharged) throughput in mA·ms (long int on the board: tests only)."""
        k = _CHG if charged else _DSG
        return self._acc[k] * MAMS_PER_MAH + self._acc[k + 1]

    @property
    def full_seen(self) -> bool:
        """Anchored at full charge and not discharged below 97 % since (gates balancing)."""
        return bool(self._flags & _F_FULL)

    @property
    def learning(self) -> bool:
        return bool(self._flags & _F_LEARN)

    def cancel_learning(self) -> None:
        """Forget a full-to-empty run in progress (its count is no longer exact, e.g. after a power loss)."""
        self._flags &= ~_F_LEARN

    def set_soc_pct(self, pct: int) -> None:
        """Manual SOC (a user command): sets the charge to ``pct`` % of the capacity."""
        if pct < 0 or pct > 100:
            raise ValueError("soc: 0..100 %")
        self._acc[_NET] = self.capacity_mah * pct // 100
        self._acc[_NET + 1] = 0
        self._flags &= ~(_F_LEARN | _F_FULL | _F_EMPTY)
        self.seeded = True

    # -- counting -----------------------------------------------------------------------------
    def _add(self, k: int, mams: int) -> None:
        acc = self._acc
        r = acc[k + 1] + mams
        q = r // MAMS_PER_MAH
        acc[k] += q
        acc[k + 1] = r - q * MAMS_PER_MAH

    def _integrate(self, current_ma: int, dt_ms: int) -> None:
        acc = self._acc
        mag = current_ma if current_ma >= 0 else -current_ma
        limit = _MAX_MAMS // mag if mag else dt_ms
        while dt_ms > 0:
            step = dt_ms if dt_ms < limit else limit
            dt_ms -= step
            mams = current_ma * step
            self._add(_NET, mams)
            if mams > 0:
                self._add(_CHG, mams)
            elif mams < 0:
                self._add(_DSG, -mams)
            if self._flags & _F_LEARN:
                self._add(_LEARN, -mams)
        cap = self.capacity_mah
        if acc[_NET] >= cap:
            acc[_NET] = cap
            acc[_NET + 1] = 0
        elif acc[_NET] < 0:
            acc[_NET] = 0
            acc[_NET + 1] = 0

    def update(self, current_ma: int, now_ms: int, cell_min_mv: int = 0, cell_max_mv: int = 0) -> int:
        """Count ``current_ma`` over the time since the last update; check the anchors.

        ``cell_min_mv``/``cell_max_mv`` of 0 mean unknown (no anchor then). Returns EV_* bits.
        """
        events = 0
        if self._have_last:
            dt = ticks_diff(now_ms, self._last_ms)
            if dt > 0:
                self._integrate(current_ma, dt)
        self._have_last = True
        self._last_ms = now_ms

        cap = self.capacity_mah
        if not self.seeded and self.chemistry >= 0 and cell_min_mv > 0 and cell_max_mv > 0:
            if -self.tail_current_ma <= current_ma <= self.tail_current_ma:
                pm = ocv_soc_permille((cell_min_mv + cell_max_mv) // 2, self.chemistry)
                self._acc[_NET] = cap * pm // 1000 if cap < 1000000 else cap // 1000 * pm
                self._acc[_NET + 1] = 0
                self.seeded = True
                events |= EV_SEEDED
        # cycle count: one per capacity discharged
        if self._acc[_DSG] - self._cycle_mark_mah >= cap:
            self._cycle_mark_mah += cap
            self.cycles += 1
            events |= EV_CYCLE

        # latches re-arm once the pack has moved away from the anchor (one nvm write per anchor)
        if self._flags & _F_FULL and self._acc[_NET] * 100 < cap * 97:
            self._flags &= ~_F_FULL
        if self._flags & _F_EMPTY and self._acc[_NET] * 100 > cap * 3:
            self._flags &= ~_F_EMPTY

        full_cond = cell_max_mv > 0 and cell_max_mv >= self.full_charge_mv and 0 <= current_ma <= self.tail_current_ma
        if full_cond and not self._flags & _F_FULL:
            if not self._full_timing:
                self._full_timing = True
                self._full_since_ms = now_ms
            if ticks_diff(now_ms, self._full_since_ms) >= self.full_hold_ms:
                self._full_timing = False
                self._acc[_NET] = cap
                self._acc[_NET + 1] = 0
                self._acc[_LEARN] = 0
                self._acc[_LEARN + 1] = 0
                self._flags = (self._flags | _F_FULL | _F_LEARN) & ~_F_EMPTY
                events |= EV_FULL
        else:
            self._full_timing = False

        empty_cond = 0 < cell_min_mv <= self.cutoff_mv and current_ma <= 0
        if empty_cond and not self._flags & _F_EMPTY:
            if not self._empty_timing:
                self._empty_timing = True
                self._empty_since_ms = now_ms
            if ticks_diff(now_ms, self._empty_since_ms) >= self.empty_hold_ms:
                self._empty_timing = False
                if self._flags & _F_LEARN:
                    run = self._acc[_LEARN]
                    if self.design_mah // 2 <= run <= self.design_mah * 3 // 2:
                        self.learned_mah = run
                        events |= EV_LEARNED
                self._acc[_NET] = 0
                self._acc[_NET + 1] = 0
                self._flags = (self._flags | _F_EMPTY) & ~(_F_FULL | _F_LEARN)
                events |= EV_EMPTY
        else:
            self._empty_timing = False
        return events

    # -- persistence --------------------------------------------------------------------------
    def pack_into(self, buf, offset: int = 0) -> None:
        a = self._acc
        struct.pack_into(
            _FMT, buf, offset,
            a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7],
            self._cycle_mark_mah, self.learned_mah, self.cycles, self.design_mah, self._flags,
        )

    def unpack_from(self, buf, offset: int = 0) -> bool:
        """Restore the state from a record; returns False (and changes nothing) if it does not fit."""
        f = struct.unpack_from(_FMT, buf, offset)
        design = f[11]
        if design != self.design_mah:
            return False  # the record is for another pack (capacity setting changed)
        if not 0 <= f[0] <= self.design_mah * 3 // 2 or not 0 <= f[1] < MAMS_PER_MAH:
            return False
        for i in range(8):
            self._acc[i] = f[i]
        self._cycle_mark_mah = f[8]
        self.learned_mah = f[9]
        self.cycles = f[10]
        self._flags = f[12]
        self.seeded = True
        self._full_timing = False
        self._empty_timing = False
        return True
