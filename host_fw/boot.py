"""Host board boot: enable the USB CDC data port (the status/command stream; the REPL stays on the console)."""

import usb_cdc

usb_cdc.enable(console=True, data=True)
