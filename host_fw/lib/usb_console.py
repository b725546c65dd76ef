"""
`usb_console`
================================================================================

The host's USB serial interface (DESIGN.md §7, ``docs/usb.md``): one JSON status line per cycle and a
line-based command parser/dispatcher. Works over any stream with ``in_waiting``, ``read(n)`` (or
``readinto``) and ``write``: ``usb_cdc.data`` when ``boot.py`` enabled it, else ``usb_cdc.console``
(chosen in ``code.py``), a pyserial port or ``hil.sim_serial`` on a PC.

The status line is written into a preallocated buffer with hand-formatted integers (no ``json.dumps``,
no f-strings on the hot path) and sent through a cached view per line length: no allocation per cycle.
Commands allocate while they run: they are rare and come from a person.
Malformed input gets an error reply line, never an exception out of :meth:`UsbConsole.poll`.

The console reaches the rest of the host only through a *host facade* (duck-typed)::

    facade.settings                          # a bms_settings.Settings (get / set_many / apply_preset / factory_reset)
    facade.settings_changed(now_ms)          # after every successful change: save it, re-read the limits
    facade.check_settings(pairs) -> str      # optional: "" or why the hardware refuses them (before storing)
    facade.fill_status(st)                   # fill the preallocated Status st (every cycle)
    facade.store, facade.soc_persist         # optional: when present the console itself shows the flash
                                             # erases, a pending write, the store's note and the SOC source
    facade.reset_latch(now_ms) -> str        # "" when the latched trips were cleared, else why not
    facade.event_log() -> list               # JSON-able entries, oldest first
    facade.calibrate(kind, true_ma) -> str   # kind "zero" or "gain": "" when started, else why not
    facade.set_soc(pct) -> str               # "" or why not
Missing optional methods (``reset_latch``, ``event_log``, ``calibrate``, ``set_soc``) reply "not supported".

API::

    con = UsbConsole(stream, facade)
    con.poll(now_ms)              # read and answer whole command lines (bounded work per call)
    con.write_status(now_ms)      # asks the facade to fill con.status, writes one line (if streaming)
"""

import json
from array import array

from bms_packet import CELL_UNKNOWN, TEMP_ABSENT  # the wire's sentinels, shown as null
from bms_settings import CHEMISTRY_NAMES, SCHEMA, index_of
from micropython import const

try:
    from typing import Optional  # noqa: F401
except ImportError:
    pass

LINE_MAX = const(256)
STATUS_MAX = const(2048)
# usb_cdc.Serial waits forever by default (write_timeout = -1): a PC that holds the port open without
# reading would stop the loop. Reads never wait; a write waits at most this long.
WRITE_TIMEOUT_S = 0.05
# Default condition names, bit n = condition n (protection.TABLE order); a facade may give its own.
CONDITION_NAMES = (
    "ov", "uv", "chg_oc", "dsg_oc", "sc", "chg_ot", "chg_ut", "dsg_ot", "dsg_ut", "fet_ot",
    "missing", "open_wire", "wiring", "plaus", "sensor", "no_temp",
)
COMMANDS = (
    "status", "get NAME", "set NAME=VALUE [NAME=VALUE ...]", "schema", "preset LFP|NMC|LTO",
    "factory_reset confirm", "cal zero | cal gain KNOWN_MA", "reset_latch", "log", "soc PCT",
    "stream on|off", "help",
)


class Status:
    """What one status line shows; preallocated once, filled by the facade every cycle."""

    def __init__(self, max_cells: int = 96, max_temps: int = 17) -> None:
        self.state = "starting"  # a constant string: idle, charging, discharging, fault, ...
        self.pack_mv = 0
        self.current_ma = 0
        self.soc_pct = 0
        self.charge_mah = 0
        self.capacity_mah = 0
        self.learned_mah = 0
        self.charged_mah = 0
        self.discharged_mah = 0
        self.cycles = 0
        self.chg_on = False
        self.dsg_on = False
        self.balancing = 0  # cells bleeding (count)
        self.cells_mv = array("H", [CELL_UNKNOWN] * max_cells)
        self.n_cells = 0
        self.temps_dc = array("h", [TEMP_ABSENT] * max_temps)
        self.n_temps = 0
        self.warnings = 0  # bit n = condition n
        self.faults = 0  # tripped conditions
        self.latched = 0  # tripped and waiting for reset_latch
        self.nvm_erases0 = 0
        self.nvm_erases1 = 0
        self.nvm_pending = 0
        self.soc_source = "none"
        self.note = ""


class JsonLine:
    """A JSON object built into a preallocated buffer; integers are formatted by hand."""

    def __init__(self, size: int = STATUS_MAX) -> None:
        self.buf = bytearray(size)
        self.mv = memoryview(self.buf)
        self._digits = bytearray(12)
        self.n = 0
        self.overflow = False
        self._first = True

    def begin(self) -> None:
        self.n = 0
        self.overflow = False
        self._first = True
        self._byte(0x7B)  # {

    def end(self) -> int:
        self._byte(0x7D)  # }
        self._byte(0x0A)  # newline
        return self.n

    def _byte(self, b: int) -> None:
        if self.n < len(self.buf):
            self.buf[self.n] = b
            self.n += 1
        else:
            self.overflow = True

    def raw(self, data) -> None:
        for b in data:
            self._byte(b)

    def key(self, kb) -> None:
        """``kb`` is the key as bytes with quotes and colon, e.g. ``b'"soc_pct":'``."""
        if not self._first:
            self._byte(0x2C)  # ,
        self._first = False
        self.raw(kb)

    def int(self, v: int) -> None:
        if v < 0:
            self._byte(0x2D)  # -
            v = -v
        d = self._digits
        k = 0
        while True:
            d[k] = 0x30 + v % 10
            k += 1
            v //= 10
            if v == 0 or k == len(d):
                break
        while k:
            k -= 1
            self._byte(d[k])

    def key_int(self, kb, v: int) -> None:
        """``kb`` then the integer ``v``: one ``"name":123`` field."""
        self.key(kb)
        self.int(v)

    def str(self, s) -> None:
        """A short ASCII string; quotes, backslashes and control characters are replaced."""
        self._byte(0x22)
        for ch in s:
            o = ord(ch)
            if o < 0x20 or o > 0x7E or o == 0x22 or o == 0x5C:
                o = 0x3F  # ?
            self._byte(o)
        self._byte(0x22)

    def names(self, mask: int, names) -> None:
        self._byte(0x5B)
        first = True
        for i in range(len(names)):
            if mask & (1 << i):
                if not first:
                    self._byte(0x2C)
                first = False
                self.str(names[i])
        self._byte(0x5D)


class UsbConsole:
    def __init__(self, stream, facade, max_cells: int = 96, max_temps: int = 17) -> None:
        self.stream = stream
        self.facade = facade
        self.status = Status(max_cells, max_temps)
        # storage and SOC-source fields come straight from these when the facade has them
        self._store = getattr(facade, "store", None)
        self._persist = getattr(facade, "soc_persist", None)
        self.streaming = True
        self.names = getattr(facade, "condition_names", CONDITION_NAMES)
        self._out = JsonLine(STATUS_MAX)
        # a view of the status buffer per line length seen: slicing a memoryview allocates, and a status
        # line takes only a few dozen lengths, so the steady state allocates nothing
        self._views = {}
        self._line = bytearray(LINE_MAX)
        self._n = 0
        self._discarding = False
        self._chunk = bytearray(64)
        self._chunk_mv = memoryview(self._chunk)
        self.errors = 0
        self.commands = 0
        self.skipped = 0  # status lines not sent: nobody connected, or the last one not drained yet
        for attr, value in (("timeout", 0), ("write_timeout", WRITE_TIMEOUT_S)):
            if hasattr(stream, attr):
                try:
                    setattr(stream, attr, value)
                except (AttributeError, ValueError, TypeError):
                    pass

    # -- output -------------------------------------------------------------------------------
    def _send(self, data) -> None:
        try:
            self.stream.write(data)
        except OSError:
            pass  # nobody listening (USB unplugged): status is best effort

    def reply(self, cmd: str, ok: bool, fields=None, error: str = "") -> None:
        d = {"type": "reply", "cmd": cmd, "ok": ok}
        if error:
            d["error"] = error
        if fields:
            for k in fields:
                d[k] = fields[k]
        self._send((json.dumps(d) + "\n").encode())

    def write_status(self, now_ms: int, force: bool = False) -> int:
        """Fill and write one status line; returns its length (0 when not streaming)."""
        if not self.streaming and not force:
            return 0
        stream = self.stream
        if not force and (not getattr(stream, "connected", True) or getattr(stream, "out_waiting", 0)):
            # no terminal (DTR low) or the PC is not reading: drop this line rather than wait
            self.skipped += 1
            return 0
        st = self.status
        st.note = ""  # the facade sets one when it has something to say this cycle
        self.facade.fill_status(st)
        store = self._store
        if store is not None:
            st.nvm_erases0 = store.erases[0]
            st.nvm_erases1 = store.erases[1]
            st.nvm_pending = 1 if store.pending else 0
            if not st.note:
                st.note = store.note
        if self._persist is not None:
            st.soc_source = self._persist.source
        w = self._out
        w.begin()
        w.key(b'"type":')
        w.raw(b'"status"')
        w.key_int(b'"t":', now_ms)
        w.key(b'"state":')
        w.str(st.state)
        w.key_int(b'"pack_mv":', st.pack_mv)
        w.key_int(b'"current_ma":', st.current_ma)
        w.key(b'"power_w":')
        # |pack_mv| <= 500 000 and |current_ma| <= 2 000 000: split so the product stays a small int
        p = (st.pack_mv // 10) * (st.current_ma // 100 if st.current_ma >= 0 else -((-st.current_ma) // 100))
        w.int(p // 1000 if p >= 0 else -((-p) // 1000))
        w.key_int(b'"soc_pct":', st.soc_pct)
        w.key(b'"soc_src":')
        w.str(st.soc_source)
        w.key_int(b'"charge_mah":', st.charge_mah)
        w.key_int(b'"capacity_mah":', st.capacity_mah)
        w.key_int(b'"learned_mah":', st.learned_mah)
        w.key_int(b'"charged_mah":', st.charged_mah)
        w.key_int(b'"discharged_mah":', st.discharged_mah)
        w.key_int(b'"cycles":', st.cycles)
        w.key(b'"chg":')
        w.raw(b"true" if st.chg_on else b"false")
        w.key(b'"dsg":')
        w.raw(b"true" if st.dsg_on else b"false")
        w.key_int(b'"balancing":', st.balancing)
        w.key(b'"cells_mv":')
        w._byte(0x5B)
        lo = 0
        hi = 0
        for i in range(st.n_cells):
            if i:
                w._byte(0x2C)
            v = st.cells_mv[i]
            if v == CELL_UNKNOWN:
                w.raw(b"null")
            else:
                w.int(v)
                if lo == 0 or v < lo:
                    lo = v
                if v > hi:
                    hi = v
        w._byte(0x5D)
        w.key_int(b'"cell_min_mv":', lo)
        w.key_int(b'"cell_max_mv":', hi)
        w.key(b'"temps_dc":')
        w._byte(0x5B)
        for i in range(st.n_temps):
            if i:
                w._byte(0x2C)
            v = st.temps_dc[i]
            if v == TEMP_ABSENT:
                w.raw(b"null")
            else:
                w.int(v)
        w._byte(0x5D)
        w.key(b'"warnings":')
        w.names(st.warnings, self.names)
        w.key(b'"faults":')
        w.names(st.faults, self.names)
        w.key(b'"latched":')
        w.names(st.latched, self.names)
        w.key(b'"nvm_erases":')
        w._byte(0x5B)
        w.int(st.nvm_erases0)
        w._byte(0x2C)
        w.int(st.nvm_erases1)
        w._byte(0x5D)
        w.key_int(b'"nvm_pending":', st.nvm_pending)
        if st.note:
            w.key(b'"note":')
            w.str(st.note)
        n = w.end()
        if w.overflow:
            self._send(b'{"type":"status","error":"status line too long"}\n')
            return 0
        v = self._views.get(n)
        if v is None:
            if len(self._views) >= 64:
                self._views.clear()
            v = w.mv[:n]
            self._views[n] = v
        self._send(v)
        return n

    # -- input --------------------------------------------------------------------------------
    def poll(self, now_ms: int, max_bytes: int = 512) -> int:
        """Read what has arrived (at most ``max_bytes``) and answer every complete line; returns lines."""
        lines = 0
        budget = max_bytes
        stream = self.stream
        while budget > 0:
            try:
                avail = stream.in_waiting
            except (OSError, AttributeError):
                return lines
            if not avail:
                break
            k = avail if avail < len(self._chunk) else len(self._chunk)
            if k > budget:
                k = budget
            if hasattr(stream, "readinto"):
                got = stream.readinto(self._chunk_mv[:k])
                data = self._chunk_mv[: got or 0]
            else:
                data = stream.read(k) or b""
            if not data:
                break
            budget -= len(data)
            for b in data:
                if b == 0x0A or b == 0x0D:
                    if self._discarding:
                        self._discarding = False
                        self.errors += 1
                        self.reply("?", False, error="line too long (max %d bytes)" % LINE_MAX)
                        lines += 1
                    elif self._n:
                        self._handle(now_ms)
                        lines += 1
                    self._n = 0
                elif self._discarding:
                    continue
                elif self._n >= LINE_MAX:
                    self._discarding = True
                    self._n = 0
                else:
                    self._line[self._n] = b
                    self._n += 1
        return lines

    def _handle(self, now_ms: int) -> None:
        self.commands += 1
        raw = bytes(self._line[: self._n])
        try:
            text = raw.decode()
        except UnicodeError:
            text = None
        if text is None or not _printable(text):
            self.errors += 1
            self.reply("?", False, error="bad characters: commands are printable ASCII")
            return
        parts = text.split()
        if not parts:
            return
        cmd = parts[0].lower()
        try:
            self._dispatch(cmd, parts[1:], now_ms)
        except Exception as e:  # noqa: BLE001 - a command must never stop the host loop
            self.errors += 1
            self.reply(cmd, False, error="internal error: %s %s" % (type(e).__name__, e))

    # -- commands -----------------------------------------------------------------------------
    def _dispatch(self, cmd: str, args, now_ms: int) -> None:
        f = self.facade
        if cmd == "help":
            self.reply(cmd, True, {"commands": list(COMMANDS)})
        elif cmd == "status":
            self.write_status(now_ms, force=True)
        elif cmd == "get":
            if len(args) != 1:
                return self._bad(cmd, "usage: get NAME")
            name = args[0]
            try:
                i = index_of(name)
            except KeyError:
                return self._bad(cmd, "unknown setting %s" % name)
            row = SCHEMA[i]
            self.reply(
                cmd, True, {"name": name, "value": f.settings.get(name), "unit": row[1], "min": row[2], "max": row[3]}
            )
        elif cmd == "set":
            pairs = _parse_pairs(args)
            if isinstance(pairs, str):
                return self._bad(cmd, pairs)
            check = getattr(f, "check_settings", None)  # the hardware may refuse a value the schema allows
            err = check(pairs) if check is not None else ""
            if err:
                return self._bad(cmd, err)
            try:
                f.settings.set_many(pairs)
            except ValueError as e:
                return self._bad(cmd, str(e))
            f.settings_changed(now_ms)
            vals = {}
            for name, _ in pairs:
                vals[name] = f.settings.get(name)
            self.reply(cmd, True, {"values": vals})
        elif cmd == "schema":
            rows = []
            for name, unit, lo, hi, default in SCHEMA:
                rows.append([name, unit, lo, hi, default, f.settings.get(name)])
            self.reply(cmd, True, {"fields": ["name", "unit", "min", "max", "default", "value"], "schema": rows,
                                   "chemistry": list(CHEMISTRY_NAMES)})
        elif cmd == "preset":
            if len(args) != 1 or args[0].upper() not in CHEMISTRY_NAMES:
                return self._bad(cmd, "usage: preset LFP|NMC|LTO")
            chem = CHEMISTRY_NAMES.index(args[0].upper())
            try:
                f.settings.apply_preset(chem)
            except ValueError as e:
                return self._bad(cmd, str(e))
            f.settings_changed(now_ms)
            self.reply(cmd, True, {"chemistry": CHEMISTRY_NAMES[chem]})
        elif cmd == "factory_reset":
            if args != ["confirm"]:
                return self._bad(cmd, "usage: factory_reset confirm")
            f.settings.factory_reset()
            f.settings_changed(now_ms)
            self.reply(cmd, True)
        elif cmd == "cal":
            if len(args) == 1 and args[0] == "zero":
                self._optional(cmd, "calibrate", "zero", 0)
            elif len(args) == 2 and args[0] == "gain":
                v = _parse_int(args[1])
                if v is None:
                    return self._bad(cmd, "usage: cal gain KNOWN_MA (an integer)")
                self._optional(cmd, "calibrate", "gain", v)
            else:
                self._bad(cmd, "usage: cal zero | cal gain KNOWN_MA")
        elif cmd == "reset_latch":
            self._optional(cmd, "reset_latch", now_ms)
        elif cmd == "soc":
            v = _parse_int(args[0]) if len(args) == 1 else None
            if v is None or v < 0 or v > 100:
                return self._bad(cmd, "usage: soc PCT (0..100)")
            self._optional(cmd, "set_soc", v)
        elif cmd == "log":
            fn = getattr(f, "event_log", None)
            if fn is None:
                return self._bad(cmd, "not supported")
            self.reply(cmd, True, {"events": list(fn())})
        elif cmd == "stream":
            if len(args) != 1 or args[0] not in ("on", "off"):
                return self._bad(cmd, "usage: stream on|off")
            self.streaming = args[0] == "on"
            self.reply(cmd, True, {"stream": self.streaming})
        else:
            self._bad(cmd, "unknown command (try help)")

    def _bad(self, cmd: str, error: str) -> None:
        self.errors += 1
        self.reply(cmd, False, error=error)

    def _optional(self, cmd: str, method: str, *args) -> None:
        fn = getattr(self.facade, method, None)
        if fn is None:
            return self._bad(cmd, "not supported")
        try:
            err = fn(*args)
        except ValueError as e:  # a facade may refuse by raising, like Settings does
            err = str(e)
        if err:
            return self._bad(cmd, err)
        self.reply(cmd, True)


def _printable(text: str) -> bool:
    for ch in text:
        o = ord(ch)
        if o < 0x20 and ch != "\t" or o > 0x7E:
            return False
    return True


def _parse_int(s: str):
    """An integer in decimal (``-12``) or hex (``0x1F``), else ``None``."""
    try:
        if s[:2].lower() == "0x" or s[:3].lower() == "-0x":
            return int(s, 16)
        return int(s)
    except ValueError:
        return None


def _parse_pairs(args):
    """``NAME=VALUE ...`` or ``NAME VALUE`` into ``[(name, int)]``, or an error string."""
    if len(args) == 2 and "=" not in args[0] and "=" not in args[1]:
        args = [args[0] + "=" + args[1]]
    if not args:
        return "usage: set NAME=VALUE [NAME=VALUE ...]"
    pairs = []
    for a in args:
        if a.count("=") != 1:
            return "usage: set NAME=VALUE [NAME=VALUE ...] (got %s)" % a
        name, val = a.split("=")
        v = _parse_int(val)
        if v is None:
            if name == "chemistry" and val.upper() in CHEMISTRY_NAMES:
                v = CHEMISTRY_NAMES.index(val.upper())
            else:
                return "%s: value must be an integer (got %s)" % (name, val)
        pairs.append((name, v))
    return pairs
