"""
`chain`
================================================================================

The host's cascade master (protocol v1, ``docs/protocol.md``): wake, enumeration, the fixed measurement
cycle, retries, missing-module debounce and queued commands, as a non-blocking state machine.

* Hardware: one ``busio.UART`` (the host's DOWN port, 8N1, built with ``timeout=0`` and a
  ``receiver_buffer_size`` of at least 512) and, on the nRF52840 (no ``rs485_dir``), the transceiver's
  direction pin as a ``digitalio.DigitalInOut`` output: the master raises it before each ``write`` and drops it
  after (the nRF52840's ``write`` returns when the bytes are sent).

Interface::

    m = ChainMaster(uart, *, dir_pin=None, baudrate=None, cycle_ms=200, max_modules=32, max_cells=12,
                    max_temps=4, retries=5, missing_after=3, wake_ms=50, rediscover_ms=1000,
                    settle_ms=3, base_timeout_ms=5, module_latency_ms=2)
    m.step(now_ms)                      # never blocks
    m.module_count, m.present[a], m.missing[a], m.cell_count[a]          # a = 1..module_count
    m.cell_100uv(a, i) / m.cells_100uv[(a - 1) * m.max_cells + i]         # 0xFFFF = unknown
    m.temp_dc(a, i) / m.temps_dc[(a - 1) * m.max_temps + i], m.temp_count[a], m.die_temp_dc[a]
                                        # TEMP_ABSENT (-32768) no sensor, TEMP_UNKNOWN (-32767) did not arrive
    m.flags[a], m.open_wire[a], m.balance[a], m.wiring[a], m.pec_errors[a], m.link_errors[a]  # last STATUS
    m.fresh[a]                          # what arrived in the last cycle: FRESH_CELLS | FRESH_TEMPS | FRESH_STATUS
    m.cycle_count, m.cycle_sample_id, m.last_cycle_ms, m.last_cycle_dur_ms, m.enumerations, m.state (S_*)
    m.queue_config(a, cell_count, ow_period_s, silence_ms, temp_warn_dc, temp_limit_dc) -> bool  # a=0xFF: all
    m.queue_balance(a, target_100uv, timeout_s) -> bool
    m.queue_sleep() -> bool; m.wake(); m.request_enumerate()
    m.balance_ack[a], m.config_acked[a], m.nack_type[a], m.nack_reason[a]   # command results
    counters: timeouts (answers that did not come), retries_sent, stale, nacks, bad_payloads, misrouted,
              crc_errors, framing_errors, overruns (the host port's decoder)

The cycle (every ``cycle_ms``, docs/protocol.md §5): SAMPLE to every module (sent twice; a module ignores
a repeated sample id), wait ``settle_ms``, then one broadcast COLLECT: every module answers CELLS, TEMPS and
STATUS, and the answers flow up every cable at once (store and forward). A round ends when every expected
answer is in, when the farthest module has sent all of its answers, or after a gap with nothing new.
What is still missing is asked for again by a COLLECT whose bitmap selects only the modules that still
owe something, at most ``retries`` times and only while the round fits in the cycle period. At the end of
the cycle every module whose data did not arrive reads unknown (cells 0xFFFF, temperatures TEMP_UNKNOWN),
never the previous values.
A module is reported missing after ``missing_after`` cycles without a complete answer and present again as
soon as it answers anything. While a module is missing the master re-runs wake + ENUMERATE every
``rediscover_ms`` (a module that slept lost its address).
"""

from array import array

from adafruit_ticks import ticks_add, ticks_diff
from bms_packet import (
    ADDR_BROADCAST,
    ADDR_HOST,
    ADDR_MAX_MODULE,
    BALANCE,
    BALANCE_ACK,
    CELL_UNKNOWN,
    CELLS,
    COLLECT,
    CONFIG,
    CONFIG_ACK,
    CONFIG_LEN,
    ENUMERATE,
    ENUMERATED,
    MAX_FRAME,
    MAX_PAYLOAD,
    NACK,
    NACK_NOT_READY,
    SAMPLE,
    SLEEP,
    STATUS,
    STATUS_LEN,
    TEMP_ABSENT,
    TEMPS,
    WAKE_LEN,
    PacketDecoder,
    PacketWriter,
    cells_count,
    get_i16,
    get_u16,
    pack_balance_into,
    pack_collect_into,
    pack_config_into,
    pack_enumerate_into,
    pack_sample_into,
    temps_count,
)

from micropython import const

try:
    from typing import Optional  # noqa: F401
except ImportError:
    pass

TEMP_UNKNOWN = const(-32767)  # host side only: a sensor that exists but whose value did not arrive this cycle
FRESH_CELLS = const(1)
FRESH_TEMPS = const(2)
FRESH_STATUS = const(4)
FRESH_ALL = const(7)

# States (``m.state``)
S_WAKE = const(0)
S_WAKE_WAIT = const(1)
S_ENUM = const(2)
S_IDLE = const(3)
S_SETTLE = const(4)
S_ROUND = const(5)
S_CMD = const(7)
S_ASLEEP = const(8)

_REQ_FRAME = 9  # framed bytes of a request without payload
_CMD_SLOTS = 4


class ChainMaster:
    """Cascade master; see the module docstring for the interface."""

    def __init__(self, uart, *, dir_pin=None, baudrate: Optional[int] = None, cycle_ms: int = 200,
                 max_modules: int = 32, max_cells: int = 12, max_temps: int = 4, retries: int = 5,
                 missing_after: int = 3, wake_ms: int = 50, rediscover_ms: int = 1000, settle_ms: int = 3,
                 base_timeout_ms: int = 5, module_latency_ms: int = 2) -> None:
        if not 1 <= max_modules <= ADDR_MAX_MODULE:
            raise ValueError("max_modules must be 1..254")
        self.uart = uart
        self.dir_pin = dir_pin
        if baudrate is None:
            baudrate = getattr(uart, "baudrate", 250000)
        self.baudrate = baudrate
        self.cycle_ms = cycle_ms
        self.max_modules = max_modules
        self.max_cells = max_cells
        self.max_temps = max_temps
        self.retries = retries
        self.missing_after = missing_after
        self.wake_ms = wake_ms
        self.rediscover_ms = rediscover_ms
        self.settle_ms = settle_ms
        self.base_timeout_ms = base_timeout_ms
        # One hop: a request and the longest reply serialised once, plus the module's loop latency.
        byte_us = 10000000 // baudrate + 1
        self.frame_ms = (MAX_FRAME * byte_us + 999) // 1000
        self.hop_ms = (((_REQ_FRAME + MAX_FRAME) * byte_us + 999) // 1000) + module_latency_ms

        n1 = max_modules + 1
        self.present = bytearray(n1)
        self.missing = bytearray(n1)
        self.fresh = bytearray(n1)
        self.cell_count = bytearray(n1)
        self.temp_count = bytearray(n1)
        self.cells_100uv = array("H", [CELL_UNKNOWN] * (max_modules * max_cells))
        self.temps_dc = array("h", [TEMP_UNKNOWN] * (max_modules * max_temps))
        self.die_temp_dc = array("h", [TEMP_UNKNOWN] * n1)
        self.flags = array("H", [0] * n1)
        self.open_wire = array("H", [0] * n1)
        self.balance = array("H", [0] * n1)
        self.wiring = array("H", [0] * n1)
        self.pec_errors = array("H", [0] * n1)
        self.link_errors = array("H", [0] * n1)
        self.balance_ack = array("H", [0] * n1)
        self.config_acked = bytearray(n1)
        self.nack_type = bytearray(n1)
        self.nack_reason = bytearray(n1)
        # Staging for the cycle in progress (copied out at its end, so readers never see a mix).
        self._got = bytearray(n1)
        self._sel = bytearray(n1)  # selected in the COLLECT round in flight
        self._rgot = bytearray(n1)  # answers received in the round in flight (a selected module sends all of what)
        self._refused = bytearray(n1)  # NACKed with a reason other than not-ready: not asked again this cycle
        self._fail_cycles = bytearray(n1)
        self._rx_cells = array("H", [CELL_UNKNOWN] * (max_modules * max_cells))
        self._rx_ncells = bytearray(n1)
        self._rx_temps = array("h", [TEMP_UNKNOWN] * (max_modules * max_temps))
        self._rx_ntemps = bytearray(n1)
        self._rx_die = array("h", [TEMP_UNKNOWN] * n1)

        self.module_count = 0
        self.cycle_count = 0
        self.last_cycle_ms = 0
        self.cycle_start_ms = 0
        self.sample_id = 0
        self.cycle_sample_id = 0
        self.last_cycle_dur_ms = 0
        self.state = S_WAKE
        self.timeouts = 0
        self.retries_sent = 0
        self.stale = 0
        self.nacks = 0
        self.bad_payloads = 0
        self.misrouted = 0
        self.enumerations = 0

        self._dec = PacketDecoder()
        self._w = PacketWriter()
        self._views = [None] * (MAX_FRAME + 1)
        self._rxbuf = bytearray(128)
        self._wake = bytes(WAKE_LEN)
        self._seq = 0
        self._await_seq = -1
        self._await_type = 0
        self._await_addr = 0
        self._deadline = 0
        self._round = 0
        self._round_repeated = False
        self._gap_deadline = 0
        self._last_expected = 0
        self._round_last_seen = False
        self._what = 0
        self._rx_quiet_ms = 0
        self._next_cycle_ms = None
        self._next_rediscover_ms = None
        self._fresh_enum = True
        self._enum_found = 0
        self._cmd_type = bytearray(_CMD_SLOTS)
        self._cmd_addr = bytearray(_CMD_SLOTS)
        self._cmd_len = bytearray(_CMD_SLOTS)
        self._cmd_payload = bytearray(_CMD_SLOTS * MAX_PAYLOAD)
        self._cmd_head = 0
        self._cmd_count = 0
        self._cmd_tries = 0
        self._cmd_waiting = 0  # acks still expected for the command in flight

    # --- readers -------------------------------------------------------------------------------------
    @property
    def crc_errors(self) -> int:
        return self._dec.crc_errors

    @property
    def framing_errors(self) -> int:
        return self._dec.framing_errors

    @property
    def overruns(self) -> int:
        return self._dec.overruns

    def cell_100uv(self, addr: int, i: int) -> int:
        return self.cells_100uv[(addr - 1) * self.max_cells + i]

    def temp_dc(self, addr: int, i: int) -> int:
        return self.temps_dc[(addr - 1) * self.max_temps + i]

    def timeout_ms(self, addr: int) -> int:
        """Reply timeout of a unicast request to module ``addr`` (grows with its hop count)."""
        return self.base_timeout_ms + addr * self.hop_ms

    def _round_timeout_ms(self) -> int:
        # The farthest module's round trip plus every answer serialised once over the host's own cable.
        n = self.module_count
        return self.base_timeout_ms + n * (self.hop_ms + self.frame_ms)

    # --- commands ------------------------------------------------------------------------------------
    def _queue(self, ptype: int, addr: int):
        if self._cmd_count >= _CMD_SLOTS:
            return -1
        slot = (self._cmd_head + self._cmd_count) % _CMD_SLOTS
        self._cmd_type[slot] = ptype
        self._cmd_addr[slot] = addr
        return slot

    def _commit(self, slot: int, plen: int) -> bool:
        self._cmd_len[slot] = plen
        self._cmd_count += 1
        return True

    def queue_config(self, addr: int, cell_count: int, ow_period_s: int, silence_ms: int, temp_warn_dc: int,
                     temp_limit_dc: int) -> bool:
        """Queue a CONFIG for module ``addr`` (0xFF = every module); False when the queue is full."""
        slot = self._queue(CONFIG, addr)
        if slot < 0:
            return False
        off = slot * MAX_PAYLOAD
        n = pack_config_into(self._cmd_payload, off, cell_count, ow_period_s, silence_ms, temp_warn_dc, temp_limit_dc)
        return self._commit(slot, n)

    def queue_balance(self, addr: int, target_100uv: int, timeout_s: int) -> bool:
        """Queue a BALANCE (timeout 0 = stop) for module ``addr`` (0xFF = every module)."""
        slot = self._queue(BALANCE, addr)
        if slot < 0:
            return False
        n = pack_balance_into(self._cmd_payload, slot * MAX_PAYLOAD, target_100uv, timeout_s)
        return self._commit(slot, n)

    def queue_sleep(self) -> bool:
        """Queue a broadcast SLEEP; after it the master stays quiet until ``wake()``."""
        slot = self._queue(SLEEP, ADDR_BROADCAST)
        if slot < 0:
            return False
        return self._commit(slot, 0)

    def wake(self) -> None:
        """Wake the chain and enumerate it again (after SLEEP, or to recover)."""
        self.state = S_WAKE

    def request_enumerate(self) -> None:
        """Forget the chain and enumerate it from scratch (the count may shrink)."""
        self._fresh_enum = True
        self.state = S_WAKE

    # --- transmit ------------------------------------------------------------------------------------
    def _send(self, dst: int, ptype: int, plen: int) -> int:
        self._seq = (self._seq + 1) & 0xFF
        n = self._w.finish(dst, ADDR_HOST, ptype, self._seq, plen)
        v = self._views[n]
        if v is None:  # ``write`` takes no length: one view per frame length, made once
            v = self._w.frame_mv[:n]
            self._views[n] = v
        self._write(v)
        return self._seq

    def _write(self, data) -> None:
        if self.dir_pin is not None:
            self.dir_pin.value = True
        self.uart.write(data)
        if self.dir_pin is not None:
            self.dir_pin.value = False

    def _expect(self, seq: int, ptype: int, addr: int, now_ms: int, timeout_ms: int) -> None:
        self._await_seq = seq
        self._await_type = ptype
        self._await_addr = addr
        self._deadline = ticks_add(now_ms, timeout_ms)

    # --- receive -------------------------------------------------------------------------------------
    def _receive(self, now_ms: int) -> None:
        uart = self.uart
        dec = self._dec
        buf = self._rxbuf
        for _ in range(8):
            if not uart.in_waiting:
                return
            n = uart.readinto(buf)
            if not n:
                return
            # Carrier sense: bytes are still coming, so do not end a round (and talk over them) yet.
            self._rx_quiet_ms = ticks_add(now_ms, self.frame_ms)
            i = 0
            while i < n:
                i = dec.feed(buf, i, n)
                if dec.ready:
                    self._handle(dec, now_ms)

    def _handle(self, p, now_ms: int) -> None:
        if p.dst != ADDR_HOST:
            self.misrouted += 1
            return
        if p.seq != self._await_seq:
            self.stale += 1
            return
        a = p.src
        t = p.type
        if a == 0 or a > self.max_modules:
            self.bad_payloads += 1
            return
        if t == ENUMERATED:
            # Hop-count addresses arrive as the run 1, 2, 3, ... in chain order: an answer that does not extend
            # the run (forged, repeated, beyond a lost answer) would add a module that then reads missing
            # forever. A run cut short by a lost answer differs from the settings: the host app re-enumerates.
            if self.state != S_ENUM or p.length < 6 or p.payload[0] != a or a != self._enum_found + 1:
                self.bad_payloads += 1
                return
            self.cell_count[a] = p.payload[2]
            self._enum_found = a
            self._mark_alive(a)
            self._deadline = ticks_add(now_ms, self.base_timeout_ms + 2 * self.hop_ms)
            return
        if a > self.module_count:
            self.bad_payloads += 1
            return
        if t == NACK:
            self.nacks += 1
            if p.length >= 2:
                self.nack_type[a] = p.payload[0]
                self.nack_reason[a] = p.payload[1]
            self._mark_alive(a)
            if self.state == S_CMD:
                self._cmd_reply(a)
            elif self.state == S_ROUND and p.length >= 2 and p.payload[1] != NACK_NOT_READY:
                self._refused[a] = 1  # the module refuses: no point asking again this cycle
            return
        if self.state == S_CMD:
            if t == CONFIG_ACK and p.length == CONFIG_LEN:
                self.config_acked[a] = 1
            elif t == BALANCE_ACK and p.length == 2:
                self.balance_ack[a] = get_u16(p.payload, 0)
            else:
                self.bad_payloads += 1
                return
            self._mark_alive(a)
            self._cmd_reply(a)
            return
        if self.state != S_ROUND:
            self.stale += 1
            return
        if t == CELLS:
            n = cells_count(p.payload, 0, p.length)
            if n < 0 or n > self.max_cells:
                self.bad_payloads += 1
                return
            if p.payload[0] != self.sample_id:
                self.stale += 1  # an answer about another sample: not this instant
                return
            o = (a - 1) * self.max_cells
            pl = p.payload
            for i in range(n):
                self._rx_cells[o + i] = pl[2 + 2 * i] | (pl[3 + 2 * i] << 8)
            self._rx_ncells[a] = n
            self._got[a] |= FRESH_CELLS
            self._rgot[a] |= FRESH_CELLS
        elif t == TEMPS:
            n = temps_count(p.payload, 0, p.length)
            if n < 0:
                self.bad_payloads += 1
                return
            if p.payload[0] != self.sample_id:
                self.stale += 1
                return
            o = (a - 1) * self.max_temps
            for i in range(min(n, self.max_temps)):
                self._rx_temps[o + i] = get_i16(p.payload, 2 + 2 * i)
            self._rx_ntemps[a] = min(n, self.max_temps)
            self._rx_die[a] = get_i16(p.payload, 2 + 2 * n)
            self._got[a] |= FRESH_TEMPS
            self._rgot[a] |= FRESH_TEMPS
        elif t == STATUS:
            if p.length != STATUS_LEN:
                self.bad_payloads += 1
                return
            pl = p.payload
            self.flags[a] = get_u16(pl, 0)
            self.open_wire[a] = get_u16(pl, 2)
            self.balance[a] = get_u16(pl, 4)
            self.wiring[a] = get_u16(pl, 6)
            self.pec_errors[a] = get_u16(pl, 8)
            self.link_errors[a] = get_u16(pl, 10)
            self.cell_count[a] = pl[12]
            self._got[a] |= FRESH_STATUS
            self._rgot[a] |= FRESH_STATUS
        else:
            self.bad_payloads += 1
            return
        self._mark_alive(a)
        if self.state == S_ROUND:
            # Answers flow up in chain order: once the farthest expected module has answered, or answers
            # stop for a couple of hops, the rest were lost and waiting longer only wastes the cycle.
            nxt = a
            while nxt <= self._last_expected and (not self._sel[nxt] or self._rgot[nxt] & self._what == self._what):
                nxt += 1
            if nxt > self._last_expected:
                nxt = a  # nothing owed beyond a: what is missing was lost
            self._gap_deadline = ticks_add(now_ms, (nxt - a + 2) * self.hop_ms)
            if a >= self._last_expected and self._rgot[a] & self._what == self._what:
                self._round_last_seen = True  # (answers of one module may come in any order)

    def _mark_alive(self, a: int) -> None:
        self.missing[a] = 0
        self.present[a] = 1
        self._fail_cycles[a] = 0

    # --- the state machine ---------------------------------------------------------------------------
    def step(self, now_ms: int) -> None:
        """Advance the master: read what arrived, then act on time. Never blocks."""
        self._receive(now_ms)
        for _ in range(4):  # a few transitions per step at most
            if not self._advance(now_ms):
                break

    def _expired(self, now_ms: int) -> bool:
        return ticks_diff(now_ms, self._deadline) >= 0

    def _advance(self, now_ms: int) -> bool:
        s = self.state
        if s == S_WAKE:
            self._write(self._wake)
            self._deadline = ticks_add(now_ms, self.wake_ms)
            self.state = S_WAKE_WAIT
            return True
        if s == S_WAKE_WAIT:
            if not self._expired(now_ms):
                return False
            self._dec.reset()
            self._enum_found = 0
            pack_enumerate_into(self._w.payload, 0, 0)
            seq = self._send(ADDR_BROADCAST, ENUMERATE, 1)
            self._expect(seq, ENUMERATED, ADDR_BROADCAST, now_ms, self.base_timeout_ms + 2 * self.hop_ms)
            self.enumerations += 1
            self.state = S_ENUM
            return True
        if s == S_ENUM:
            if not self._expired(now_ms):
                return False
            self._end_enumeration(now_ms)
            return True
        if s == S_IDLE:
            return self._idle(now_ms)
        if s == S_SETTLE:
            if not self._expired(now_ms):
                return False
            self._round = 0
            self._start_collect(now_ms)
            return True
        if s == S_ROUND:
            lacking = self._lacking()
            if lacking and not self._round_last_seen and not self._expired(now_ms) and (
                    ticks_diff(now_ms, self._gap_deadline) < 0 or ticks_diff(now_ms, self._rx_quiet_ms) < 0):
                return False
            self.timeouts += lacking
            self._round += 1
            if lacking and self._round <= self.retries:
                self.retries_sent += 1
                self._start_collect(now_ms)
            else:
                self._finish_cycle(now_ms)
            return True
        if s == S_CMD:
            if self._cmd_waiting and not self._expired(now_ms):
                return False
            self._cmd_done(now_ms)
            return True
        return False  # S_ASLEEP

    def _end_enumeration(self, now_ms: int) -> None:
        found = self._enum_found
        if self._fresh_enum:
            self.module_count = found
            for a in range(found + 1, self.max_modules + 1):
                self.present[a] = 0
                self.missing[a] = 0
            self._fresh_enum = found == 0
        elif found > self.module_count:
            self.module_count = found
        self._await_seq = -1
        self.state = S_IDLE
        self._next_cycle_ms = now_ms
        self._next_rediscover_ms = ticks_add(now_ms, self.rediscover_ms)

    def _any_missing(self) -> bool:
        if self.module_count == 0:
            return True
        for a in range(1, self.module_count + 1):
            if self.missing[a]:
                return True
        return False

    def _idle(self, now_ms: int) -> bool:
        if self._cmd_count:
            self._cmd_start(now_ms)
            return True
        if self._any_missing() and ticks_diff(now_ms, self._next_rediscover_ms) >= 0:
            self.state = S_WAKE
            return True
        if self.module_count == 0 or ticks_diff(now_ms, self._next_cycle_ms) < 0:
            return False
        # Start a cycle: one instant for every module.
        self.cycle_start_ms = now_ms
        self._next_cycle_ms = ticks_add(self._next_cycle_ms, self.cycle_ms)
        if ticks_diff(now_ms, self._next_cycle_ms) >= 0:  # we fell behind: do not try to catch up
            self._next_cycle_ms = ticks_add(now_ms, self.cycle_ms)
        self.sample_id = (self.sample_id + 1) & 0xFF
        for a in range(1, self.module_count + 1):
            self._got[a] = 0
            self._refused[a] = 0
        # SAMPLE is sent twice: a module ignores a SAMPLE with the sample id it already has, so one lost
        # broadcast no longer spoils the whole cycle (the second arrives one SAMPLE frame later).
        pack_sample_into(self._w.payload, 0, self.sample_id)
        self._send(ADDR_BROADCAST, SAMPLE, 1)
        pack_sample_into(self._w.payload, 0, self.sample_id)
        self._send(ADDR_BROADCAST, SAMPLE, 1)
        self._await_seq = -1
        self._deadline = ticks_add(now_ms, self.settle_ms)
        self.state = S_SETTLE
        return True

    def _lacking(self) -> int:
        """Answers still expected in the COLLECT round in flight."""
        n = 0
        for a in range(1, self.module_count + 1):
            if self._sel[a] and not self._refused[a]:
                owed = self._what & ~self._got[a]
                n += (owed & 1) + ((owed >> 1) & 1) + ((owed >> 2) & 1)
        return n

    def _start_collect(self, now_ms: int) -> None:
        """Broadcast a COLLECT to every module that still owes something this cycle (all of them first)."""
        what = 0
        n_sel = 0
        first = 0
        last = 0
        everyone = True
        for a in range(1, self.module_count + 1):
            lack = FRESH_ALL & ~self._got[a]
            if self.missing[a] or self._refused[a] or not lack:
                self._sel[a] = 0
                everyone = False
                continue
            self._sel[a] = 1
            self._rgot[a] = 0
            what |= lack
            n_sel += 1
            if not first:
                first = a
            last = a
        if not n_sel:
            self._finish_cycle(now_ms)
            return
        # Expected time of this round: the farthest module's round trip plus every answer once over our cable.
        est = self.base_timeout_ms + last * self.hop_ms + n_sel * 3 * self.frame_ms
        if self._round and ticks_diff(now_ms, self.cycle_start_ms) + est > self.cycle_ms:
            self._finish_cycle(now_ms)  # no time left in this cycle: what is missing stays unknown
            return
        self._what = what
        if everyone:
            plen = pack_collect_into(self._w.payload, 0, what)
        else:
            plen = pack_collect_into(self._w.payload, 0, what, self._sel, self.module_count)
        seq = self._send(ADDR_BROADCAST, COLLECT, plen)
        self._expect(seq, 0, ADDR_BROADCAST, now_ms, est)
        # The nearest selected module answers first; if even it is silent the broadcast was lost.
        self._gap_deadline = ticks_add(now_ms, self.base_timeout_ms + (first + 1) * self.hop_ms)
        self._last_expected = last
        self._round_last_seen = False
        self.state = S_ROUND

    def _finish_cycle(self, now_ms: int) -> None:
        mc = self.max_cells
        mt = self.max_temps
        for a in range(1, self.module_count + 1):
            got = self._got[a]
            self.fresh[a] = got
            o = (a - 1) * mc
            n = self._rx_ncells[a] if got & FRESH_CELLS else 0
            for i in range(mc):
                self.cells_100uv[o + i] = self._rx_cells[o + i] if i < n else CELL_UNKNOWN
            o = (a - 1) * mt
            if got & FRESH_TEMPS:
                nt = self._rx_ntemps[a]
                self.temp_count[a] = nt
                for i in range(mt):
                    self.temps_dc[o + i] = self._rx_temps[o + i] if i < nt else TEMP_ABSENT
                self.die_temp_dc[a] = self._rx_die[a]
            else:
                for i in range(mt):
                    self.temps_dc[o + i] = TEMP_UNKNOWN
                self.die_temp_dc[a] = TEMP_UNKNOWN
            if got == FRESH_ALL:
                self._fail_cycles[a] = 0
            else:
                if self._fail_cycles[a] < 255:
                    self._fail_cycles[a] += 1
                if self._fail_cycles[a] >= self.missing_after and not self.missing[a]:
                    self.missing[a] = 1
                    self.present[a] = 0
                    self._next_rediscover_ms = ticks_add(now_ms, self.rediscover_ms)
        self.cycle_count += 1
        self.cycle_sample_id = self.sample_id
        self.last_cycle_dur_ms = ticks_diff(now_ms, self.cycle_start_ms)
        self.last_cycle_ms = now_ms
        self._await_seq = -1
        self.state = S_IDLE

    # --- command execution ---------------------------------------------------------------------------
    def _cmd_start(self, now_ms: int) -> None:
        slot = self._cmd_head
        t = self._cmd_type[slot]
        a = self._cmd_addr[slot]
        n = self._cmd_len[slot]
        off = slot * MAX_PAYLOAD
        pl = self._w.payload
        for i in range(n):
            pl[i] = self._cmd_payload[off + i]
        seq = self._send(a, t, n)
        self.state = S_CMD
        if t == SLEEP:
            self._cmd_waiting = 0
            self._deadline = now_ms
            return
        if a == ADDR_BROADCAST:
            waiting = 0
            for m in range(1, self.module_count + 1):
                if not self.missing[m]:
                    waiting += 1
                    if t == CONFIG:
                        self.config_acked[m] = 0
            self._cmd_waiting = waiting
            self._expect(seq, t | 0x80, a, now_ms, self._round_timeout_ms())
        else:
            if t == CONFIG and a <= self.max_modules:
                self.config_acked[a] = 0
            self._cmd_waiting = 1
            self._expect(seq, t | 0x80, a, now_ms, self.timeout_ms(min(max(a, 1), self.max_modules)))

    def _cmd_reply(self, a: int) -> None:
        if self._cmd_waiting:
            self._cmd_waiting -= 1
        if self._cmd_addr[self._cmd_head] != ADDR_BROADCAST:
            self._cmd_waiting = 0

    def _cmd_done(self, now_ms: int) -> None:
        slot = self._cmd_head
        t = self._cmd_type[slot]
        unicast = self._cmd_addr[slot] != ADDR_BROADCAST
        if self._cmd_waiting and unicast and self._cmd_tries < self.retries:
            self._cmd_tries += 1  # no answer: send the same command again
            self.timeouts += 1
            self.retries_sent += 1
            self._cmd_start(now_ms)
            return
        if self._cmd_waiting:
            self.timeouts += 1
        self._cmd_tries = 0
        self._cmd_waiting = 0
        self._cmd_head = (self._cmd_head + 1) % _CMD_SLOTS
        self._cmd_count -= 1
        self._await_seq = -1
        self.state = S_ASLEEP if t == SLEEP else S_IDLE
