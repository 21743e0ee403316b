"""coordfs: .cluster shows the ensemble (DESIGN.md: "members, roles, last zxid, health") from a mount
of a 3-member ensemble, and keeps doing so while a member is down."""
import coordtest
from conftest_fs import mount  # noqa: F401  (fixture)
from coordtest import ensemble_fixture, wait_converged, wait_until

make_ensemble = ensemble_fixture(tickTime=200, minSessionTimeout=1000, maxSessionTimeout=10000)


def cluster(m):
    """(rows by address, trailing lines as dict) of .cluster."""
    lines = m.sh("cat .cluster").splitlines()
    assert lines[0].split() == ["SERVER", "ID", "MODE", "ZXID", "LAG", "HEALTH"], lines
    rows, tail = {}, {}
    for line in lines[1:]:
        f = line.split()
        if f[0] in ("leader", "quorum", "connected"):
            tail[f[0]] = line.split(" ", 1)[1]
        else:
            rows[f[0]] = dict(id=f[1], mode=f[2], zxid=f[3], lag=f[4], health=f[5], rest=" ".join(f[6:]))
    return rows, tail


def session_server(m):
    return dict(l.split(" ", 1) for l in m.sh("cat .session").splitlines())["server"]


def test_every_member_with_its_role_zxid_and_health(make_ensemble, mount):
    ens = make_ensemble(3)
    m = mount(ens.hosts)
    m.sh("echo hello > f")
    wait_converged(ens.members)
    rows, tail = cluster(m)
    assert sorted(rows) == sorted(s.hosts for s in ens.members)
    for s in ens.members:
        r = rows[s.hosts]
        assert r["id"] == str(s.myid)
        assert r["mode"] == coordtest.mode(s.hosts)
        assert r["zxid"].startswith("0x") and int(r["zxid"], 16) > 0
        assert r["health"] == "up"
        assert r["lag"].isdigit()   # the leader's view of how far behind it is
    assert sorted(r["mode"] for r in rows.values()) == ["follower", "follower", "leader"]
    leader = next(a for a, r in rows.items() if r["mode"] == "leader")
    assert tail["leader"].startswith("%s (term " % rows[leader]["id"])
    assert tail["quorum"] == "yes: 3 of 3 voting members answer"
    # the member this mount is connected to, marked on its row and named at the end
    conn = session_server(m)
    assert tail["connected"] == conn
    assert [a for a, r in rows.items() if "connected" in r["rest"]] == [conn]


def test_a_member_that_does_not_answer_is_down(make_ensemble, mount):
    ens = make_ensemble(3)
    m = mount(ens.hosts)
    m.sh("echo hello > f")
    conn = session_server(m)
    rows, _ = cluster(m)
    victim = next(s for s in ens.members if rows[s.hosts]["mode"] == "follower" and s.hosts != conn)
    victim.kill()
    rows, tail = cluster(m)
    r = rows[victim.hosts]
    assert (r["id"], r["mode"], r["zxid"], r["health"]) == (str(victim.myid), "-", "-", "down")
    assert "did not answer" in r["rest"]
    assert sorted(r["health"] for r in rows.values()) == ["down", "up", "up"]
    assert tail["quorum"] == "yes: 2 of 3 voting members answer"
    # the mount goes on, and .cluster says so while it is cut off from a member
    m.sh("echo again > f")
    assert m.sh("cat f") == "again\n"
    victim.start()
    wait_until(lambda: cluster(m)[0][victim.hosts]["health"] == "up", 15, what="the member to answer again")


def test_members_missing_from_the_mount_list_come_from_the_ensemble_config(make_ensemble, mount):
    ens = make_ensemble(3)
    first = ens.members[0]
    m = mount(first.hosts)
    rows, tail = cluster(m)
    assert sorted(rows) == sorted(s.hosts for s in ens.members)
    for s in ens.members:
        assert rows[s.hosts]["health"] == "up"
        assert rows[s.hosts]["id"] == str(s.myid)
        assert ("not in this mount's server list" in rows[s.hosts]["rest"]) == (s is not first)
    assert tail["connected"] == first.hosts
