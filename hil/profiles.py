"""What is connected to the pack port: chargers and loads.  Each profile gives the pack current (A, charge > 0)
for the present pack state and the switch states the host drives; an open path carries no current.

``paths`` is any object with ``charge_closed`` and ``discharge_closed`` (bools).
"""


class Rest:
    """Nothing connected."""

    name = "rest"

    def current_a(self, pack, paths) -> float:
        return 0.0


class ConstantCurrent:
    """A constant current (charge > 0, discharge < 0) that flows only while its path is closed."""

    def __init__(self, current_a: float) -> None:
        self.amps = float(current_a)
        self.name = "cc %+.1f A" % current_a

    def current_a(self, pack, paths) -> float:
        if self.amps > 0:
            return self.amps if paths.charge_closed else 0.0
        return self.amps if paths.discharge_closed else 0.0


class Load(ConstantCurrent):
    """A constant-current load (``amps`` > 0 drawn).  It stops when the discharge path opens; with
    ``latch=True`` it stays off afterwards (an inverter that shut down on loss of input), like a real load
    would rather than hammering a tripped BMS.  A path that was never closed (the BMS still starting) only holds
    it back: it starts when the path closes."""

    def __init__(self, amps: float, latch: bool = True) -> None:
        super().__init__(-abs(amps))
        self.name = "load %.1f A" % abs(amps)
        self.latch = latch
        self.stopped = False
        self.running = False

    def current_a(self, pack, paths) -> float:
        if self.stopped:
            return 0.0
        if not paths.discharge_closed:
            if self.latch and self.running:
                self.stopped = True
            return 0.0
        self.running = True
        return self.amps


class CcCvCharger:
    """A CC/CV charger: ``cc_a`` until the pack reaches ``cv_v`` then constant voltage; ``done`` once the current
    tapers below ``tail_a`` (it then stops, as a charger does after termination).  It only pushes current while
    the host's charge switch is closed; when the switch reopens, it restarts in CC (a charger sees the battery come
    back)."""

    def __init__(self, cc_a: float, cv_v: float, tail_a: float = 0.0) -> None:
        self.cc_a = float(cc_a)
        self.cv_v = float(cv_v)
        self.tail_a = float(tail_a)
        self.done = False
        self.in_cv = False
        self.name = "cc/cv %.1f A %.2f V" % (cc_a, cv_v)

    def current_a(self, pack, paths) -> float:
        if self.done or not paths.charge_closed:
            return 0.0
        # the current that holds the terminal voltage at cv_v: (Vcv - ΣOCV) / ΣR
        i_cv = (self.cv_v - pack.ocv_sum_v()) / pack.r_sum_ohm()
        if i_cv < self.cc_a:
            self.in_cv = True
            if i_cv <= max(self.tail_a, 0.0):
                if self.tail_a > 0:
                    self.done = True
                return 0.0
            return i_cv
        return self.cc_a
