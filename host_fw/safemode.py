"""Host board safe mode (CircuitPython runs this instead of code.py after, e.g., a brown-out below 2.7 V).

1. Drive every power-path output to its OFF level (the switch pins from settings.toml).
2. Record why, in the last 4 bytes of ``alarm.sleep_memory``: "SM", the reason code, how many times
   in a row (``host_services.read_safemode_note`` reads it; the host app clears it after a healthy minute).
3. Restart into code.py when the cause allows: a brown-out or a watchdog reset (after a pause that
   grows with the count, so a failing supply is not hammered), a crash a few times; never when the
   user asked for safe mode, and never after too many in a row (then it stays, outputs off, for a person).
"""

import os
import time

try:
    import alarm
    import board
    import digitalio
    import microcontroller
    import supervisor
except ImportError:  # a PC test injects fakes
    pass

NOTE_AT = 252
MAGIC0 = 0x53
MAGIC1 = 0x4D
# Reason codes stored in the note (stable numbers; CircuitPython's own enum values are not promised).
REASONS = ("NONE", "BROWNOUT", "WATCHDOG", "HARD_FAULT", "STACK_OVERFLOW", "NO_HEAP", "HEAP_OVERWRITTEN",
           "GC_ALLOC_IN_ISR", "USER", "PROGRAMMATIC", "OTHER")
RESTART_LIMIT = {"BROWNOUT": 20, "WATCHDOG": 5, "HARD_FAULT": 3, "STACK_OVERFLOW": 3, "NO_HEAP": 3,
                 "HEAP_OVERWRITTEN": 3, "GC_ALLOC_IN_ISR": 3}
OUTPUT_PINS = ("CHG_PIN", "DSG_PIN", "MAIN_PIN", "PRECHARGE_PIN", "CHG_EN_PIN", "DSG_EN_PIN", "BUZZER_PIN")


def reason_name(reason) -> str:
    name = str(reason).split(".")[-1]
    return name if name in REASONS else "OTHER"


def decide(name: str, count: int) -> tuple:
    """``(restart, pause_s)`` for the ``count``-th safe mode in a row caused by ``name``."""
    limit = RESTART_LIMIT.get(name, 0)
    if count > limit:
        return (False, 0)
    return (True, 2 * count if count < 15 else 30)


def outputs_off(getenv, board_mod, digitalio_mod) -> list:
    """Drive every configured power-path pin to OFF; returns the pins held (keep them referenced)."""
    # os.getenv gives an int for "OUTPUT_ACTIVE_HIGH = 0": "or 1" would turn that 0 into active high and
    # drive active-low outputs ON. Only a missing or empty setting means the default (active high).
    v = getenv("OUTPUT_ACTIVE_HIGH")
    off = not (True if v is None or v == "" else bool(int(v)))
    held = []
    for key in OUTPUT_PINS:
        name = getenv(key)
        if not name or not hasattr(board_mod, name):
            continue
        try:
            io = digitalio_mod.DigitalInOut(getattr(board_mod, name))
            io.switch_to_output(value=off)
            held.append(io)
        except (ValueError, RuntimeError):
            pass  # pin in use twice in settings.toml (MAIN_PIN = CHG_PIN): already driven
    return held


def record(mem, name: str) -> int:
    """Write the note; returns the count of consecutive safe-mode entries, this one included."""
    if mem is None or len(mem) < NOTE_AT + 4:
        return 1
    code = REASONS.index(name)
    count = 1
    if mem[NOTE_AT] == MAGIC0 and mem[NOTE_AT + 1] == MAGIC1:
        count = min(255, mem[NOTE_AT + 3] + 1)
    mem[NOTE_AT] = MAGIC0
    mem[NOTE_AT + 1] = MAGIC1
    mem[NOTE_AT + 2] = code
    mem[NOTE_AT + 3] = count
    return count


HELD = []  # the pins driven OFF stay referenced while safe mode lasts


def run(getenv, board_mod, digitalio_mod, sup, mem, mc, sleep=time.sleep) -> bool:
    HELD[:] = outputs_off(getenv, board_mod, digitalio_mod)
    name = reason_name(sup.runtime.safe_mode_reason)
    count = record(mem, name)
    restart, pause_s = decide(name, count)
    print("safemode: %s (%d in a row), outputs off, %s" % (name, count, "restarting" if restart else "staying"))
    if restart:
        sleep(pause_s)
        mc.reset()  # a normal boot runs boot.py and code.py again
    return restart


if __name__ == "__main__":
    run(os.getenv, board, digitalio, supervisor, alarm.sleep_memory, microcontroller)
