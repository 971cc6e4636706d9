# The parameter tables (lib/ant/params.py) against the reference: every
# documented OLD register and NEW address present with its scale, keys
# unique and plain, ranges inside what each register can carry, what the
# reference leaves open flagged unverified and read-only, and the table a
# constant (frozen into flash). CPython and MicroPython.
from ant import params as P

# Reference §2.6 (OLD parameter registers) and §3.7 (NEW register map),
# transcribed: register/address -> (unit of the raw value, raw step as a
# decimal exponent of that unit).
OLD_DOCUMENTED = {
    1: ("mV", 0), 2: ("mV", 0), 3: ("mV", 0), 4: ("mV", 0), 5: ("mV", 0), 6: ("mV", 0), 7: ("V", -1),
    8: ("V", -1), 9: ("A", -1), 10: ("s", 0), 11: ("A", -1), 12: ("s", 0), 13: ("mV", 0), 14: ("mV", 0),
    15: ("mV", 0), 16: ("", 0), 17: ("mV", 0), 18: ("", 0), 19: ("A", -1), 20: ("A", 0), 21: ("µs", 0),
    22: ("s", 0), 23: ("", 0), 24: ("", 0), 25: ("°C", 0), 26: ("°C", 0), 27: ("°C", 0), 28: ("°C", 0),
    29: ("°C", 0), 30: ("°C", 0), 31: ("Ah", -6), 33: ("Ah", -6), 35: ("Ah", -3), 37: ("°C", 0), 38: ("°C", 0),
    39: ("°C", 0), 40: ("°C", 0), 41: ("mm", 0), 42: ("", 0), 44: ("mV", 0), 90: ("", 0), 100: ("s", 0),
}
for _reg in range(51, 75):
    OLD_DOCUMENTED[_reg] = ("", -1)  # the app divides by 10; no unit stated
NEW_DOCUMENTED = {
    0x0000: ("mV", 0), 0x0002: ("mV", 0), 0x0004: ("mV", 0), 0x0006: ("mV", 0), 0x0008: ("V", -1),
    0x000A: ("V", -1), 0x000C: ("mV", 0), 0x000E: ("mV", 0), 0x0010: ("mV", 0), 0x0012: ("mV", 0),
    0x0014: ("V", -1), 0x0016: ("V", -1), 0x0018: ("mV", 0), 0x001A: ("mV", 0),
    0x0020: ("mV", 0), 0x0022: ("mV", 0), 0x0024: ("V", -1), 0x0026: ("V", -1), 0x0028: ("mV", 0),
    0x002A: ("mV", 0), 0x002C: ("V", -1), 0x002E: ("V", -1), 0x0030: ("mV", 0), 0x0032: ("mV", 0),
    0x0068: ("A", -1), 0x006A: ("s", 0), 0x006C: ("A", -1), 0x006E: ("s", 0), 0x0070: ("A", -1),
    0x0072: ("ms", 0), 0x0074: ("A", 0), 0x0076: ("µs", 0), 0x007C: ("A", -1), 0x007E: ("A", -1),
    0x0080: ("A", -1), 0x0082: ("A", -1), 0x0084: ("%", 0), 0x0086: ("%", 0), 0x008C: ("mV", 0),
    0x008E: ("mV", 0), 0x0090: ("mV", 0), 0x0092: ("mV", 0), 0x0094: ("mA", 0), 0x0096: ("A", -1),
    0x0098: ("", 0), 0x009A: ("", 0), 0x009C: ("mΩ", 0), 0x009E: ("mV", 0), 0x00A0: ("A", -1),
    0x00A2: ("Ah", -6), 0x00A6: ("Ah", -6), 0x00AA: ("Ah", -6), 0x00C4: ("", 0), 0x017A: ("mm", 0),
    0x017C: ("", 0), 0x017E: ("", 0),
}
NEW_U32 = (0x00A2, 0x00A6, 0x00AA)  # "(u32)" in the reference
SIGNED_OLD = (25, 26, 27, 28, 29, 30, 37, 38, 39, 40)  # "°C (signed)"
RAW_LIMITS = {P.K_U16: (0, 0xFFFF), P.K_I16: (-0x8000, 0x7FFF)}


def test_count_and_keys():
    assert len(P.ROWS) == P.COUNT
    keys = [r[P.KEY] for r in P.ROWS]
    assert len(set(keys)) == len(keys)
    allowed = "abcdefghijklmnopqrstuvwxyz0123456789_"
    for k in keys:
        assert k and k[0].isalpha() and all(ch in allowed for ch in k) and "__" not in k, k
    for r in P.ROWS:
        assert len(r) == 11 and r[P.GROUP] in P.GROUPS and r[P.NAME] and r[P.KIND] in (P.K_U16, P.K_I16, P.K_U32)
        assert P.find(r[P.KEY]) == P.ROWS.index(r)
    assert P.find("no_such_key") == -1


def test_every_documented_old_register_is_there_with_its_scale():
    seen = {}
    for i in range(P.COUNT):
        r = P.ROWS[i]
        reg = r[P.OLD_REG]
        if reg:
            assert reg not in seen, reg
            seen[reg] = (r[P.UNIT], r[P.EXP])
            assert (r[P.KIND] == P.K_I16) == (reg in SIGNED_OLD), r[P.KEY]
    assert seen == OLD_DOCUMENTED
    for low in (31, 33, 35):  # 32-bit values: low word here, high word in the next register
        assert P.ROWS[[r[P.OLD_REG] for r in P.ROWS].index(low)][P.KIND] == P.K_U32


def test_every_documented_new_address_is_there_with_its_scale():
    seen = {}
    for i in range(P.COUNT):
        r = P.ROWS[i]
        addr = r[P.NEW_ADDR]
        if addr >= 0:
            assert addr not in seen and addr % 2 == 0, addr
            seen[addr] = (r[P.UNIT], r[P.EXP])
            assert (r[P.KIND] == P.K_U32) == (addr in NEW_U32), r[P.KEY]
            assert r[P.KIND] != P.K_I16  # no signed NEW setting is documented
    assert seen == NEW_DOCUMENTED


def test_the_page_blocks_cover_every_new_address():
    for i in range(P.COUNT):
        addr = P.ROWS[i][P.NEW_ADDR]
        if addr >= 0:
            assert any(a <= addr and addr + P.size(i) <= a + n for a, n in P.NEW_PAGES), hex(addr)
    for a, n in P.NEW_PAGES:
        assert 0 < n <= 0xFF and a % 2 == 0  # one LEN byte


def test_ranges_are_inside_what_the_register_carries():
    writable = 0
    for r in P.ROWS:
        flags = r[P.FLAGS]
        if flags & P.F_WRITE:
            writable += 1
            lo, hi = RAW_LIMITS[r[P.KIND]]  # no 32-bit row is writable
            assert lo <= r[P.LO] < r[P.HI] <= hi, r[P.KEY]
            assert not flags & (P.F_UNVERIFIED_OLD | P.F_UNVERIFIED_NEW), r[P.KEY]  # unverified: read-only
        else:
            assert r[P.LO] == 0 and r[P.HI] == 0, r[P.KEY]
    assert writable >= 40


def test_what_the_reference_leaves_open_is_unverified_and_read_only():
    for key in ("capacity_ah", "remaining_capacity_ah", "total_cycle_capacity_ah"):  # §9.7
        i = P.find(key)
        assert not P.verified(i, 2) and not P.ROWS[i][P.FLAGS] & P.F_WRITE
    assert P.verified(P.find("capacity_ah"), 1)  # OLD: µAh, as the status frame
    assert not P.verified(P.find("start_current_a"), 1)  # PDF 0.1 A vs app 1 A
    for key in ("short_circuit_a", "cell_count", "cell_type", "voltage_calibration", "reference_voltage_mv"):
        assert not P.ROWS[P.find(key)][P.FLAGS] & P.F_WRITE, key


def test_offered_by_generation():
    assert P.offered(P.find("cell_ov_protection_mv"), 1) and P.offered(P.find("cell_ov_protection_mv"), 2)
    assert P.offered(P.find("charge_ot_protection_c"), 1) and not P.offered(P.find("charge_ot_protection_c"), 2)
    assert P.offered(P.find("balance_current_ma"), 2) and not P.offered(P.find("balance_current_ma"), 1)
    assert not P.offered(0, 0)


def test_no_text_needs_json_escaping():
    # The parameter document streams each string as it is; one JsonOut must
    # escape would be built in pieces while the reply is on its way.
    from jsonout import _ESCAPED

    for r in P.ROWS:
        for text in (r[P.KEY], r[P.NAME], r[P.UNIT], r[P.GROUP]):
            assert not any(e in text for e in _ESCAPED), text
