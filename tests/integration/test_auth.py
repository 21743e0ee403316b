"""Authentication (issue 8): CurveZMQ on the client port (a ZAP handler that admits only listed
keys and gives the session its principal), the members' CURVE keys on the peer links (peerlink.c),
plaintext only with auth=none.

Every refusal is checked while a well-behaved client keeps being served, and for a clear message
on the refused side and one log line on the server's."""
import os
import signal
import socket
import struct
import subprocess

import pytest

import coordwire as cw
from authtest import Keys
from conftest_fs import mount  # noqa: F401  (fixture)
from coordtest import Ensemble, binary, coordctl, ok, wait_leader, wait_until, write_config
from goodclient import GoodClient

EX_NOAUTH = 9


@pytest.fixture
def keys(tmp_path):
    return Keys(tmp_path / "keys")


@pytest.fixture
def curve_server(make_server, keys, monkeypatch):
    keys.use(monkeypatch, "admin")
    return make_server(**keys.server_settings(["admin"]))


def log_lines(srv, text):
    return [l for l in srv.log_since_start().splitlines() if text in l]


# ---- plaintext only when asked for ----

def test_config_without_keys_or_auth_none_refuses_to_start_saying_what_to_add(tmp_path):
    cfg = write_config(tmp_path / "coord.cfg", dataDir=tmp_path / "d", clientPort=2181)
    p = subprocess.run([str(binary("coordd")), "--config", str(cfg)], capture_output=True, text=True, timeout=10)
    assert p.returncode == 2, p.stderr
    assert "auth=none" in p.stderr and "clientSecretKeyFile" in p.stderr and "authorizedKeysFile" in p.stderr


def test_auth_curve_without_its_key_files_or_contradicting_auth_none_is_refused(tmp_path, keys):
    cfg = write_config(tmp_path / "a.cfg", dataDir=tmp_path / "d", auth="curve")
    p = subprocess.run([str(binary("coordd")), "--config", str(cfg)], capture_output=True, text=True, timeout=10)
    assert p.returncode == 2 and "clientSecretKeyFile" in p.stderr, p.stderr
    cfg = write_config(tmp_path / "b.cfg", dataDir=tmp_path / "d", auth="none",
                       clientSecretKeyFile=keys.key("service"))
    p = subprocess.run([str(binary("coordd")), "--config", str(cfg)], capture_output=True, text=True, timeout=10)
    assert p.returncode == 2 and "b.cfg:2: auth: 'none' contradicts clientSecretKeyFile" in p.stderr, p.stderr


def test_auth_none_runs_in_plaintext_and_says_so_at_start(server):
    assert [l for l in server.log_since_start().splitlines() if " WARN " in l and "auth=none" in l]
    ok(server.hosts, "create", "/a", "x")


def test_bad_key_file_stops_the_server_naming_the_file_and_line(make_server, tmp_path, keys):
    bad = tmp_path / "authorized_keys"
    bad.write_text("# ok\nadmin %s\nweb not-a-key\n" % keys.make("admin"))
    srv = make_server(start=False, clientSecretKeyFile=keys.key("service"), authorizedKeysFile=bad)
    srv.launch()
    wait_until(lambda: srv.proc.poll() is not None, 10, what="coordd to refuse the config")
    assert srv.proc.returncode != 0
    assert "%s:3:" % bad in srv.log_text()


# ---- keys ----

def test_keygen_writes_a_pair_refuses_to_overwrite_and_reports_an_unwritable_dir(tmp_path):
    ctl = str(binary("coordctl"))
    p = subprocess.run([ctl, "keygen", str(tmp_path / "web")], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    key, pub = tmp_path / "web.key", tmp_path / "web.pub"
    assert key.stat().st_mode & 0o777 == 0o600
    assert "secret-key = " in key.read_text() and "secret-key" not in pub.read_text()
    z85 = p.stdout.split()[-1]
    assert len(z85) == 40 and "public-key = %s" % z85 in pub.read_text()
    p = subprocess.run([ctl, "keygen", str(tmp_path / "web")], capture_output=True, text=True)
    assert p.returncode == 3 and "already exists" in p.stderr and "--force" in p.stderr
    p = subprocess.run([ctl, "keygen", "--force", str(tmp_path / "web")], capture_output=True, text=True)
    assert p.returncode == 0 and p.stdout.split()[-1] != z85
    p = subprocess.run([ctl, "keygen", str(tmp_path / "no" / "such" / "dir" / "k")], capture_output=True, text=True)
    assert p.returncode != 0 and "cannot write" in p.stderr


def test_a_public_key_file_given_as_the_client_key_is_a_clear_error(curve_server, keys):
    rc, _, err = coordctl(curve_server.hosts, "ls", "/", env=dict(keys.env("admin"), COORD_KEY=str(keys.pub("admin"))))
    assert rc == 2 and "no secret-key" in err and str(keys.pub("admin")) in err, err


# ---- the client port ----

def test_authorised_key_is_served_and_its_session_carries_the_principal(curve_server, keys):
    h = curve_server.hosts
    ok(h, "create", "/a", "x")
    with cw.Wire(curve_server.port, curve=keys.curve("admin")) as w:
        w.connect()
        cons = ok(h, "cons")
        line = [l for l in cons.splitlines() if "0x%016x" % w.session_id in l]
        assert line and "principal=admin" in line[0], cons
    assert "auth=curve" in ok(h, "conf")


def test_unlisted_key_no_key_and_wrong_server_key_are_refused_while_others_are_served(curve_server, keys):
    h = curve_server.hosts
    with GoodClient(curve_server.port, curve=keys.curve("admin")) as good:
        for _ in range(3):
            rc, _, err = coordctl(h, "get", "/good", env=keys.env("stranger"))
            assert rc == EX_NOAUTH and "server refused our key (not authorised)" in err, err
        rc, _, err = coordctl(h, "get", "/good", env=keys.env(None))
        assert rc == EX_NOAUTH and "requires a key" in err, err
        rc, _, err = coordctl(h, "ruok", env=keys.env(None))  # the session-less admin words too
        assert rc == EX_NOAUTH and "requires a key" in err, err
        rc, _, err = coordctl(h, "srvr", env=keys.env("stranger"))
        assert rc == EX_NOAUTH and "server refused our key" in err, err
        env = dict(keys.env("admin"), COORD_SERVER_KEY=str(keys.pub("stranger")))
        rc, _, err = coordctl(h, "get", "/good", env=env)
        assert rc == EX_NOAUTH and "handshake failed" in err, err
        # a raw plaintext client gets nothing at all, and the server goes on
        with cw.Wire(curve_server.port) as raw:
            raw.send(cw.CONNECT, cw.body_connect())
            assert raw.recv(0.5) is None
        good.wait_calls(20)
    assert good.errors == [] and good.calls > 0
    # refused, and logged once (with the address), not once per attempt
    refused = log_lines(curve_server, "refused a client from 127.0.0.1: key %s" % keys.make("stranger"))
    assert len(refused) == 1, curve_server.log_tail()
    # (the address, when the connection lived long enough for the server to read it)
    assert len(log_lines(curve_server, ": its handshake failed")) == 1


def test_sighup_adds_and_removes_keys_and_cuts_the_removed_principals_connections(curve_server, keys):
    h = curve_server.hosts
    rc, _, err = coordctl(h, "get", "/", env=keys.env("web"))
    assert rc == EX_NOAUTH, err
    keys.authorize("admin", "web")
    os.kill(curve_server.proc.pid, signal.SIGHUP)
    wait_until(lambda: log_lines(curve_server, "reloaded"), 10, what="the reload")
    assert "1 added, 0 removed" in log_lines(curve_server, "reloaded")[-1]
    ok(h, "create", "/by-web", "x", env=keys.env("web"))

    with cw.Wire(curve_server.port, curve=keys.curve("web")) as w, \
            GoodClient(curve_server.port, curve=keys.curve("admin")) as good:
        w.connect()
        assert w.call(cw.GET, cw.body_get("/by-web")).err == cw.OK
        keys.authorize("admin")
        os.kill(curve_server.proc.pid, signal.SIGHUP)
        wait_until(lambda: "0 added, 1 removed" in "".join(log_lines(curve_server, "reloaded")), 10,
                   what="the second reload")
        # the existing connection is cut: requests need a session, and the session cannot resume
        assert w.call(cw.GET, cw.body_get("/by-web")).err == cw.ENOTREADY
        r = w.call(cw.CONNECT, cw.body_connect(w.session_id, w.passwd))
        assert r.err == cw.ENOAUTH and "no longer authorised" in r.msg
        rc, _, err = coordctl(h, "get", "/by-web", env=keys.env("web"))
        assert rc == EX_NOAUTH and "not authorised" in err
        good.wait_calls(10)
    assert good.errors == []


def test_a_bad_authorized_keys_file_on_sighup_keeps_the_old_list(curve_server, keys):
    curve_server_keys = keys.authorized.read_text()
    keys.authorized.write_text(curve_server_keys + "oops\n")
    os.kill(curve_server.proc.pid, signal.SIGHUP)
    wait_until(lambda: log_lines(curve_server, "keeping the"), 10, what="the refused reload")
    line = log_lines(curve_server, "keeping the")[0]
    assert "%s:%d:" % (keys.authorized, len(curve_server_keys.splitlines()) + 1) in line, line
    ok(curve_server.hosts, "create", "/still", "fine")


# ---- the mount ----

def test_coordfs_with_keys_mounts_and_without_keys_is_refused_clearly(curve_server, keys, mount, tmp_path):
    if not os.path.exists(str(binary("coordfs"))):
        pytest.skip("coordfs not built")
    m = mount(curve_server, opts=["key=%s" % keys.key("admin"), "serverkey=%s" % keys.pub("service")])
    m.sh("echo hello > greeting")
    assert ok(curve_server.hosts, "get", "/greeting") == "hello\n"
    cluster = m.sh("cat .cluster")  # asked with the mount's keys too
    assert " up" in cluster and "connected" in cluster, cluster
    assert "principal=admin" in ok(curve_server.hosts, "cons")
    d = tmp_path / "refused"
    d.mkdir()
    p = subprocess.run([str(binary("coordfs")), curve_server.hosts, str(d), "-o", "session_timeout=2"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode != 0 and "requires a key" in p.stderr, p.stderr
    p = subprocess.run([str(binary("coordfs")), curve_server.hosts, str(d), "-o",
                        "key=%s,serverkey=%s" % (keys.key("stranger"), keys.pub("service"))],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode != 0 and "server refused our key (not authorised)" in p.stderr, p.stderr


# ---- the peer port ----

@pytest.fixture
def curve_ensemble(tmp_path, procs, keys, monkeypatch):
    keys.use(monkeypatch, "admin")
    ens = Ensemble(tmp_path / "ens", 3, procs=procs, tickTime=200)
    keys.ensemble_settings(ens)
    ens.start()
    wait_leader(ens)
    return ens


def peer_port(member):
    line = [l for l in member.extra_lines if l.startswith("server.%d=" % member.myid)][0]
    return int(line.split("=", 1)[1].split(":")[1])


def peer_greeting(sock):
    """Read a member's greeting: (mode, member id)."""
    g = b""
    while len(g) < 12:
        chunk = sock.recv(12 - len(g))
        assert chunk, "the peer port closed before greeting"
        g += chunk
    assert g[:6] == b"CFPEER" and g[6] == 1, g
    mode, (mid,) = g[7], struct.unpack("<I", g[8:12])
    if mode == 1:
        rest = b""
        while len(rest) < 32:
            rest += sock.recv(32 - len(rest))
    return mode, mid


def test_curve_ensemble_replicates_and_refuses_strangers_on_the_peer_port(curve_ensemble, keys):
    ens = curve_ensemble
    m1, m2, m3 = ens.members
    ok(ens.hosts, "create", "/x", "1")
    with GoodClient(m1.port, curve=keys.curve("admin")) as good:
        socks = []

        def dial(member):
            s = socket.create_connection(("127.0.0.1", peer_port(member)), timeout=5)
            socks.append(s)
            return s

        # something that is not the peer protocol
        dial(m1).sendall(b"GET / HTTP/1.0\r\n\r\n")
        wait_until(lambda: log_lines(m1, "peer port: refused a connection from 127.0.0.1: not coordfs's peer "
                                     "protocol"), 10, what="the stranger to be refused")
        # a member without keys: the member greets with its mode (1: CURVE), the plaintext hello is refused
        s = dial(m2)
        assert peer_greeting(s) == (1, 2)
        s.sendall(b"CFPEER" + bytes([1, 0]) + struct.pack("<II", 3, 2))
        wait_until(lambda: log_lines(m2, "claiming to be member 3 runs auth=none, this member auth=curve"), 10,
                   what="the plaintext member to be refused")
        # a stranger claiming to be member 2, without its key (an ephemeral key, a stream header
        # and sealed ids it cannot make)
        s = dial(m3)
        assert peer_greeting(s) == (1, 3)
        s.sendall(b"CFPEER" + bytes([1, 1]) + struct.pack("<II", 2, 3) + os.urandom(32 + 24 + 8 + 17))
        wait_until(lambda: log_lines(m3, "claiming to be member 2 does not hold server.2's key"), 10,
                   what="the forged member to be refused")
        # a member number nobody has
        s = dial(m1)
        peer_greeting(s)
        s.sendall(b"CFPEER" + bytes([1, 1]) + struct.pack("<II", 7, 1) + os.urandom(32 + 24 + 8 + 17))
        wait_until(lambda: log_lines(m1, "claiming to be member 7: no such member"), 10,
                   what="the unknown member to be refused")
        for s in socks:  # each refused connection was closed by the member
            s.settimeout(5)
            while s.recv(4096):
                pass
            s.close()
        ok(ens.hosts, "set", "/x", "2")
        good.wait_calls(10)
    assert good.errors == []
    for m in ens.members:
        wait_until(lambda: ok(m.hosts, "get", "/x") == "2", 10, what="every member to have /x")
        assert not log_lines(m, "dropped:")  # no member link dropped meanwhile
