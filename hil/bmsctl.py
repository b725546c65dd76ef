"""bmsctl — talk to the cascade-bms host over its USB serial port (``docs/usb.md``).

    python -m hil.bmsctl --port /dev/ttyACM1 status
    python -m hil.bmsctl --port /dev/ttyACM1 get ov_trip_mv
    python -m hil.bmsctl --port /dev/ttyACM1 set ov_trip_mv=4200 ov_warn_mv=4180
    python -m hil.bmsctl --port /dev/ttyACM1 --json schema
    python -m hil.bmsctl --port COM5 preset LFP | cal zero | cal gain 10000 | reset-latch | log | soc 80
    python -m hil.bmsctl --port /dev/ttyACM1 factory-reset --yes
    python -m hil.bmsctl --sim status          # no board: a simulated 8-cell LFP pack (hil.rig) answers
                                               # (each --sim run starts a fresh pack: a set does not persist)

The port is the host's data CDC interface (``usb_cdc.data``) when ``boot.py`` enables it, else the console
one. ``--port`` may also come from the ``BMS_PORT`` environment variable. Exit status: 0 ok, 1 the host
refused the command (its reason is printed), 2 usage or no answer.

In tests ``main(argv, ser=...)`` takes a ``hil.sim_serial.SimSerial`` joined to a simulated host.
"""

import argparse
import json
import os
import sys


class BmsError(Exception):
    """No answer, or an answer that is not ours."""


class BmsClient:
    """Line protocol client over a ``serial.Serial``-like object."""

    def __init__(self, ser, attempts: int = 50) -> None:
        self.ser = ser
        self.attempts = attempts

    def _lines(self):
        for _ in range(self.attempts):
            raw = self.ser.readline()
            if not raw:
                raise BmsError("no answer from the host (check the port and that the host runs)")
            try:
                msg = json.loads(raw.decode("utf-8", "replace"))
            except ValueError:
                continue  # console noise (REPL banner, a print) is not ours
            if isinstance(msg, dict):
                yield msg
        raise BmsError("no reply among %d lines" % self.attempts)

    def command(self, line: str) -> dict:
        """Send one command line and return its reply (``{"type": "reply", "ok": ..., ...}``)."""
        if "\n" in line or "\r" in line:
            raise ValueError("one command per line")
        self.ser.reset_input_buffer()
        self.ser.write((line + "\n").encode())
        cmd = line.split()[0].lower() if line.split() else ""
        for msg in self._lines():
            if msg.get("type") == "reply" and msg.get("cmd") in (cmd, "?"):
                return msg
        raise BmsError("no reply")  # pragma: no cover - _lines raises first

    def status(self) -> dict:
        """The next status line (asks for one, so it also works with streaming off)."""
        self.ser.reset_input_buffer()
        self.ser.write(b"status\n")
        for msg in self._lines():
            if msg.get("type") == "status":
                return msg
        raise BmsError("no status")  # pragma: no cover


def _fmt_status(st: dict) -> str:
    if "error" in st:
        return "status error: %s" % st["error"]
    lines = []
    pack_v = st.get("pack_mv", 0) / 1000.0
    amps = st.get("current_ma", 0) / 1000.0
    src = st.get("soc_src", "?")
    lines.append(
        "%-12s %7.2f V %8.2f A %7d W   SOC %3d %%  (%s)"
        % (st.get("state", "?"), pack_v, amps, st.get("power_w", 0), st.get("soc_pct", 0),
           "not restored at boot" if src == "none" else "restored from " + src)
    )
    lines.append(
        "charge %d / %d mAh (learned %d)   charged %.3f Ah   discharged %.3f Ah   cycles %d"
        % (st.get("charge_mah", 0), st.get("capacity_mah", 0), st.get("learned_mah", 0),
           st.get("charged_mah", 0) / 1000.0, st.get("discharged_mah", 0) / 1000.0, st.get("cycles", 0))
    )
    lines.append(
        "charge switch %s   discharge switch %s   balancing %d cells"
        % ("ON" if st.get("chg") else "off", "ON" if st.get("dsg") else "off", st.get("balancing", 0))
    )
    cells = st.get("cells_mv", [])
    if cells:
        if all(v is None for v in cells):
            lines.append("cells (mV): all unknown (no module answered)")
        else:
            lo, hi = st.get("cell_min_mv", 0), st.get("cell_max_mv", 0)
            unknown = sum(1 for v in cells if v is None)
            lines.append("cells (mV): min %s  max %s  spread %s%s"
                         % (lo, hi, hi - lo, "   %d unknown (--)" % unknown if unknown else ""))
        for i in range(0, len(cells), 12):
            row = cells[i : i + 12]
            lines.append("  %3d: %s" % (i + 1, " ".join("%5s" % ("--" if v is None else v) for v in row)))
    temps = st.get("temps_dc", [])
    if temps:
        # The first is the host's MOSFET/shunt sensor, then the modules' sensors (docs/usb.md).
        def c(t):
            return "absent" if t is None else "%.1f" % (t / 10.0)

        line = "temps (C): MOSFET %s" % c(temps[0])
        if len(temps) > 1:
            line += "   modules " + " ".join(c(t) for t in temps[1:])
        lines.append(line)
    lines.append("warnings: %s   faults: %s   latched: %s"
                 % (", ".join(st.get("warnings", [])) or "none", ", ".join(st.get("faults", [])) or "none",
                    ", ".join(st.get("latched", [])) or "none"))
    er = st.get("nvm_erases", [0, 0])
    lines.append("flash page erases: %s (pending %s)" % (" / ".join(str(e) for e in er), st.get("nvm_pending", 0)))
    if st.get("note"):
        lines.append("note: %s" % st["note"])
    return "\n".join(lines)


ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _firmware_path() -> None:
    for sub in ("shared", "module_fw/lib", "host_fw/lib"):
        if os.path.join(ROOT, sub) not in sys.path:
            sys.path.insert(0, os.path.join(ROOT, sub))


def _cond_units() -> dict:
    """Condition name -> settings unit ("mv", "ma", "dc", or None for counts), from ``protection.TABLE``."""
    _firmware_path()
    from protection import TABLE

    return {row[0]: row[1] for row in TABLE}


# What ``where`` numbers for each kind of condition (pack.py: cell in pack order, module sensor, module).
_WHERE_BY_UNIT = {"mv": "cell", "dc": "sensor"}


def _fmt_event(e: dict) -> str:
    """One event of the host's ring as a line: time (host ticks, s), what happened, its value and place."""
    t = "%10.3f s" % (e.get("t", 0) / 1000.0)
    kind = e.get("kind", "?")
    cause = e.get("cause", "?")
    value = e.get("value", 0)
    where = e.get("where", 0)
    if kind == "state":
        return "%s  state      -> %s" % (t, cause)
    if kind == "switch":
        return "%s  switch     precharge fault (last pack/bus gap %s mV)" % (t, value)
    if kind == "config":
        return "%s  config     refused limits or chain mismatch (found %s cells, %s modules)" % (t, value, where)
    unit = _cond_units().get(cause)
    if unit == "dc":
        v = "%.1f C" % (value / 10.0)
    elif unit == "mv":
        v = "%d mV" % value
    elif unit == "ma":
        v = "%d mA" % value
    else:
        v = "value %s" % value
    what = "module" if cause == "missing" else _WHERE_BY_UNIT.get(unit)
    place = " at %s %d" % (what, where) if where and what else ""
    return "%s  %-10s %s %s%s" % (t, kind, cause, v, place)


def _fmt_reply(reply: dict) -> str:
    if not reply.get("ok"):
        return "refused: %s" % reply.get("error", "?")
    cmd = reply.get("cmd")
    if cmd == "get":
        return "%s = %s %s" % (reply["name"], reply["value"], reply.get("unit", ""))
    if cmd == "set":
        return "\n".join("%s = %s" % (k, v) for k, v in sorted(reply.get("values", {}).items()))
    if cmd == "schema":
        out = ["%-22s %-6s %10s %10s %10s %10s" % ("name", "unit", "min", "max", "default", "value")]
        for row in reply.get("schema", []):
            out.append("%-22s %-6s %10s %10s %10s %10s" % tuple(row))
        return "\n".join(out)
    if cmd == "log":
        return "\n".join(_fmt_event(e) for e in reply.get("events", [])) or "(no events)"
    if cmd == "help":
        return "\n".join(reply.get("commands", []))
    return "ok"


def _parser():
    ap = argparse.ArgumentParser(prog="python -m hil.bmsctl", description="cascade-bms host over USB serial")
    ap.add_argument("--port", default=os.environ.get("BMS_PORT"), help="serial port (or BMS_PORT)")
    ap.add_argument("--baud", type=int, default=115200)
    ap.add_argument("--timeout", type=float, default=2.0, help="seconds to wait for an answer")
    ap.add_argument("--json", action="store_true", help="print the host's JSON answer")
    ap.add_argument("--sim", action="store_true", help="talk to a simulated host on the virtual rig (no board)")
    # --json also after the command ("bmsctl status --json"), as people type it.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print the host's JSON answer")
    sub = ap.add_subparsers(dest="cmd", required=True)
    _add_parser = sub.add_parser

    def add_parser(name, **kw):
        return _add_parser(name, parents=[common], **kw)

    sub.add_parser = add_parser
    sub.add_parser("status", help="print the pack status")
    p = sub.add_parser("get", help="read one setting")
    p.add_argument("name")
    p = sub.add_parser("set", help="change settings together: NAME=VALUE ...")
    p.add_argument("pairs", nargs="+")
    sub.add_parser("schema", help="list every setting with unit, range, default and value")
    p = sub.add_parser("preset", help="chemistry preset")
    p.add_argument("chemistry", choices=["LFP", "NMC", "LTO", "lfp", "nmc", "lto"])
    p = sub.add_parser("cal", help="current calibration: zero (no load) or gain KNOWN_MA")
    p.add_argument("kind", choices=["zero", "gain"])
    p.add_argument("known_ma", nargs="?", type=int)
    sub.add_parser("reset-latch", help="clear latched trips")
    sub.add_parser("log", help="the event log")
    p = sub.add_parser("soc", help="set the SOC by hand")
    p.add_argument("pct", type=int)
    p = sub.add_parser("factory-reset", help="every setting back to factory values")
    p.add_argument("--yes", action="store_true", required=True)
    return ap


def _command_line(a) -> str:
    if a.cmd == "get":
        return "get %s" % a.name
    if a.cmd == "set":
        return "set " + " ".join(a.pairs)
    if a.cmd == "preset":
        return "preset %s" % a.chemistry.upper()
    if a.cmd == "cal":
        return "cal zero" if a.kind == "zero" else "cal gain %d" % a.known_ma
    if a.cmd == "soc":
        return "soc %d" % a.pct
    if a.cmd == "factory-reset":
        return "factory_reset confirm"
    return a.cmd.replace("-", "_")


def sim_port(timeout: float = 5.0):
    """A ``SimSerial`` joined to the real host firmware on the virtual rig (8 LFP cells, 2 modules)."""
    from usb_console import UsbConsole

    from hil.rig import Rig
    from hil.sim_serial import stream_pair

    rig = Rig(cells=8, modules=2, chemistry="LFP", seed=1)

    def pump():
        rig.run_for(0.2)
        return 200

    fw, pc = stream_pair(pump=pump, timeout=timeout)
    rig.fw.host.console = UsbConsole(fw, rig.fw.host)
    rig.run_for(10.0)  # wake, enumerate, first cycles
    return pc


def main(argv=None, ser=None, out=None) -> int:
    out = out or sys.stdout
    a = _parser().parse_args(argv)
    if a.cmd == "cal" and a.kind == "gain" and a.known_ma is None:
        print("cal gain needs KNOWN_MA", file=out)
        return 2
    if a.cmd == "set":
        bad = [p for p in a.pairs if "=" not in p or not p.split("=", 1)[0] or not p.split("=", 1)[1]]
        if bad:
            print("set takes NAME=VALUE pairs (got %s); e.g. set ov_trip_mv=4200" % " ".join(bad), file=out)
            return 2
    if ser is None and a.sim:
        _firmware_path()
        ser = sim_port()
    own = ser is None
    if own:
        if not a.port:
            print("no port: give --port or set BMS_PORT", file=out)
            return 2
        import serial  # pyserial, only when talking to a real board

        ser = serial.Serial(a.port, a.baud, timeout=a.timeout)
    try:
        client = BmsClient(ser)
        try:
            if a.cmd == "status":
                msg = client.status()
                print(json.dumps(msg) if a.json else _fmt_status(msg), file=out)
                return 0
            reply = client.command(_command_line(a))
        except BmsError as e:
            print("error: %s" % e, file=out)
            return 2
        print(json.dumps(reply) if a.json else _fmt_reply(reply), file=out)
        return 0 if reply.get("ok") else 1
    finally:
        if own:
            ser.close()


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BrokenPipeError:  # "bmsctl log | head": the reader left; not an error worth a traceback
        sys.stderr.close()
        sys.exit(0)
