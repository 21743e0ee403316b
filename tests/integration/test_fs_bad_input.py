"""coordfs: bad input through the mount gets a clear errno, and nothing in the namespace changes."""
import errno
import os

import pytest

import coordtest
from conftest_fs import mount, sh  # noqa: F401  (fixtures)


def snapshot(server):
    paths = []

    def walk(p):
        rc, out, _ = coordtest.coordctl(server.hosts, "ls", p)
        if rc:
            return
        for name in out.split():
            child = (p.rstrip("/") + "/" + name)
            paths.append((child, coordtest.ok(server.hosts, "stat", child)))
            walk(child)
    walk("/")
    return paths


def errno_of(fn):
    try:
        fn()
    except OSError as e:
        return e.errno
    return 0


@pytest.fixture
def m(server, mount):
    mm = mount(server)
    mm.sh("mkdir -p d && echo data > d/f && mkdir e && setfattr -n user.coord.children -v ephemeral e && "
          "echo mine > e/lock")
    return mm


def test_bad_names_get_einval_and_change_nothing(server, m):
    before = snapshot(server)
    for name in ["a\x01b", "tab\there", "del\x7f", b"\xff\xfe".decode("latin-1"), "bad\nline"]:
        p = m.p("d", name) if isinstance(name, str) else None
        rc = errno_of(lambda: os.close(os.open(p.encode("latin-1") if "\xff" in p else p,
                                                os.O_CREAT | os.O_WRONLY)))
        assert rc == errno.EINVAL, (name, rc)
        assert errno_of(lambda: os.mkdir(p.encode("latin-1") if "\xff" in p else p)) == errno.EINVAL
    # Names starting with '.' are reserved at the root only.
    assert errno_of(lambda: os.mkdir(m.p(".hidden"))) == errno.EINVAL
    assert errno_of(lambda: os.close(os.open(m.p(".x"), os.O_CREAT | os.O_WRONLY))) == errno.EINVAL
    assert errno_of(lambda: os.mkdir(m.p(".watch"))) == errno.EEXIST
    assert errno_of(lambda: os.unlink(m.p(".watch"))) == errno.EPERM
    assert errno_of(lambda: os.rename(m.p(".session"), m.p("s"))) == errno.EPERM
    assert errno_of(lambda: os.rename(m.p("d/f"), m.p(".f"))) == errno.EINVAL
    # NUL cannot reach the filesystem at all: the C string ends there.
    with pytest.raises(ValueError):
        os.open(m.p("d", "nul\0byte"), os.O_CREAT | os.O_WRONLY)
    assert snapshot(server) == before
    m.sh("echo ok > d/.dotted-below-the-root-is-fine && rm d/.dotted-below-the-root-is-fine")


def test_slash_tricks_resolve_inside_the_mount(server, m):
    m.sh("echo x > d//g && cat d/./g d/../d/g")
    assert coordtest.ok(server.hosts, "get", "/d/g") == "x\n"
    p = m.sh("echo y > d/f/", check=False)
    assert p.returncode != 0  # a trailing slash on a file: the kernel refuses (EISDIR/ENOTDIR)
    assert coordtest.ok(server.hosts, "get", "/d/f") == "data\n"


def test_over_long_names_and_paths_get_enametoolong(server, m):
    before = snapshot(server)
    assert errno_of(lambda: os.mkdir(m.p("d", "n" * 256))) == errno.ENAMETOOLONG
    assert errno_of(lambda: os.close(os.open(m.p("d", "n" * 300), os.O_CREAT | os.O_WRONLY))) == errno.ENAMETOOLONG
    assert snapshot(server) == before
    m.sh("mkdir d/%s && rmdir d/%s" % ("n" * 255, "n" * 255))  # 255 is fine
    # Paths over 4096 bytes: climb with relative paths until the znode path is too long.
    script = ("cd d; n=$(printf 'p%.0s' $(seq 250)); depth=0; "
              "while mkdir $n 2>err; do cd $n; depth=$((depth+1)); done; cat err; echo depth=$depth")
    out = m.sh(script)
    assert "File name too long" in out
    depth = int(out.split("depth=")[1])
    assert 4096 - 251 < 3 + depth * 251 <= 4096  # stopped exactly at the 4096-byte limit
    m.sh("rm -r d/p*")


def test_children_under_a_file_or_an_ephemeral_file(server, m):
    before = snapshot(server)
    assert errno_of(lambda: os.mkdir(m.p("e", "lock", "sub"))) == errno.ENOTDIR
    assert errno_of(lambda: os.close(os.open(m.p("d", "f", "x"), os.O_CREAT | os.O_WRONLY))) == errno.ENOTDIR
    assert snapshot(server) == before


def test_writes_over_the_limit_get_efbig(make_server, mount):
    server = make_server(maxDataBytes=2048)
    m = mount(server)
    m.sh("echo small > f")
    before = snapshot(server)
    p = m.sh("head -c 3000 /dev/zero >> f", check=False)
    assert p.returncode != 0 and "File too large" in p.stderr
    # An append that fits alone but not with what is there fails at close, whole.
    fd = os.open(m.p("f"), os.O_WRONLY | os.O_APPEND)
    os.write(fd, b"z" * 2045)
    with pytest.raises(OSError) as e:
        os.close(fd)
    assert e.value.errno == errno.EFBIG
    p = m.sh("setfattr -n user.coord.data -v \"$(head -c 3000 /dev/zero | tr '\\0' a)\" .", check=False)
    assert p.returncode != 0
    assert snapshot(server) == before
    assert m.sh("cat f") == "small\n"


def test_bad_policies_and_xattrs(server, m):
    before = snapshot(server)
    p = m.sh("setfattr -n user.coord.children -v sometimes d", check=False)
    assert p.returncode != 0 and "Invalid argument" in p.stderr
    p = m.sh("setfattr -n user.coord.children -v sequential d/f", check=False)
    assert p.returncode != 0 and "Operation not permitted" in p.stderr
    p = m.sh("setfattr -n user.coord.version -v 7 d/f", check=False)
    assert p.returncode != 0 and "Operation not permitted" in p.stderr
    p = m.sh("setfattr -n user.other -v 1 d/f", check=False)
    assert p.returncode != 0 and "Operation not supported" in p.stderr
    p = m.sh("getfattr -n user.coord.nonsense d/f", check=False)
    assert p.returncode != 0 and "No such attribute" in p.stderr
    assert errno_of(lambda: os.link(m.p("d/f"), m.p("d/hard"))) == errno.EPERM
    assert errno_of(lambda: os.symlink("f", m.p("d/sym"))) == errno.EPERM
    assert errno_of(lambda: os.mkfifo(m.p("d/fifo"))) == errno.EPERM
    assert snapshot(server) == before
