"""
`module_app`
================================================================================

The module board's superloop: answers the host over the cascade link (protocol v1), measures its cells
with the LTC6811 on SAMPLE, reads its thermistors and die temperature, checks sense wires, balances on the
host's command within a thermal budget, and sleeps when the host goes silent.

* Hardware (all passed in): an ``ltc6811.LTC6811``, a ``module_link.ModuleLink`` and a board-services object
  (``module_services.ModuleServices`` on a board, ``hil.module_services_sim.SimModuleServices`` on a PC).

``step(now_ms)`` never blocks: an AFE conversion is started in one step and read in a later one; a
GET_CELLS/GET_TEMPS that arrives while its SAMPLE is still converting is answered as soon as the data is in.
Decisions taken here are written down in ``docs/module.md``.
"""

from array import array

from adafruit_ticks import ticks_add, ticks_diff
from micropython import const

import bms_packet as P
from balancer import choose_bleed, thermal_budget_mw
from bms_link import crc16_ccitt
from bms_ntc import NTC, TEMP_ABSENT
from ltc6811 import CELL_UNKNOWN, MODE_NORMAL, PECError, conversion_ms, dcto_code, open_lines

try:
    import typing  # noqa: F401
except ImportError:
    pass

FW_MAJOR = const(0)
FW_MINOR = const(1)
CHANNELS = const(12)
TEMP_INPUTS = const(2)  # GPIO1, GPIO2

# Jobs of the AFE state machine.
_IDLE = const(0)
_CELLS = const(1)
_AUX = const(2)
_STAT = const(3)
_OW = const(4)  # open-wire phases 0..3 in _ow_phase

_WIRING_100UV = const(500)  # an unused channel at or above 50 mV is a wiring fault
_MAX_PACKETS = const(8)  # handled per step: bounds the time of one step
_HEAT_RELEASE_DC = const(50)  # the heat limit releases 5 C below the limit
_SLEEP_DRAIN_MS = const(20)  # after SLEEP: let the forwarded frame leave before the MCU stops
_NO_SEQ = const(-1)
_OW_WINDOW_MS = const(100)  # open-wire checks start at most this long after a SAMPLE
_REPEAT_MS = const(1000)  # a SAMPLE with the last id within this time is the host's repeat
_POLL_TRIES = const(4)  # 1 ms polls (PLADC) for a conversion that is not done at its nominal time

# alarm.sleep_memory layout (survives deep sleep, not power loss).
_SM_MAGIC = const(0xB5)
_SM_LEN = const(14)


class ModuleApp:
    """One module board.

    :param afe: ``ltc6811.LTC6811``
    :param link: ``module_link.ModuleLink``
    :param services: board services: ``sleep_memory``, ``woke_from_pin``, ``deep_sleep()``, ``feed_watchdog()``
    :param int cell_count: cells fitted (4..12) until the host's CONFIG says otherwise
    :param int ow_period_s: open-wire check period (0 = only at start)
    :param int silence_ms: host silence before the board sleeps
    :param int temp_warn_dc: balancing derates above this (0.1 C)
    :param int temp_limit_dc: balancing stops at this (0.1 C)
    :param int budget_mw: heat the board may dissipate in bleed resistors when cool
    :param int bleed_ma: bleed current per cell (sets the heat per bleeding cell)
    :param int hysteresis_100uv: a bleeding cell goes on this far below the target (no on/off with noise)
    :param int bleed_hold_ms: bleeding pauses when no SAMPLE came for this long (its readings would be stale)
    :param int ntc_beta: B constant of the board thermistors
    :param int uid: identity reported by IDENTIFY
    """

    def __init__(
        self,
        afe,
        link,
        services,
        *,
        cell_count: int = 12,
        ow_period_s: int = 30,
        silence_ms: int = 2000,
        temp_warn_dc: int = 600,
        temp_limit_dc: int = 700,
        budget_mw: int = 3000,
        bleed_ma: int = 200,
        hysteresis_100uv: int = 5,
        bleed_hold_ms: int = 400,
        ntc_beta: int = 3435,
        uid: int = 0,
    ) -> None:
        if not 4 <= cell_count <= CHANNELS:
            raise ValueError("cell_count must be 4..12")
        if temp_warn_dc >= temp_limit_dc:
            raise ValueError("temp_warn_dc must be below temp_limit_dc")
        self.afe = afe
        self.link = link
        self.services = services
        self.cell_count = cell_count
        self.ow_period_s = ow_period_s
        self.silence_ms = silence_ms
        self.temp_warn_dc = temp_warn_dc
        self.temp_limit_dc = temp_limit_dc
        self.budget_mw = budget_mw
        self.bleed_ma = bleed_ma
        self.hysteresis_100uv = hysteresis_100uv
        self.bleed_hold_ms = bleed_hold_ms
        self.uid = uid
        self.configured = False
        self._ntc = NTC(beta=ntc_beta)

        # Measurements (preallocated; the loop writes into them).
        self.cells_100uv = array("H", [CELL_UNKNOWN] * CHANNELS)  # last SAMPLE, all 12 channels
        self._read = array("H", [CELL_UNKNOWN] * CHANNELS)
        self._pu = array("H", [CELL_UNKNOWN] * CHANNELS)
        self._pd = array("H", [CELL_UNKNOWN] * CHANNELS)
        self._aux = array("H", [CELL_UNKNOWN] * 6)
        self.temps_dc = array("h", [TEMP_ABSENT] * TEMP_INPUTS)
        self.die_temp_dc = TEMP_ABSENT
        self.sum_cells_mv = 0  # used, known cells of the last SAMPLE
        self.min_cell_100uv = CELL_UNKNOWN
        self.max_cell_100uv = CELL_UNKNOWN
        self.afe_sum_mv = 0  # the AFE's own sum of all 12 inputs (a plausibility figure)
        self.sample_id = 0
        self._have_sample = False  # a SAMPLE has been taken since start
        self._cells_ready = False  # the last SAMPLE's cells are in (or failed)
        self._temps_ready = False
        self._cells_failed = False

        # Status.
        self.open_wire = 0
        self.wiring = 0
        self.afe_fault = False
        self.stale = False
        self.heat_warn = False
        self.heat_limit = False

        # Balancing.
        self.balance = 0  # cells bleeding (what the AFE was told)
        self.balancing = False  # a BALANCE session is in force
        self._target_100uv = 0
        self._balance_end_ms = 0

        # AFE jobs.
        self._job = _IDLE
        self._job_ms = 0
        self._job_wait_ms = 0
        self._retry = 0
        self._ow_phase = 0
        self._ow_due_ms = 0
        self._ow_pending = True  # open-wire check at start

        # Requests waiting for their SAMPLE's data.
        self._pend_cells = _NO_SEQ
        self._pend_temps = _NO_SEQ

        self._last_sample_ms = 0
        self._sleep_at_ms = 0
        self._sleep_requested = False
        self.asleep = False  # deep sleep was requested (on a board, step never runs again)

        if services.woke_from_pin:
            # Only a wake from deep sleep restores: after a reset or power-up settings.toml is the truth.
            self._load_sleep_memory()
        afe.dcto = dcto_code(30)  # shortest timeout: a hung MCU bleeds at most 30 s
        afe.refon = True
        afe.discharge = 0
        if services.woke_from_pin:
            # The preamble that woke us is lost with the first bytes: pass a fresh one down.
            link.send_wake()

    # -- persistence across deep sleep ---------------------------------------------------------
    def _load_sleep_memory(self) -> None:
        sm = self.services.sleep_memory
        if sm[0] != _SM_MAGIC:
            return
        crc = sm[_SM_LEN - 2] | sm[_SM_LEN - 1] << 8
        if crc16_ccitt(sm, 0xFFFF, 0, _SM_LEN - 2) != crc:
            return
        count = sm[2]
        warn = P.get_i16(sm, 7)
        limit = P.get_i16(sm, 9)
        if not 4 <= count <= CHANNELS or warn >= limit:
            return
        self.configured = bool(sm[1])
        self.cell_count = count
        self.ow_period_s = P.get_u16(sm, 3)
        self.silence_ms = P.get_u16(sm, 5)
        self.temp_warn_dc = warn
        self.temp_limit_dc = limit

    def _save_sleep_memory(self) -> None:
        sm = self.services.sleep_memory
        sm[0] = _SM_MAGIC
        sm[1] = 1 if self.configured else 0
        sm[2] = self.cell_count
        P.put_u16(sm, 3, self.ow_period_s)
        P.put_u16(sm, 5, self.silence_ms)
        P.put_i16(sm, 7, self.temp_warn_dc)
        P.put_i16(sm, 9, self.temp_limit_dc)
        sm[11] = 0
        crc = crc16_ccitt(sm, 0xFFFF, 0, _SM_LEN - 2)
        sm[_SM_LEN - 2] = crc & 0xFF
        sm[_SM_LEN - 1] = crc >> 8

    # -- the loop --------------------------------------------------------------------------------
    def run(self, ticks_ms) -> None:
        """Step forever on ``ticks_ms()`` (``adafruit_ticks.ticks_ms``); on a board deep sleep ends it."""
        while True:
            self.step(ticks_ms())

    def step(self, now_ms: int) -> None:
        """Advance everything once; never blocks."""
        if self.asleep:
            return
        self.services.feed_watchdog()
        link = self.link
        for _ in range(_MAX_PACKETS):
            pkt = link.poll(now_ms)
            if pkt is None:
                break
            self._handle(pkt, now_ms)
        self._run_job(now_ms)
        self._housekeeping(now_ms)

    @property
    def flags(self) -> int:
        """STATUS flags (docs/protocol.md §3)."""
        f = 0
        if self.afe_fault:
            f |= P.FLAG_AFE_FAULT
        if self.wiring:
            f |= P.FLAG_WIRING
        if self.open_wire:
            f |= P.FLAG_OPEN_WIRE
        if self.heat_warn:
            f |= P.FLAG_HEAT_WARN
        if self.heat_limit:
            f |= P.FLAG_HEAT_LIMIT
        if self.balance:
            f |= P.FLAG_BALANCING
        if not self.configured:
            f |= P.FLAG_NOT_CONFIGURED
        if self.stale:
            f |= P.FLAG_SAMPLE_STALE
        for i in range(TEMP_INPUTS):
            if self.temps_dc[i] == TEMP_ABSENT:
                f |= P.FLAG_TEMP_ABSENT
        return f

    # -- messages --------------------------------------------------------------------------------
    def _nack(self, pkt, reason: int) -> None:
        n = P.pack_nack_into(self.link.tx_payload, 0, pkt.type, reason)
        self.link.reply(P.NACK, pkt.seq, n)

    def _handle(self, pkt, now_ms: int) -> None:
        t = pkt.type
        link = self.link
        out = link.tx_payload
        if t & P.REPLY or t == P.NACK:
            link.malformed += 1  # a reply travelling the wrong way: nobody to NACK
            return
        if t == P.ENUMERATE:
            n = P.pack_enumerated_into(out, 0, link.address, CHANNELS, self.cell_count, FW_MAJOR, FW_MINOR)
            link.reply(P.ENUMERATED, pkt.seq, n)
        elif t == P.PING:
            link.reply(P.PONG, pkt.seq, 0)
        elif t == P.SAMPLE:
            if pkt.length != P.SAMPLE_LEN:
                link.malformed += 1  # a broadcast is never NACKed (every module would answer)
                return
            sid = pkt.payload[0]
            # The host sends each SAMPLE twice: one instant per sample id (ids repeat only after 256 cycles).
            if self._have_sample and sid == self.sample_id and ticks_diff(now_ms, self._last_sample_ms) < _REPEAT_MS:
                return
            self._start_sample(sid, now_ms)
        elif t == P.GET_CELLS:
            if not self._have_sample:
                self._nack(pkt, P.NACK_NOT_READY)
            elif self._cells_ready:
                self._reply_cells(pkt.seq)
            else:
                self._pend_cells = pkt.seq
        elif t == P.GET_TEMPS:
            if not self._have_sample:
                self._nack(pkt, P.NACK_NOT_READY)
            elif self._temps_ready:
                self._reply_temps(pkt.seq)
            else:
                self._pend_temps = pkt.seq
        elif t == P.GET_STATUS:
            n = P.pack_status_into(
                out, 0, self.flags, self.open_wire, self.balance, self.wiring, self.afe.pec_errors,
                link.link_errors, self.cell_count,
            )
            link.reply(P.STATUS, pkt.seq, n)
        elif t == P.CONFIG:
            self._config(pkt, now_ms)
        elif t == P.BALANCE:
            self._balance_cmd(pkt, now_ms)
        elif t == P.SLEEP:
            self._stop_balancing()
            self._sleep_requested = True
            self._sleep_at_ms = ticks_add(now_ms, _SLEEP_DRAIN_MS)
        elif t == P.IDENTIFY:
            n = P.pack_identity_into(out, 0, FW_MAJOR, FW_MINOR, CHANNELS, self.uid)
            link.reply(P.IDENTITY, pkt.seq, n)
        else:
            self._nack(pkt, P.NACK_UNKNOWN_TYPE)

    def _reply_cells(self, seq: int) -> None:
        if self._cells_failed:
            n = P.pack_nack_into(self.link.tx_payload, 0, P.GET_CELLS, P.NACK_AFE_FAULT)
            self.link.reply(P.NACK, seq, n)
            return
        n = P.pack_cells_into(self.link.tx_payload, 0, self.sample_id, self.cells_100uv, self.cell_count)
        self.link.reply(P.CELLS, seq, n)

    def _reply_temps(self, seq: int) -> None:
        n = P.pack_temps_into(self.link.tx_payload, 0, self.sample_id, self.temps_dc, TEMP_INPUTS, self.die_temp_dc)
        self.link.reply(P.TEMPS, seq, n)

    def _config(self, pkt, now_ms: int) -> None:
        if pkt.length != P.CONFIG_LEN:
            self._nack(pkt, P.NACK_BAD_LENGTH)
            return
        pl = pkt.payload
        count = pl[0]
        ow_s = P.get_u16(pl, 1)
        silence = P.get_u16(pl, 3)
        warn = P.get_i16(pl, 5)
        limit = P.get_i16(pl, 7)
        if silence == 0:
            silence = self.silence_ms  # 0 = keep
        if not 4 <= count <= CHANNELS or warn >= limit or limit > 1000 or not 500 <= silence <= 60000:
            self._nack(pkt, P.NACK_BAD_VALUE)
            return
        if count != self.cell_count:
            # Unused channels never bleed and the last reading no longer describes these cells.
            self.cell_count = count
            self._set_bleed(self.balance & ((1 << count) - 1))
            self.wiring = 0
            self.open_wire = 0
            self._ow_pending = True
        self.ow_period_s = ow_s
        self.silence_ms = silence
        self.temp_warn_dc = warn
        self.temp_limit_dc = limit
        self.configured = True
        self._save_sleep_memory()
        n = P.pack_config_into(self.link.tx_payload, 0, count, ow_s, silence, warn, limit)
        self.link.reply(P.CONFIG_ACK, pkt.seq, n)

    def _balance_cmd(self, pkt, now_ms: int) -> None:
        if pkt.length != P.BALANCE_LEN:
            self._nack(pkt, P.NACK_BAD_LENGTH)
            return
        target = P.get_u16(pkt.payload, 0)
        timeout_s = P.get_u16(pkt.payload, 2)
        if timeout_s and not 10000 <= target <= 50000:
            self._nack(pkt, P.NACK_BAD_VALUE)  # 1.0 .. 5.0 V
            return
        if timeout_s == 0:
            self._stop_balancing()
        else:
            self.balancing = True
            self._target_100uv = target
            self._balance_end_ms = ticks_add(now_ms, timeout_s * 1000)
            if self._cells_ready and self._job == _IDLE:
                self._decide_bleed(now_ms)
        n = P.pack_balance_ack_into(self.link.tx_payload, 0, self.balance)
        self.link.reply(P.BALANCE_ACK, pkt.seq, n)

    # -- AFE jobs --------------------------------------------------------------------------------
    def _begin(self, job: int, now_ms: int, wait_ms: int) -> None:
        self._job = job
        self._job_ms = now_ms
        self._job_wait_ms = wait_ms
        self._retry = 0

    def _start_sample(self, sample_id: int, now_ms: int) -> None:
        # A SAMPLE preempts an open-wire check in progress (it runs again later).
        if self._job == _OW:
            self._ow_pending = True
        self.sample_id = sample_id
        self._have_sample = True
        self._cells_ready = False
        # Temperatures come from the GPIO/die conversions that follow each cell reading, so a SAMPLE's TEMPS
        # answer carries the previous cycle's (<= 200 ms old) values and is ready at once; only the first waits.
        self._cells_failed = False
        self._last_sample_ms = now_ms
        afe = self.afe
        afe.wake()
        afe.write_config()  # after a watchdog reset the AFE forgot REFON, DCTO and DCC
        afe.start_cells(MODE_NORMAL, False)  # DCP = 0: each switch opens while its cell converts
        self._begin(_CELLS, now_ms, conversion_ms(MODE_NORMAL, "cells") - 1)

    def _run_job(self, now_ms: int) -> None:
        job = self._job
        if job == _IDLE:
            return
        if ticks_diff(now_ms, self._job_ms) < self._job_wait_ms:
            return
        try:
            if self._retry < _POLL_TRIES and not self.afe.conversion_done:
                self._retry += 1  # not done yet (clock skew, slow chip): look again in 1 ms
                self._job_ms = now_ms
                self._job_wait_ms = 1
                return
            if job == _CELLS:
                self._finish_cells(now_ms)
            elif job == _AUX:
                self._finish_aux(now_ms)
            elif job == _STAT:
                self._finish_status(now_ms)
            else:
                self._ow_next(now_ms)
        except PECError:
            self._afe_failed(now_ms)

    def _finish_cells(self, now_ms: int) -> None:
        buf = self._read
        stale = self.afe.read_cells_into(buf)
        count = self.cell_count
        cells = self.cells_100uv
        wiring = 0
        total = 0
        lo = CELL_UNKNOWN
        hi = 0
        for i in range(CHANNELS):
            v = buf[i]
            cells[i] = v
            if v == CELL_UNKNOWN:
                continue
            if i >= count:
                if v >= _WIRING_100UV:
                    wiring |= 1 << i
                continue  # unused channels are never in min/max/sum
            total += v
            lo = min(lo, v)
            hi = max(hi, v)
        self.wiring = wiring
        self.sum_cells_mv = total // 10
        self.min_cell_100uv = lo
        self.max_cell_100uv = hi if lo != CELL_UNKNOWN else CELL_UNKNOWN
        self.stale = bool(stale & ((1 << count) - 1))
        self.afe_fault = False
        self._cells_ready = True
        if self._pend_cells != _NO_SEQ:
            self._reply_cells(self._pend_cells)
            self._pend_cells = _NO_SEQ
        # Decide on these cells now (with the temperatures of the last cycle), so a STATUS that follows
        # the CELLS answer shows the bleeding that goes with them.
        self._decide_bleed(now_ms)
        self.afe.start_aux(MODE_NORMAL)
        self._begin(_AUX, now_ms, conversion_ms(MODE_NORMAL, "aux") - 1)

    def _finish_aux(self, now_ms: int) -> None:
        aux = self._aux
        self.afe.read_aux_into(aux)  # an entry that did not convert is 0xFFFF: its sensor reads absent
        ref = aux[5]
        for i in range(TEMP_INPUTS):
            self.temps_dc[i] = self._ntc.temp_dc(aux[i], ref)
        self.afe.start_status(MODE_NORMAL)
        self._begin(_STAT, now_ms, conversion_ms(MODE_NORMAL, "status") - 1)

    def _finish_status(self, now_ms: int) -> None:
        if not self.afe.read_status():
            self.die_temp_dc = TEMP_ABSENT
        else:
            self.die_temp_dc = self.afe.die_temp_dc
            self.afe_sum_mv = self.afe.sum_cells_mv
        self._job = _IDLE
        self._temps_ready = True
        if self._pend_temps != _NO_SEQ:
            self._reply_temps(self._pend_temps)
            self._pend_temps = _NO_SEQ
        was_limited = self.heat_limit
        self._update_heat()
        if self.heat_limit and not was_limited:
            self._set_bleed(0)  # do not wait for the next SAMPLE to stop

    def _afe_failed(self, now_ms: int) -> None:
        """A read kept failing its PEC: the data of this SAMPLE is unknown and nothing bleeds on it."""
        self.afe_fault = True
        self._job = _IDLE
        if not self._cells_ready:
            self._cells_failed = True
            for i in range(CHANNELS):
                self.cells_100uv[i] = CELL_UNKNOWN
            self._cells_ready = True
        self._temps_ready = True
        if self._pend_cells != _NO_SEQ:
            self._reply_cells(self._pend_cells)
            self._pend_cells = _NO_SEQ
        if self._pend_temps != _NO_SEQ:
            self._reply_temps(self._pend_temps)
            self._pend_temps = _NO_SEQ
        self._set_bleed(0)

    # -- open wire -------------------------------------------------------------------------------
    def _start_open_wire(self, now_ms: int) -> None:
        self._ow_pending = False
        self._ow_phase = 0
        self.afe.wake()
        self.afe.write_config()
        self.afe.start_open_wire(True, MODE_NORMAL, False)
        self._begin(_OW, now_ms, conversion_ms(MODE_NORMAL, "open_wire") - 1)

    def _ow_next(self, now_ms: int) -> None:
        # Datasheet sequence: ADOW pull-up twice, read; ADOW pull-down twice, read.
        phase = self._ow_phase + 1
        afe = self.afe
        if phase == 2:
            afe.read_cells_into(self._pu)
        elif phase == 4:
            afe.read_cells_into(self._pd)
            self.open_wire = open_lines(self._pu, self._pd, self.cell_count)
            self._job = _IDLE
            self._ow_due_ms = ticks_add(now_ms, self.ow_period_s * 1000)
            return
        self._ow_phase = phase
        afe.start_open_wire(phase < 2, MODE_NORMAL, False)
        self._begin(_OW, now_ms, conversion_ms(MODE_NORMAL, "open_wire") - 1)

    # -- balancing and heat ----------------------------------------------------------------------
    def _board_temp_dc(self) -> int:
        t = self.die_temp_dc
        for i in range(TEMP_INPUTS):
            v = self.temps_dc[i]
            if v != TEMP_ABSENT and (t == TEMP_ABSENT or v > t):
                t = v
        return t

    def _update_heat(self) -> None:
        t = self._board_temp_dc()
        if t == TEMP_ABSENT:
            self.heat_warn = False
            return
        if t >= self.temp_limit_dc:
            self.heat_limit = True
        elif t < self.temp_limit_dc - _HEAT_RELEASE_DC:
            self.heat_limit = False
        self.heat_warn = t > self.temp_warn_dc

    def _decide_bleed(self, now_ms: int) -> None:
        if not self.balancing or self._cells_failed or self.wiring or self.open_wire:
            self._set_bleed(0)
            return
        if self.heat_limit:
            self._set_bleed(0)
            return
        budget = thermal_budget_mw(self.budget_mw, self._board_temp_dc(), self.temp_warn_dc, self.temp_limit_dc)
        mask = choose_bleed(
            self.cells_100uv, self.cell_count, self._target_100uv, self.balance, budget,
            hysteresis_100uv=self.hysteresis_100uv, bleed_ma=self.bleed_ma,
        )
        if mask == 0 and self._target_met():
            self.balancing = False  # every cell is at the target: the session is over
        self._set_bleed(mask)

    def _target_met(self) -> bool:
        limit = self._target_100uv
        for i in range(self.cell_count):
            v = self.cells_100uv[i]
            if v != CELL_UNKNOWN and v > limit:
                return False
        return True

    def _set_bleed(self, mask: int) -> None:
        mask &= (1 << self.cell_count) - 1
        afe = self.afe
        if mask == self.balance and afe.discharge == mask:
            return
        self.balance = mask
        afe.dcto = dcto_code(30) if mask else 0
        try:
            afe.set_discharge(mask)
        except PECError:
            self.afe_fault = True

    def _stop_balancing(self) -> None:
        self.balancing = False
        if self.balance:
            self._set_bleed(0)

    # -- timers ----------------------------------------------------------------------------------
    def _housekeeping(self, now_ms: int) -> None:
        if self.balancing and ticks_diff(now_ms, self._balance_end_ms) >= 0:
            self._stop_balancing()
        silent = self.link.silent_ms(now_ms)
        # Bleeding needs fresh readings: pause when SAMPLEs stop (it resumes on the next one).
        if self.balance and ticks_diff(now_ms, self._last_sample_ms) >= self.bleed_hold_ms:
            self._set_bleed(0)
        # AFE work of our own only while the host is active, so a silent host lets the AFE sleep; and only
        # early in a host cycle, so an open-wire check (~12 ms) is over before the next SAMPLE.
        if (
            self._job == _IDLE
            and silent < self.bleed_hold_ms
            and (not self._have_sample or ticks_diff(now_ms, self._last_sample_ms) < _OW_WINDOW_MS)
        ):
            if self._ow_pending or (self.ow_period_s and ticks_diff(now_ms, self._ow_due_ms) >= 0):
                self._start_open_wire(now_ms)
        if self._sleep_requested and ticks_diff(now_ms, self._sleep_at_ms) >= 0:
            self._deep_sleep()
        elif silent >= self.silence_ms:
            self._deep_sleep()

    def _deep_sleep(self) -> None:
        self._stop_balancing()
        self._save_sleep_memory()
        self.asleep = True
        self._job = _IDLE
        self.services.deep_sleep()
