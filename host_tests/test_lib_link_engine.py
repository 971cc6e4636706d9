# mp-heap: 176K
# The link engine on a virtual bus (linkharness): autodetection, the status
# model's honesty, wiring diagnosis, display coexistence and command
# transactions. Runs under CPython and MicroPython.
from ant import commands
from ant.status import PROTOCOL_NEW, PROTOCOL_OLD, TEMP_NONE
from eventlog import EV_LINK, EventLog
from link import command as cmd
from link.describe import describe_link, snapshot
from link.engine import ERR_CHECKSUM, ERR_SILENT, ERR_TIMEOUT, LinkConfig, LinkEngine
from link.model import (
    LINE_FOREIGN,
    LINE_INTERMITTENT,
    LINE_SLOW,
    LINE_UNKNOWN,
    LINE_NOISE,
    LINE_OK,
    LINE_SILENT,
    LINK_ASLEEP,
    LINK_LOST,
    LINK_OK,
    LINK_STALE,
    LINK_UNPOWERED,
    Model,
)
from linkharness import Display, FakeBms, Harness
from ticks import ticks_add, ticks_diff


def make(bms=None, display=None, **settings):
    config = LinkConfig()
    if display is None:
        # Nobody else on the bus: the time budgets below count from a short
        # first listen. Tests with a display keep the default.
        config.listen_first_ms = 300
    for key in settings:
        setattr(config, key, settings[key])
    model = Model()
    log = EventLog(32)
    engine = LinkEngine(model, config, log)
    h = Harness(engine, bms or FakeBms(), display)
    return h, engine, model, log


def test_detects_a_new_protocol_unit_and_fills_the_model():
    h, engine, model, _ = make()
    assert model.link == LINK_LOST and model.age_ms(h.now) == -1
    assert h.run_until(lambda: model.link == LINK_OK, 2000)
    assert model.protocol == PROTOCOL_NEW and model.line == LINE_OK
    st = model.status
    assert st.cell_count == 16 and st.pack_cv == 5300 and st.soc_pct == 70
    assert st.current_da == 50  # charging stays positive through build and decode
    assert h.sent[0] == commands.status_request("new")
    assert 0 <= model.age_ms(h.now) < 100


def test_detects_old_units_including_one_that_answers_only_the_app_request():
    h, _, model, _ = make(FakeBms(protocols=("old",)))
    assert h.run_until(lambda: model.link == LINK_OK, 3000)
    assert model.protocol == PROTOCOL_OLD
    assert h.sent[:2] == [commands.status_request("new"), commands.status_request("old", 0)]
    db_only = FakeBms(protocols=("old",), status_form=commands.status_request("old", 1))
    h, _, model, _ = make(db_only)
    assert h.run_until(lambda: model.link == LINK_OK, 4000)
    assert h.sent[2] == b"\xdb\xdb\x00\x00\x00\x00"


def test_a_unit_answering_both_gets_the_new_protocol():
    h, _, model, _ = make(FakeBms(protocols=("new", "old")))
    assert h.run_until(lambda: model.link == LINK_OK, 2000)
    assert model.protocol == PROTOCOL_NEW


def test_falls_back_to_9600_baud():
    h, engine, model, _ = make(FakeBms(protocols=("old",), baud=9600))
    assert h.run_until(lambda: model.link == LINK_OK, 10000)
    assert engine.baud == 9600 and model.protocol == PROTOCOL_OLD
    assert engine.stats.baud_switches >= 1


def test_pinned_protocol_never_sends_the_other_family():
    h, _, model, _ = make(FakeBms(protocols=("old",)), protocol=PROTOCOL_OLD)
    assert h.run_until(lambda: model.link == LINK_OK, 2000)
    assert all(f[0] != 0x7E for f in h.sent)


def test_polls_at_the_interval_and_never_shows_stale_data_as_live():
    h, engine, model, log = make(poll_ms=1000)
    h.run_until(lambda: model.link == LINK_OK, 2000)
    polls = engine.stats.polls
    h.run(10000)
    assert 9 <= engine.stats.polls - polls <= 11
    # The BMS stops answering: stale within 3 s, never "ok" with old data.
    h.bms.silent = True
    silent_at = h.now
    seen_ok_after = 0
    while model.link == LINK_OK:
        h.step()
        seen_ok_after = model.age_ms(h.now)
    assert model.link == LINK_STALE
    assert seen_ok_after <= 2600
    assert h.now - silent_at < 3000 or h.now < silent_at  # (clock wraps)
    h.run(12000)
    assert model.link == LINK_ASLEEP  # answered before, now not a single byte
    assert model.line == LINE_SILENT
    kinds = [log.entry(k)[0] for k in range(len(log))]
    assert EV_LINK in kinds


def test_recovers_within_two_poll_intervals_after_silence():
    h, engine, model, _ = make(poll_ms=1000)
    h.run_until(lambda: model.link == LINK_OK, 2000)
    h.bms.silent = True
    h.run(4000)
    assert model.link == LINK_STALE
    h.bms.silent = False
    assert h.run_until(lambda: model.link == LINK_OK, 2000)
    h.bms.silent = True
    h.run(15000)
    assert model.link == LINK_ASLEEP
    h.bms.silent = False
    # Within two poll intervals, although the engine is searching again
    # (every other attempt is the one that worked).
    assert h.run_until(lambda: model.link == LINK_OK, 2000)


def test_a_dropped_reply_does_not_change_the_protocol():
    h, engine, model, _ = make()
    h.run_until(lambda: model.link == LINK_OK, 2000)
    h.bms.drop = 2
    h.run(5000)
    assert model.link == LINK_OK
    assert all(f == commands.status_request("new") for f in h.sent)
    assert engine.stats.timeouts == 2


def test_noise_is_diagnosed():
    bms = FakeBms()
    bms.garble_all = True
    h, engine, model, _ = make(bms)
    h.run(12000)
    assert model.link == LINK_LOST and model.line == LINE_NOISE
    assert not model.has_data


def test_unpowered_and_silent_wiring():
    bms = FakeBms()
    bms.silent = True
    h, engine, model, _ = make(bms)
    h.run(8000)
    assert model.link == LINK_LOST and model.line == LINE_SILENT
    engine.set_powered(False, h.now)
    sent = len(h.sent)
    h.run(3000)
    assert model.link == LINK_UNPOWERED and len(h.sent) == sent  # no polls into a dead port


def test_a_display_makes_the_bridge_listen_and_command_in_the_gaps():
    display = Display(period_ms=1000)
    h, engine, model, _ = make(display=display, passive_hold_ms=5000)
    h.run_until(lambda: model.passive, 3000)
    assert model.passive and engine.stats.foreign_frames >= 1
    polls = engine.stats.polls
    h.run(6000)
    assert engine.stats.polls == polls  # no polls of our own while passive
    assert model.link == LINK_OK and model.line == LINE_FOREIGN  # fed by the display's replies
    c = h.command("charge-off", 8000)
    assert c.finished()
    assert c.state == cmd.DONE, c.reason
    assert h.bms.st.charge_mos == 15 and model.status.charge_mos == 15
    assert h.collisions == 0
    # The display goes away: we poll again.
    h.display = None
    h.run(8000)
    assert not model.passive and engine.stats.polls > polls


def test_a_dead_line_under_a_display_is_diagnosed_silent_not_foreign():
    # The TTL side loses power while a display was master: no display
    # traffic and no BMS. The display's missed polls end passive listening
    # long before the hold limit; the bridge's own polls find the line silent
    # and the hint says the BMS stopped (not "no bytes at all", not "another
    # master").
    display = Display(period_ms=1000)
    h, engine, model, _ = make(display=display, passive_hold_ms=30000)
    h.run_until(lambda: model.passive and model.link == LINK_OK, 4000)
    assert model.line == LINE_FOREIGN
    h.display = None
    h.bms.silent = True
    h.run(6000)
    assert not model.passive and engine.stats.polls >= 3
    assert model.link == LINK_STALE and model.line == LINE_SILENT
    d = describe_link(model, engine, h.now)
    assert "stopped answering" in d["hint"] and "Another master" not in d["hint"]
    assert "No bytes from the BMS at all" not in d["hint"]


def test_new_command_with_ack_and_status_confirmation():
    h, engine, model, log = make()
    h.run_until(lambda: model.link == LINK_OK, 2000)
    done = []
    c = h.command("discharge-off", 3000, done.append)
    assert c.finished()
    assert c.state == cmd.DONE and done == [c]
    assert commands.control("discharge-off", "new") in h.sent
    assert model.status.discharge_mos == 15
    assert c.describe()["ok"] is True


def test_commands_are_sent_only_between_polls():
    h, engine, model, _ = make(poll_ms=250)
    h.run_until(lambda: model.link == LINK_OK, 2000)
    c = h.command("charge-off", 3000)
    # Every frame went out with no reply still due (no collision on the wire).
    assert h.collisions == 0 and c.state == cmd.DONE


def test_old_command_echo_and_password():
    bms = FakeBms(protocols=("old",), password="12345678")
    h, engine, model, _ = make(bms, password="12345678")
    h.run_until(lambda: model.link == LINK_OK, 3000)
    c = h.command("charge-off", 3000)
    assert c.finished()
    assert c.state == cmd.DONE, c.reason
    assert commands.password("old", "12345678") in h.sent
    assert model.status.charge_mos == 15


def test_wrong_password_is_reported_as_such():
    bms = FakeBms(protocols=("old",), password="12345678")
    h, engine, model, _ = make(bms, password="87654321")
    h.run_until(lambda: model.link == LINK_OK, 3000)
    c = h.command("charge-off", 5000)
    assert c.finished()
    assert c.state == cmd.FAILED and "wrong password" in c.reason
    bms = FakeBms(password="123456789abc")
    h, engine, model, _ = make(bms, password="nope")
    h.run_until(lambda: model.link == LINK_OK, 2000)
    c = h.command("charge-off", 5000)
    assert c.finished()
    assert c.state == cmd.FAILED and "wrong password" in c.reason
    assert h.bms.st.charge_mos == 1


def test_missing_password_and_refused_commands_say_why():
    bms = FakeBms(protocols=("old",), password="12345678")
    h, engine, model, _ = make(bms)
    h.run_until(lambda: model.link == LINK_OK, 3000)
    c = h.command("charge-off", 3000)
    assert c.state == cmd.FAILED and "requires a password" in c.reason
    h, engine, model, _ = make(FakeBms(password="x"))
    h.run_until(lambda: model.link == LINK_OK, 2000)
    c = h.command("buzzer-on", 3000)
    assert c.state == cmd.FAILED and "no permission" in c.reason
    h, engine, model, _ = make(FakeBms(protocols=("old",)))
    h.run_until(lambda: model.link == LINK_OK, 3000)
    c = h.command("buzzer-on", 1000)
    assert c.state == cmd.FAILED and "old protocol" in c.reason


def test_an_ignored_command_is_retried_a_bounded_number_of_times():
    bms = FakeBms()
    bms.ignore_controls = True  # ACKs but nothing changes
    h, engine, model, _ = make(bms)
    h.run_until(lambda: model.link == LINK_OK, 2000)
    c = h.command("charge-off", 15000)
    assert c.finished()
    assert c.state == cmd.FAILED and c.attempts == 3
    assert "did not change" in c.reason
    assert h.bms.commands.count(0x04) == 3


def test_a_lost_ack_is_retried_and_the_command_lands():
    h, engine, model, _ = make()
    h.run_until(lambda: model.link == LINK_OK, 2000)
    c = cmd.Command("charge-off")
    engine.submit(c, h.now)
    h.bms.drop = 1  # the first ACK is lost on the wire
    assert h.run_until(c.finished, 5000)
    assert c.state == cmd.DONE and c.attempts == 2


def test_old_balancer_on_and_off_never_flip_back():
    bms = FakeBms(protocols=("old",))
    h, engine, model, _ = make(bms)
    h.run_until(lambda: model.link == LINK_OK, 3000)
    c = h.command("balancer-on", 3000)
    assert c.state == cmd.DONE and bms.balancer_toggle == 1
    # Asking again for "on" sends nothing: the state is known from the echo.
    before = len(bms.commands)
    c = h.command("balancer-on", 1000)
    assert c.state == cmd.DONE and len(bms.commands) == before
    # A lost echo is not repeated blindly: it would toggle back.
    bms.drop = 1
    c = h.command("balancer-off", 3000)
    assert c.state == cmd.FAILED and "flip back" in c.reason
    assert bms.balancer_toggle == 0 and bms.commands.count(0xFC) == 2


def test_reboot_is_not_acknowledged_by_design():
    h, engine, model, _ = make()
    h.run_until(lambda: model.link == LINK_OK, 2000)
    c = h.command("reboot", 3000)
    assert c.state == cmd.DONE and "does not acknowledge" in c.note


def test_commands_wait_for_the_link_and_fail_with_the_reason():
    bms = FakeBms()
    bms.silent = True
    h, engine, model, _ = make(bms, command_timeout_ms=4000)
    c = h.command("charge-on", 6000)
    assert c.state == cmd.FAILED and "not answering" in c.reason
    for _ in range(4):
        engine.submit(cmd.Command("charge-on"), h.now)
    extra = cmd.Command("charge-on")
    assert not engine.submit(extra, h.now)
    assert extra.state == cmd.FAILED and "queue full" in extra.reason


def test_sign_inversion_and_fitted_probes_apply_to_the_model():
    h, _, model, _ = make(invert_current=True, probes_fitted=1)
    h.run_until(lambda: model.link == LINK_OK, 2000)
    assert model.status.current_da == -50 and model.status.power_w == -265
    assert model.status.temps_c[0] == 21 and model.status.temps_c[1] == TEMP_NONE
    assert model.status.probe_count == 1


def test_generation_bumps_on_every_fresh_status():
    h, engine, model, _ = make(poll_ms=500)
    h.run_until(lambda: model.link == LINK_OK, 2000)
    g = model.generation
    h.run(2000)
    assert model.generation - g >= 4


def test_recovery_from_sleep_is_fast_whenever_the_bms_wakes():
    # Wherever the search is when the BMS answers again, the link is back
    # within two poll intervals.
    for wake_after in (12000, 12300, 12600, 13100, 13700, 14400):
        h, engine, model, _ = make(FakeBms(protocols=("old",)), poll_ms=1000)
        assert h.run_until(lambda: model.link == LINK_OK, 3000)
        h.bms.silent = True
        h.run(wake_after)
        assert model.link == LINK_ASLEEP
        h.bms.silent = False
        assert h.run_until(lambda: model.link == LINK_OK, 2000), wake_after
        assert model.protocol == PROTOCOL_OLD


def test_search_after_a_loss_still_finds_another_generation():
    h, engine, model, _ = make(FakeBms(protocols=("new",)))
    assert h.run_until(lambda: model.link == LINK_OK, 2000)
    assert engine.learned() == (PROTOCOL_NEW, 19200, 0)
    h.bms = FakeBms(protocols=("old",), baud=9600)  # the BMS was swapped
    h.run(11000)
    assert model.link != LINK_OK
    assert h.run_until(lambda: model.link == LINK_OK and model.protocol == PROTOCOL_OLD, 15000)
    assert engine.baud == 9600 and engine.learned() == (PROTOCOL_OLD, 9600, 0)


def test_remembered_protocol_is_asked_first():
    h, engine, model, _ = make(FakeBms(protocols=("old",)))
    assert engine.remember(PROTOCOL_OLD, 19200, 0)
    assert not engine.remember(PROTOCOL_OLD, 4800, 0)  # not a combination we try
    assert h.run_until(lambda: model.link == LINK_OK, 1000)
    assert h.sent[0] == commands.status_request("old", 0)


def test_poll_interval_is_configurable_down_to_the_link_limit():
    h, engine, model, _ = make(poll_ms=3000)
    h.run_until(lambda: model.link == LINK_OK, 2000)
    polls = engine.stats.polls
    h.run(12000)
    assert 3 <= engine.stats.polls - polls <= 5
    h, engine, model, _ = make(poll_ms=50)  # faster than the link carries
    assert engine.poll_ms() == 250
    h.run_until(lambda: model.link == LINK_OK, 2000)
    polls = engine.stats.polls
    h.run(5000)
    assert 18 <= engine.stats.polls - polls <= 21
    assert engine.stats.timeouts == 0 and h.collisions == 0
    # A bench whose BMS answers fast may lower the floor (the fake BMS
    # answers in 40 ms plus the frame): 10 polls a second instead of 4.
    h, engine, model, _ = make(poll_ms=50, poll_floor_ms=100)
    assert engine.poll_ms() == 100
    h.run_until(lambda: model.link == LINK_OK, 2000)
    polls = engine.stats.polls
    h.run(5000)
    assert 48 <= engine.stats.polls - polls <= 51
    assert engine.stats.timeouts == 0


def test_statistics_count_what_happened_on_the_line():
    h, engine, model, _ = make()
    h.run_until(lambda: model.link == LINK_OK, 2000)
    ok = engine.stats.frames_ok
    h.bms.flip = 1
    h.run(2200)
    stats = engine.stats
    assert stats.checksum_errors == 1 and stats.timeouts == 1
    assert stats.resyncs >= 1 and stats.bytes_dropped > 0
    assert stats.last_error == ERR_CHECKSUM  # the cause, not the timeout it led to
    assert stats.frames_ok - ok >= 1 and model.link == LINK_OK
    h.bms.drop = 1
    h.run(1500)
    assert stats.timeouts == 2 and stats.last_error == ERR_TIMEOUT
    assert stats.tx_frames == stats.polls
    # Every reply corrupted. After a loss the BMS recovered from (one of the
    # two polls before), the stale spell reads as one more of them
    # (intermittent) as long as a run that long is at all likely at that
    # rate; then the line looks like noise (by then the link is lost).
    h.bms.flip = 100
    h.run(3000)
    assert model.link == LINK_STALE and model.line == LINE_INTERMITTENT
    assert h.run_until(lambda: model.line == LINE_NOISE, 12000)
    assert stats.checksum_errors >= 10
    assert stats.checksum_errors >= 4


def test_describe_link_for_the_faces():
    h, engine, model, _ = make()
    d = describe_link(model, engine, h.now)
    assert d["state"] == "lost" and d["live"] is False and d["data_age_ms"] is None
    assert d["protocol"] is None and d["alarms"] == []
    h.run_until(lambda: model.link == LINK_OK, 2000)
    h.bms.st.charge_mos = 2
    h.run(1500)
    d = describe_link(model, engine, h.now)
    assert d["state"] == "ok" and d["live"] is True and d["line"] == "ok"
    assert d["protocol"] == "new" and d["baud"] == 19200 and d["passive"] is False
    assert 0 <= d["data_age_ms"] < 1100
    assert d["stats"]["frames_ok"] >= 2 and d["stats"]["timeouts"] == 0
    assert d["alarms"] == [{"code": 130, "name": "cell over-voltage", "source": "charge_mos"}]
    s = snapshot(model, engine, h.now)
    assert s["live"] is True and s["pack_voltage_v"] == 53.0 and s["current_a"] == 5.0
    assert s["charge_mos"]["text"] == "cell over-voltage" and s["link"]["state"] == "ok"


def test_a_stale_or_asleep_link_is_flagged_with_the_hint():
    h, engine, model, _ = make()
    h.run_until(lambda: model.link == LINK_OK, 2000)
    h.bms.silent = True
    h.run(3000)
    s = snapshot(model, engine, h.now)
    assert s["live"] is False and s["link"]["state"] == "stale"
    assert s["data_age_ms"] >= 2500 and s["pack_voltage_v"] == 53.0  # last values, flagged
    h.run(10000)
    d = describe_link(model, engine, h.now)
    assert d["state"] == "asleep" and d["live"] is False and "asleep" in d["hint"]
    assert d["last_error"]["error"] in ("timeout", "silent")
    engine.set_powered(False, h.now)
    h.run(100)
    d = describe_link(model, engine, h.now)
    assert d["state"] == "unpowered" and d["powered"] is False and "supply off" in d["hint"]


def test_a_silent_line_from_boot_gives_the_wiring_hint():
    bms = FakeBms()
    bms.silent = True
    h, engine, model, _ = make(bms)
    h.run(1000)
    assert model.line == LINE_UNKNOWN  # the first attempts are still out
    h.run(1500)  # diagnosed long before the search has tried every protocol and baud
    assert model.line == LINE_SILENT and engine.detector.rounds == 0
    h.run(5500)
    d = describe_link(model, engine, h.now)
    assert d["state"] == "lost" and d["line"] == "silent" and "VCC" in d["hint"]
    assert engine.stats.last_error == ERR_SILENT and d["last_error"]["error"] == "silent"
    s = snapshot(model, engine, h.now)
    assert s["live"] is False and s["pack_voltage_v"] is None and s["data_age_ms"] is None


def test_when_the_display_leaves_polling_resumes_in_its_protocol():
    display = Display(period_ms=1000, protocol="old")
    h, engine, model, _ = make(FakeBms(protocols=("old",)), display=display, passive_hold_ms=3000)
    assert h.run_until(lambda: model.passive and model.link == LINK_OK, 4000)
    assert model.protocol == PROTOCOL_OLD
    h.display = None
    sent = len(h.sent)
    assert h.run_until(lambda: not model.passive, 5000)
    h.run(2000)
    assert h.sent[sent] == commands.status_request("old", 0)  # not a NEW probe first
    assert model.link == LINK_OK and engine.detector.locked
    assert all(f == commands.status_request("old", 0) for f in h.sent[sent:])


def test_the_bridge_never_talks_into_a_displays_exchange():
    # Whenever the display starts polling relative to the bridge (before its
    # first poll, between its polls, right after them), no frame of the
    # bridge goes out while a display request awaits its reply.
    for first in (0, 100, 290, 310, 700, 1010, 1500, 2037):
        display = Display(period_ms=1000, first_ms=first)
        h, engine, model, _ = make(display=display, passive_hold_ms=5000)
        h.run(6000)
        assert model.passive and model.link == LINK_OK, first
        assert h.collisions == 0, first
        c = h.command("charge-off", 8000)
        assert c.finished()
        assert c.state == cmd.DONE, (first, c.reason)
        assert h.collisions == 0, first


def test_a_display_is_heard_before_the_bridge_first_talks():
    # On a real port a request reaches the bridge a few ms after the display
    # sent it, so an active poll can race it. The default first listen is
    # longer than a display's period: whatever its phase, the display's first
    # request comes before the bridge's first frame.
    assert LinkConfig().listen_first_ms > 1000
    for first in range(0, 1000, 50):
        display = Display(period_ms=1000, first_ms=first)
        h, engine, model, _ = make(display=display)
        assert h.run_until(lambda: display.polls >= 1, 1100), first
        assert h.sent == [], first
        h.run(3000)
        assert model.passive and model.link == LINK_OK and h.collisions == 0, first
        assert h.sent == [], first  # passive: the display's polls bring the data


def test_the_first_poll_waits_for_an_exchange_already_under_way():
    # The display's request went out just before the bridge started
    # listening; the BMS's reply is still due.
    display = Display(period_ms=1000, first_ms=0)
    display.unseen = 1
    h, engine, model, _ = make(display=display)
    h.run(1500)
    assert h.collisions == 0 and model.passive


def test_without_passive_mode_polls_still_avoid_the_displays_exchanges():
    display = Display(period_ms=700, first_ms=1200)
    h, engine, model, _ = make(display=display, passive=False, poll_ms=250)
    h.run(10000)
    assert not model.passive and model.link == LINK_OK
    assert engine.stats.foreign_frames >= 10
    assert h.collisions == 0


def test_power_cycle_of_the_ttl_port_recovers_within_two_polls():
    h, engine, model, _ = make(poll_ms=1000)
    assert h.run_until(lambda: model.link == LINK_OK, 2000)
    engine.set_powered(False, h.now)
    h.run(20000)
    assert model.link == LINK_UNPOWERED and not model.live()
    engine.set_powered(True, h.now)
    assert h.run_until(lambda: model.link == LINK_OK, 2000)


def test_statistics_and_generation_wrap_to_zero_without_forming_2_30():
    import sys

    Small = int  # MicroPython: int-vs-subclass comparisons fail, so values only
    if sys.implementation.name == "cpython":
        from test_lib_ticks import Small
    from ticks import COUNTER_MAX

    model = Model()
    log = EventLog(4)
    engine = LinkEngine(model, LinkConfig(), log)
    engine.stats.rx_bytes = Small(COUNTER_MAX - 1)
    engine.feed(bytearray(b"\x00\x00\x00\x00\x00"), 5, 1000)
    assert engine.stats.rx_bytes == 3
    model.generation = Small(COUNTER_MAX)
    model.touch()
    assert model.generation == 0
    for i in range(4):
        log.add(EV_LINK, i)
    log.count = Small(COUNTER_MAX)
    log.add(EV_LINK, 9)
    assert log.count == 0
    assert len(log) == 4 and log.newest(1)[0][1] == 9  # still a full log


def test_data_older_than_half_the_ticks_period_never_reads_as_live():
    # A BMS silent for a week (winter storage, bridge on another supply):
    # ticks_diff() can only measure +-2**29 ms (6.2 days), so an unbounded age
    # would turn negative and the week-old status would read as fresh (OK,
    # live, age 0) to the rules and the API.
    h, engine, model, log = make()
    assert h.run_until(lambda: model.link == LINK_OK, 10000)
    h.bms.silent = True
    worst_age = 0
    for _ in range(24 * 8):  # eight days in 1 h steps, the engine ticked each
        h.run(10)
        h.now = ticks_add(h.now, 3600000)
        h.run(10)
        assert model.link in (LINK_LOST, LINK_ASLEEP), model.link
        age = model.age_ms(h.now)
        assert age >= 3600000, age
        worst_age = age if age > worst_age else worst_age
    assert worst_age >= 0x10000000  # ages saturate: "at least ~3.1 days"
    h.bms.silent = False
    assert h.run_until(lambda: model.link == LINK_OK, 10000)  # polling resumed
    assert 0 <= model.age_ms(h.now) < 2000
    # The same across a week with the TTL side's supply off (on_demand).
    engine.set_powered(False, h.now)
    for _ in range(24 * 8):
        h.now = ticks_add(h.now, 3600000)
        h.run(10)
        assert model.link == LINK_UNPOWERED
    engine.set_powered(True, h.now)
    assert model.link != LINK_OK and model.age_ms(h.now) >= 0x10000000
    assert h.run_until(lambda: model.link == LINK_OK, 10000)


# -- the link tells the truth: displays that leave, lost and slow replies ----------------


def test_a_display_that_stops_is_given_up_mid_gap_and_the_link_stays_live():
    # The bridge is passive behind a display polling each second (hold limit
    # 15 s, more than lost_ms). The display is unplugged: the bridge polls
    # again half a period after the display's first missed poll, before the
    # data goes stale, and the link never leaves "ok".
    for period in (1000, 800, 2000):
        display = Display(period_ms=period)
        h, engine, model, log = make(display=display)
        assert h.run_until(lambda: model.passive and model.link == LINK_OK, 4000)
        h.run(2 * period)  # its rhythm is known
        polls = engine.stats.polls
        h.run(3 * period)
        assert model.passive and engine.stats.polls == polls
        events = log.count
        h.display = None
        last_request = display.requests[-1]
        sent = len(h.sent)
        states = set()
        while len(h.sent) == sent:
            h.step()
            states.add(model.link)
        gap = ticks_diff(h.now, last_request)
        # Not before the exchange of its missed poll would have ended, not
        # later than half a period after that poll (a slow display's data
        # goes stale earlier: then the bridge takes over at once).
        assert period + 250 <= gap <= period + period // 2 + 50, (period, gap)
        assert not model.passive
        h.run(12000)
        for _ in range(100):
            h.step()
            states.add(model.link)
        if period <= 1000:
            # The display's last reply is at most 1.5 periods + one reply old
            # when ours arrives: still fresh at the default 2.5 s stale limit.
            assert states == {LINK_OK}, (period, states)
            assert log.count == events  # no link event at all
        assert model.link == LINK_OK and model.line == LINE_OK, period
        d = describe_link(model, engine, h.now)
        assert d["passive"] is False and "Another master" not in d["hint"]
        assert h.collisions == 0 and h.talked_into == 0


def test_a_display_that_skips_polls_is_not_talked_into():
    # Leaving passive mid-gap: a display that merely skipped a poll comes
    # back half a period after the bridge's poll, which has long ended.
    for period, skip in ((1000, (5, 9, 10)), (400, (5, 9, 10)), (400, (5, 12))):
        display = Display(period_ms=period)
        display.skip = skip
        h, engine, model, _ = make(display=display)
        h.run(15 * period)
        assert h.collisions == 0 and h.talked_into == 0, period
        assert model.passive and model.link == LINK_OK, period
        if period == 1000:
            assert engine.stats.polls >= 2  # it took over in each gap ...
        elif len(skip) == 2:
            # ... but a fast display (400 ms) is given 2.5 periods: one
            # skipped poll does not make the bridge talk.
            assert engine.stats.polls == 0


def test_a_late_reply_is_ours_and_the_timeout_adapts_to_a_slow_bms():
    # Replies 520 ms after the request, beyond the default 500 ms timeout:
    # the first ones come late, are taken as ours (never as another master's
    # traffic), and the timeout grows so that the next ones are on time.
    bms = FakeBms()
    h, engine, model, _ = make(bms)
    assert h.run_until(lambda: model.link == LINK_OK, 2000)
    assert engine.reply_timeout_ms() == 500 and model.line == LINE_OK
    bms.extra_latency = 480
    states = set()
    for _ in range(20 * 200):  # 20 s
        h.step()
        states.add(model.link)
    stats = engine.stats
    assert states == {LINK_OK}
    assert not model.passive and stats.foreign_frames == 0
    assert 1 <= stats.late_replies <= 2
    assert 515 <= engine.reply_ms() <= 530
    assert 600 < engine.reply_timeout_ms() <= engine.timeout_limit_ms() == 900
    timeouts = stats.timeouts
    h.run(10000)
    assert stats.timeouts == timeouts  # every reply in time now
    assert model.line == LINE_SLOW
    d = describe_link(model, engine, h.now)
    assert d["line"] == "slow" and d["reply_ms"] == engine.reply_ms()
    assert "slowly" in d["hint"] and ("%d ms" % engine.reply_ms()) in d["hint"]
    assert ("%d ms" % engine.reply_timeout_ms()) in d["hint"]
    # Fast again: the timeout decays back to the default, the line is ok.
    bms.extra_latency = 0
    h.run(60000)
    assert engine.reply_timeout_ms() == 500 and model.line == LINE_OK


def test_the_adaptive_timeout_is_bounded_by_the_poll_interval():
    for poll, latency in ((1000, 1500), (250, 700), (3000, 9000)):
        bms = FakeBms()
        h, engine, model, _ = make(bms, poll_ms=poll)
        assert h.run_until(lambda: model.link == LINK_OK, 2000)
        bms.extra_latency = latency
        worst = 0
        for i in range(4000):
            h.step()
            t = engine.reply_timeout_ms()
            worst = t if t > worst else worst
            if i % 200 == 0:
                del h.wire[:]  # a device-sized heap under MicroPython
                del h.sent[:]
        limit = max(500, min(poll * 9 // 10, 3000))
        assert engine.timeout_limit_ms() == limit
        assert worst <= limit, (poll, latency, worst)
        assert not model.passive and engine.stats.foreign_frames == 0, (poll, latency)


def test_a_slow_bms_found_while_searching_is_locked_not_taken_for_a_display():
    # From boot the BMS answers 520 ms after a request: the NEW request
    # times out, the search asks OLD, and the NEW reply arrives meanwhile.
    bms = FakeBms(protocols=("new",))
    bms.extra_latency = 480
    h, engine, model, _ = make(bms)
    assert h.run_until(lambda: model.link == LINK_OK, 4000)
    assert model.protocol == PROTOCOL_NEW and engine.detector.locked
    assert not model.passive and engine.stats.foreign_frames == 0
    h.run(10000)
    assert model.link == LINK_OK and engine.detector.locked and model.protocol == PROTOCOL_NEW


def test_a_bms_that_never_answers_still_ends_lost_with_the_wiring_hint():
    bms = FakeBms()
    bms.silent = True
    h, engine, model, _ = make(bms)
    h.run(15000)
    assert engine.reply_timeout_ms() == engine.default_timeout_ms() and engine.reply_ms() == 0
    assert model.link == LINK_LOST and model.line == LINE_SILENT
    d = describe_link(model, engine, h.now)
    assert "No bytes from the BMS at all" in d["hint"] and d["loss_pct"] is None and d["reply_ms"] is None
    # A slow BMS that then stops: asleep, the timeout still bounded.
    bms = FakeBms()
    bms.extra_latency = 600
    h, engine, model, _ = make(bms)
    assert h.run_until(lambda: model.link == LINK_OK, 4000)
    h.run(10000)
    bms.silent = True
    h.run(15000)
    assert model.link == LINK_ASLEEP and "asleep" in describe_link(model, engine, h.now)["hint"]
    assert engine.reply_timeout_ms() <= engine.timeout_limit_ms()


def test_intermittent_replies_are_named_with_the_loss_rate():
    # Two replies of three lost: stale spells between the answered polls.
    # Every one of them is called intermittent, with the loss rate; never
    # "no bytes at all".
    bms = FakeBms()
    h, engine, model, _ = make(bms)
    assert h.run_until(lambda: model.link == LINK_OK, 2000)
    bms.drop_pattern = (0, 1, 1)
    # The first spell may come before any loss the BMS recovered from:
    # nothing says "intermittent" then (see the next test).
    h.run(5000)
    stale_lines = set()
    ok_lines = set()
    for _ in range(60 * 200):  # a minute
        h.step()
        if model.link == LINK_STALE:
            stale_lines.add(model.line)
        elif model.link == LINK_OK:
            ok_lines.add(model.line)
        else:
            assert False, model.link
    assert stale_lines == {LINE_INTERMITTENT}, stale_lines
    d = describe_link(model, engine, h.now)
    assert d["line"] == "intermittent" and d["window"] == 32
    assert 62 <= d["loss_pct"] <= 69
    assert ("%d %% of the last 32 polls" % d["loss_pct"]) in d["hint"], d["hint"]
    assert "No bytes" not in d["hint"] and "intermittent" in d["hint"]
    # The line heals: once the window is clean again, it is ok.
    bms.drop_pattern = None
    h.run(40000)
    assert model.link == LINK_OK and model.line == LINE_OK
    assert describe_link(model, engine, h.now)["loss_pct"] == 0


def test_an_occasional_lost_reply_is_not_intermittent_and_a_stop_is_not_either():
    bms = FakeBms()
    h, engine, model, _ = make(bms)
    assert h.run_until(lambda: model.link == LINK_OK, 2000)
    bms.drop_pattern = (1,) + (0,) * 19  # 5 %
    h.run(40000)
    assert model.link == LINK_OK and model.line == LINE_OK
    # A BMS that answered well and stops: it stopped (silent), not intermittent.
    bms.drop_pattern = None
    bms.silent = True
    h.run(4000)
    assert model.link == LINK_STALE and model.line == LINE_SILENT
    assert "stopped answering" in describe_link(model, engine, h.now)["hint"]
    # After intermittent replies, a long enough silence is a stop as well.
    bms.silent = False
    bms.drop_pattern = (0, 1)
    h.run(40000)
    assert model.line == LINE_INTERMITTENT
    bms.silent = True
    h.run(9000)  # nine polls in a row lost: 0.2 % likely at 50 % loss, still intermittent
    assert model.link == LINK_STALE and model.line == LINE_INTERMITTENT
    assert h.run_until(lambda: model.line == LINE_SILENT, 3000)  # ten: under 0.1 % likely


def test_a_display_whose_requests_are_not_seen_is_still_found_by_its_replies():
    # Wiring where the bridge hears only the BMS's TX: a display's replies
    # come while no poll of ours is outstanding, so they are not ours.
    display = Display(period_ms=1000, first_ms=2300)
    display.unseen = 1000000
    h, engine, model, _ = make(display=display)
    assert h.run_until(lambda: model.link == LINK_OK, 2000) and not model.passive
    assert h.run_until(lambda: model.passive, 5000)
    assert engine.stats.foreign_frames >= 1
