"""net: test hosts in network namespaces on a private bridge, and partitions between them.

Everything lives in namespaces this module creates: a switch namespace holding the bridge, and one
namespace per test host (member or client) joined to it by a veth pair. Nothing is configured in
the host's own namespace, so no test traffic can leave the machine: the addresses (10.77.0.0/24)
exist only inside the switch's namespace and the hosts'.

Names: every namespace is called `cfz<run>-<host>` (PREFIX below); `cleanup_stale()` removes any
namespace with the prefix left behind by a crashed earlier run (only while holding the run lock).

Partitions are iptables DROP rules inside the hosts' namespaces (both directions, on both sides),
installed in one `iptables-restore` per namespace; `heal()` empties them. `link_down(host)` takes
the host's port on the bridge down (everything it sends or receives is lost).
"""
import fcntl
import os
import subprocess
import time

PREFIX = "cfz"
SUBNET = "10.77.0"
NETNS_DIR = "/run/netns"
LOCK_FILE = "/run/coordfs-faults.lock"
CMD_TIMEOUT = 20.0


class NetError(RuntimeError):
    pass


def sh(argv, input=None, check=True, timeout=CMD_TIMEOUT):
    p = subprocess.run([str(a) for a in argv], input=input, capture_output=True, text=True,
                       timeout=timeout, stdin=None if input is not None else subprocess.DEVNULL)
    if check and p.returncode != 0:
        raise NetError("%s: exit %d: %s" % (" ".join(str(a) for a in argv), p.returncode, p.stderr.strip()))
    return p


def namespaces():
    try:
        return sorted(os.listdir(NETNS_DIR))
    except FileNotFoundError:
        return []


def ns_pids(ns):
    """PIDs of processes whose network namespace is `ns` (by inode, from /proc)."""
    try:
        ino = os.stat(os.path.join(NETNS_DIR, ns)).st_ino
    except OSError:
        return []
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            if os.stat("/proc/%s/ns/net" % d).st_ino == ino:
                out.append(int(d))
        except OSError:
            continue
    return out


class RunLock:
    """One fault run at a time on this machine (they would fight over stale-state cleanup)."""

    def __init__(self, path=LOCK_FILE):
        self.path = path
        self.fd = None

    def acquire(self, timeout=600.0):
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return self
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise NetError("another fault run holds %s" % self.path)
                time.sleep(0.5)

    def release(self):
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None


def cleanup_stale(log=print):
    """Remove what a crashed earlier run left: processes inside our namespaces (by PID), mounts
    under our temp dirs, the namespaces themselves. Call only while holding the RunLock."""
    removed = []
    for ns in namespaces():
        if not ns.startswith(PREFIX):
            continue
        for pid in ns_pids(ns):
            try:
                os.kill(pid, 9)
            except ProcessLookupError:
                pass
        sh(["ip", "netns", "del", ns], check=False)
        removed.append(ns)
    # tmpfs mounts of a crashed run (full-disk nemesis) live under temp dirs named with the prefix
    try:
        with open("/proc/mounts") as f:
            mounts = [l.split()[1] for l in f]
    except OSError:
        mounts = []
    for m in reversed(mounts):
        if "/%s-run-" % PREFIX in m:
            sh(["umount", "-l", m], check=False)
            removed.append(m)
    if removed and log:
        log("faults: removed what an earlier run left: %s" % ", ".join(removed))
    return removed


class Host:
    def __init__(self, net, name, ip):
        self.net = net
        self.name = name
        self.ip = ip
        self.ns = "%s%s-%s" % (PREFIX, net.run_id, name)

    def argv(self, argv):
        """argv run inside this host's network namespace (nsenter execs it: the PID is the program's)."""
        return ["nsenter", "--net=%s/%s" % (NETNS_DIR, self.ns), "--"] + [str(a) for a in argv]

    def run(self, argv, **kw):
        return sh(self.argv(argv), **kw)

    def popen(self, argv, **kw):
        kw.setdefault("stdin", subprocess.DEVNULL)
        return subprocess.Popen(self.argv(argv), **kw)

    def __repr__(self):
        return "Host(%s %s)" % (self.name, self.ip)


class Net:
    """A switch namespace with a bridge, and hosts attached to it."""

    def __init__(self, run_id):
        self.run_id = run_id
        self.sw = "%s%s-sw" % (PREFIX, run_id)
        self.hosts = {}
        self.next_ip = {"m": 11, "c": 101, "x": 2}
        self.rules = {}     # host name -> list of peer IPs it is cut from
        self.down = set()
        sh(["ip", "netns", "add", self.sw])
        self._sw(["ip", "link", "set", "lo", "up"])
        self._sw(["ip", "link", "add", "br0", "type", "bridge"])
        self._sw(["ip", "link", "set", "br0", "up"])

    def _sw(self, argv, **kw):
        return sh(["ip", "netns", "exec", self.sw] + argv, **kw)

    def add_host(self, name, kind="c"):
        """A new namespace `name` on the bridge; kind m (member), c (client) or x (control)."""
        ip = "%s.%d" % (SUBNET, self.next_ip[kind])
        self.next_ip[kind] += 1
        h = Host(self, name, ip)
        sh(["ip", "netns", "add", h.ns])
        self.hosts[name] = h
        # both ends are created directly inside their namespaces: nothing in the host's own
        sh(["ip", "link", "add", "name", "eth0", "netns", h.ns, "type", "veth", "peer", "name", name,
            "netns", self.sw])
        self._sw(["ip", "link", "set", name, "master", "br0", "up"])
        h.run(["ip", "link", "set", "lo", "up"])
        h.run(["ip", "addr", "add", ip + "/24", "dev", "eth0"])
        h.run(["ip", "link", "set", "eth0", "up"])
        return h

    # ---- faults ----

    def cut(self, pairs):
        """Drop all traffic between each (a, b) of host names, both ways; replaces earlier cuts."""
        blocked = {n: set() for n in self.hosts}
        for a, b in pairs:
            blocked[a].add(self.hosts[b].ip)
            blocked[b].add(self.hosts[a].ip)
        for name, ips in blocked.items():
            ips = sorted(ips)
            if ips == sorted(self.rules.get(name, [])):
                continue
            rules = "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n"
            for ip in ips:
                rules += "-A INPUT -s %s -j DROP\n-A OUTPUT -d %s -j DROP\n" % (ip, ip)
            rules += "COMMIT\n"
            self.hosts[name].run(["iptables-restore"], input=rules)
            self.rules[name] = ips

    def heal(self):
        self.cut([])
        for name in list(self.down):
            self.link_up(name)

    def link_down(self, name):
        self._sw(["ip", "link", "set", name, "down"])
        self.down.add(name)

    def link_up(self, name):
        self._sw(["ip", "link", "set", name, "up"])
        self.down.discard(name)

    def destroy(self):
        """Remove every namespace (the veths and rules go with them). Kill processes first."""
        errors = []
        for h in list(self.hosts.values()) + [None]:
            ns = h.ns if h else self.sw
            for pid in ns_pids(ns):  # a process a test forgot: by PID, never by name
                try:
                    os.kill(pid, 9)
                except ProcessLookupError:
                    pass
            p = sh(["ip", "netns", "del", ns], check=False)
            if p.returncode != 0 and ns in namespaces():
                errors.append("%s: %s" % (ns, p.stderr.strip()))
        self.hosts.clear()
        if errors:
            raise NetError("could not remove: " + "; ".join(errors))
