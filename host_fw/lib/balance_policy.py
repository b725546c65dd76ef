"""
`balance_policy`
================================================================================

When the host asks the modules to balance (DESIGN.md §1, §6, §7; ``docs/soc.md`` §Balancing).
Pure, integers only, allocation-free ``decide``.

* allowed only after a full charge (``full_charge_seen``, from ``soc.SocCounter.full_seen``) or with SOC >=
  ``rest_soc_pct`` (101 = never without a full charge), and in either case only while the current is in the
  balancing window: at rest (|current| <= ``rest_current_ma``) or in the charge tail (0 < current <=
  ``tail_current_ma``).  Under load the spread is the cells' I x R differences, not charge: bleeding then would
  drain the wrong cells;
* a session a load interrupted (STOP) resumes when the current is back in the window, as long as the spread is
  still over 1 mV (not only over ``start_mv``); a trip or losing the permission cancels the resume;
* starts when the spread is >= ``start_mv`` (hysteresis), targets the lowest cell + 1 mV, stops when
  the spread is <= 1 mV, a trip is active, or a cell reading is unknown;
* while on, resends the command every half of ``timeout_s`` (the modules stop by themselves after
  ``timeout_s`` without one) and when the target moved by 2 mV or more.

API::

    bp = BalancePolicy(start_mv=10, rest_soc_pct=95, rest_current_ma=1000, timeout_s=30, tail_current_ma=2000)
    action = bp.decide(now_ms, pack_min_100uv, pack_max_100uv, soc_pct, full_charge_seen, trip_active, current_ma)
    # action: NONE (nothing to send), SEND (BALANCE target_100uv=bp.target_100uv, timeout_s=bp.timeout_s),
    #         STOP (BALANCE timeout_s=0); bp.balancing is the state after the decision
"""

from adafruit_ticks import ticks_diff
from micropython import const

NONE = const(0)
SEND = const(1)
STOP = const(2)

_UNKNOWN_100UV = const(0xFFFF)
_ONE_MV_100UV = const(10)
_RETARGET_100UV = const(20)


class BalancePolicy:
    def __init__(
        self, start_mv: int = 10, rest_soc_pct: int = 95, rest_current_ma: int = 1000, timeout_s: int = 30,
        tail_current_ma: int = 0,
    ) -> None:
        self.balancing = False
        self.target_100uv = 0
        self._sent_ms = 0
        self._paused = False  # a load stopped the session before it was done
        self.configure(start_mv, rest_soc_pct, rest_current_ma, timeout_s, tail_current_ma)

    def configure(
        self, start_mv: int, rest_soc_pct: int, rest_current_ma: int, timeout_s: int, tail_current_ma: int = 0
    ) -> None:
        self.start_100uv = start_mv * 10
        self.rest_soc_pct = rest_soc_pct
        self.rest_current_ma = rest_current_ma
        self.timeout_s = timeout_s
        self.tail_current_ma = tail_current_ma

    def in_window(self, current_ma: int) -> bool:
        """At rest (either sign up to ``rest_current_ma``) or charging up to ``tail_current_ma``."""
        if current_ma < 0:
            return current_ma >= -self.rest_current_ma
        return current_ma <= self.rest_current_ma or current_ma <= self.tail_current_ma

    def permitted(self, soc_pct: int, full_charge_seen: bool, trip_active: bool) -> bool:
        """Balancing may run at all (whatever the current): no trip, and a full charge seen or SOC high."""
        return not trip_active and (full_charge_seen or soc_pct >= self.rest_soc_pct)

    def allowed(self, soc_pct: int, full_charge_seen: bool, trip_active: bool, current_ma: int) -> bool:
        return self.permitted(soc_pct, full_charge_seen, trip_active) and self.in_window(current_ma)

    def decide(
        self,
        now_ms: int,
        pack_min_100uv: int,
        pack_max_100uv: int,
        soc_pct: int,
        full_charge_seen: bool,
        trip_active: bool,
        current_ma: int,
    ) -> int:
        known = 0 < pack_min_100uv < _UNKNOWN_100UV and 0 < pack_max_100uv < _UNKNOWN_100UV
        spread = pack_max_100uv - pack_min_100uv
        permitted = self.permitted(soc_pct, full_charge_seen, trip_active)
        window = self.in_window(current_ma)
        ok = known and permitted and window
        if not permitted:
            self._paused = False
        if self.balancing:
            if not ok or spread <= _ONE_MV_100UV:
                self.balancing = False
                # only a load (with the job unfinished) pauses: resume when the current is back in the window
                self._paused = known and permitted and not window and spread > _ONE_MV_100UV
                return STOP
            target = pack_min_100uv + _ONE_MV_100UV
            moved = target - self.target_100uv
            if moved < 0:
                moved = -moved
            if moved >= _RETARGET_100UV or ticks_diff(now_ms, self._sent_ms) >= self.timeout_s * 500:
                self.target_100uv = target
                self._sent_ms = now_ms
                return SEND
            return NONE
        if ok and self._paused and spread <= _ONE_MV_100UV:
            self._paused = False  # settled while paused (e.g. the lowest cell came back up)
        if ok and (spread >= self.start_100uv or self._paused):
            self.balancing = True
            self._paused = False
            self.target_100uv = pack_min_100uv + _ONE_MV_100UV
            self._sent_ms = now_ms
            return SEND
        return NONE
