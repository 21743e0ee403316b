"""The harness itself: what the other suites rely on."""
import socket

import coordtest
from coordtest import Server, log_files, log_records, ok


def test_server_start_retries_on_another_port_when_its_port_was_taken(tmp_path, procs, monkeypatch):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        taken = s.getsockname()[1]
        picks = iter([taken])
        real = coordtest.free_port
        monkeypatch.setattr(coordtest, "free_port", lambda: next(picks, None) or real())
        srv = Server(tmp_path / "s", procs=procs).start()
        assert srv.port != taken and srv.starts == 2
        assert "cannot listen" in srv.log_text()
        ok(srv.hosts, "ruok")


def test_stop_ends_the_server_cleanly_and_kill_is_a_crash(make_server):
    a = make_server("a")
    assert a.stop() == 0
    b = make_server("b")
    assert b.kill() == -9


def test_log_records_finds_each_acknowledged_write(make_server):
    srv = make_server()
    for i in range(5):
        ok(srv.hosts, "create", "/n%d" % i)
    srv.stop()
    recs = log_records(log_files(srv.data_dir)[-1])
    zxids = [z for _, _, z in recs]
    assert zxids == sorted(zxids) and len(zxids) >= 5
    assert all(off + size <= next_off for (off, size, _), (next_off, _, _) in zip(recs, recs[1:]))


def test_ensemble_members_start_each_with_its_own_id_and_port(tmp_path, procs):
    from coordtest import Ensemble
    e = Ensemble(tmp_path, 3, procs=procs).start()
    assert len({m.port for m in e.members}) == 3
    for i, m in enumerate(e.members, 1):
        mntr = dict(l.split("\t", 1) for l in ok(m.hosts, "mntr").splitlines() if "\t" in l)
        assert mntr["coordfs_server_id"] == str(i)
    assert e.hosts.count(",") == 2
