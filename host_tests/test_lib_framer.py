# The streaming framer on the traffic a real TTL port or BLE link carries:
# split frames, several frames per chunk, garbage, a display's polls, truncated
# and corrupted frames. Runs under CPython and MicroPython.
from ant import commands, new, old
from ant.framer import REASONS, KIND_NEW, KIND_OLD_SHORT, KIND_OLD_STATUS, Framer
from ant.status import Status
from vectorset import unhex, vectors

_cache = {}


def vector(index):
    if not _cache:
        for i, v in vectors():
            if i in (0, 10, 11, 107, 110, 112):
                _cache[i] = unhex(v["hex"])
    return _cache[index]


def run(chunks, flush=True):
    """Feed chunks; return ([frame bytes], framer)."""
    framer = Framer()
    out = []
    for chunk in chunks:
        pos = 0
        while True:
            pos = framer.feed(chunk, pos)
            if not framer.kind:
                break
            out.append(bytes(framer.buf[framer.start : framer.start + framer.length]))
    if flush:
        while framer.flush():
            out.append(bytes(framer.buf[framer.start : framer.start + framer.length]))
    return out, framer


def drops(framer):
    return {REASONS[k]: framer.drops[k] for k in range(len(REASONS)) if framer.drops[k]}


def test_a_frame_split_at_every_position_is_reassembled():
    for frame in (vector(110), vector(11), commands.status_request("new"), commands.control("charge-on", "old")):
        for cut in range(1, len(frame)):
            out, framer = run([frame[:cut], frame[cut:]])
            assert out == [frame], cut
            assert framer.dropped_bytes == 0


def test_byte_by_byte_and_several_frames_in_one_chunk():
    stream = vector(110) + vector(0) + vector(112) + vector(107)
    framer = Framer()
    out = []
    for i in range(len(stream)):
        pos = i
        while True:
            pos = framer.feed(stream, pos, i + 1)
            if not framer.kind:
                break
            out.append(bytes(framer.buf[framer.start : framer.start + framer.length]))
    assert out == [vector(110), vector(0), vector(112), vector(107)]
    out, framer = run([stream], flush=False)
    assert len(out) == 4 and framer.frames == 4 and framer.pending() == 0


def test_garbage_before_and_between_frames_is_dropped_and_counted():
    noise = b"\x00\x13\xff\x63\x7b\x73\x21"
    out, framer = run([noise + vector(110) + noise + noise + vector(11) + noise])
    assert out == [vector(110), vector(11)]
    assert framer.dropped_bytes == 4 * len(noise)
    assert drops(framer) == {"noise": 4 * len(noise)}


def test_a_displays_poll_traffic_yields_requests_and_replies():
    # A display polling on the same port: its requests, then the replies.
    stream = (
        commands.status_request("old", 0)
        + vector(11)
        + commands.status_request("new")
        + vector(110)
        + commands.device_info_request()
        + vector(107)
    )
    framer = Framer()
    kinds = []
    pos = 0
    while True:
        pos = framer.feed(stream, pos)
        if not framer.kind:
            break
        kinds.append((framer.kind, framer.buf[framer.start + 2] if framer.kind == KIND_NEW else 0))
    while framer.flush():
        kinds.append((framer.kind, 0))
    assert kinds == [
        (KIND_OLD_SHORT, 0),
        (KIND_OLD_STATUS, 0),
        (KIND_NEW, new.FN_STATUS),
        (KIND_NEW, new.REPLY_STATUS),
        (KIND_NEW, new.FN_READ),
        (KIND_NEW, new.REPLY_READ),
    ]


def test_a_truncated_frame_does_not_swallow_the_next_good_one():
    good = vector(110)
    for cut in (1, 5, 11, 60, len(good) - 1):
        out, framer = run([good[:cut] + good])
        assert out == [good], cut
        assert framer.dropped_bytes == cut
    old_good = vector(11)
    out, framer = run([old_good[:100] + old_good + old_good[:3]])
    assert out == [old_good]
    assert framer.dropped_bytes == 103


def test_a_corrupted_frame_is_rejected_and_the_next_one_found():
    good = vector(110)
    for flip in (2, 5, 9, 40, len(good) - 4, len(good) - 1):
        bad = bytearray(good)
        bad[flip] ^= 0x10
        out, framer = run([bytes(bad) + good])
        assert out == [good], flip
        assert framer.dropped_bytes == len(good)
    bad_old = bytearray(vector(11))
    bad_old[50] ^= 1
    out, framer = run([bytes(bad_old) + vector(11)])
    assert out == [vector(11)]
    assert drops(framer).get("bad_checksum") == 1


def test_a_bogus_long_header_is_resolved_when_the_line_goes_quiet():
    # 7E A1 12 .. LEN=FF announces a 265-byte reply: the real frame that
    # follows is found by flush() without waiting for 265 bytes.
    bogus = b"\x7e\xa1\x12\x00\x00\xff"
    good = commands.control("charge-off", "new")
    out, framer = run([bogus + good], flush=False)
    assert out == []
    assert framer.pending() == len(bogus) + len(good)
    frames = []
    while framer.flush():
        frames.append(bytes(framer.buf[framer.start : framer.start + framer.length]))
    assert frames == [good]
    assert drops(framer)["truncated"] >= 1


def test_a_forged_short_frame_never_eats_a_strong_frame_header():
    good = vector(110)
    # 5A 5A F2 + 7E A1 11 would pass the 8-bit sum: F2 + 7E + A1 = 0x11.
    forged_prefix = b"\x5a\x5a\xf2"
    out, _ = run([forged_prefix + good])
    assert out == [good]
    # The short frame's last byte would be the strong frame's first one.
    for prefix in (b"\x5a\x5a\x00\x00\x7e", b"\xa5\xa5\x00\x00\xaa"):
        frame = good if prefix[-1] == 0x7E else vector(11)
        out, _ = run([prefix + frame[1:]])
        assert out == [frame], prefix
    # ... also when the strong header arrives in a later chunk.
    out, _ = run([forged_prefix, good[:1], good[1:]])
    assert out == [good]


def test_short_frames_are_delivered_at_the_end_of_a_burst():
    echo = commands.control("charge-on", "old")
    out, framer = run([echo], flush=False)
    assert out == [echo]
    # An echo whose last byte could start a header waits for one more byte.
    tricky = bytes(old.short_frame(old.HEAD_WRITE, 0x00, 0x7E))  # sum 0x7E
    out, framer = run([tricky], flush=False)
    assert out == [] and framer.pending() == 6
    assert framer.flush() == KIND_OLD_SHORT


def test_parameter_replies_with_and_without_their_trailer():
    with_trailer = vector(107)
    without = bytearray(with_trailer[:40]) + b"\xaa\x55"
    out, _ = run([without + with_trailer])
    assert out == [bytes(without), with_trailer]


def test_unknown_function_and_bad_length_are_named():
    out, framer = run([b"\x7e\xa1\x99\x00\x00\x00\x00\x00\xaa\x55"])
    assert out == [] and drops(framer).get("unknown_function") == 1
    # A status frame whose LEN disagrees with its cell/probe counts.
    bad = bytearray(vector(110))
    bad[9] = 15
    out, framer = run([bytes(bad)])
    assert out == [] and drops(framer).get("bad_length") == 1


def test_a_long_stream_reuses_the_buffer():
    frames = [vector(110), vector(0), commands.status_request("new"), vector(112)]
    stream = b""
    for i in range(40):
        stream += frames[i % 4] + (b"\x01" * (i % 7))
    framer = Framer()
    seen = 0
    for start in range(0, len(stream), 64):
        pos = start
        end = min(start + 64, len(stream))
        while True:
            pos = framer.feed(stream, pos, end)
            if not framer.kind:
                break
            seen += 1
    assert seen == 40
    assert framer.dropped_bytes == sum(i % 7 for i in range(40))


def test_status_frames_decode_straight_from_the_framer_buffer():
    framer = Framer()
    st = Status()
    data = b"\x00" + vector(112) + vector(10)
    pos = 0
    cells = []
    while True:
        pos = framer.feed(data, pos)
        if not framer.kind:
            break
        if framer.kind == KIND_NEW:
            assert new.decode_status(framer.buf, framer.start, st) == 0
        else:
            old.decode_status(framer.buf, framer.start, st)
        cells.append(st.cell_count)
    assert cells == [30, 13]
    assert st.cells_mv[12] == 4140 and st.pack_cv == 5410


def test_reset_discards_what_was_buffered():
    framer = Framer()
    framer.feed(vector(110)[:50])
    assert framer.pending() == 50
    framer.reset()
    assert framer.pending() == 0
    pos = framer.feed(vector(110))
    assert framer.kind == KIND_NEW and pos == len(vector(110))


def test_counters_wrap_to_zero_without_forming_2_30():
    # The statistics run for months at 19200 baud (2**30 bytes in ~6.5 days
    # of traffic); at the wrap they go back to 0 and never pass through 2**30,
    # which would be a heap int on the ESP32.
    from test_lib_ticks import Small
    from ticks import COUNTER_MAX

    framer = Framer()
    framer.position = Small(COUNTER_MAX)
    framer.dropped_bytes = Small(COUNTER_MAX)
    framer.drops[0] = COUNTER_MAX
    framer.feed(b"\x00")  # noise: one dropped byte
    assert framer.drops[0] == 0 and REASONS[0] == "noise"
    assert framer.dropped_bytes == 0 and framer.position == 0
    framer.frames = Small(COUNTER_MAX)
    framer.position = Small(COUNTER_MAX - 2)
    frame = vector(110)
    assert framer.feed(frame) == len(frame) and framer.kind == KIND_NEW
    assert framer.frames == 0
    framer.feed(b"")  # releases the frame: the position moves past it
    assert framer.position == len(frame) - 3
