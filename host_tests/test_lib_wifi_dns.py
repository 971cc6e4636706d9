# DNS messages (lib/dnswire.py): the captive portal's responder answers every
# A query with the bridge's address and refuses malformed packets; the NTP
# client's lookup builds a standard query and finds the A record in a reply
# (through a CNAME, with compressed names). Packets are built here byte by
# byte from RFC 1035 section 4. Runs under CPython and MicroPython.
from dnswire import E_MALFORMED, E_NO_ADDRESS, E_NOT_OURS, E_REFUSED, MAX, REPLY_MAX, answer, parse_a, query

BRIDGE = bytes([192, 168, 4, 1])


def name(text):
    out = bytearray()
    for label in text.split("."):
        out.append(len(label))
        out += label.encode()
    out.append(0)
    return bytes(out)


def packet(qid=0x1234, flags=0x0100, qd=1, an=0, ns=0, ar=0, body=b""):
    return bytes([qid >> 8, qid & 0xFF, flags >> 8, flags & 0xFF, 0, qd, 0, an, 0, ns, 0, ar]) + body


def question(text, qtype=1, qclass=1):
    return name(text) + bytes([0, qtype, 0, qclass])


def u16(b, at):
    return b[at] << 8 | b[at + 1]


def respond(q):
    out = bytearray(REPLY_MAX)
    n = answer(q, len(q), out, BRIDGE)
    return bytes(out[:n]) if n >= 0 else None


def test_any_name_resolves_to_the_bridge():
    for host in ("connectivitycheck.gstatic.com", "captive.apple.com", "www.msftconnecttest.com",
                 "detectportal.firefox.com", "a.b.c.d.example", "x"):
        q = packet(body=question(host))
        r = respond(q)
        assert r is not None, host
        assert r[:2] == q[:2]  # the query's id
        assert r[2] & 0x80 and r[2] & 0x04 and r[2] & 0x01  # a response, authoritative, RD echoed
        assert r[3] & 0x0F == 0  # NOERROR
        assert u16(r, 4) == 1 and u16(r, 6) == 1 and u16(r, 8) == 0 and u16(r, 10) == 0
        qlen = len(question(host))
        assert r[12:12 + qlen] == q[12:12 + qlen]  # the question, repeated
        a = r[12 + qlen:]
        assert a[:2] == b"\xc0\x0c"  # the name: a pointer to the question's
        assert u16(a, 2) == 1 and u16(a, 4) == 1  # type A, class IN
        ttl = a[6] << 24 | a[7] << 16 | a[8] << 8 | a[9]
        assert 0 < ttl <= 60
        assert u16(a, 10) == 4 and a[12:16] == BRIDGE and len(a) == 16


def test_other_types_get_an_empty_answer_and_edns_is_dropped():
    r = respond(packet(body=question("captive.apple.com", qtype=28)))  # AAAA
    assert r is not None and u16(r, 6) == 0 and r[3] & 0x0F == 0  # NOERROR, no data: the phone asks for A
    opt = b"\x00\x00\x29\x04\xd0\x00\x00\x00\x00\x00\x00"  # an EDNS OPT record
    q = packet(ar=1, body=question("example.com") + opt)
    r = respond(q)
    assert r is not None and u16(r, 6) == 1 and u16(r, 10) == 0 and len(r) == len(q) - len(opt) + 16


def test_malformed_packets_are_dropped():
    long_name = ".".join(["a" * 63] * 4)  # 4 * 64 + 1 = 257 bytes: over 255
    bad = [
        b"",
        packet()[:11],  # shorter than a header
        packet(flags=0x8100, body=question("a.com")),  # a response, not a query
        packet(flags=0x2900, body=question("a.com")),  # opcode 5 (UPDATE)
        packet(qd=0, body=question("a.com")),
        packet(qd=2, body=question("a.com") + question("b.com")),
        packet(body=question("a.com")[:-1]),  # type/class cut short
        packet(body=b"\x05abc"),  # a label running past the end
        packet(body=b"\xc0\x0c\x00\x01\x00\x01"),  # a compression pointer in a question
        packet(body=b"\x40" + b"a" * 64 + b"\x00\x00\x01\x00\x01"),  # a 64-byte label
        packet(body=question(long_name)),
        packet(body=question("a.com", qclass=3)),  # CHAOS class
    ]
    for q in bad:
        assert respond(q) is None, q
    # The longest legal question still fits the reply buffer.
    longest = ".".join(["a" * 63] * 3 + ["b" * 61])  # 3 * 64 + 62 + 1 = 255 bytes
    r = respond(packet(body=question(longest)))
    assert r is not None and len(r) <= REPLY_MAX


def test_query_is_a_standard_recursive_a_query():
    out = bytearray(MAX)
    n = query(out, 0xBEEF, "pool.ntp.org")
    assert bytes(out[:n]) == packet(qid=0xBEEF, body=question("pool.ntp.org"))
    for bad in ("", "a..b", "x" * 64 + ".org", "a." * 127 + "b"):
        try:
            query(out, 1, bad)
            raise AssertionError("accepted " + bad)
        except ValueError:
            pass


def test_parse_a_finds_the_address_behind_a_cname():
    q = question("pool.ntp.org")
    cname = b"\xc0\x0c\x00\x05\x00\x01\x00\x00\x00\x3c\x00\x06" + b"\x03abc\xc0\x11"  # pool.ntp.org -> abc.ntp.org
    a = b"\xc0\x2a\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04" + bytes([162, 159, 200, 1])
    r = packet(qid=0xBEEF, flags=0x8180, an=2, body=q + cname + a)
    ip = bytearray(4)
    assert parse_a(r, len(r), 0xBEEF, ip) == 1 and bytes(ip) == bytes([162, 159, 200, 1])
    assert parse_a(r, len(r), 0xBEEE, ip) == E_NOT_OURS
    assert parse_a(r, len(r) - 3, 0xBEEF, ip) == E_MALFORMED  # the A record cut short
    nx = packet(qid=0xBEEF, flags=0x8183, body=q)  # NXDOMAIN
    assert parse_a(nx, len(nx), 0xBEEF, ip) == E_REFUSED
    empty = packet(qid=0xBEEF, flags=0x8180, body=q)
    assert parse_a(empty, len(empty), 0xBEEF, ip) == E_NO_ADDRESS
    asked = packet(qid=0xBEEF, body=q)  # our own query echoed: not a response
    assert parse_a(asked, len(asked), 0xBEEF, ip) == E_NOT_OURS


def test_the_responder_answers_what_query_asks():
    # The two halves agree: our query, answered by our responder, parses back
    # to the bridge's address.
    q = bytearray(MAX)
    n = query(q, 0x0102, "anything.example")
    r = respond(bytes(q[:n]))
    ip = bytearray(4)
    assert r is not None and parse_a(r, len(r), 0x0102, ip) == 1 and bytes(ip) == BRIDGE
