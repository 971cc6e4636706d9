# The OLD system log (lib/ant/syslog.py): the rolling word of consecutive
# status frames fills a 32-slot table, each entry with its table, state code
# text and cell. CPython and MicroPython.
from ant import codes, syslog
from ant.status import NOT_REPORTED, Status
from vectorset import unhex, vectors
from ant import old


def word(slot, code, cell=0, discharge=False):
    return code | cell << 5 | slot << 10 | (0x8000 if discharge else 0)


def test_the_consecutive_frames_of_the_2019_capture_fill_their_slots():
    # The reference's model-2019 capture: nine frames five seconds apart.
    log = syslog.SysLog()
    st = Status()
    frames = 0
    for _, v in vectors():
        if v["protocol"] == "old" and v["direction"] == "response" and "model2019-req-dbdb" in v["source"]:
            frame = unhex(v["hex"])
            if len(frame) == 140:
                old.decode_status(frame, 0, st)
                log.update(st)
                frames += 1
    assert frames == 9 and log.frames == 9
    slots = [s for s in range(32) if log.has(s)]
    assert slots == [9, 11, 16, 19, 20, 29]  # 0x4001 0x74A2 0x4C82 0x2482 ... (reference vectors)
    assert log.words[29] == 0x74A2 and log.count() == 6
    w = log.words[29]
    assert syslog.code(w) == 2 and syslog.cell(w) == 5 and not syslog.discharge(w)
    assert syslog.text(w) == "cell over-voltage"


def test_update_reports_changes_only():
    log = syslog.SysLog()
    st = Status()
    st.syslog = word(3, 2, 7)
    assert log.update(st) is True and log.update(st) is False
    st.syslog = word(3, 5, 0, True)  # the slot was overwritten by a newer entry
    assert log.update(st) is True and log.words[3] == st.syslog and log.changes == 2
    assert syslog.text(st.syslog) == codes.discharge_text(5) == "pack under-voltage"
    st.syslog = word(31, 12, 0, True)
    assert log.update(st) and log.has(31) and not log.has(30) and log.count() == 2
    st.syslog = NOT_REPORTED  # a NEW frame: nothing to take
    assert log.update(st) is False and log.frames == 4
    log.clear()
    assert log.count() == 0 and log.frames == 0


def test_a_zero_word_is_nothing_logged():
    # 0x0000 in every frame of the 2021 unit of the reference's vectors: an
    # empty log, not "slot 0: charge MOSFET off".
    log = syslog.SysLog()
    st = Status()
    for _, v in vectors():
        if v["protocol"] == "old" and v["direction"] == "response" and "model2021-req-5a5a" in v["source"]:
            old.decode_status(unhex(v["hex"]), 0, st)
            assert st.syslog == 0
            assert log.update(st) is False
    assert log.frames == 5 and log.count() == 0
