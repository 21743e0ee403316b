"""Per-znode ACLs through coordctl (issue 8): every permission enforced, inheritance at create,
setacl with an expected aversion, all-or-nothing multis, and ACLs that survive a restart and are
equal on every member of an ensemble.

Until CURVE authentication lands every session is anonymous, so these tests use world:anyone
entries; key:PRINCIPAL entries are covered by tests/unit/test_state.c, and end to end by the
tests at the bottom, which run once coordd can authenticate clients by key."""

import pytest

import coordtest
from coordtest import ensemble_fixture

NOAUTH = 9      # coordctl's exit status for "not authorised"
BADVERSION = 4
INVALID = 6

make_ensemble = ensemble_fixture(tickTime=200)


def ok(server, *args, **kw):
    return coordtest.ok(server.hosts, *args, **kw)


def run(server, *args, **kw):
    return coordtest.coordctl(server.hosts, *args, **kw)


def refused(server, *args, **kw):
    rc, out, err = run(server, *args, **kw)
    assert rc == NOAUTH, "coordctl %s: exit %d, not %d\n%s%s" % (" ".join(args), rc, NOAUTH, out, err)
    assert "not authorised" in err
    return err


def test_the_root_is_open_and_a_new_node_inherits_its_parents_acl(server):
    assert ok(server, "getacl", "/") == "world:anyone:rwcda\n"
    ok(server, "create", "--dir", "/app")
    assert ok(server, "getacl", "/app") == "world:anyone:rwcda\n"
    ok(server, "setacl", "/app", "world:anyone:rwc")
    ok(server, "create", "/app/config", "x")
    ok(server, "create", "--dir", "/app/sub")
    assert ok(server, "getacl", "/app/config") == "world:anyone:rwc\n"
    assert ok(server, "getacl", "/app/sub") == "world:anyone:rwc\n"
    # an explicit ACL at create replaces the inherited one
    ok(server, "create", "--acl", "world:anyone:r", "/app/fixed", "v")
    assert ok(server, "getacl", "/app/fixed") == "world:anyone:r\n"


def test_read_permission_guards_get_ls_and_history_but_not_exists(server):
    ok(server, "create", "--dir", "/d")
    ok(server, "create", "/d/child")
    ok(server, "create", "/f", "secret")
    ok(server, "setacl", "/f", "world:anyone:wcda")
    ok(server, "setacl", "/d", "world:anyone:wcda")
    err = refused(server, "get", "/f")
    assert "/f" in err and "read permission" in err
    refused(server, "ls", "/d")
    refused(server, "history", "/f")
    assert run(server, "exists", "/f")[0] == 0          # as ZooKeeper: exists needs nothing
    assert "aclVersion = 1" in ok(server, "stat", "/f")
    ok(server, "set", "/f", "new")                      # write without read is allowed
    assert ok(server, "getacl", "/f") == "world:anyone:wcda\n"   # admin alone may read the ACL


def test_write_permission_guards_set_and_append(server):
    ok(server, "create", "/f", "v1")
    ok(server, "setacl", "/f", "world:anyone:rcda")
    err = refused(server, "set", "/f", "v2")
    assert "write permission" in err
    refused(server, "append", "/f", "more")
    assert ok(server, "get", "/f") == "v1"


def test_create_permission_on_the_parent_guards_create_and_moves_into_it(server):
    ok(server, "create", "--dir", "/d")
    ok(server, "create", "/elsewhere", "x")
    ok(server, "setacl", "/d", "world:anyone:rwda")
    err = refused(server, "create", "/d/new")
    assert "/d: create permission" in err
    refused(server, "create", "--dir", "/d/sub")
    refused(server, "mv", "/elsewhere", "/d/moved")
    assert run(server, "exists", "/d/new")[0] == 1
    assert run(server, "exists", "/elsewhere")[0] == 0


def test_delete_permission_on_the_parent_guards_delete_and_moves_out_of_it(server):
    ok(server, "create", "--dir", "/d")
    ok(server, "create", "/d/x", "1")
    ok(server, "setacl", "/d", "world:anyone:rwca")
    err = refused(server, "rm", "/d/x")
    assert "/d: delete permission" in err
    refused(server, "mv", "/d/x", "/x")
    assert ok(server, "get", "/d/x") == "1"
    # a node's own ACL does not protect it from deletion (ZooKeeper's rule): its parent's does
    ok(server, "create", "/ro", "x")
    ok(server, "setacl", "/ro", "world:anyone:r")
    ok(server, "rm", "/ro")


def test_admin_permission_guards_setacl_and_the_child_policy(server):
    ok(server, "create", "--dir", "/d")
    ok(server, "setacl", "/d", "world:anyone:rwcd")
    err = refused(server, "setacl", "/d", "world:anyone:rwcda")
    assert "admin permission" in err
    # a new directory may get its child policy with create permission alone
    ok(server, "mkdir", "--children=ephemeral", "/d/q")
    ok(server, "create", "--dir", "/p")
    ok(server, "setacl", "/p", "world:anyone:r")
    ok(server, "multi", "check -v 0 /p")   # check needs read, as ZooKeeper's
    ok(server, "create", "/wo", "x")
    ok(server, "setacl", "/wo", "world:anyone:w")
    assert "/wo: read permission" in refused(server, "multi", "check -v 0 /wo")
    assert ok(server, "getacl", "/d") == "world:anyone:rwcd\n"        # read is enough for getacl
    # setting the policy of an existing directory needs admin (through the mount: setfattr)


def test_getacl_needs_read_or_admin(server):
    ok(server, "create", "/f")
    ok(server, "setacl", "/f", "world:anyone:wcd")
    err = refused(server, "getacl", "/f")
    assert "read permission" in err


def test_setacl_with_an_expected_aversion(server):
    ok(server, "create", "/f")
    assert "aclVersion = 0" in ok(server, "stat", "/f")
    rc, _, err = run(server, "setacl", "-v", "3", "/f", "world:anyone:rw")
    assert rc == BADVERSION, err
    ok(server, "setacl", "-v", "0", "/f", "world:anyone:rwa")
    assert "aclVersion = 1" in ok(server, "stat", "/f")
    assert "dataVersion = 0" in ok(server, "stat", "/f")
    rc, _, _ = run(server, "setacl", "-v", "0", "/f", "world:anyone:r")
    assert rc == BADVERSION
    ok(server, "setacl", "/f", "world:anyone:r,world:anyone:a")   # duplicates merge
    assert ok(server, "getacl", "/f") == "world:anyone:ra\n"


@pytest.mark.parametrize("acl,why", [
    ("", "empty"),
    ("digest:bob:r", "unknown scheme"),
    ("world:anyone:rx", "bad permission"),
    ("world:bob:r", "only the id 'anyone'"),
    ("key:bad/name:r", "bad principal"),
    ("world:anyone", "SCHEME:ID:PERMS"),
    ("world:anyone:r,", "empty entry"),
    (",".join("key:p%d:r" % i for i in range(17)), "more than 16"),
])
def test_a_bad_acl_is_refused_with_a_clear_message(server, acl, why):
    ok(server, "create", "/f")
    rc, _, err = run(server, "setacl", "/f", acl)
    assert rc == INVALID and why in err, err
    rc, _, err = run(server, "create", "--acl", acl, "/g")
    assert rc == INVALID and why in err, err
    assert run(server, "exists", "/g")[0] == 1
    assert ok(server, "getacl", "/f") == "world:anyone:rwcda\n"


def test_a_multi_with_one_refused_op_changes_nothing(server):
    ok(server, "create", "--dir", "/open")
    ok(server, "create", "--dir", "/closed")
    ok(server, "create", "/open/f", "v0")
    ok(server, "setacl", "/closed", "world:anyone:r")
    rc, out, err = run(server, "multi", "create /open/a x", "set /open/f v1", "create /closed/b y")
    assert rc == NOAUTH, out + err
    assert run(server, "exists", "/open/a")[0] == 1
    assert ok(server, "get", "/open/f") == "v0"
    # a multi's create may give an ACL
    ok(server, "multi", "create --acl=world:anyone:r /open/a x", "set /open/f v1")
    assert ok(server, "getacl", "/open/a") == "world:anyone:r\n"
    rc, _, err = run(server, "multi", "create --acl=world:anyone:z /open/b")
    assert rc == INVALID and "bad permission" in err, err


def test_acls_survive_a_restart_through_snapshots_and_the_log(make_server):
    srv = make_server(snapCount=2)
    ok(srv, "create", "--dir", "/a")
    ok(srv, "setacl", "/a", "world:anyone:rc")
    for i in range(20):   # snapshots are taken meanwhile; the last changes are in the log only
        ok(srv, "create", "--acl", "world:anyone:r%s" % ("w" if i % 2 else ""), "/a/n%d" % i)
    ok(srv, "create", "/a/last")
    digest = coordtest.ok(srv.hosts, "mntr").split("coordfs_tree_digest\t")[1].split()[0]
    srv.restart()
    assert ok(srv, "getacl", "/a") == "world:anyone:rc\n"
    assert ok(srv, "getacl", "/a/n0") == "world:anyone:r\n"
    assert ok(srv, "getacl", "/a/n1") == "world:anyone:rw\n"
    assert ok(srv, "getacl", "/a/last") == "world:anyone:rc\n"
    assert coordtest.ok(srv.hosts, "mntr").split("coordfs_tree_digest\t")[1].split()[0] == digest
    refused(srv, "set", "/a/n0", "x")
    refused(srv, "rm", "/a/n0")


def test_acls_are_equal_on_every_member_of_an_ensemble(make_ensemble):
    e = make_ensemble(3)
    ok(e, "create", "--dir", "/app")
    ok(e, "setacl", "/app", "world:anyone:rcd")
    ok(e, "create", "--acl", "world:anyone:r", "/app/x", "1")
    ok(e, "sync", "/")
    last = coordtest.ok(e.hosts, "stat", "/app/x")
    for m in e.members:
        coordtest.wait_until(lambda: coordtest.coordctl(m.hosts, "exists", "/app/x")[0] == 0, 10,
                             what="member %s has /app/x" % m.hosts)
        assert coordtest.ok(m.hosts, "getacl", "/app") == "world:anyone:rcd\n"
        assert coordtest.ok(m.hosts, "getacl", "/app/x") == "world:anyone:r\n"
        rc, _, _ = coordtest.coordctl(m.hosts, "set", "/app/x", "2")
        assert rc == NOAUTH
    assert "aclVersion = 0" in last

    def digests():
        return {coordtest.ok(m.hosts, "mntr").split("coordfs_tree_digest\t")[1].split()[0] for m in e.members}
    coordtest.wait_until(lambda: len(digests()) == 1, 10, what="equal tree digests")


# ---- key:PRINCIPAL end to end, with CURVE client keys ----

def test_key_principals_and_the_super_user_end_to_end(make_server, tmp_path, monkeypatch):
    from authtest import Keys
    keys = Keys(tmp_path / "keys")
    keys.use(monkeypatch, "admin")
    srv = make_server(superUser="admin", **keys.server_settings(["admin", "web", "ops"]))

    def as_(name, *args):
        return coordtest.coordctl(srv.hosts, *args, env=keys.env(name))
    assert as_("admin", "create", "--dir", "--acl", "key:web:rwcd,key:ops:r", "/app")[0] == 0
    assert as_("web", "create", "/app/x", "1")[0] == 0           # inherits key:web:rwcd,key:ops:r
    assert as_("ops", "create", "/app/y", "1")[0] == NOAUTH
    assert as_("ops", "get", "/app/x")[1] == "1"
    assert as_("ops", "set", "/app/x", "2")[0] == NOAUTH
    assert as_("web", "setacl", "/app", "world:anyone:r")[0] == NOAUTH
    assert as_("ops", "getacl", "/app")[1] == "key:web:rwcd,key:ops:r\n"
    # the superUser passes every check: an ACL naming nobody cannot lock the operator out
    assert as_("admin", "setacl", "/app", "key:nobody:r")[0] == 0
    assert as_("web", "ls", "/app")[0] == NOAUTH
    assert as_("admin", "ls", "/app")[1] == "x\n"
    assert as_("admin", "setacl", "/app", "key:web:rwcda")[0] == 0
    assert as_("web", "ls", "/app")[1] == "x\n"
