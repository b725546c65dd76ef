"""
`balancer`
================================================================================

Which cells of one module bleed, as a pure function of integers (no hardware):

- a cell starts bleeding above ``target`` and keeps bleeding down to ``target - hysteresis`` (the host sends
  target = lowest cell + 1 mV, so every cell ends within 1 mV of the lowest, and a bleeding cell does not
  switch on and off with the last 0.1 mV of measurement noise);
- never two adjacent cells at once (adjacent bleed resistors share copper and the AFE's balance
  inputs share a pin between neighbours);
- as many cells as the thermal budget allows: each bleed dissipates ``bleed_ma`` x cell voltage;
- the budget shrinks linearly from the warning temperature to zero at the limit.

Cells already bleeding keep priority over new ones, so the set does not flip every cycle.
"""

from bms_packet import CELL_UNKNOWN, TEMP_ABSENT


def thermal_budget_mw(budget_mw: int, temp_dc: int, warn_dc: int, limit_dc: int) -> int:
    """Heat the board may take now: full up to ``warn_dc``, linear to 0 at ``limit_dc``.

    An unknown temperature (``TEMP_ABSENT``) gets half the budget: balancing goes on, carefully.
    """
    if temp_dc == TEMP_ABSENT:
        return budget_mw // 2
    if temp_dc >= limit_dc:
        return 0
    if temp_dc <= warn_dc:
        return budget_mw
    return budget_mw * (limit_dc - temp_dc) // (limit_dc - warn_dc)


def choose_bleed(
    cells_100uv,
    cell_count: int,
    target_100uv: int,
    bleeding: int,
    budget_mw: int,
    *,
    hysteresis_100uv: int = 5,
    bleed_ma: int = 200,
) -> int:
    """Mask of cells to bleed (bit n-1 = cell n).

    :param cells_100uv: cell voltages, cell 1 first (``CELL_UNKNOWN`` never bleeds)
    :param cell_count: cells fitted; channels above it never bleed
    :param target_100uv: bleed down to this
    :param bleeding: mask bleeding now (they continue down to ``target - hysteresis``)
    :param budget_mw: heat allowed now (``thermal_budget_mw``)
    """
    chosen = 0
    left_mw = budget_mw
    for sticky in (True, False):
        while True:
            best = -1
            best_excess = 0
            for i in range(cell_count):
                bit = 1 << i
                if chosen & bit:
                    continue
                if bool(bleeding & bit) != sticky:
                    continue
                v = cells_100uv[i]
                if v == CELL_UNKNOWN:
                    continue
                excess = v - target_100uv
                if excess <= (-hysteresis_100uv if sticky else 0):
                    continue
                if chosen & ((bit << 1) | (bit >> 1)):
                    continue  # a neighbour bleeds
                if best < 0 or excess > best_excess:
                    best = i
                    best_excess = excess
            if best < 0:
                break
            heat_mw = bleed_ma * cells_100uv[best] // 10000
            if heat_mw > left_mw:
                return chosen
            left_mw -= heat_mw
            chosen |= 1 << best
    return chosen


def adjacent(mask: int) -> bool:
    """``True`` when two neighbouring cells are both in ``mask``."""
    return bool(mask & (mask >> 1))
