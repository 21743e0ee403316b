"""Per-znode ACLs through a coordfs mount (issue 8): the xattr user.coord.acl, and every refused
permission as EACCES from the shell tools (cat, echo >, mkdir, rm, ls, setfattr).

The mount is one principal (anonymous until CURVE keys land), so these use world:anyone ACLs."""
import errno
import os
import subprocess

import pytest

import coordtest
from conftest_fs import mount, sh, wait_for  # noqa: F401  (fixtures)


def ctl(server, *args, **kw):
    return coordtest.ok(server.hosts, *args, **kw)


def getacl(m, name):
    return m.sh("getfattr --only-values -n user.coord.acl %s" % name)


def setacl(m, name, acl):
    m.sh("setfattr -n user.coord.acl -v %s %s" % (acl, name))


def denied(m, cmd):
    """cmd must fail, saying Permission denied (EACCES)."""
    p = m.sh(cmd, check=False)
    assert p.returncode != 0, "%r succeeded: %s" % (cmd, p.stdout)
    assert "Permission denied" in p.stderr, "%r: %s" % (cmd, p.stderr)


def test_getfattr_shows_the_acl_and_setfattr_sets_it(server, mount):
    m = mount(server)
    m.sh("echo hi > f")
    assert getacl(m, "f") == "world:anyone:rwcda"
    assert "user.coord.acl" in m.sh("getfattr -d -m - f")
    assert "principal -\n" in m.sh("cat .session")   # anonymous
    setacl(m, "f", "world:anyone:rwa")
    assert getacl(m, "f") == "world:anyone:rwa"
    assert ctl(server, "getacl", "/f") == "world:anyone:rwa\n"
    assert m.sh("getfattr --only-values -n user.coord.aversion f") == "1"
    # a bad ACL is EINVAL and changes nothing
    p = m.sh("setfattr -n user.coord.acl -v world:anyone:rx f", check=False)
    assert p.returncode != 0 and "Invalid argument" in p.stderr
    assert getacl(m, "f") == "world:anyone:rwa"


def test_a_new_node_inherits_its_directorys_acl(server, mount):
    m = mount(server)
    m.sh("mkdir d")
    setacl(m, "d", "world:anyone:rwcd")
    m.sh("mkdir d/sub && echo x > d/f")
    assert getacl(m, "d/sub") == "world:anyone:rwcd"
    assert getacl(m, "d/f") == "world:anyone:rwcd"


def test_without_write_echo_into_a_file_is_eacces(server, mount):
    m = mount(server)
    m.sh("echo old > f")
    setacl(m, "f", "world:anyone:r")
    denied(m, "echo new > f")
    denied(m, "echo more >> f")
    with pytest.raises(PermissionError) as e:
        os.open(m.p("f"), os.O_WRONLY | os.O_TRUNC)
    assert e.value.errno == errno.EACCES
    assert m.sh("cat f") == "old\n"
    assert ctl(server, "get", "/f") == "old\n"


def test_without_read_cat_is_eacces_even_after_the_mount_cached_it(server, mount):
    m = mount(server)
    m.sh("echo secret > f")
    assert m.sh("cat f") == "secret\n"        # now in the mount's cache
    setacl(m, "f", "world:anyone:wa")
    denied(m, "cat f")
    m.sh("echo replaced > f")                  # write without read is allowed
    assert m.sh("getfattr --only-values -n user.coord.aversion f") == "1"


def test_an_acl_set_elsewhere_reaches_the_mounts_cache(server, mount):
    m = mount(server)
    m.sh("echo data > f && mkdir d && touch d/x")
    assert m.sh("cat f") == "data\n" and m.sh("ls d") == "x\n"
    ctl(server, "setacl", "/f", "world:anyone:w")
    ctl(server, "setacl", "/d", "world:anyone:w")
    wait_for(lambda: m.sh("cat f", check=False).returncode != 0, what="cat f refused")
    denied(m, "cat f")
    wait_for(lambda: m.sh("ls d", check=False).returncode != 0, what="ls d refused")
    denied(m, "ls d")


def test_without_create_mkdir_and_new_files_are_eacces(server, mount):
    m = mount(server)
    m.sh("mkdir d && echo x > d/old")
    setacl(m, "d", "world:anyone:rwda")
    denied(m, "mkdir d/sub")
    denied(m, "echo new > d/new")
    denied(m, "mv d/old d/renamed")            # a rename within d creates a name in d
    assert m.sh("ls d") == "old\n"
    m.sh("echo y > d/old")                     # writing an existing file needs w, not c


def test_without_delete_rm_is_eacces(server, mount):
    m = mount(server)
    m.sh("mkdir d && echo x > d/f && mkdir d/sub")
    setacl(m, "d", "world:anyone:rwca")
    denied(m, "rm d/f")
    denied(m, "rmdir d/sub")
    assert m.sh("ls d") == "f\nsub\n"


def test_without_read_ls_is_eacces(server, mount):
    m = mount(server)
    m.sh("mkdir d && touch d/a")
    setacl(m, "d", "world:anyone:wcda")
    denied(m, "ls d")


def test_without_admin_setfattr_is_eacces(server, mount):
    m = mount(server)
    m.sh("mkdir d && echo x > f")
    setacl(m, "f", "world:anyone:rwcd")
    denied(m, "setfattr -n user.coord.acl -v world:anyone:rwcda f")
    setacl(m, "d", "world:anyone:rwcd")
    denied(m, "setfattr -n user.coord.children -v ephemeral d")
    assert getacl(m, "f") == "world:anyone:rwcd"     # read is enough to see it


def test_a_refused_operation_changes_nothing_on_the_server(server, mount):
    m = mount(server)
    m.sh("mkdir d && echo v > d/f")
    setacl(m, "d", "world:anyone:r")
    before = ctl(server, "stat", "/d")
    denied(m, "mkdir d/x")
    denied(m, "rm d/f")
    denied(m, "echo w > d/g")
    assert ctl(server, "stat", "/d") == before


def test_with_allow_other_and_default_permissions_other_users_only_read(server, mount):
    """Local users on a host: the mount is one principal; the kernel keeps other users to the
    fixed mode bits (files 0644, directories 0755, owned by the mounting user)."""
    m = mount(server, opts=("allow_other", "default_permissions"))
    m.sh("mkdir d && echo shared > d/f")
    os.chmod(m.path.parent, 0o755)          # let the other user walk to the mount point

    def as_nobody(cmd):
        return subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "bash", "-c", cmd],
                              cwd=str(m.path), capture_output=True, text=True, timeout=30)
    p = as_nobody("cat d/f")
    assert p.returncode == 0 and p.stdout == "shared\n", p.stderr
    p = as_nobody("echo mine > d/f")
    assert p.returncode != 0 and "Permission denied" in p.stderr
    p = as_nobody("mkdir d/x")
    assert p.returncode != 0 and "Permission denied" in p.stderr
    assert ctl(server, "get", "/d/f") == "shared\n"


def test_without_allow_other_other_users_cannot_use_the_mount(server, mount):
    m = mount(server)
    m.sh("echo x > f")
    os.chmod(m.path.parent, 0o755)
    p = subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "cat", m.p("f")],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode != 0 and "Permission denied" in p.stderr


# ---- a mount with a key is that key's principal (CURVE) ----

def test_a_mount_with_a_key_is_its_principal(make_server, mount, tmp_path, monkeypatch):
    from authtest import Keys
    keys = Keys(tmp_path / "keys")
    keys.use(monkeypatch, "admin")
    srv = make_server(**keys.server_settings(["admin", "ops"]))
    coordtest.ok(srv.hosts, "create", "--acl", "key:ops:r,key:admin:rwcda", "/f", "v")
    m = mount(srv, opts=("key=%s" % keys.key("ops"), "serverkey=%s" % keys.pub("service")))
    assert "principal ops\n" in m.sh("cat .session")
    assert m.sh("cat f") == "v"
    denied(m, "echo x > f")
    assert getacl(m, "f") == "key:ops:r,key:admin:rwcda"
