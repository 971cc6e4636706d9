# End to end: the web face of the real firmware (MicroPython unix port, the
# heap `make run` uses) against the BMS simulator, under the loads that broke
# the old one: concurrent clients, slow and idle connections, a live event
# stream; boots on files that once killed the firmware; three crashing boots
# and safe mode; a dangerous command through its opt-in. CPython only.
import json
import os
import re
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request

import fwproc
from fwproc import TOKEN, Firmware, no_crash, wait_until
from simproc import SimProcess

LINK = {"poll_ms": 250, "poll_floor_ms": 100, "listen_first_ms": 100}


def close_wait_sockets(port):
    """Server-side sockets of `port` in CLOSE-WAIT: a connection the client
    closed and the firmware never did."""
    out = subprocess.run(["ss", "-tan", "state", "close-wait", "sport", "= :%d" % port],
                         capture_output=True, text=True).stdout
    return [ln for ln in out.splitlines()[1:] if ln.strip()]


def get(fw, path, timeout_s=10):
    # As a browser asks: "/" is then the dashboard, the largest reply (16 KB gzipped).
    req = urllib.request.Request(fw.url(path), headers={"Accept-Encoding": "gzip"})
    try:
        with urllib.request.urlopen(req, timeout=timeout_s) as r:
            r.read()
            return r.status
    except urllib.error.HTTPError as e:
        e.read()
        return e.code
    except OSError:
        return "error"


def test_eight_clients_for_a_minute(tmp_path):
    # 8 clients read the status, the dashboard, the events and /metrics as fast
    # as they can for 60 s: >= 95 % answered 200, no 5xx but 503 (busy),
    # and the BMS is still polled on time.
    with fwproc.bridge(tmp_path, (), link=LINK) as (sim, fw):
        fw.wait_link("ok")
        paths = ["/api/status", "/", "/api/events", "/metrics"]
        results = []
        lock = threading.Lock()
        stop_at = time.monotonic() + 60
        polls0 = fw.get_json("/api/status")["link"]["stats"]["polls"]
        t0 = time.monotonic()

        def client(k):
            n = 0
            while time.monotonic() < stop_at:
                status = get(fw, paths[(k + n) % 4])
                n += 1
                with lock:
                    results.append(status)

        threads = [threading.Thread(target=client, args=(k,)) for k in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.monotonic() - t0
        doc = fw.get_json("/api/status")
        polls = doc["link"]["stats"]["polls"] - polls0
        ok = results.count(200)
        bad = [s for s in results if s != 200 and s != 503]
        assert ok >= 0.95 * len(results), (ok, len(results), sorted(set(map(str, results))))
        assert not [s for s in bad if s != "error"] and bad.count("error") <= 0.01 * len(results), bad[:10]
        # The link kept its rhythm: one poll every 250 ms, within 10 %.
        expected = elapsed * 1000 / 250
        assert abs(polls - expected) <= 0.1 * expected, (polls, expected)
        assert doc["live"]
        time.sleep(1)
        assert close_wait_sockets(fw.port) == []
        health = no_crash(fw)
        print("eight clients: %d requests in %.0f s, %d x 200, %d x 503, heap min free %d" % (
            len(results), elapsed, ok, results.count(503), health["heap_min_free"]))


def test_fifty_slow_header_connections_do_not_kill_the_face(tmp_path):
    with fwproc.bridge(tmp_path, (), link=LINK) as (sim, fw):
        fw.wait_link("ok")
        socks = []
        for _ in range(50):
            s = socket.socket()
            s.settimeout(2)
            try:
                s.connect(("127.0.0.1", fw.port))
                s.send(b"GET /api/status HTTP/1.1\r\n")
            except OSError:
                pass
            socks.append(s)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # a header line every 10 s, for a minute
            time.sleep(10)
            for s in socks:
                try:
                    s.send(b"X-Slow: 1\r\n")
                except OSError:
                    pass
        for s in socks:
            s.close()
        t0 = time.monotonic()
        status, health = fw.request("GET", "/api/health", timeout_s=5)
        assert status == 200 and time.monotonic() - t0 < 5
        assert health["task_restarts"]["http"] == 0 and health["http"]["timeouts"] > 0, health
        time.sleep(1)
        assert close_wait_sockets(fw.port) == []
        assert fw.status()["live"]
        no_crash(fw)


def test_too_many_header_lines_get_431(tmp_path):
    with fwproc.bridge(tmp_path, (), link=LINK) as (sim, fw):
        s = socket.create_connection(("127.0.0.1", fw.port), timeout=5)
        s.sendall(b"GET /api/status HTTP/1.1\r\n" + b"X-A: 1\r\n" * 100 + b"\r\n")
        reply = b""
        while True:
            d = s.recv(4096)
            if not d:
                break
            reply += d
        s.close()
        assert reply.startswith(b"HTTP/1.0 431"), reply[:80]
        assert json.loads(reply.split(b"\r\n\r\n", 1)[1])["ok"] is False
        no_crash(fw)


def test_live_stream_pushes_each_change(tmp_path):
    with fwproc.bridge(tmp_path, (), link=LINK) as (sim, fw):
        fw.wait_link("ok")
        s = socket.create_connection(("127.0.0.1", fw.port), timeout=10)
        s.sendall(b"GET /api/stream HTTP/1.1\r\nAccept: text/event-stream\r\n\r\n")
        buf = b""
        deadline = time.monotonic() + 10
        while buf.count(b"\n\nevent: status") < 6 and time.monotonic() < deadline:
            buf += s.recv(65536)
        head, body = buf.split(b"\r\n\r\n", 1)
        assert b"text/event-stream" in head
        events = [e for e in body.split(b"\n\n") if e.startswith(b"event: status")]
        docs = [json.loads(e.split(b"data: ", 1)[1]) for e in events[:6]]
        gens = [d["generation"] for d in docs]
        # A document at once, then one on every change (a new status, an
        # output, the energy counters...): the status moves on meanwhile.
        assert gens == sorted(gens) and gens[-1] > gens[0], gens
        assert docs[-1]["live"] and docs[-1]["status"]["cell_count"] == 16
        health = fw.get_json("/api/health")
        assert health["http"]["streams"] == 1
        s.close()
        wait_until(lambda: fw.get_json("/api/health")["http"]["streams"] == 0, 5, 0.2, "the stream closed")
        no_crash(fw)


def open_stream(fw):
    s = socket.create_connection(("127.0.0.1", fw.port), timeout=10)
    s.sendall(b"GET /api/stream HTTP/1.1\r\nAccept: text/event-stream\r\n\r\n")
    return s


def test_two_streams_and_every_request_slot_busy_at_once(tmp_path):
    # Two dashboards (their live streams) while clients keep both request
    # slots busy: every writer the server needs was made at start, so the
    # busiest moment allocates none (one made on demand once failed in a
    # fragmented heap and took the server down). A third stream is refused.
    with fwproc.bridge(tmp_path, (), link=LINK) as (sim, fw):
        fw.wait_link("ok")
        streams = [open_stream(fw), open_stream(fw)]
        wait_until(lambda: fw.get_json("/api/health")["http"]["streams"] == 2, 10, 0.2, "two streams")
        third = open_stream(fw)
        reply = b""
        while b"\r\n\r\n" not in reply:
            d = third.recv(4096)
            if not d:
                break
            reply += d
        third.close()
        assert reply.startswith(b"HTTP/1.0 503"), reply[:80]
        results = []
        stop_at = time.monotonic() + 15

        def client():
            while time.monotonic() < stop_at:
                results.append(get(fw, ("/api/status", "/", "/metrics", "/api/history")[len(results) % 4]))

        threads = [threading.Thread(target=client) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert results and set(results) <= {200, 503}, sorted(set(map(str, results)))
        assert results.count(200) >= 0.9 * len(results), (results.count(200), len(results))
        for s in streams:  # both streams still deliver the status
            s.settimeout(10)
            got = b""
            while got.count(b"event: status") < 2:
                d = s.recv(65536)
                assert d, "the stream ended"
                got += d
            s.close()
        health = no_crash(fw)
        # At 96K with both streams open and both slots on `/` and /metrics, a
        # handler now and then finds no block for its working memory (1 in
        # about 2000 here): it is ended with one console line and the server
        # carries on (README "The HTTP API"); never a crash or a traceback.
        http = health["http"]
        out, err = fw.output()
        failed = [ln for ln in (out + err).splitlines() if "request failed" in ln]
        assert len(failed) == http["failed"] and http["failed"] * 100 <= http["accepted"], (http, failed)
        assert all("MemoryError" in ln for ln in failed), failed


def test_factory_reset_through_the_api_with_opt_in_and_confirm(tmp_path):
    with fwproc.bridge(tmp_path, (), link=LINK, settings={"control": {"allow_commands": ["factory-reset"]}}) as (sim, fw):
        fw.wait_link("ok")
        status, reply = fw.post_json("/api/command", {"command": "factory-reset"}, TOKEN)
        assert status == 403 and '"confirm": "factory-reset"' in reply["reason"]
        status, reply = fw.post_json("/api/command", {"command": "factory-reset", "confirm": "factory-reset"}, TOKEN)
        assert status == 200 and reply["ok"] is True, reply
        assert "factory-reset" in sim.state()["commands"]
    with fwproc.bridge(tmp_path / "no", (), link=LINK) as (sim, fw):
        fw.wait_link("ok")
        status, reply = fw.post_json("/api/command", {"command": "factory-reset", "confirm": "factory-reset"}, TOKEN)
        assert status == 403 and "control.allow_commands" in reply["reason"]
        assert "factory-reset" not in sim.state()["commands"]


BOOT_KILLERS = (  # (file, content, the reason the firmware gives)
    ("settings.json", "[" * 1500 + "]" * 1500, "nested deeper than 12 levels"),
    ("state.json", '{"energy": ' + "[" * 2000 + "]" * 2000 + "}", "nested deeper than 6 levels"),
    ("settings.json", json.dumps({"api_token": TOKEN, "outputs": {"outputs": [
        {"name": "x", "when": {"all": [{"soc": {"below": i % 100}} for i in range(560)]}}]}}), "more than 600 values"),
)


def test_files_that_killed_the_boot_now_boot_on_defaults(tmp_path):
    with SimProcess() as sim:
        for k, (name, text, why) in enumerate(BOOT_KILLERS):
            work = tmp_path / str(k)
            data = work / "fw" / "data"
            data.mkdir(parents=True)
            if name == "state.json":
                (data / name).write_text(text)
                fw = Firmware(work, sim, link=LINK)
            else:
                fw = Firmware(work, sim, link=LINK, raw_settings=text)
            try:
                health = fw.get_json("/api/health")
                error = health["settings_error" if name == "settings.json" else "state_error"]
                assert error and why in error, (name, health)
                assert health["task_crashes"] == 0 and not health["safe_mode"]
                fw.wait_link("ok")  # running, on defaults
            finally:
                fw.stop()


def test_three_crashing_boots_then_safe_mode(tmp_path):
    with SimProcess() as sim:
        work = tmp_path / "w"
        crash = {"ANTBRIDGE_CRASH_AT_BOOT": "1"}
        for k in range(3):
            try:
                Firmware(work, sim, link=LINK, env=crash)
                started = True
            except (AssertionError, fwproc.run.RunError) as e:
                started = False
                assert "exited with code 75" in str(e), e  # reset (hw.reset) after the crash
            assert not started, "the injected crash did not stop the boot"
        fw = Firmware(work, sim, link=LINK, env=crash)  # the 4th boot: safe mode, the crash is not reached
        try:
            health = fw.get_json("/api/health")
            assert health["safe_mode"] is True and "3 crashed boots" in health["safe_mode_reason"], health
            outs = fw.get_json("/api/outputs")["outputs"]
            assert all(o["held_by"] == "safe mode" for o in outs), outs
            status, page = fw.request("GET", "/lite")
            assert "SAFE MODE" in page
            events = fw.get_json("/api/events")["events"]
            boot = [e for e in events if e["kind"] == "boot" and not e["earlier_boot"]][0]
            assert "firmware crash" in boot["text"] and "SAFE MODE after 3 crashed boots" in boot["text"], boot
            status, reply = fw.post_json("/api/outputs", {"output": 0, "action": "on"}, TOKEN)
            assert status == 503 and "safe mode" in reply["reason"]
        finally:
            fw.stop()
        fw = Firmware(work, sim, link=LINK)  # stopped cleanly: the count starts over, a normal boot
        try:
            assert fw.get_json("/api/health")["safe_mode"] is False
            fw.wait_link("ok")
        finally:
            fw.stop()


def test_refused_requests_get_json_and_one_log_line_each(tmp_path):
    with fwproc.bridge(tmp_path, (), link=LINK) as (sim, fw):
        junk = (b"GARBAGE\r\n\r\n", b"GET\r\n\r\n", b"GET /api/status HTTP/1.1\r\nNoColonHere\r\n\r\n",
                b"GET /" + b"a" * 3000 + b" HTTP/1.1\r\n\r\n")
        # A TLS hello on the plain port: no line ever ends; closed at the
        # request deadline, unanswered.
        s = socket.create_connection(("127.0.0.1", fw.port), timeout=10)
        s.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" * 20)
        t0 = time.monotonic()
        assert s.recv(4096) == b"" and time.monotonic() - t0 < 7
        s.close()
        for raw in junk:
            s = socket.create_connection(("127.0.0.1", fw.port), timeout=5)
            s.sendall(raw)
            reply = b""
            try:
                while True:
                    d = s.recv(4096)
                    if not d:
                        break
                    reply += d
            except OSError:
                pass
            s.close()
            assert reply.startswith(b"HTTP/1.0 4"), (raw[:40], reply[:80])
            assert json.loads(reply.split(b"\r\n\r\n", 1)[1])["ok"] is False
        out, err = fw.output()
        assert "Traceback" not in out + err
        lines = [ln for ln in (out + err).splitlines() if ln.startswith("http:")]
        assert len(lines) <= len(junk) + 1, lines  # at most one line per refused request
        assert fw.status()["live"] is not None  # and the face still answers
