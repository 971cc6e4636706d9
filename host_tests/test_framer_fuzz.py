# Hypothesis fuzz of the streaming framer (CPython). `make test` runs more than
# 8 000 cases; `make fuzz` (ANTBRIDGE_FUZZ_EXAMPLES) many more.
#   - arbitrary bytes in arbitrary chunks: never raises, never yields a frame
#     that fails an independent integrity check;
#   - good frames embedded in noise, chunked anyhow: every frame with a
#     strong check (16-bit sum, CRC) is recovered, in order;
#   - with noise that holds no 6-byte-frame header byte, every frame is.
import json
import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ant import commands, new, old
from ant.framer import Framer
from ant.status import Status

SCALE = int(os.environ.get("ANTBRIDGE_FUZZ_EXAMPLES", "0")) or None
COMMON = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def examples(default):
    return SCALE or default


# -- independent reference checks (bitwise CRC, plain sums) -------------------


def ref_crc(data):
    crc = 0xFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def verifies(frame):
    if frame[:4] == b"\xaa\x55\xaa\xff":
        return len(frame) == 140 and sum(frame[4:138]) & 0xFFFF == int.from_bytes(frame[138:140], "big")
    if frame[:1] in (b"\x5a", b"\xa5", b"\xdb"):
        return len(frame) == 6 and frame[0] == frame[1] and sum(frame[2:5]) & 0xFF == frame[5]
    if frame[:2] == b"\x7e\xa1":
        if frame[-2:] != b"\xaa\x55":
            return False
        end = len(frame) - 4
        if frame[2] in (0x12, 0x42) and len(frame) == frame[5] + 16:
            end -= 6
            trailer = frame[end + 2 : end + 6]
            if ref_crc(trailer) != int.from_bytes(frame[end + 6 : end + 8], "little"):
                return False
        return ref_crc(frame[1:end]) == int.from_bytes(frame[end : end + 2], "little")
    return False


# -- the pool of good frames --------------------------------------------------


def _pool():
    here = os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(here, "vectors.json")) as f:
        data = json.load(f)
    frames = set()
    for v in data:
        raw = bytes.fromhex(v["hex"])
        found, _ = run_framer([raw])
        if len(found) == 1 and found[0] == raw:
            frames.add(raw)
    st = Status()
    st.cell_count = 20
    st.probe_slots = 3
    st.pack_cv = 6650
    st.current_da = -123
    for i in range(20):
        st.cells_mv[i] = 3300 + i
    frames.add(bytes(new.build_status(st)))
    frames.add(bytes(old.build_status(st)))
    for name in commands.CONTROLS:
        for proto in ("old", "new"):
            if commands.supported(name, proto):
                frames.add(commands.control(name, proto))
    return sorted(frames)


def run_framer(chunks):
    framer = Framer()
    out = []
    for chunk in chunks:
        pos = 0
        while True:
            pos = framer.feed(chunk, pos)
            if not framer.kind:
                break
            out.append(bytes(framer.buf[framer.start : framer.start + framer.length]))
    while framer.flush():
        out.append(bytes(framer.buf[framer.start : framer.start + framer.length]))
    return out, framer


POOL = _pool()
STRONG = [f for f in POOL if len(f) > 6]
WEAK_STARTS = (0x5A, 0xA5, 0xDB)


def chunked(data, cuts):
    points = sorted({c % (len(data) + 1) for c in cuts})
    out = []
    last = 0
    for p in points + [len(data)]:
        out.append(data[last:p])
        last = p
    return out


def is_subsequence(needles, haystack):
    it = iter(haystack)
    return all(any(n == h for h in it) for n in needles)


noise = st.binary(max_size=40)
quiet_noise = st.binary(max_size=40).map(lambda b: bytes(x for x in b if x not in WEAK_STARTS))


def test_pool_has_both_generations_and_all_shapes():
    assert len(STRONG) > 40 and len(POOL) - len(STRONG) > 20
    assert all(verifies(f) for f in POOL)


@settings(max_examples=examples(5000), **COMMON)
@given(st.binary(max_size=600), st.lists(st.integers(0, 600), max_size=12))
def test_arbitrary_bytes_never_raise_and_never_yield_an_unverified_frame(data, cuts):
    out, framer = run_framer(chunked(data, cuts))
    assert all(verifies(f) for f in out)
    assert sum(len(f) for f in out) + framer.dropped_bytes == len(data)
    assert framer.pending() == 0


@settings(max_examples=examples(8000), **COMMON)
@given(
    st.lists(st.tuples(noise, st.sampled_from(POOL)), min_size=1, max_size=6),
    noise,
    st.lists(st.integers(0, 2000), max_size=10),
)
def test_every_strong_frame_in_noise_is_recovered(parts, tail, cuts):
    stream = b"".join(n + f for n, f in parts) + tail
    out, framer = run_framer(chunked(stream, cuts))
    assert all(verifies(f) for f in out)
    wanted = [f for _, f in parts if len(f) > 6]
    assert is_subsequence(wanted, out), (wanted, out)
    assert sum(len(f) for f in out) + framer.dropped_bytes == len(stream)


@settings(max_examples=examples(5000), **COMMON)
@given(
    st.lists(st.tuples(quiet_noise, st.sampled_from(POOL)), min_size=1, max_size=6),
    quiet_noise,
    st.lists(st.integers(0, 2000), max_size=10),
)
def test_every_frame_in_noise_without_short_frame_headers_is_recovered(parts, tail, cuts):
    stream = b"".join(n + f for n, f in parts) + tail
    out, _ = run_framer(chunked(stream, cuts))
    assert is_subsequence([f for _, f in parts], out), ([f for _, f in parts], out)
