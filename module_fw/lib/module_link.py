"""
`module_link`
================================================================================

The module board's side of the cascade link (protocol v1, ``docs/protocol.md``): two half-duplex RS-485
ports on ``busio.UART`` (UP toward the host, DOWN toward the next module), store-and-forward relaying,
enumeration by hop count and host-silence tracking.

* Hardware: two ``busio.UART`` (8N1, 250 000 baud, built with ``timeout=0`` and a
  ``receiver_buffer_size`` of at least 256) and, on the RP2040, ``rs485_dir`` pins given to the UARTs; on a
  board without ``rs485_dir`` pass ``up_dir``/``down_dir`` (``digitalio.DigitalInOut`` outputs) and the link
  drives them around each ``write`` (which must block until the bytes are sent).

Interface::

    link = ModuleLink(up_uart, down_uart, *, up_dir=None, down_dir=None, up_slots=8, down_slots=4)
    pkt = link.poll(now_ms)      # next packet for this module (its address or broadcast) or None
    # pkt: .dst .src .type .seq .length .payload (memoryview, valid bytes = length); valid until next poll
    n = pack_cells_into(link.tx_payload, 0, ...)   # any bms_packet pack helper
    link.reply(CELLS, pkt.seq, n)  # -> bool: queued up toward the host with this module's address
    link.silent_ms(now_ms)         # ms since a valid packet came from upstream
    link.send_wake()               # wake preamble down (a woken module passes the wake on)
    link.address                   # 0 until enumerated, then hop + 1
    link.link_errors               # CRC + framing + overrun + queue drops + malformed, both ports (for STATUS)
    link.malformed                 # good-CRC packets nobody can use or NACK (a broadcast with a bad length, a
                                   # reply from upstream); the link counts its own, the app adds the ones it finds

Relaying: packets for another address go down whole; everything from DOWN goes up whole, in arrival order,
through a bounded queue shared with this module's own replies, so frames never interleave. A full queue drops
the frame and counts it (``drops``). ENUMERATE (broadcast) assigns ``address = hop + 1``, is delivered to the
app (which answers ENUMERATED) and is forwarded down as ENUMERATE(hop + 1). Other broadcasts are forwarded down
before they are delivered, so downstream modules start at once. A run of 0x00 on UP (a wake preamble) is
passed down as a new preamble. COLLECT (``what`` bits and an optional address bitmap) never reaches the app:
when it selects this module the link hands the app a GET_CELLS, a GET_TEMPS and/or a GET_STATUS (length 0,
the COLLECT's ``seq``) on successive polls, and the app answers each as usual.
"""

from adafruit_ticks import ticks_diff
from bms_packet import (
    ADDR_BROADCAST,
    ADDR_HOST,
    ADDR_MAX_MODULE,
    COLLECT,
    ENUMERATE,
    GET_CELLS,
    GET_STATUS,
    GET_TEMPS,
    MAX_PAYLOAD,
    MAX_FRAME,
    WAKE_LEN,
    PacketDecoder,
    PacketWriter,
    collect_selects,
    pack_enumerate_into,
)

try:
    from typing import Optional  # noqa: F401
except ImportError:
    pass

_READ_CHUNK = 64
_MAX_READS = 8  # per port per poll: bounds the time one poll can take


class FrameQueue:
    """A bounded FIFO of whole frames in one preallocated buffer."""

    def __init__(self, slots: int) -> None:
        self.slots = slots
        self.buf = bytearray(slots * MAX_FRAME)
        self.mv = memoryview(self.buf)
        self.lens = bytearray(slots)
        self.head = 0
        self.count = 0
        # ``write`` takes no length: one view per (slot, frame length) actually used, made once, so the
        # steady state allocates nothing (a handful of frame lengths occur: requests, CELLS, TEMPS, STATUS).
        self._views = {}

    def push(self, src, n: int) -> bool:
        if self.count >= self.slots or n > MAX_FRAME:
            return False
        slot = (self.head + self.count) % self.slots
        o = slot * MAX_FRAME
        b = self.buf
        for i in range(n):
            b[o + i] = src[i]
        self.lens[slot] = n
        self.count += 1
        return True

    def pop_into(self, uart, dir_pin) -> None:
        """Write the oldest frame to ``uart`` (whole) and drop it from the queue."""
        o = self.head * MAX_FRAME
        n = self.lens[self.head]
        key = o + n
        v = self._views.get(key)
        if v is None:
            v = self.mv[o : o + n]
            self._views[key] = v
        if dir_pin is not None:
            dir_pin.value = True
        uart.write(v)
        if dir_pin is not None:
            dir_pin.value = False
        self.head = (self.head + 1) % self.slots
        self.count -= 1


class LinkPacket:
    """A request the link made up (from COLLECT); same fields as a decoded packet."""

    def __init__(self) -> None:
        self.buf = bytearray(MAX_PAYLOAD)
        self.payload = memoryview(self.buf)
        self.dst = 0
        self.src = 0
        self.type = 0
        self.seq = 0
        self.length = 0


class ModuleLink:
    """Store-and-forward cascade link of one module (see the module docstring for the interface)."""

    def __init__(self, up_uart, down_uart, *, up_dir=None, down_dir=None, up_slots: int = 8,
                 down_slots: int = 4) -> None:
        self.up_uart = up_uart
        self.down_uart = down_uart
        self.up_dir = up_dir
        self.down_dir = down_dir
        self.address = 0
        self.up_decoder = PacketDecoder()
        self.down_decoder = PacketDecoder()
        self._up_q = FrameQueue(up_slots)
        self._down_q = FrameQueue(down_slots)
        self._writer = PacketWriter()
        self.tx_payload = self._writer.payload
        self._fwd = PacketWriter()  # for rewritten ENUMERATE
        self._up_buf = bytearray(_READ_CHUNK)
        self._up_pos = 0
        self._up_end = 0
        self._down_buf = bytearray(_READ_CHUNK)
        self._wake = bytes(WAKE_LEN)
        self._heard_ms = None
        self._synth = LinkPacket()
        self._pend_what = 0
        self._pend_seq = 0
        self._pend_src = 0
        self.drops = 0
        self.malformed = 0
        self.unaddressed_replies = 0
        self.relayed_up = 0
        self.relayed_down = 0
        self.wakes = 0

    # --- counters ----------------------------------------------------------------------------------
    @property
    def link_errors(self) -> int:
        return self.up_decoder.errors + self.down_decoder.errors + self.drops + self.malformed

    def silent_ms(self, now_ms: int) -> int:
        """Milliseconds since the last valid packet from upstream (since the first poll if none yet)."""
        if self._heard_ms is None:
            self._heard_ms = now_ms
        return ticks_diff(now_ms, self._heard_ms)

    # --- transmit ----------------------------------------------------------------------------------
    def _queue_up(self, src, n: int) -> bool:
        if self._up_q.push(src, n):
            return True
        self.drops += 1
        return False

    def _queue_down(self, src, n: int) -> bool:
        if self._down_q.push(src, n):
            return True
        self.drops += 1
        return False

    def flush(self) -> None:
        """Write every queued frame, whole, to its port."""
        while self._down_q.count:
            self._down_q.pop_into(self.down_uart, self.down_dir)
        while self._up_q.count:
            self._up_q.pop_into(self.up_uart, self.up_dir)

    def reply(self, ptype: int, seq: int, plen: int) -> bool:
        """Send ``tx_payload[:plen]`` up to the host as ``ptype`` with ``seq``; False if dropped."""
        if self.address == 0:
            self.unaddressed_replies += 1
            return False
        n = self._writer.finish(ADDR_HOST, self.address, ptype, seq, plen)
        ok = self._queue_up(self._writer.frame, n)
        self.flush()
        return ok

    def send_wake(self) -> None:
        """Send a wake preamble (a run of 0x00) down the chain."""
        if self.down_dir is not None:
            self.down_dir.value = True
        self.down_uart.write(self._wake)
        if self.down_dir is not None:
            self.down_dir.value = False
        self.wakes += 1

    # --- receive -----------------------------------------------------------------------------------
    def _relay_from_down(self) -> None:
        uart = self.down_uart
        dec = self.down_decoder
        buf = self._down_buf
        for _ in range(_MAX_READS):
            if not uart.in_waiting:
                return
            n = uart.readinto(buf)
            if not n:
                return
            i = 0
            while i < n:
                i = dec.feed(buf, i, n)
                if dec.ready:
                    if self._queue_up(dec.frame, dec.frame_len):
                        self.relayed_up += 1

    def _handle_up(self, dec, now_ms: int) -> bool:
        """Route one packet from UP; True when it is for this module's app."""
        self._heard_ms = now_ms
        dst = dec.dst
        if dec.type == COLLECT:
            if dst == ADDR_BROADCAST:
                if self._queue_down(dec.frame, dec.frame_len):
                    self.relayed_down += 1
            elif dst != self.address or dst == 0:
                if dst != ADDR_HOST and self._queue_down(dec.frame, dec.frame_len):
                    self.relayed_down += 1
                return False
            if self.address and collect_selects(dec.payload, 0, dec.length, self.address):
                self._pend_what = dec.payload[0] & 0x07
                self._pend_seq = dec.seq
                self._pend_src = dec.src
            return False
        if dst == ADDR_BROADCAST:
            if dec.type == ENUMERATE:
                if dec.length != 1:
                    self.malformed += 1
                    return False
                hop = dec.payload[0]
                if hop >= ADDR_MAX_MODULE:
                    self.malformed += 1
                    return False  # no address left; do not forward either
                self.address = hop + 1
                w = self._fwd
                pack_enumerate_into(w.payload, 0, self.address)
                n = w.finish(ADDR_BROADCAST, dec.src, ENUMERATE, dec.seq, 1)
                if self._queue_down(w.frame, n):
                    self.relayed_down += 1
                return True
            if self._queue_down(dec.frame, dec.frame_len):
                self.relayed_down += 1
            return True
        if dst == self.address and dst != 0:
            return True
        if dst != ADDR_HOST:
            if self._queue_down(dec.frame, dec.frame_len):
                self.relayed_down += 1
        return False

    def _next_synth(self):
        w = self._pend_what
        if not w:
            return None
        if w & 1:
            t = GET_CELLS
            self._pend_what = w & ~1
        elif w & 2:
            t = GET_TEMPS
            self._pend_what = w & ~2
        else:
            t = GET_STATUS
            self._pend_what = 0
        p = self._synth
        p.dst = self.address
        p.src = self._pend_src
        p.type = t
        p.seq = self._pend_seq
        p.length = 0
        return p

    def poll(self, now_ms: int):
        """Relay what arrived, send what is queued; return the next packet for this module or None.

        The returned object stays valid until the next ``poll``.
        """
        if self._heard_ms is None:
            self._heard_ms = now_ms
        self._relay_from_down()
        pkt = self._next_synth()
        uart = self.up_uart
        dec = self.up_decoder
        reads = 0
        while pkt is None:
            if self._up_pos >= self._up_end:
                if reads >= _MAX_READS or not uart.in_waiting:
                    break
                reads += 1
                n = uart.readinto(self._up_buf)
                if not n:
                    break
                self._up_pos = 0
                self._up_end = n
            self._up_pos = dec.feed(self._up_buf, self._up_pos, self._up_end)
            if dec.wake_seen:
                dec.clear_wake()
                self.send_wake()
            if dec.ready:
                if self._handle_up(dec, now_ms):
                    pkt = dec
                else:
                    pkt = self._next_synth()
        self.flush()
        return pkt
