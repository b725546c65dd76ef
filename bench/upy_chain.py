"""A chain without a simulator for the MicroPython benches (not a bench itself: ``make bench`` runs
``bench_*.py`` only). Import it from a script run with ``bench/`` on ``sys.path`` (benches run from the
repository root).

* ``cable(size)``: two connected ends that duck-type the ``busio.UART`` calls the link code makes (``write``,
  ``readinto``, ``in_waiting``, ``baudrate``); a write is readable at the other end at once, with no timing, so a
  bench measures the firmware's own allocations and nothing of a simulator.
* ``MiniModule(link, cell_100uv, temps_dc)``: the least module app over a ``ModuleLink`` (ENUMERATE, SAMPLE,
  GET_CELLS/TEMPS/STATUS, CONFIG, BALANCE), allocation-free, for benches of the host side and of the link.
"""

import bms_packet as P


class End:
    """One end of the cable; ``size`` bytes of receive buffer (never overrun by the benches' traffic)."""

    def __init__(self, size=2048):
        self.buf = bytearray(size)
        self.n = 0
        self.pos = 0
        self.peer = None
        self.baudrate = 250000

    @property
    def in_waiting(self):
        return self.n - self.pos

    def readinto(self, b):
        k = self.n - self.pos
        if k <= 0:
            return None
        if k > len(b):
            k = len(b)
        for i in range(k):
            b[i] = self.buf[self.pos + i]
        self.pos += k
        if self.pos == self.n:
            self.pos = 0
            self.n = 0
        return k

    def write(self, data):
        p = self.peer
        for i in range(len(data)):
            p.buf[p.n + i] = data[i]
        p.n += len(data)
        return len(data)


def cable(size=2048):
    """Two connected ends ``(a, b)``."""
    a = End(size)
    b = End(size)
    a.peer = b
    b.peer = a
    return a, b


class MiniModule:
    """12 cells at ``cell_100uv``, thermistors ``temps_dc``; acknowledges CONFIG and BALANCE without acting."""

    def __init__(self, link, cell_100uv=36000, temps_dc=(250,)):
        self.link = link
        self.sid = 0
        self.cells = [cell_100uv] * 12
        self.temps = list(temps_dc)

    def step(self, now):
        link = self.link
        for _ in range(8):
            p = link.poll(now)
            if p is None:
                return
            t = p.type
            out = link.tx_payload
            if t == P.ENUMERATE:
                n = P.pack_enumerated_into(out, 0, link.address, 12, 12, 0, 1)
                link.reply(P.ENUMERATED, p.seq, n)
            elif t == P.SAMPLE:
                self.sid = p.payload[0]
            elif t == P.GET_CELLS:
                n = P.pack_cells_into(out, 0, self.sid, self.cells, 12)
                link.reply(P.CELLS, p.seq, n)
            elif t == P.GET_TEMPS:
                n = P.pack_temps_into(out, 0, self.sid, self.temps, len(self.temps), 300)
                link.reply(P.TEMPS, p.seq, n)
            elif t == P.GET_STATUS:
                n = P.pack_status_into(out, 0, 0, 0, 0, 0, 0, 0, 12)
                link.reply(P.STATUS, p.seq, n)
            elif t == P.CONFIG:
                for i in range(P.CONFIG_LEN):
                    out[i] = p.payload[i]
                link.reply(P.CONFIG_ACK, p.seq, P.CONFIG_LEN)
            elif t == P.BALANCE:
                n = P.pack_balance_ack_into(out, 0, 0)
                link.reply(P.BALANCE_ACK, p.seq, n)
