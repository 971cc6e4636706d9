# MicroPython only: the steady-state hot paths allocate nothing.
# micropython.heap_lock() makes any allocation raise MemoryError, so each test
# runs its path once unlocked (first-use allocations are allowed), then again
# under the lock.
import micropython

from ant import new, old
from ant.framer import KIND_NEW, KIND_OLD_STATUS, Framer
from ant.status import Status
from vectorset import unhex


def _vector(index):
    from vectorset import vectors

    for i, v in vectors():
        if i == index:
            return unhex(v["hex"])
    raise KeyError(index)


def locked(fn, a, b, c, d=None):
    # Fixed arity on purpose: a star-call (fn(*args)) allocates its argument
    # array on the heap.
    micropython.heap_lock()
    try:
        return fn(a, b, c) if d is None else fn(a, b, c, d)
    finally:
        micropython.heap_unlock()


def test_decode_new_16s_status_allocates_nothing():
    frame = bytearray(_vector(110))  # 16S, 152 bytes
    st = Status()
    assert new.decode_status(frame, 0, st) == 0
    seq = st.seq
    assert locked(new.decode_status, frame, 0, st) == 0
    assert st.seq == seq + 1 and st.cell_count == 16 and st.pack_cv == 5284


def test_decode_old_16s_status_allocates_nothing():
    frame = bytearray(_vector(11))  # 16S, 140 bytes
    st = Status()
    old.decode_status(frame, 0, st)
    assert locked(old.decode_status, frame, 0, st) == 0
    assert st.cell_count == 16 and st.pack_cv == 6370


def _pump(framer, data, chunk, st):
    # Feed in chunks and decode whatever completes: the link's hot loop.
    n = len(data)
    got = 0
    start = 0
    while start < n:
        end = start + chunk
        if end > n:
            end = n
        pos = start
        while True:
            pos = framer.feed(data, pos, end)
            kind = framer.kind
            if not kind:
                break
            if kind == KIND_NEW:
                new.decode_status(framer.buf, framer.start, st)
            elif kind == KIND_OLD_STATUS:
                old.decode_status(framer.buf, framer.start, st)
            got += 1
        start = end
    return got


def test_framer_and_decode_of_a_byte_stream_allocate_nothing():
    stream = bytearray(b"\x00\x13garbage" + _vector(110) + b"\x7e\x7e" + _vector(11) + _vector(110))
    framer = Framer()
    st = Status()
    assert _pump(framer, stream, 17, st) == 3
    # Steady state: the same traffic again, many times, under the lock.
    for _ in range(20):
        assert locked(_pump, framer, stream, 17, st) == 3
    assert framer.frames == 63
