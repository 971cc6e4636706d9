# Protocol autodetection order and memory. Runs under CPython and MicroPython.
from ant import commands
from ant.detect import BAUD_DEFAULT, BAUD_FALLBACK, Detector
from ant.status import PROTOCOL_NEW, PROTOCOL_OLD


def sequence(det, n):
    out = []
    for _ in range(n):
        out.append((det.protocol, det.baud, det.request()))
        det.on_timeout()
    return out


def test_new_first_then_old_forms_then_9600():
    det = Detector()
    seq = sequence(det, 6)
    assert seq[0] == (PROTOCOL_NEW, BAUD_DEFAULT, commands.status_request("new"))
    assert seq[1] == (PROTOCOL_OLD, BAUD_DEFAULT, b"\x5a\x5a\x00\x00\x01\x01")
    assert seq[2] == (PROTOCOL_OLD, BAUD_DEFAULT, b"\xdb\xdb\x00\x00\x00\x00")
    assert [s[1] for s in seq[3:]] == [BAUD_FALLBACK] * 3
    assert det.rounds == 1 and det.protocol == PROTOCOL_NEW


def test_only_a_status_of_the_requested_protocol_locks():
    det = Detector()
    det.on_timeout()  # now asking OLD
    assert not det.on_status(PROTOCOL_NEW)  # someone else's poll was answered
    assert not det.locked
    assert det.on_status(PROTOCOL_OLD)
    assert det.locked and det.protocol == PROTOCOL_OLD


def test_after_a_loss_what_worked_is_tried_first():
    det = Detector()
    for _ in range(4):
        det.on_timeout()
    assert det.protocol == PROTOCOL_OLD and det.baud == BAUD_FALLBACK
    det.on_status(PROTOCOL_OLD)
    det.lost()
    assert (det.protocol, det.baud) == (PROTOCOL_OLD, BAUD_FALLBACK)
    # One silent poll on a locked link retries the same attempt once.
    det.on_status(PROTOCOL_OLD)
    det.on_timeout()
    assert (det.protocol, det.baud) == (PROTOCOL_OLD, BAUD_FALLBACK)
    det.on_timeout()
    assert det.baud == BAUD_FALLBACK and det.request() == b"\xdb\xdb\x00\x00\x00\x00"


def test_remembered_across_reboot_and_pinned_choices():
    det = Detector()
    assert det.remember(PROTOCOL_OLD, BAUD_DEFAULT, 1)
    assert det.request() == b"\xdb\xdb\x00\x00\x00\x00"
    pinned = Detector(protocols=(PROTOCOL_OLD,), bauds=(BAUD_DEFAULT,))
    assert [s[0] for s in sequence(pinned, 4)] == [PROTOCOL_OLD] * 4
    try:
        Detector(protocols=(), bauds=(BAUD_DEFAULT,))
    except ValueError:
        pass
    else:
        assert False
