"""The byte-timed simulated UART link (hil/sim_uart.py): timing, half-duplex, faults, wake detection."""

from hil.clock import VirtualClock
from hil.sim_pins import SimPin
from hil.sim_uart import SimLink


def _link(baud=250_000, **kw):
    kw.setdefault("receiver_buffer_size", 20000)
    clock = VirtualClock()
    return clock, SimLink(clock, baud, **kw)


def test_a_byte_arrives_after_ten_bit_times():
    clock, link = _link(250_000)  # 40 us per byte
    link.a.write(b"\x55\xaa")
    clock.advance_us(39)
    assert link.b.in_waiting == 0
    clock.advance_us(1)
    assert link.b.in_waiting == 1
    clock.advance_us(40)
    assert link.b.read() == b"\x55\xaa"
    assert link.b.read() is None  # like busio: None when nothing is there


def test_115200_baud_is_slower():
    clock, link = _link(115_200)  # 86.8 us per byte
    link.a.write(b"\x01")
    clock.advance_us(80)
    assert link.b.in_waiting == 0
    clock.advance_us(7)
    assert link.b.in_waiting == 1


def test_back_to_back_writes_queue_on_the_wire():
    clock, link = _link()
    link.a.write(b"\x01\x02")
    link.a.write(b"\x03")
    assert link.a.tx_busy()
    clock.advance_us(119)
    assert link.b.in_waiting == 2
    clock.advance_us(1)
    buf = bytearray(8)
    assert link.b.readinto(buf) == 3 and bytes(buf[:3]) == b"\x01\x02\x03"
    assert not link.a.tx_busy()


def test_half_duplex_end_does_not_hear_while_it_talks():
    clock, link = _link()
    link.a.write(bytes(10))  # a talks for 400 us
    link.b.write(b"\x11\x22")  # b talks over its first 80 us
    clock.advance_us(1000)
    assert link.a.in_waiting == 0 and link.a.lost_while_tx == 2
    assert link.b.in_waiting == 8 and link.b.lost_while_tx == 2  # b hears a again once b is quiet


def test_unplugged_passes_nothing_and_recovers():
    clock, link = _link()
    link.unplugged = True
    link.a.write(b"abc")
    clock.advance_us(200)
    assert link.b.in_waiting == 0
    assert not link.b.rx_activity_latched()
    link.unplugged = False
    link.a.write(b"abc")
    clock.advance_us(200)
    assert link.b.read() == b"abc"


def test_corruption_rate_and_seed_reproducible():
    def run(seed):
        clock, link = _link(seed=seed)
        link.byte_corrupt_prob = 0.01
        data = bytes(range(256)) * 40
        link.a.write(data)
        clock.advance_us(len(data) * 40 + 40)
        got = link.b.read()
        return sum(1 for x, y in zip(data, got, strict=True) if x != y), got

    bad, got = run(7)
    assert 60 <= bad <= 150  # 1 % of 10 240 bytes
    assert run(7)[1] == got and run(8)[1] != got


def test_a_corrupted_byte_differs_in_exactly_one_bit():
    clock, link = _link(seed=3)
    link.byte_corrupt_prob = 1.0
    link.a.write(b"\x00" * 50)
    clock.advance_us(50 * 40)
    for b in link.b.read():
        assert bin(b).count("1") == 1


def test_bit_errors_and_drops():
    clock, link = _link(seed=5)
    link.drop_prob = 0.1
    link.a.write(bytes(1000))
    clock.advance_us(1000 * 40)
    n = link.b.in_waiting
    assert 850 <= n <= 950 and link.bytes_dropped == 1000 - n
    clock, link = _link(seed=5)
    link.bit_error_rate = 0.01
    link.a.write(bytes(1000))
    clock.advance_us(1000 * 40)
    got = link.b.read()
    assert 50 <= link.bytes_corrupted <= 150  # 10 bits a byte at 1 % each
    assert sum(1 for b in got if b) <= link.bytes_corrupted


def test_receiver_buffer_overruns_are_counted():
    clock, link = _link(receiver_buffer_size=64)
    link.a.write(bytes(100))
    clock.advance_us(100 * 40)
    assert link.b.in_waiting == 64 and link.b.rx_overruns == 36
    link.b.reset_input_buffer()
    assert link.b.in_waiting == 0


def test_direction_pin_low_means_nothing_is_sent():
    clock, link = _link()
    de = SimPin("de", clock)
    de.switch_to_output(False)
    link.a.dir_pin = de
    link.a.write(b"lost")
    de.value = True
    link.a.write(b"sent")
    clock.advance_us(400)
    assert link.b.read() == b"sent" and link.a.tx_without_de == 4


def test_rx_activity_latch_is_a_pin_alarm():
    clock, link = _link()
    link.b.sleeping = True
    link.a.write(bytes(16))  # a wake preamble
    clock.advance_us(100)
    assert link.b.rx_line_active()  # mid-preamble
    clock.advance_us(5000)
    assert not link.b.rx_line_active()
    assert link.b.rx_activity_latched()  # latched though the preamble is over
    assert not link.b.rx_activity_latched()  # and cleared by reading it
    assert link.b.in_waiting == 0  # a sleeping MCU received nothing


def test_busio_attributes():
    clock, link = _link()
    u = link.a
    u.timeout = 0
    assert u.baudrate == 250_000
    u.deinit()
    assert u.deinited
