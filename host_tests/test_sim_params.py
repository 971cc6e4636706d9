# The simulator's side of the BMS's settings and log (tools/sim/registers.py,
# responder.py, protection.py), on its sans-IO Device: every parameter of
# both generations answers in the reference's frame shapes, writes take
# effect the way each generation commits them (OLD apply, NEW save), a
# password is enforced, `state` shows the values, and the OLD status frames
# roll through the system log. CPython.
import struct

from ant import commands, new, old
from ant import params as P
from ant.framer import KIND_NEW, KIND_OLD_SHORT, KIND_OLD_STATUS, Framer
from ant.status import Status
from sim import control as simcontrol
from sim.device import Config, Device

REJECT = bytes.fromhex("a5a5f50001f6")


class Bench:
    """The device with a clock: one request in, the reply frames out."""

    def __init__(self, **config):
        config.setdefault("time_scale", 0.001)  # frozen dynamics
        self.now = 100.0
        self.dev = Device(Config(**config), self.now)

    def ask(self, request, wait_s=0.4):
        self.dev.receive(request, self.now)
        end = self.now + wait_s
        data = b""
        while self.now < end:
            self.now += 0.01
            self.dev.tick(self.now)
            data += self.dev.pump(self.now)
        framer = Framer()
        frames = []
        pos = 0
        while True:
            pos = framer.feed(data, pos)
            if not framer.kind:
                break
            frames.append((framer.kind, bytes(framer.buf[framer.start : framer.start + framer.length])))
        return frames

    def one(self, request):
        frames = self.ask(request)
        assert len(frames) == 1, frames
        return frames[0][1]

    def control(self, line):
        reply = simcontrol.execute(self.dev, line, self.now)
        assert reply["ok"], reply
        return reply

    def state(self):
        return self.dev.state()


def old_value(bench, reg):
    reply = bench.one(commands.read_param("old", reg))
    assert reply[:3] == bytes((0x5A, 0x5A, reg))
    return reply[3] << 8 | reply[4]


def test_every_old_parameter_register_answers_with_its_value():
    b = Bench(protocol="old", cells=16)
    params = b.state()["params"]["old"]
    assert set(params) == {P.ROWS[i][P.KEY] for i in range(P.COUNT) if P.offered(i, 1)}
    for i in range(P.COUNT):
        reg = P.ROWS[i][P.OLD_REG]
        if not reg:
            continue
        raw = old_value(b, reg)
        if P.ROWS[i][P.KIND] == P.K_U32:
            raw |= old_value(b, reg + 1) << 16
        elif P.ROWS[i][P.KIND] == P.K_I16 and raw & 0x8000:
            raw -= 0x10000
        if P.ROWS[i][P.KEY] == "runtime_s":
            assert raw == b.state()["runtime_s"]  # seconds since power-up, counting
        else:
            assert raw == params[P.ROWS[i][P.KEY]], P.ROWS[i][P.KEY]
    # Realistic values: the LiFePO4 preset, Wnt's sample registers, the pack itself.
    assert params["cell_ov_protection_mv"] == 3650 and params["cell_uv_protection_mv"] == 2500
    assert params["cell_count"] == 16 and params["capacity_ah"] == 100 * 10 ** 6
    assert params["tire_length_mm"] == 1000 and params["pulses_per_turn"] == 23 and params["firmware_id"] == 12006
    assert params["standby_s"] == 180 and params["charge_ut_protection_c"] == 0 and params["discharge_ut_protection_c"] == -20
    assert old_value(b, 43) == 0xFFFF  # a register the reference calls unknown: "not available"


def test_every_new_page_answers_in_the_apps_block_shape():
    b = Bench(protocol="new", cells=20)
    params = b.state()["params"]["new"]
    assert set(params) == {P.ROWS[i][P.KEY] for i in range(P.COUNT) if P.offered(i, 2)}
    for addr, length in P.NEW_PAGES:
        reply = b.one(commands.read_param("new", addr, length))
        # 0x12, the address and length echoed, the data, CRC, FF 0B 00 00 + CRC, AA 55 (reference §3.1).
        assert reply[2] == new.REPLY_READ and reply[3] | reply[4] << 8 == addr and reply[5] == length
        assert len(reply) == length + 16 and reply[-8:] == bytes.fromhex("ff0b000041f2aa55")
        for i in range(P.COUNT):
            at = P.ROWS[i][P.NEW_ADDR]
            if addr <= at < addr + length:
                n = P.size(i)
                raw = int.from_bytes(reply[6 + at - addr : 6 + at - addr + n], "little")
                assert raw == params[P.ROWS[i][P.KEY]], P.ROWS[i][P.KEY]
    page = b.one(commands.read_param("new", 0, 0x38))
    assert struct.unpack_from("<H", page, 6 + 0x1C)[0] == 0xFFFF  # unused words, as in the reference's block
    assert params["pack_ov_protection_v"] == 760  # 20 cells x 3.80 V
    assert params["cell_count"] == 20
    one = b.one(commands.read_param("new", 0x00A2, 4))  # a single u32, ESPHome's request (vector)
    assert one[5] == 4 and struct.unpack_from("<I", one, 6)[0] == params["capacity_ah"]


def test_an_old_write_takes_effect_with_the_apply_frame():
    b = Bench(protocol="old")
    write = bytes(old.short_frame(old.HEAD_WRITE, 3, 3600))
    assert b.ask(write) == [(KIND_OLD_SHORT, write)]  # echoed
    assert old_value(b, 3) == 3650 and b.state()["limits"]["cell_ov_mv"] == 3650  # not yet
    apply = commands.control("save", "old")
    assert b.ask(apply) == [(KIND_OLD_SHORT, apply)]
    assert old_value(b, 3) == 3600 and b.state()["limits"]["cell_ov_mv"] == 3600
    assert b.state()["params"]["old"]["cell_ov_protection_mv"] == 3600
    # Signed temperatures: -5 °C is FFFB on the wire.
    b.ask(bytes(old.short_frame(old.HEAD_WRITE, 37, 0xFFFB)) + apply)
    assert b.state()["limits"]["charge_ut_c"] == -5 and old_value(b, 37) == 0xFFFB
    # Written but not applied: a reboot drops it.
    b.ask(bytes(old.short_frame(old.HEAD_WRITE, 5, 3500)))
    b.control("limit cell_ov_recover_mv 3550")
    b.dev.reboot(b.now)
    b.now += 5
    assert old_value(b, 5) == 3550


def test_a_new_write_reads_back_at_once_and_survives_a_reboot_only_when_saved():
    b = Bench(protocol="new")
    write, save = commands.write_param("new", 0x0090, 25)  # balancing on difference
    reply = b.one(write)
    assert reply[2] == new.REPLY_WRITE and new.reply_trailer_code(reply, 0, len(reply)) == 0x0A
    assert b.state()["limits"]["balance_diff_mv"] == 25  # in effect, "needs save"
    b.dev.reboot(b.now)
    b.now += 5
    assert b.state()["limits"]["balance_diff_mv"] == 10  # not saved: back
    b.one(write)
    ack = b.one(save)
    assert ack[2] == new.REPLY_CONTROL and ack[3] == 0x07 and ack[6] == 1
    b.dev.reboot(b.now)
    b.now += 5
    assert b.state()["limits"]["balance_diff_mv"] == 25 and b.state()["param_saves"] == 1
    reply = b.one(commands.read_param("new", 0x0090, 2))
    assert struct.unpack_from("<H", reply, 6)[0] == 25


def test_measured_parameters_are_not_writable():
    b = Bench(protocol="both", cells=16)
    b.ask(bytes(old.short_frame(old.HEAD_WRITE, 24, 8)) + commands.control("save", "old"))
    b.one(commands.write_param("new", 0x009A, 8)[0])
    assert b.state()["params"]["old"]["cell_count"] == 16 == b.state()["params"]["new"]["cell_count"]


def test_parameter_writes_need_the_password_when_one_is_set():
    b = Bench(protocol="both", password="SECRET12")
    assert b.ask(bytes(old.short_frame(old.HEAD_WRITE, 3, 3600))) == [(KIND_OLD_SHORT, REJECT)]
    reply = b.one(commands.write_param("new", 0x0000, 3600)[0])
    assert new.reply_trailer_code(reply, 0, len(reply)) == 0x01  # no permission
    assert b.state()["limits"]["cell_ov_mv"] == 3650 and b.state()["rejected"] == 2
    assert old_value(b, 3) == 3650  # reads need no password
    password = commands.password("new", "SECRET12")
    assert b.one(password)[6] == 5
    reply = b.one(commands.write_param("new", 0x0000, 3600)[0])
    assert new.reply_trailer_code(reply, 0, len(reply)) == 0x0A and b.state()["limits"]["cell_ov_mv"] == 3600


def test_old_status_frames_roll_through_the_system_log():
    b = Bench(protocol="old")
    st = Status()

    def word():
        [(kind, frame)] = b.ask(commands.status_request("old"))
        assert kind == KIND_OLD_STATUS
        old.decode_status(frame, 0, st)
        return st.syslog

    assert word() == 0 and b.state()["system_log"] == []  # an empty log: 0, like the 2021 unit's frames
    b.control("log 2 5 charge")  # cell 5 over-voltage
    b.control("log 3 0 discharge")  # discharge over-current
    b.control("log 15 0 charge")  # manually switched off
    expected = [2 | 5 << 5, 3 | 1 << 10 | 0x8000, 15 | 2 << 10]
    seen = [word() for _ in range(6)]
    assert seen == [expected[2], expected[0], expected[1], expected[2], expected[0], expected[1]]
    assert [e["word"] for e in b.state()["system_log"]] == expected
    # A real protection trip is logged in the next slot and shown next.
    b.control("cell 3 3700")
    w = word()
    assert w & 0x1F == 2 and (w >> 5) & 0x1F == 3 and (w >> 10) & 0x1F == 3 and not w & 0x8000
    assert len(b.state()["system_log"]) == 4
