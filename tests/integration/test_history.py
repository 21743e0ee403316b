"""Versioned reads: a znode keeps its recent data versions; any kept one can be read and restored.

The server keeps, per znode, the last historyDepth versions (the current one included) bounded by
historyBytes; `coordctl history PATH` lists them, `coordctl get -v N PATH` reads one.
"""
import shutil

from coordtest import Ensemble, coordctl, get, ok, stat, wait_until


def history(hosts, path):
    """[(version, size)] as `coordctl history` lists them, oldest first."""
    out = ok(hosts, "history", path)
    rows = []
    for line in out.splitlines():
        version, _mzxid, _mtime, size = line.split(" ")
        rows.append((int(version), int(size)))
    return rows


def write_15_versions(h, path="/cfg"):
    ok(h, "create", path, "v0")
    for i in range(1, 15):
        ok(h, "set", path, "v%d" % i)


def test_fifteen_writes_keep_the_last_ten_versions_readable(make_server):
    srv = make_server()
    h = srv.hosts
    write_15_versions(h)
    assert [v for v, _ in history(h, "/cfg")] == list(range(5, 15))
    for v in range(5, 15):
        rc, out, err = coordctl(h, "get", "-v", str(v), "/cfg")
        assert rc == 0 and out == "v%d" % v, (v, rc, out, err)


def test_a_version_no_longer_kept_is_no_such_node(make_server):
    srv = make_server()
    h = srv.hosts
    write_15_versions(h)
    for v in (0, 4, 99):
        rc, out, err = coordctl(h, "get", "-v", str(v), "/cfg")
        assert rc == 1 and out == "", (v, rc, out, err)
        assert "not kept" in err


def test_rollback_by_copying_an_old_version_makes_a_new_version_equal_to_it(make_server):
    srv = make_server()
    h = srv.hosts
    write_15_versions(h)
    old = coordctl(h, "get", "-v", "7", "/cfg")[1]
    ok(h, "set", "/cfg", "-", input=old)
    assert get(h, "/cfg") == "v7"
    assert stat(h, "/cfg")["dataVersion"] == 15
    assert [v for v, _ in history(h, "/cfg")][-1] == 15


def test_a_znode_written_once_has_only_its_current_version(make_server):
    srv = make_server()
    h = srv.hosts
    ok(h, "create", "/once", "only")
    assert history(h, "/once") == [(0, 4)]


def test_history_bytes_bound_the_kept_versions(make_server):
    srv = make_server(historyBytes=1000)
    h = srv.hosts
    ok(h, "create", "/big", "x")
    for i in range(6):
        ok(h, "set", "/big", "-", input=("%d" % i) * 400)
    kept = history(h, "/big")
    # the current version plus earlier ones whose sizes add up to at most 1000 bytes
    assert kept[-1] == (6, 400)
    assert sum(size for _, size in kept[:-1]) <= 1000
    assert len(kept) == 3


def test_history_survives_a_restart(make_server):
    srv = make_server(snapCount=20)
    h = srv.hosts
    write_15_versions(h)
    before = ok(h, "history", "/cfg")
    srv.kill()
    srv.start()
    assert ok(h, "history", "/cfg") == before
    assert coordctl(h, "get", "-v", "9", "/cfg")[1] == "v9"


def test_history_depth_zero_keeps_nothing(make_server):
    srv = make_server(historyDepth=0)
    h = srv.hosts
    write_15_versions(h)
    assert ok(h, "history", "/cfg") == ""
    rc, _, err = coordctl(h, "get", "-v", "14", "/cfg")
    assert rc == 1 and "not kept" in err
    assert get(h, "/cfg") == "v14"


def test_history_is_the_same_on_every_member(tmp_path, procs):
    ens = Ensemble(tmp_path / "e", 3, procs=procs, tickTime=200).start()
    try:
        write_15_versions(ens.members[1].hosts)
        last = stat(ens.members[1].hosts, "/cfg")["mZxid"]

        def caught_up():
            return all(stat(m.hosts, "/cfg")["mZxid"] == last for m in ens.members)
        wait_until(caught_up, 10, what="every member to apply the last write")
        lists = [ok(m.hosts, "history", "/cfg") for m in ens.members]
        assert lists[0] == lists[1] == lists[2] and lists[0].count("\n") == 10
        digests = {ok(m.hosts, "mntr").split("coordfs_tree_digest\t")[1].split()[0] for m in ens.members}
        assert len(digests) == 1
    finally:
        ens.stop()
        shutil.rmtree(tmp_path / "e", ignore_errors=True)
