# mp-heap: 176K
# Parameter jobs (lib/link/paramjob.py) in the link engine on the virtual bus
# (linkharness): reading every parameter of both generations (NEW in the
# vendor app's page blocks, OLD register by register), writing one with the
# password, the apply/save frame and a read-back, bounded attempts with a
# reason, status polls that go on between the exchanges, commands that go
# first, a display's gaps, a bus that echoes. CPython and MicroPython.
from ant import commands
from ant import params as P
from ant.status import PROTOCOL_NEW, PROTOCOL_OLD
from eventlog import EventLog
from link import paramjob as PJ
from link.paramvalues import V_NA, Values
from link.command import Command
from link.engine import LinkConfig, LinkEngine
from link.model import LINK_OK, Model
from linkharness import Display, FakeBms, Harness
from ticks import ticks_diff
from vectorset import unhex, vectors


def make(bms, display=None, **settings):
    config = LinkConfig()
    if display is None:
        config.listen_first_ms = 300
    for key in settings:
        setattr(config, key, settings[key])
    model = Model()
    engine = LinkEngine(model, config, EventLog(32))
    h = Harness(engine, bms, display)
    h.record = False  # the replies' record: not needed here, and long runs would fill the heap
    return h, engine, model


def new_value(i):
    return 1000 + 7 * i  # a distinct value per row


def old_value(i):
    return 200 + 3 * i


def new_bms(**kw):
    bms = FakeBms(protocols=("new",), **kw)
    for i in range(P.COUNT):
        addr = P.ROWS[i][P.NEW_ADDR]
        if addr >= 0:
            n = P.size(i)
            v = new_value(i) + (0x30000 if n == 4 else 0)
            bms.new_mem[addr : addr + n] = v.to_bytes(n, "little")
    return bms


def old_bms(**kw):
    bms = FakeBms(protocols=("old",), **kw)
    for i in range(P.COUNT):
        reg = P.ROWS[i][P.OLD_REG]
        if reg:
            bms.old_regs[reg] = old_value(i)
            if P.ROWS[i][P.KIND] == P.K_U32:
                bms.old_regs[reg + 1] = 2
    return bms


def live(bms, display=None, **settings):
    h, engine, model = make(bms, display, **settings)
    assert h.run_until(lambda: model.link == LINK_OK, 4000)
    return h, engine, model


def run_job(h, engine, job, limit_ms=30000):
    engine.submit_job(job, h.now)
    start = h.now
    assert h.run_until(job.finished, limit_ms), (job.state, job.reason)
    return ticks_diff(h.now, start)


def param_frames(h, first):
    """Frames the engine sent from index `first` on, status polls left out."""
    polls = (commands.status_request("new"), commands.status_request("old", 0))
    return [f for f in h.sent[first:] if f not in polls]


def test_reads_every_new_parameter_in_the_apps_page_blocks():
    bms = new_bms()
    h, engine, model = live(bms)
    values = Values()
    first = len(h.sent)
    job = PJ.ParamJob(PJ.READ_ALL, values)
    run_job(h, engine, job)
    assert job.state == PJ.DONE and job.reason == ""
    for i in range(P.COUNT):
        if P.offered(i, PROTOCOL_NEW):
            expected = new_value(i) + (0x30000 if P.ROWS[i][P.KIND] == P.K_U32 else 0)
            assert values.raw(i) == expected, (P.ROWS[i][P.KEY], values.raw(i))
        else:
            assert values.raw(i) is None  # OLD-only rows stay unread
    # One block read per page: the first is the app's own request (reference vector).
    assert param_frames(h, first) == [commands.read_param("new", a, n) for a, n in P.NEW_PAGES]
    assert param_frames(h, first)[0] == unhex("7ea10200003899b3aa55")
    assert model.link == LINK_OK


def test_decodes_the_references_block_read_reply():
    # The 16S LiFePO4 voltage page of the reference's vectors (0x12 reply
    # with its FF 0B trailer) and the words it decodes to.
    for _, v in vectors():
        if v["hex"].startswith("7ea112000038"):
            frame = unhex(v["hex"])
            words = v["expected"]["words_le"]
            break
    else:
        raise AssertionError("the block read vector is missing")
    values = Values()
    job = PJ.ParamJob(PJ.READ_ALL, values)
    assert job.begin(PROTOCOL_NEW, None, 0) == ""
    assert job.frame() == commands.read_param("new", 0x0000, 0x38)
    assert job.on_new(frame, 0, len(frame)) is True
    checked = 0
    for i in range(P.COUNT):
        addr = P.ROWS[i][P.NEW_ADDR]
        if 0 <= addr < 0x38:
            assert values.raw(i) == words["0x%04X" % addr], P.ROWS[i][P.KEY]
            checked += 1
    assert checked == 24  # every documented address of the page
    assert values.raw(P.find("cell_ov_protection_mv")) == 3650 and values.raw(P.find("pack_ov_protection_v")) == 608


def test_reads_every_old_register_including_both_words_of_u32_values():
    bms = old_bms()
    cap = P.find("capacity_ah")
    remaining = P.find("remaining_capacity_ah")
    del bms.old_regs[P.ROWS[remaining][P.OLD_REG]]  # reads FFFF: "not available" (Wnt's unit)
    cold = P.find("charge_ut_protection_c")
    bms.old_regs[P.ROWS[cold][P.OLD_REG]] = 0x10000 - 5  # -5 °C
    h, engine, model = live(bms)
    values = Values()
    first = len(h.sent)
    job = PJ.ParamJob(PJ.READ_ALL, values)
    took = run_job(h, engine, job)
    assert job.state == PJ.DONE, job.reason
    for i in range(P.COUNT):
        if not P.offered(i, PROTOCOL_OLD) or i in (cap, remaining, cold):
            continue
        expected = old_value(i) + (2 * 65536 if P.ROWS[i][P.KIND] == P.K_U32 else 0)
        assert values.raw(i) == expected, (P.ROWS[i][P.KEY], values.raw(i))
    assert values.raw(cap) == 2 * 65536 + old_value(cap)  # low word at register 31, high at 32
    assert values.raw(remaining) is None and values.state[remaining] == V_NA
    assert values.raw(cold) == -5
    regs = [f[2] for f in param_frames(h, first)]
    expected_regs = []
    for i in range(P.COUNT):
        reg = P.ROWS[i][P.OLD_REG]
        if reg:
            expected_regs += [reg, reg + 1] if P.ROWS[i][P.KIND] == P.K_U32 else [reg]
    assert regs == expected_regs
    assert all(f == commands.read_param("old", f[2]) for f in param_frames(h, first))
    # Status polls went on between the exchanges: the link never left ok.
    assert model.link == LINK_OK
    assert took > 2 * engine.poll_ms()


def test_status_polls_go_on_during_a_long_read():
    bms = old_bms()
    h, engine, model = live(bms, poll_ms=250)
    before = bms.requests
    job = PJ.ParamJob(PJ.READ_ALL, Values())
    engine.submit_job(job, h.now)
    start = h.now
    worst = 0
    while not job.finished():
        h.step()
        worst = max(worst, model.age_ms(h.now))
        assert model.link == LINK_OK
    took = ticks_diff(h.now, start)
    assert job.state == PJ.DONE
    assert bms.requests - before >= took // 250 - 1  # every poll went out on time
    assert worst < 250 + 200  # the data never aged past a poll interval and a reply


def test_writes_a_new_parameter_with_password_save_and_read_back():
    bms = new_bms(password="123456789abc")
    h, engine, model = live(bms, password="123456789abc")
    values = Values()
    row = P.find("cell_ov_protection_mv")
    first = len(h.sent)
    job = PJ.ParamJob(PJ.WRITE, values, row, 3650)
    run_job(h, engine, job)
    assert job.state == PJ.DONE, job.reason
    assert values.raw(row) == 3650 and bms.new_mem[0] | bms.new_mem[1] << 8 == 3650
    assert param_frames(h, first) == [
        commands.password("new", "123456789abc"),
        unhex("7ea122000002420ebdecaa55"),  # write 3650 to 0x0000: the app's frame in the reference
        unhex("7ea15107000038e4aa55"),  # save (control 0x07), the reference's frame
        commands.read_param("new", 0x0000, 2),
    ]
    assert bms.saves == 1


def test_writes_an_old_parameter_with_password_apply_and_read_back():
    bms = old_bms(password="12345678")
    h, engine, model = live(bms, password="12345678")
    values = Values()
    row = P.find("charge_ut_protection_c")
    first = len(h.sent)
    job = PJ.ParamJob(PJ.WRITE, values, row, -5)
    run_job(h, engine, job)
    assert job.state == PJ.DONE, job.reason
    assert values.raw(row) == -5 and bms.old_regs[37] == 0xFFFB
    assert param_frames(h, first) == [
        commands.password("old", "12345678"),
        unhex("a5a525fffb1f"),  # register 37 = -5, signed 16 bit
        unhex("a5a5ff0000ff"),  # apply
        unhex("5a5a25000025"),  # read back
    ]


def test_a_write_without_the_password_fails_with_the_reason():
    for bms, words in ((new_bms(password="123456789abc"), "no permission"),
                       (old_bms(password="12345678"), "requires a password")):
        h, engine, model = live(bms)
        job = PJ.ParamJob(PJ.WRITE, Values(), P.find("cell_ov_protection_mv"), 3600)
        run_job(h, engine, job)
        assert job.state == PJ.FAILED and words in job.reason, job.reason
        assert bms.param_writes == [] and bms.saves == 0


def test_a_wrong_password_fails_before_anything_is_written():
    for bms in (new_bms(password="123456789abc"), old_bms(password="12345678")):
        h, engine, model = live(bms, password="guess")
        job = PJ.ParamJob(PJ.WRITE, Values(), P.find("cell_ov_protection_mv"), 3600)
        run_job(h, engine, job)
        assert job.state == PJ.FAILED and "wrong password" in job.reason, job.reason
        assert bms.param_writes == []


def test_a_value_the_bms_did_not_take_fails_the_read_back():
    for bms, row_key in ((new_bms(), "balance_on_diff_mv"), (old_bms(), "balance_on_diff_mv")):
        bms.keep_params = True
        h, engine, model = live(bms)
        row = P.find(row_key)
        job = PJ.ParamJob(PJ.WRITE, Values(), row, 20)
        run_job(h, engine, job)
        kept = new_value(row) if bms.protocols == ("new",) else old_value(row)
        assert job.state == PJ.FAILED and job.reason == "the BMS kept %d instead of 20 (read back)" % kept


def test_an_unanswered_exchange_is_tried_a_bounded_number_of_times():
    class NoParams(FakeBms):
        def _handle(self, f, kind, now_ms):
            if f[2] == 0x02 and f[0] == 0x7E:
                return  # reads go unanswered
            FakeBms._handle(self, f, kind, now_ms)

    bms = NoParams(protocols=("new",))
    h, engine, model = live(bms, command_attempts=3)
    first = len(h.sent)
    job = PJ.ParamJob(PJ.READ_ALL, Values())
    run_job(h, engine, job)
    assert job.state == PJ.FAILED
    assert job.reason == "no reply to the read of 56 bytes at 0x0000 after 3 attempts", job.reason
    assert param_frames(h, first) == [commands.read_param("new", 0, 0x38)] * 3
    assert model.link == LINK_OK  # the status polls were answered all along


def test_a_command_goes_before_the_rest_of_a_parameter_read():
    bms = old_bms()
    h, engine, model = live(bms)
    job = PJ.ParamJob(PJ.READ_ALL, Values())
    engine.submit_job(job, h.now)
    h.run(500)
    assert not job.finished() and job.steps()[0] > 0
    c = Command("charge-off")
    engine.submit(c, h.now)
    assert h.run_until(c.finished, 5000)
    assert c.state == 2 and model.status.charge_mos == 15
    assert not job.finished()  # the read waited for it
    assert h.run_until(job.finished, 30000) and job.state == PJ.DONE


def test_parameter_exchanges_use_a_displays_gaps():
    bms = new_bms()
    display = Display(period_ms=1000, first_ms=100)
    h, engine, model = make(bms, display)
    assert h.run_until(lambda: model.passive and model.link == LINK_OK, 5000)
    values = Values()
    job = PJ.ParamJob(PJ.READ_ALL, values)
    run_job(h, engine, job, 20000)
    assert job.state == PJ.DONE, job.reason
    assert values.raw(0) == new_value(0)
    assert h.collisions == 0 and h.talked_into == 0
    assert model.passive  # still the display's bus


def test_a_job_waits_for_a_live_bms_and_says_why_it_gave_up():
    bms = new_bms()
    h, engine, model = live(bms, command_timeout_ms=3000)
    bms.silent = True
    h.run(6000)
    assert model.link != LINK_OK
    job = PJ.ParamJob(PJ.READ_ALL, Values())
    run_job(h, engine, job)
    assert job.state == PJ.FAILED and job.reason == "the BMS is not answering", job.reason


def test_a_bus_that_echoes_our_frames_reads_zero_values_right():
    bms = old_bms()
    bms.old_regs[3] = 0  # a 0 answer is the same six bytes as our request
    h, engine, model = live(bms)
    h.echo = True
    values = Values()
    job = PJ.ParamJob(PJ.READ_ALL, values)
    run_job(h, engine, job)
    assert job.state == PJ.DONE, job.reason
    assert values.raw(P.find("cell_ov_protection_mv")) == 0
    assert values.raw(P.find("cell_ov_recovery_mv")) == old_value(P.find("cell_ov_recovery_mv"))
    assert not model.passive  # our own frames are not another master's


def test_a_write_is_refused_for_a_row_the_generation_lacks():
    bms = new_bms()
    h, engine, model = live(bms)
    job = PJ.ParamJob(PJ.WRITE, Values(), P.find("charge_ot_protection_c"), 50)  # OLD only
    run_job(h, engine, job)
    assert job.state == PJ.FAILED and job.reason == "not offered by the new protocol"


def test_the_parameter_queue_is_bounded():
    bms = new_bms()
    h, engine, model = live(bms)
    jobs = [PJ.ParamJob(PJ.READ_ALL, Values()) for _ in range(3)]
    assert [engine.submit_job(j, h.now) for j in jobs] == [True, True, False]
    assert jobs[2].state == PJ.FAILED and jobs[2].reason == "parameter queue full"
    assert h.run_until(lambda: jobs[1].finished(), 20000)
    assert jobs[0].state == PJ.DONE and jobs[1].state == PJ.DONE


def test_a_busy_poll_schedule_still_leaves_every_other_turn_to_the_job():
    # Status replies that take most of a 250 ms interval: without a turn of
    # its own the read would wait for gaps that never come.
    bms = old_bms()
    h, engine, model = live(bms, poll_ms=250, poll_floor_ms=100)
    bms.extra_latency = 170
    h.run(2000)
    before = bms.requests
    job = PJ.ParamJob(PJ.READ_ALL, Values())
    took = run_job(h, engine, job, 120000)
    assert job.state == PJ.DONE, job.reason
    n = job.steps()[1]
    assert took < n * 600, (took, n)  # a poll and an exchange in turn: the bus shared
    assert bms.requests - before >= n - 1  # ... and the polls kept going
    assert model.link == LINK_OK


def test_an_exchange_cut_by_the_supply_counts_as_unanswered():
    bms = old_bms()
    h, engine, model = live(bms)
    job = PJ.ParamJob(PJ.READ_ALL, Values())
    engine.submit_job(job, h.now)
    assert h.run_until(lambda: job.awaiting, 2000)
    engine.set_powered(False, h.now)  # the frame in flight dies with the supply
    assert not job.awaiting and job.attempts == 2  # the exchange goes again, one attempt used
    engine.set_powered(True, h.now)
    assert h.run_until(job.finished, 40000) and job.state == PJ.DONE, job.reason
