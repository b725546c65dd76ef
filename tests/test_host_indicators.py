"""Running LED pattern per state and buzzer pattern per severity, with mute."""

from hil.clock import VirtualClock
from hil.sim_pins import SimPin
from indicators import SEV_CRITICAL, SEV_NONE, SEV_TRIP, SEV_WARNING, Indicators


def run(ind, clock, ms, state, sev):
    end = clock.total_ms + ms
    while clock.total_ms < end:
        ind.step(clock.ms, state, sev)
        clock.advance(10)


def on_times(pin, since=0):
    return [t for t, v in pin.history if v and t is not None and t >= since]


def test_running_led_blinks_slowly_fault_fast_sleep_dark():
    clock = VirtualClock()
    led = SimPin("led", clock)
    ind = Indicators(led, None)
    run(ind, clock, 6000, 4, SEV_NONE)  # RUNNING
    ons = on_times(led)
    assert len(ons) == 3 and ons[1] - ons[0] == 2000
    t0 = clock.total_ms
    run(ind, clock, 2000, 5, SEV_NONE)  # FAULT
    assert len(on_times(led, t0)) == 4
    run(ind, clock, 1000, 6, SEV_NONE)  # SLEEP
    assert led.value is False


def test_buzzer_by_severity_and_mute_until_worse():
    clock = VirtualClock()
    bz = SimPin("bz", clock)
    ind = Indicators(None, bz)
    run(ind, clock, 5000, 4, SEV_NONE)
    assert on_times(bz) == []
    t0 = clock.total_ms
    run(ind, clock, 20000, 4, SEV_WARNING)
    assert len(on_times(bz, t0)) == 2  # a chirp every 10 s
    t0 = clock.total_ms
    run(ind, clock, 4000, 4, SEV_TRIP)
    assert len(on_times(bz, t0)) == 4  # two beeps every 2 s
    ind.mute()
    t0 = clock.total_ms
    run(ind, clock, 4000, 4, SEV_TRIP)
    assert on_times(bz, t0) == [] and ind.muted
    run(ind, clock, 2000, 5, SEV_CRITICAL)  # a worse alarm sounds through the mute
    assert not ind.muted and bz.history[-1][0] >= t0
    run(ind, clock, 100, 4, SEV_NONE)
    assert bz.value is False


def test_mute_ends_with_the_alarm_so_the_next_one_sounds():
    clock = VirtualClock()
    bz = SimPin("bz", clock)
    ind = Indicators(None, bz)
    run(ind, clock, 3000, 4, SEV_TRIP)
    ind.mute()
    run(ind, clock, 3000, 4, SEV_TRIP)
    assert ind.muted
    run(ind, clock, 1000, 4, SEV_NONE)  # that alarm is over
    t0 = clock.total_ms
    run(ind, clock, 4000, 4, SEV_TRIP)  # a new trip of the same severity must be heard
    assert len(on_times(bz, t0)) == 4 and not ind.muted
