"""Bad input: malformed wire frames get an EPROTO reply (or are dropped) and change nothing, and the
server keeps serving everyone; a bad config line makes coordd exit 2 naming the file and line."""
import random
import struct
import subprocess

import pytest

import coordwire as cw
from coordtest import binary, exists, get, ls, ok, write_config

H = cw.header


def get_body(path="/"):
    return cw.body_get(path)


# (name, frame) pairs: each is malformed by WIRE.md section 8.
MALFORMED = [
    ("empty", b""),
    ("five_bytes", b"\x01\x07\x00\x00\x01"),
    ("header_minus_one", H(cw.GET, 1)[:19]),
    ("version_0", H(cw.GET, 1, version=0) + get_body()),
    ("version_2", H(cw.GET, 1, version=2) + get_body()),
    ("version_255", H(cw.GET, 1, version=255) + get_body()),
    ("op_0", H(0, 1)),
    ("op_20", H(20, 1) + get_body()),
    ("op_255", H(255, 1)),
    ("path_len_huge", H(cw.CREATE, 1) + struct.pack("<I", 0xFFFFFFFF) + b"/evil"),
    ("path_len_past_frame", H(cw.CREATE, 1) + struct.pack("<I", 100) + b"/evil"),
    ("path_over_4096", H(cw.GET, 1) + cw.enc_bytes(b"/" + b"a" * 4096) + b"\0"),
    ("data_len_huge", H(cw.CREATE, 1) + cw.enc_bytes("/evil") + struct.pack("<I", 0x7FFFFFFF) + b"x"),
    ("data_over_64MiB", H(cw.SET, 1) + cw.enc_bytes("/evil") + struct.pack("<I", (64 << 20) + 1)),
    ("create_missing_policy", H(cw.CREATE, 1) + cw.body_create("/evil")[:-1]),
    ("create_trailing_byte", H(cw.CREATE, 1) + cw.body_create("/evil") + b"\0"),
    ("get_trailing_bytes", H(cw.GET, 1) + get_body() + b"xyz"),
    ("multi_nops_huge", H(cw.MULTI, 1) + struct.pack("<I", 0xFFFFFFFF)),
    ("multi_nops_over_1024", H(cw.MULTI, 1) + cw.body_multi([(cw.CHECK, cw.body_delete("/", -1))] * 1025)),
    ("multi_get_subop", H(cw.MULTI, 1) + cw.body_multi([(cw.CREATE, cw.body_create("/evil")),
                                                         (cw.GET, get_body())])),
    ("multi_truncated", H(cw.MULTI, 1) + cw.body_multi([(cw.CREATE, cw.body_create("/evil"))] * 2)[:-3]),
    ("admin_word_over_64", H(cw.ADMIN, 1) + cw.enc_bytes("r" * 65)),
    ("list_max_over_10000", H(cw.LIST, 1) + cw.body_list("/", max_names=10001)),
    ("setwatches_list_without_nul", H(cw.SETWATCHES, 1) + struct.pack("<Q", 0) + cw.enc_bytes("/a")
     + cw.enc_bytes("") * 3),
]


def expect_eproto_or_nothing(w, what, also=()):
    m = w.recv(1.0)
    if m is not None:
        assert m.kind == cw.KIND_REPLY and m.err in (cw.EPROTO,) + tuple(also), (what, m)
        assert m.msg, "an EPROTO reply should say what is wrong"
    return m


@pytest.mark.parametrize("frame", [f for _, f in MALFORMED], ids=[n for n, _ in MALFORMED])
def test_malformed_frame_gets_eproto_and_changes_nothing(server, frame):
    with cw.Wire(server.port) as w:
        w.connect()
        w.send_raw(frame)
        # a path over the decoder's limit may also be answered with the path rules' ENAMETOOLONG
        m = expect_eproto_or_nothing(w, frame[:32], also=(cw.ENAMETOOLONG,))
        assert m is not None, "no reply to a malformed frame of %d bytes" % len(frame)
        # the same session goes on working
        r = w.call(cw.CREATE, cw.body_create("/ok", b"fine"))
        assert r.err == cw.OK, r
    assert not exists(server.hosts, "/evil")
    assert get(server.hosts, "/ok") == "fine"


@pytest.mark.parametrize("frame", [f for _, f in MALFORMED[:8]], ids=[n for n, _ in MALFORMED[:8]])
def test_malformed_frame_before_connect_gets_eproto(server, frame):
    with cw.Wire(server.port) as w:
        w.send_raw(frame)
        assert expect_eproto_or_nothing(w, frame) is not None
        w.connect()
        assert w.call(cw.CREATE, cw.body_create("/ok")).err == cw.OK


def test_eproto_reply_names_the_request_xid_when_the_header_is_whole(server):
    with cw.Wire(server.port) as w:
        w.connect()
        w.send_raw(H(cw.GET, 4242) + get_body() + b"junk")
        m = w.recv(2)
        assert (m.err, m.xid) == (cw.EPROTO, 4242)
        assert "trailing" in m.msg


def test_random_and_mutated_frames_never_stop_the_server(server):
    rnd = random.Random(20261125)
    valid = [H(cw.CREATE, 9) + cw.body_create("/fz", b"d"), H(cw.GET, 9) + get_body("/"),
             H(cw.LIST, 9) + cw.body_list("/"), H(cw.MULTI, 9) + cw.body_multi([(cw.SET, cw.body_set("/a", b"x"))])]
    with cw.Wire(server.port) as w:
        w.connect()
        for i in range(400):
            if i % 2:
                frame = bytes(rnd.getrandbits(8) for _ in range(rnd.randrange(0, 80)))
            else:
                frame = bytearray(rnd.choice(valid))
                for _ in range(rnd.randrange(1, 4)):
                    frame[rnd.randrange(len(frame))] = rnd.getrandbits(8)
            w.send_raw(bytes(frame))
        # drain what comes back; then the session and other clients still work
        while w.recv(0.5) is not None:
            pass
        assert w.call(cw.PING).err == cw.OK
    assert server.running()
    ok(server.hosts, "create", "/after", "x")
    assert ok(server.hosts, "ruok").strip() == "imok"


def test_multipart_message_is_refused_and_the_connection_goes_on(server):
    with cw.Wire(server.port) as w:
        w.connect()
        w.sock.send_multipart([H(cw.CREATE, 50) + cw.body_create("/evil"), b"second part"])
        expect_eproto_or_nothing(w, "multipart")
        assert w.call(cw.CREATE, cw.body_create("/ok")).err == cw.OK
    assert not exists(server.hosts, "/evil")


def test_frame_over_the_servers_size_limit_is_dropped_and_others_are_served(make_server):
    srv = make_server(maxDataBytes=4096)  # the frame limit is maxDataBytes + 1 MiB
    big = H(cw.CREATE, 1) + cw.body_create("/evil", b"b" * (3 << 20))
    with cw.Wire(srv.port) as other, cw.Wire(srv.port) as w:
        other.connect()
        w.connect()
        w.send_raw(big)
        expect_eproto_or_nothing(w, "3 MiB frame")
        assert other.call(cw.CREATE, cw.body_create("/other", b"x")).err == cw.OK
    assert not exists(srv.hosts, "/evil")
    assert ls(srv.hosts, "/") == ["other"]


def test_data_over_max_data_bytes_on_the_wire_gets_etoolarge(make_server):
    # coordctl refuses it before sending; the server must check too.
    srv = make_server(maxDataBytes=4096)
    with cw.Wire(srv.port) as w:
        w.connect()
        assert w.call(cw.CREATE, cw.body_create("/a", b"x" * 4097)).err == cw.ETOOLARGE
        assert w.call(cw.CREATE, cw.body_create("/b", b"x" * 4096)).err == cw.OK
        assert w.call(cw.SET, cw.body_set("/b", b"y" * 4097)).err == cw.ETOOLARGE
        m = w.call(cw.APPEND, cw.body_set("/b", b"z"))
        assert m.err == cw.ETOOLARGE
    assert not exists(srv.hosts, "/a")
    assert get(srv.hosts, "/b") == "x" * 4096


def test_request_without_a_session_gets_enotready(server):
    with cw.Wire(server.port) as w:
        m = w.call(cw.CREATE, cw.body_create("/nosession"))
        assert m.err == cw.ENOTREADY
    assert not exists(server.hosts, "/nosession")


# ---- exactly once: a resent request (same xid) is applied once ----

def test_resent_sequential_create_is_applied_once_with_the_same_reply(server):
    ok(server.hosts, "mkdir", "/q")
    with cw.Wire(server.port) as w:
        w.connect()
        req = H(cw.CREATE, 10) + cw.body_create("/q/n-", b"x", cw.SEQUENTIAL)
        w.send_raw(req)
        first = w.reply(10)
        w.send_raw(req)
        again = w.reply(10)
    assert first.err == cw.OK and first.path == "/q/n-0000000000"
    assert again.frame == first.frame
    assert ls(server.hosts, "/q") == ["n-0000000000"]


def test_resent_append_is_applied_once(server):
    ok(server.hosts, "create", "/log", "a")
    with cw.Wire(server.port) as w:
        w.connect()
        req = H(cw.APPEND, 5) + cw.body_set("/log", b"b")
        for _ in range(3):
            w.send_raw(req)
            assert w.reply(5).err == cw.OK
    assert get(server.hosts, "/log") == "ab"


def test_request_resent_on_a_new_connection_after_resume_is_applied_once(server):
    ok(server.hosts, "create", "/log", "")
    w1 = cw.Wire(server.port)
    w1.connect()
    req = H(cw.APPEND, 7) + cw.body_set("/log", b"+")
    w1.send_raw(req)
    first = w1.reply(7)
    sid, pw = w1.session_id, w1.passwd
    w1.close()  # the connection is lost; the session is not
    with cw.Wire(server.port) as w2:
        m = w2.call(cw.CONNECT, cw.body_connect(session_id=sid, passwd=pw, timeout_ms=10000,
                                                last_zxid=first.zxid), xid=8)
        assert m.err == cw.OK and m.session_id == sid
        w2.send_raw(req)
        again = w2.reply(7)
        assert again.frame == first.frame
    assert get(server.hosts, "/log") == "+"


def test_resent_request_whose_reply_was_acknowledged_gets_eduplicate_and_is_not_applied(server):
    ok(server.hosts, "create", "/log", "")
    with cw.Wire(server.port) as w:
        w.connect()
        assert w.call(cw.APPEND, cw.body_set("/log", b"1"), xid=3).err == cw.OK
        # xid 4 says: every reply below 4 has been received, so the server may forget xid 3's
        assert w.call(cw.APPEND, cw.body_set("/log", b"2"), xid=4, ack=4).err == cw.OK
        m = w.call(cw.APPEND, cw.body_set("/log", b"1"), xid=3, ack=4)
        assert m.err == cw.EDUPLICATE, m
    assert get(server.hosts, "/log") == "12"


def test_old_xid_reused_for_another_request_applies_nothing_new(server):
    with cw.Wire(server.port) as w:
        w.connect()
        assert w.call(cw.CREATE, cw.body_create("/a"), xid=20).err == cw.OK
        m = w.call(cw.CREATE, cw.body_create("/b"), xid=20)
        assert m.op == cw.CREATE
    assert not exists(server.hosts, "/b")


# ---- bad configuration ----

def run_coordd(cfg, timeout=10):
    p = subprocess.run([str(binary("coordd")), "--config", str(cfg)], capture_output=True, text=True,
                       timeout=timeout, stdin=subprocess.DEVNULL)
    return p.returncode, p.stdout, p.stderr


BAD_LINES = [
    ("tickTime=abc", "tickTime"),
    ("tickTime=0", "tickTime"),
    ("tickTime=2000 # ms", "tickTime"),
    ("clientPort=70000", "clientPort"),
    ("maxDataBytes=1023", "maxDataBytes"),
    ("snapCount=1", "snapCount"),
    ("tickTim=2000", "tickTim"),
    ("jute.maxbuffer=100", "jute.maxbuffer"),
    ("no equals sign here", ""),
    ("server.1=127.0.0.1", "server.1"),
]


@pytest.mark.parametrize("line,key", BAD_LINES, ids=[l for l, _ in BAD_LINES])
def test_bad_config_line_exits_2_naming_file_and_line(tmp_path, line, key):
    cfg = write_config(tmp_path / "coord.cfg", ["# a comment", "", line, "maxClientCnxns=10"],
                       dataDir=tmp_path / "data", clientPort=2181)
    rc, _, err = run_coordd(cfg)
    assert rc == 2, err
    assert "coord.cfg:5:" in err, err  # dataDir, clientPort, comment, blank, then the bad line
    assert key in err


def test_key_given_twice_is_an_error_naming_the_second_line(tmp_path):
    cfg = write_config(tmp_path / "coord.cfg", ["tickTime=1000", "tickTime=2000"], dataDir=tmp_path / "d")
    rc, _, err = run_coordd(cfg)
    assert rc == 2 and "coord.cfg:3:" in err and "tickTime" in err, err


def test_unknown_key_close_to_a_known_one_suggests_it(tmp_path):
    cfg = write_config(tmp_path / "coord.cfg", ["maxSesionTimeout=4000"], dataDir=tmp_path / "d")
    rc, _, err = run_coordd(cfg)
    assert rc == 2 and "coord.cfg:2:" in err and "maxSessionTimeout" in err, err


def test_missing_data_dir_is_an_error(tmp_path):
    cfg = write_config(tmp_path / "coord.cfg", clientPort=2181)
    rc, _, err = run_coordd(cfg)
    assert rc == 2 and "dataDir" in err, err


def test_missing_config_file_and_bad_command_line_exit_2(tmp_path):
    rc, _, err = run_coordd(tmp_path / "nope.cfg")
    assert rc == 2 and "nope.cfg" in err, err
    p = subprocess.run([str(binary("coordd"))], capture_output=True, text=True, timeout=10)
    assert p.returncode == 2


def test_zookeeper_keys_coordfs_ignores_are_accepted(make_server):
    srv = make_server(**{"autopurge.purgeInterval": 1, "4lw.commands.whitelist": "*", "initLimit": 5,
                         "syncLimit": 2, "preAllocSize": 65536})
    assert "ignored" in srv.log_text()
    ok(srv.hosts, "create", "/a")
