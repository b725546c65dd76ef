"""A simple simulated module app on top of the real ``ModuleLink``, with canned, checkable data (PC only).

It answers every message of protocol v1 the way the real module app must: cells and temperatures of the last
SAMPLE (``canned_cell_100uv``/``canned_temp_dc`` make every value a function of address, sample id and
channel, so a test can tell a right value from a stale or corrupted one), STATUS, CONFIG/BALANCE acks with
validation and NACKs, and reports the host silent after ``silence_ms`` without a valid packet from upstream.
The MODULE engineer's ``module_app.ModuleApp`` replaces it in the full rig.
"""

import bms_packet as P
from adafruit_ticks import ticks_add, ticks_diff


def canned_cell_100uv(addr: int, sample_id: int, i: int) -> int:
    return 30000 + (addr * 131 + sample_id * 7 + i * 13) % 5000


def canned_temp_dc(addr: int, sample_id: int, i: int) -> int:
    return 150 + (addr * 3 + sample_id + i * 5) % 100


class FakeModule:
    """``step(now_ms)`` polls the link and answers. Knobs: ``cell_count``, ``temps``, ``sample_delay_ms``."""

    def __init__(self, link, *, cell_count: int = 12, channels: int = 12, temps: int = 1, silence_ms: int = 2000,
                 uid: int = 0, sample_delay_ms: int = 0, fw=(0, 1)) -> None:
        self.link = link
        self.cell_count = cell_count
        self.channels = channels
        self.temps = temps
        self.silence_ms = silence_ms
        self.uid = uid
        self.sample_delay_ms = sample_delay_ms
        self.fw = fw
        self.mute = set()  # request types this module ignores (a test knob: a reply that never comes)
        self.sample_id = None
        self._ready_at = 0
        self.configured = False
        self.config = None
        self.balance_target_100uv = 0
        self.balance_timeout_s = 0
        self.balance = 0
        self.asleep = False
        self.host_silent = False
        self.handled = 0
        self.nacks_sent = 0
        self._cells = [0] * P.MAX_CELLS
        self._temps = [0] * P.MAX_TEMPS

    @property
    def address(self) -> int:
        return self.link.address

    def step(self, now_ms: int) -> None:
        for _ in range(8):
            pkt = self.link.poll(now_ms)
            if pkt is None:
                break
            self.asleep = False
            self.handled += 1
            self._handle(pkt, now_ms)
        self.host_silent = self.link.silent_ms(now_ms) >= self.silence_ms

    def _nack(self, pkt, reason: int) -> None:
        self.nacks_sent += 1
        n = P.pack_nack_into(self.link.tx_payload, 0, pkt.type, reason)
        self.link.reply(P.NACK, pkt.seq, n)

    def _handle(self, pkt, now_ms: int) -> None:
        t = pkt.type
        link = self.link
        out = link.tx_payload
        a = link.address
        if t & P.REPLY or t == P.NACK or t in self.mute:
            return  # a reply travelling the wrong way (or a muted request): ignore
        if t == P.ENUMERATE:
            n = P.pack_enumerated_into(out, 0, a, self.channels, self.cell_count, self.fw[0], self.fw[1])
            link.reply(P.ENUMERATED, pkt.seq, n)
        elif t == P.PING:
            link.reply(P.PONG, pkt.seq, 0)
        elif t == P.SAMPLE:
            if pkt.length != P.SAMPLE_LEN:
                return
            if pkt.payload[0] == self.sample_id:
                return  # the host repeats SAMPLE; one instant per sample id
            self.sample_id = pkt.payload[0]
            self._ready_at = ticks_add(now_ms, self.sample_delay_ms)
        elif t in (P.GET_CELLS, P.GET_TEMPS):
            if self.sample_id is None or ticks_diff(now_ms, self._ready_at) < 0:
                self._nack(pkt, P.NACK_NOT_READY)
                return
            sid = self.sample_id
            if t == P.GET_CELLS:
                for i in range(self.cell_count):
                    self._cells[i] = canned_cell_100uv(a, sid, i)
                n = P.pack_cells_into(out, 0, sid, self._cells, self.cell_count)
                link.reply(P.CELLS, pkt.seq, n)
            else:
                for i in range(self.temps):
                    self._temps[i] = canned_temp_dc(a, sid, i)
                n = P.pack_temps_into(out, 0, sid, self._temps, self.temps, 250 + a)
                link.reply(P.TEMPS, pkt.seq, n)
        elif t == P.GET_STATUS:
            flags = 0 if self.configured else P.FLAG_NOT_CONFIGURED
            if self.balance:
                flags |= P.FLAG_BALANCING
            if self.temps == 0:
                flags |= P.FLAG_TEMP_ABSENT
            n = P.pack_status_into(out, 0, flags, 0, self.balance, 0, 0, link.link_errors, self.cell_count)
            link.reply(P.STATUS, pkt.seq, n)
        elif t == P.CONFIG:
            if pkt.length != P.CONFIG_LEN:
                self._nack(pkt, P.NACK_BAD_LENGTH)
                return
            cfg = P.unpack_config(pkt.payload, 0)
            if not 4 <= cfg[0] <= self.channels or cfg[4] <= cfg[3]:
                self._nack(pkt, P.NACK_BAD_VALUE)
                return
            self.config = cfg
            self.cell_count = cfg[0]
            self.silence_ms = cfg[2] or self.silence_ms
            self.configured = True
            for i in range(P.CONFIG_LEN):
                out[i] = pkt.payload[i]
            link.reply(P.CONFIG_ACK, pkt.seq, P.CONFIG_LEN)
        elif t == P.BALANCE:
            if pkt.length != P.BALANCE_LEN:
                self._nack(pkt, P.NACK_BAD_LENGTH)
                return
            target, timeout_s = P.unpack_balance(pkt.payload, 0)
            self.balance_target_100uv = target
            self.balance_timeout_s = timeout_s
            mask = 0
            if timeout_s and self.sample_id is not None:
                last = -2
                for i in range(self.cell_count):
                    if canned_cell_100uv(a, self.sample_id, i) > target and i - last > 1:
                        mask |= 1 << i
                        last = i
            self.balance = mask
            n = P.pack_balance_ack_into(out, 0, mask)
            link.reply(P.BALANCE_ACK, pkt.seq, n)
        elif t == P.SLEEP:
            self.balance = 0
            self.asleep = True
        elif t == P.IDENTIFY:
            n = P.pack_identity_into(out, 0, self.fw[0], self.fw[1], self.channels, self.uid)
            link.reply(P.IDENTITY, pkt.seq, n)
        else:
            self._nack(pkt, P.NACK_UNKNOWN_TYPE)
