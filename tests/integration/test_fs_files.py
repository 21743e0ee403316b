"""coordfs: the namespace as files, driven with real shell tools on a real mount (DESIGN.md,
"The namespace as files")."""
import ctypes
import errno
import os
import tarfile

import pytest

import coordtest
from conftest_fs import mount, mounted, sh  # noqa: F401  (fixtures)


def ctl(server, *args, **kw):
    return coordtest.ok(server.hosts, *args, **kw)


def test_echo_cat_and_append_through_shell_redirections(server, mount):
    m = mount(server)
    m.sh("echo hello > f")
    assert m.sh("cat f") == "hello\n"
    assert ctl(server, "get", "/f") == "hello\n"
    m.sh("echo world >> f")
    assert m.sh("cat f") == "hello\nworld\n"
    m.sh("echo replaced > f")
    assert m.sh("cat f") == "replaced\n"
    # `: > f` empties it (the O_TRUNC open commits when its last descriptor goes)
    m.sh(": > f")
    assert m.sh("cat f") == ""
    assert ctl(server, "stat", "/f").count("dataLength = 0") == 1


def test_shell_redirect_commits_one_version(server, mount):
    """bash's `> f` opens, dup2()s and closes the first descriptor before echo writes: that close
    must not commit an empty version."""
    m = mount(server)
    m.sh("echo one > f")
    before = int(m.sh("getfattr --only-values -n user.coord.version f"))
    m.sh("echo two > f")
    after = int(m.sh("getfattr --only-values -n user.coord.version f"))
    assert after == before + 1


def test_ls_l_mkdir_p_rm_r(server, mount):
    m = mount(server)
    m.sh("mkdir -p a/b/c && echo x > a/b/c/f && echo yy > a/b/g")
    out = m.sh("ls -l a/b")
    lines = [l for l in out.splitlines() if not l.startswith("total")]
    assert len(lines) == 2
    assert lines[0].startswith("d") and lines[0].endswith(" c")
    assert lines[1].startswith("-rw-r--r--") and " 3 " in lines[1] and lines[1].endswith(" g")
    assert ctl(server, "ls", "/a/b").split() == ["c", "g"]
    m.sh("rm -r a")
    assert m.sh("ls") == ""
    rc, _, _ = coordtest.coordctl(server.hosts, "exists", "/a")
    assert rc == 1


def test_special_files_hidden_from_ls_but_not_ls_a(server, mount):
    m = mount(server)
    m.sh("mkdir d")
    assert m.sh("ls").split() == ["d"]
    assert m.sh("ls -a").split() == [".", "..", ".cluster", ".history", ".session", ".watch", "d"]


def test_mv_is_an_atomic_server_side_rename(server, mount):
    m = mount(server)
    m.sh("mkdir d && echo old > d/f && echo new > d/f.tmp")
    ino = m.sh("stat -c %i d/f.tmp").strip()
    m.sh("mv d/f.tmp d/f")
    assert m.sh("cat d/f") == "new\n"
    assert m.sh("stat -c %i d/f").strip() == ino
    assert ctl(server, "ls", "/d").split() == ["f"]
    m.sh("mkdir e && mv d/f e/g")
    assert ctl(server, "get", "/e/g") == "new\n"


def _renameat2(old, new, flags):
    libc = ctypes.CDLL(None, use_errno=True)
    AT_FDCWD = -100
    rc = libc.renameat2(AT_FDCWD, old.encode(), AT_FDCWD, new.encode(), flags)
    return 0 if rc == 0 else ctypes.get_errno()


def test_rename_noreplace_and_exchange(server, mount):
    m = mount(server)
    m.sh("echo a > a && echo b > b")
    assert _renameat2(m.p("a"), m.p("b"), 1) == errno.EEXIST  # RENAME_NOREPLACE
    assert m.sh("cat a b") == "a\nb\n"
    assert _renameat2(m.p("a"), m.p("b"), 2) == 0  # RENAME_EXCHANGE
    assert m.sh("cat a b") == "b\na\n"
    assert ctl(server, "get", "/a") == "b\n" and ctl(server, "get", "/b") == "a\n"
    assert _renameat2(m.p("a"), m.p("c"), 1) == 0
    assert m.sh("ls").split() == ["b", "c"]
    assert _renameat2(m.p("b"), m.p("c"), 4) == errno.EINVAL  # RENAME_WHITEOUT: refused clearly


def test_mv_of_a_directory_with_children_falls_back_to_copy(server, mount):
    m = mount(server)
    m.sh("mkdir -p src/sub && echo 1 > src/sub/one && echo 2 > src/two")
    m.sh("mv src dst")
    assert m.sh("cat dst/sub/one dst/two") == "1\n2\n"
    assert m.sh("ls").split() == ["dst"]


def test_cp_r_and_find(server, mount, tmp_path):
    src = tmp_path / "tree"
    (src / "x" / "y").mkdir(parents=True)
    (src / "x" / "y" / "deep").write_text("deep\n")
    (src / "top").write_text("top\n")
    m = mount(server)
    m.sh("cp -r %s copy" % src)
    assert m.sh("cat copy/x/y/deep copy/top") == "deep\ntop\n"
    found = sorted(m.sh("find copy").split())
    assert found == ["copy", "copy/top", "copy/x", "copy/x/y", "copy/x/y/deep"]
    assert sorted(m.sh("find copy -type f").split()) == ["copy/top", "copy/x/y/deep"]


def test_tar_x_into_the_mount(server, mount, tmp_path):
    src = tmp_path / "t"
    (src / "etc" / "app").mkdir(parents=True)
    (src / "etc" / "app" / "config").write_text("port=80\n")
    (src / "etc" / "motd").write_text("hi\n" * 100)
    tgz = tmp_path / "t.tgz"
    with tarfile.open(tgz, "w:gz") as t:
        t.add(src / "etc", arcname="etc")
    m = mount(server)
    m.sh("tar -xzf %s" % tgz)
    assert m.sh("cat etc/app/config") == "port=80\n"
    assert m.sh("wc -l < etc/motd").strip() == "100"
    assert ctl(server, "get", "/etc/app/config") == "port=80\n"


def test_sed_i_edits_in_place(server, mount):
    m = mount(server)
    m.sh("printf 'port=80\\nhost=a\\n' > conf")
    m.sh("sed -i s/80/8080/ conf")
    assert m.sh("cat conf") == "port=8080\nhost=a\n"
    assert m.sh("ls").split() == ["conf"]  # sed's temporary file was renamed over it


def test_getfattr_dumps_the_stat(server, mount):
    m = mount(server)
    m.sh("echo 12345 > f")
    out = m.sh("getfattr -d f")
    attrs = dict(l.split("=", 1) for l in out.splitlines() if "=" in l)
    for k in ("czxid", "mzxid", "pzxid", "version", "cversion", "aversion", "ephemeralOwner",
              "dataLength", "numChildren", "ctime", "mtime", "kind", "ino"):
        assert "user.coord." + k in attrs, k
    assert attrs["user.coord.dataLength"] == '"6"'
    assert attrs["user.coord.kind"] == '"file"'
    assert attrs["user.coord.ephemeralOwner"] == '"0x0"'
    assert attrs["user.coord.ino"] == '"%s"' % m.sh("stat -c %i f").strip()
    stat = ctl(server, "stat", "/f")
    assert "cZxid = %s" % attrs["user.coord.czxid"].strip('"') in stat


def test_czxid_of_successive_lock_holders_increases(server, mount):
    m = mount(server)
    tokens = []
    for _ in range(3):
        m.sh("set -C; echo $$ > lock")
        tokens.append(int(m.sh("getfattr --only-values -n user.coord.czxid lock"), 16))
        m.sh("rm lock")
    assert tokens == sorted(tokens) and len(set(tokens)) == 3


def test_set_C_redirect_is_an_exclusive_create(server, mount):
    m = mount(server)
    m.sh("set -C; echo first > lock")
    p = m.sh("set -C; echo second > lock", check=False)
    assert p.returncode != 0 and "cannot overwrite existing file" in p.stderr
    assert m.sh("cat lock") == "first\n"


def test_setfattr_children_policy_makes_sequential_and_ephemeral_files(server, mount):
    m = mount(server)
    m.sh("mkdir q && setfattr -n user.coord.children -v ephemeral,sequential q")
    assert m.sh("getfattr --only-values -n user.coord.children q") == "ephemeral,sequential"
    # The created name is readable from the open descriptor.
    code = ("import os; fd = os.open('q/job', os.O_CREAT | os.O_WRONLY); "
            "print(os.getxattr(fd, 'user.coord.name').decode()); os.write(fd, b'payload'); os.close(fd)")
    name = m.sh("python3 -c \"%s\"" % code).strip()
    assert name.startswith("job") and len(name) == 13 and name[3:].isdigit()
    assert m.sh("ls q").split() == [name]
    assert m.sh("cat q/%s" % name) == "payload"
    owner = m.sh("getfattr --only-values -n user.coord.ephemeralOwner q/%s" % name)
    assert owner != "0x0"
    # No dentry for the requested name was kept: the same create makes the next number.
    name2 = m.sh("python3 -c \"%s\"" % code).strip()
    assert name2 != name and m.sh("ls q").split() == sorted([name, name2])
    # The policy is set once.
    p = m.sh("setfattr -n user.coord.children -v sequential q", check=False)
    assert p.returncode != 0 and "Operation not permitted" in p.stderr


def test_directory_data_as_xattr(server, mount):
    m = mount(server)
    m.sh("mkdir d && echo child > d/c")
    m.sh("setfattr -n user.coord.data -v 'dir data' d")
    assert m.sh("getfattr --only-values -n user.coord.data d") == "dir data"
    assert ctl(server, "get", "/d") == "dir data"
    # A node created with both data and children (through coordctl) shows as a directory.
    ctl(server, "create", "--dir", "/both", "own")
    ctl(server, "create", "/both/kid", "k")
    assert os.path.isdir(m.p("both"))
    assert m.sh("cat both/kid") == "k"
    assert m.sh("getfattr --only-values -n user.coord.data both") == "own"


def test_conditional_read_modify_write_fails_with_estale(server, mount):
    """A descriptor opened without O_TRUNC/O_APPEND commits only if the file did not change since
    open: otherwise close() fails with ESTALE and nothing is written."""
    m = mount(server)
    m.sh("echo v1 > f")
    fd = os.open(m.p("f"), os.O_RDWR)
    try:
        assert os.read(fd, 100) == b"v1\n"
        ctl(server, "set", "/f", "changed elsewhere")
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, b"v2\n")
    finally:
        with pytest.raises(OSError) as e:
            os.close(fd)
    assert e.value.errno == errno.ESTALE
    assert ctl(server, "get", "/f") == "changed elsewhere"


def test_write_over_the_limit_fails_with_efbig_and_commits_nothing(make_server, mount):
    server = make_server(maxDataBytes=4096)
    m = mount(server)
    m.sh("echo keep > f")
    p = m.sh("head -c 5000 /dev/zero > f", check=False)
    assert p.returncode != 0 and "File too large" in p.stderr
    assert m.sh("cat f") == "keep\n"
    assert ctl(server, "get", "/f") == "keep\n"
    # Exactly the limit is fine.
    m.sh("head -c 4096 /dev/zero > f")
    assert os.path.getsize(m.p("f")) == 4096


def test_truncate_by_path_and_through_a_descriptor(server, mount):
    m = mount(server)
    m.sh("echo 0123456789 > f")
    m.sh("truncate -s 4 f")
    assert m.sh("cat f") == "0123"
    os.truncate(m.p("f"), 0)
    assert ctl(server, "get", "/f") == ""


def test_unlink_rmdir_and_enotempty(server, mount):
    m = mount(server)
    m.sh("mkdir d && echo x > d/f")
    p = m.sh("rmdir d", check=False)
    assert p.returncode != 0 and "Directory not empty" in p.stderr
    m.sh("rm d/f && rmdir d")
    assert m.sh("ls") == ""


def test_statfs_answers(server, mount):
    m = mount(server)
    out = m.sh("df -P .").splitlines()
    assert len(out) == 2 and out[1].split()[0] == server.hosts
    assert int(m.sh("stat -f -c %l .")) == 255


def test_fsync_syncs_and_reports_commit_errors(server, mount):
    m = mount(server)
    fd = os.open(m.p("f"), os.O_CREAT | os.O_WRONLY)
    os.write(fd, b"synced")
    os.fsync(fd)
    assert ctl(server, "get", "/f") == "synced"  # committed before close
    os.close(fd)
    dfd = os.open(m.path, os.O_RDONLY)
    os.fsync(dfd)
    os.close(dfd)


def test_whole_file_read_one_version_per_open(server, mount):
    m = mount(server)
    m.sh("head -c 300000 /dev/zero | tr '\\0' a > f")
    with open(m.p("f"), "rb") as f:
        first = f.read(1000)
        ctl(server, "set", "/f", "-", input="b" * 250000)
        rest = f.read()
    assert first + rest == b"a" * 300000
    assert m.sh("cat f") == "b" * 250000


def test_umount_closes_the_session_cleanly(server, mount):
    m = mount(server)
    assert mounted(m.path)
    assert m.unmount() == 0
    assert not mounted(m.path)
