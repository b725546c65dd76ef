"""A host and N simulated modules on simulated cascade links, stepped by one virtual clock (PC only).

Topology: ``links[0]`` is the host's cable to module 1 (``a`` = host DOWN, ``b`` = module 1 UP);
``links[k]`` is module k's DOWN cable to module k + 1 (``links[N]`` is open: nothing on its far end).
"Unplug module 5's downstream cable" is ``rig.links[5].unplugged = True``.

``module_factory(index, up_uart, down_uart, clock) -> app`` builds each module app (index 1..N; an app has
``step(now_ms)``); the default is ``ModuleLink`` + ``hil.fake_module.FakeModule``. ``host_factory(uart,
dir_pin, clock) -> app`` builds the host app; the default is a ``ChainMaster`` (``master_kwargs`` passed on).
Each tick the clock advances by ``step_us``, then the host and every module step in chain order.
"""

from hil.clock import VirtualClock
from hil.fake_module import FakeModule
from hil.sim_pins import SimPin
from hil.sim_uart import SimLink


def default_module_factory(index, up_uart, down_uart, clock, **kwargs):
    from module_link import ModuleLink

    return FakeModule(ModuleLink(up_uart, down_uart), uid=0x1000 + index, **kwargs)


class ChainRig:
    def __init__(self, n_modules: int = 8, *, baudrate: int = 250_000, seed: int = 1, start_ms: int = 0,
                 module_factory=None, host_factory=None, master_kwargs=None, module_kwargs=None) -> None:
        self.clock = VirtualClock(start_ms)
        self.baudrate = baudrate
        self.links = [SimLink(self.clock, baudrate, seed=seed * 1000 + k, name="seg%d" % k)
                      for k in range(n_modules + 1)]
        self.host_dir = SimPin("host_dir", self.clock)
        self.host_dir.switch_to_output(False)
        self.links[0].a.dir_pin = self.host_dir
        mk = module_kwargs or {}
        factory = module_factory or (lambda i, up, down, clk: default_module_factory(i, up, down, clk, **mk))
        self.modules = [factory(k + 1, self.links[k].b, self.links[k + 1].a, self.clock) for k in range(n_modules)]
        if host_factory is None:
            from chain import ChainMaster

            self.host = ChainMaster(self.links[0].a, dir_pin=self.host_dir, baudrate=baudrate, **(master_kwargs or {}))
        else:
            self.host = host_factory(self.links[0].a, self.host_dir, self.clock)
        self.host_stepping = True

    @property
    def now_ms(self) -> int:
        return self.clock.ms

    def step(self) -> None:
        now = self.clock.ms
        if self.host_stepping:
            self.host.step(now)
        for m in self.modules:
            m.step(now)

    def run_ms(self, ms: int, step_us: int = 1000) -> None:
        end = self.clock.total_us + ms * 1000
        while self.clock.total_us < end:
            self.clock.advance_us(step_us)
            self.step()

    def run_until(self, cond, timeout_ms: int, step_us: int = 1000) -> bool:
        """Step until ``cond()`` is true; False if ``timeout_ms`` of simulated time passed first."""
        end = self.clock.total_us + timeout_ms * 1000
        while self.clock.total_us < end:
            self.clock.advance_us(step_us)
            self.step()
            if cond():
                return True
        return False

    def set_faults(self, *, byte_corrupt_prob=None, drop_prob=None, bit_error_rate=None) -> None:
        for link in self.links:
            if byte_corrupt_prob is not None:
                link.byte_corrupt_prob = byte_corrupt_prob
            if drop_prob is not None:
                link.drop_prob = drop_prob
            if bit_error_rate is not None:
                link.bit_error_rate = bit_error_rate

    def bytes_on_wire(self) -> int:
        return sum(link.bytes_sent for link in self.links)
