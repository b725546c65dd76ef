"""What the simulated ``busio`` / ``digitalio`` objects share with the real ones: ``deinit()`` (recorded in
``deinited`` so tests can check that code releases its hardware) and use in a ``with`` block."""


class SimDeinit:
    """Base of ``SimPin``, ``SimI2C``, ``SimSPI`` and ``SimUART``."""

    deinited = False

    def deinit(self) -> None:
        self.deinited = True

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.deinit()
