"""Byte-timed simulated UART links for the virtual rig (PC only).

``SimLink(clock, baudrate=250_000)`` is one twisted-pair segment with two ends, ``link.a`` and ``link.b``
(``SimUART`` objects that duck-type ``busio.UART``: ``write``, ``read``, ``readinto``, ``in_waiting``,
``reset_input_buffer``, ``timeout``, ``baudrate``, ``deinit``).

Timing: every byte takes ``10 / baudrate`` s on the wire (8N1). Bytes written by one end are serialised one
after another from the moment of the write (or when the previous byte ends) and become readable at the other
end when their stop bit ends. ``write`` returns at once (it queues onto the wire); ``tx_busy()`` tells whether
bytes are still going out. The segment is half-duplex: a byte that arrives at an end while that end is itself
transmitting is lost (counted in ``lost_while_tx``), as with an RS-485 transceiver whose driver is enabled.

Faults (on the link, both directions): ``byte_corrupt_prob`` (a byte gets one random bit flipped),
``bit_error_rate`` (each of the 10 bits may flip; a flipped start/stop bit garbles the byte), ``drop_prob``
(a byte is lost), ``unplugged`` (nothing passes; the line reads idle). A seeded ``random.Random`` makes every
run reproducible.

Wake detection: ``rx_line_active()`` is True when a byte is on the receiving wire right now, and
``rx_activity_latched()`` returns (and clears) whether any start bit arrived since the last call: the
simulated equivalent of a pin alarm on the RX pin of a sleeping board. A ``sleeping`` end still latches
activity but discards what it receives (its MCU is off).

A ``dir_pin`` (a ``hil.sim_pins.SimPin``) may be given to an end that drives its transceiver itself (the
nRF52840 host): bytes written while that pin is low never reach the wire (``tx_without_de`` counts them).
"""

import random
from collections import deque

from hil.sim_deinit import SimDeinit


class SimLink:
    """One point-to-point segment with ends ``a`` and ``b`` and its fault knobs."""

    def __init__(self, clock, baudrate: int = 250_000, seed: int = 0, name: str = "link",
                 receiver_buffer_size: int = 512) -> None:
        self.clock = clock
        self.name = name
        self.rng = random.Random(seed)
        self.byte_corrupt_prob = 0.0
        self.bit_error_rate = 0.0
        self.drop_prob = 0.0
        self.unplugged = False
        self.bytes_sent = 0  # bytes put on the wire, both directions (for the wire-limit figure)
        self.bytes_corrupted = 0
        self.bytes_dropped = 0
        self.a = SimUART(self, baudrate, receiver_buffer_size, name + ".a")
        self.b = SimUART(self, baudrate, receiver_buffer_size, name + ".b")
        self.a.peer = self.b
        self.b.peer = self.a

    def _mangle(self, byte: int):
        """Apply the fault knobs to one byte in flight; None when it is lost."""
        rng = self.rng
        if self.drop_prob and rng.random() < self.drop_prob:
            self.bytes_dropped += 1
            return None
        if self.byte_corrupt_prob and rng.random() < self.byte_corrupt_prob:
            self.bytes_corrupted += 1
            return byte ^ (1 << rng.randrange(8))
        if self.bit_error_rate:
            flips = [k for k in range(10) if rng.random() < self.bit_error_rate]
            if flips:
                self.bytes_corrupted += 1
                if 0 in flips or 9 in flips:  # start or stop bit: framing error, the byte is garbage
                    return rng.randrange(256)
                for k in flips:
                    byte ^= 1 << (k - 1)
        return byte


class SimUART(SimDeinit):
    """One end of a ``SimLink``; duck-types the parts of ``busio.UART`` the firmware uses."""

    def __init__(self, link: SimLink, baudrate: int, receiver_buffer_size: int, name: str) -> None:
        self.link = link
        self.name = name
        self.peer = None
        self.baudrate = baudrate
        self.timeout = 0.0  # accepted for compatibility; reads never wait in simulated time
        self.receiver_buffer_size = receiver_buffer_size
        self.dir_pin = None
        self.sleeping = False
        self._wire = deque()  # (end_us, byte) of bytes this end has put on the wire, not yet delivered
        self._tx_start_us = 0
        self._tx_end_us = 0  # when the last byte this end sent leaves the wire
        self._rx = deque()
        self._activity = False
        self.bytes_written = 0
        self.rx_overruns = 0
        self.lost_while_tx = 0
        self.tx_without_de = 0
        self.deinited = False

    # --- timing --------------------------------------------------------------------------------
    @property
    def byte_us(self) -> float:
        return 10_000_000 / self.baudrate

    def _now_us(self) -> int:
        return self.link.clock.total_us

    def tx_busy(self) -> bool:
        """True while bytes written by this end are still on the wire."""
        return self._now_us() < self._tx_end_us

    def _transmitting_at(self, t_us: float) -> bool:
        return self._tx_start_us <= t_us < self._tx_end_us

    def _pump(self) -> None:
        """Deliver every byte the peer sent that has finished arriving by now."""
        peer = self.peer
        wire = peer._wire
        if not wire:
            return
        now = self._now_us()
        link = self.link
        while wire and wire[0][0] <= now:
            end_us, byte = wire.popleft()
            if link.unplugged:
                continue
            self._activity = True
            # A byte is lost if this end was driving the pair while it arrived (half-duplex).
            if self._tx_start_us < end_us and end_us - self.byte_us < self._tx_end_us:
                self.lost_while_tx += 1
                continue
            b = link._mangle(byte)
            if b is None or self.sleeping:
                continue
            if len(self._rx) >= self.receiver_buffer_size:
                self.rx_overruns += 1
                continue
            self._rx.append(b)

    # --- busio.UART API ------------------------------------------------------------------------
    def write(self, buf) -> int:
        n = len(buf)
        if n == 0:
            return 0
        if self.dir_pin is not None and not self.dir_pin.value:
            self.tx_without_de += n
            return n
        self._pump()  # deliver what arrived under the previous transmit interval first
        now = self._now_us()
        if now >= self._tx_end_us:
            self._tx_start_us = now
        t = max(now, self._tx_end_us)
        step = self.byte_us
        for b in bytes(buf):
            t += step
            self._wire.append((t, b))
        self._tx_end_us = t
        self.bytes_written += n
        self.link.bytes_sent += n
        return n

    @property
    def in_waiting(self) -> int:
        self._pump()
        return len(self._rx)

    def read(self, nbytes=None):
        self._pump()
        if not self._rx:
            return None
        n = len(self._rx) if nbytes is None else min(nbytes, len(self._rx))
        return bytes(self._rx.popleft() for _ in range(n))

    def readinto(self, buf, nbytes=None):
        self._pump()
        if not self._rx:
            return None
        n = len(buf) if nbytes is None else min(nbytes, len(buf))
        n = min(n, len(self._rx))
        for i in range(n):
            buf[i] = self._rx.popleft()
        return n

    def reset_input_buffer(self) -> None:
        self._pump()
        self._rx.clear()

    # --- wake detection ------------------------------------------------------------------------
    def rx_line_active(self) -> bool:
        """True when a byte from the peer is on the wire at this instant (the RX line is not idle)."""
        if self.link.unplugged:
            return False
        now = self._now_us()
        step = self.peer.byte_us
        for end_us, _ in self.peer._wire:
            if end_us - step <= now < end_us:
                return True
            if end_us - step > now:
                break
        return False

    def rx_activity_latched(self) -> bool:
        """Whether any byte started arriving since the last call (a latched pin alarm); clears the latch."""
        self._pump()
        if self.rx_line_active():
            self._activity = True
        seen = self._activity
        self._activity = False
        return seen
