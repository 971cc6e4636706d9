# mp-heap: 128K
# MicroPython only: the BMS-log table's update (run on every status by the
# link task) allocates nothing, slot 31 included (a 32-bit mask would not
# be a small int); and the link's polls stay allocation-free with parameter
# jobs around: one waiting for a live BMS, and after one has run.
import micropython

from ant import syslog
from ant.status import NOT_REPORTED, Status
from link import paramjob as PJ
from link.paramvalues import Values
from link.model import LINK_OK
from mp_test_link_alloc import Loop


def test_the_log_update_allocates_nothing():
    log = syslog.SysLog()
    st = Status()
    words = [slot << 10 | (slot % 20 + 1) | (slot % 7) << 5 | (0x8000 if slot & 1 else 0) for slot in range(32)]
    words.append(NOT_REPORTED)
    micropython.heap_lock()
    try:
        for _ in range(10):
            for w in words:
                st.syslog = w
                log.update(st)
                log.has(31)
    finally:
        micropython.heap_unlock()
    assert log.count() == 32 and log.frames == 320 and log.words[31] == words[31]


def test_polls_allocate_nothing_while_a_job_waits_and_after_one_ran():
    loop = Loop()
    job = PJ.ParamJob(PJ.READ_ALL, Values())
    loop.engine.submit_job(job, loop.now)  # queued before the BMS is found: it waits
    micropython.heap_lock()
    try:
        loop.run(60)  # 300 ms: still listening, no link yet
    finally:
        micropython.heap_unlock()
    assert not job.finished() and loop.model.link != LINK_OK
    loop.run(4000)  # the job runs: this bus answers status polls only, so it fails
    assert job.state == PJ.FAILED and job.reason.startswith("no reply to the read"), job.reason
    assert loop.model.link == LINK_OK
    frames = loop.engine.stats.frames_ok
    micropython.heap_lock()
    try:
        loop.run(2000)
    finally:
        micropython.heap_unlock()
    assert loop.engine.stats.frames_ok - frames >= 38
