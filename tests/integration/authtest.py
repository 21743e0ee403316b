"""authtest: CURVE keys for the integration tests (coordctl keygen, authorised-keys files, configs).

    keys = Keys(tmp_path / "keys")
    srv = make_server(**keys.server_settings(["admin"]))   # auth=curve, "admin" listed
    coordctl(srv.hosts, "ls", "/", env=keys.env("admin"))
"""
import os
import subprocess
from pathlib import Path

import coordtest


class Keys:
    def __init__(self, dir):
        self.dir = Path(dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.made = {}
        self.authorized = self.dir / "authorized_keys"
        self.make("service")

    def make(self, name):
        """Key pair NAME.key/NAME.pub (coordctl keygen); returns the public key (Z85)."""
        if name not in self.made:
            p = subprocess.run([str(coordtest.binary("coordctl")), "keygen", str(self.dir / name)],
                               capture_output=True, text=True, timeout=30)
            assert p.returncode == 0, p.stderr
            self.made[name] = p.stdout.split()[-1]
        return self.made[name]

    def key(self, name):
        self.make(name)
        return self.dir / (name + ".key")

    def pub(self, name):
        self.make(name)
        return self.dir / (name + ".pub")

    def secret(self, name):
        self.make(name)
        for line in self.key(name).read_text().splitlines():
            if line.startswith("secret-key = "):
                return line.split(" = ", 1)[1]
        raise AssertionError("no secret key in %s" % self.key(name))

    def curve(self, name):
        """(public, secret, server public) for coordwire.Wire(curve=...)."""
        return self.make(name), self.secret(name), self.make("service")

    def authorize(self, *principals, path=None):
        path = Path(path or self.authorized)
        path.write_text("# test keys\n" + "".join("%s %s\n" % (p, self.make(p)) for p in principals))
        return path

    def server_settings(self, principals=("admin",)):
        self.authorize(*principals)
        return {"clientSecretKeyFile": self.key("service"), "authorizedKeysFile": self.authorized}

    def ensemble_settings(self, ens, principals=("admin",)):
        """Give each member of a coordtest.Ensemble (not started) CURVE settings of its own."""
        s = self.server_settings(principals)
        members = self.dir / "members"
        members.write_text("".join("server.%d %s\n" % (m.myid, self.make("member%d" % m.myid)) for m in ens.members))
        for m in ens.members:
            m.settings.update(s, secretKeyFile=self.key("member%d" % m.myid), memberKeysFile=members)
        return members

    def env(self, name=None):
        """coordctl's environment: the key of NAME and the ensemble's public key (no keys: None)."""
        env = {k: v for k, v in os.environ.items() if k not in ("COORD_KEY", "COORD_SERVER_KEY")}
        if name:
            env.update(COORD_KEY=str(self.key(name)), COORD_SERVER_KEY=str(self.pub("service")))
        return env

    def use(self, monkeypatch, name="admin"):
        """Make NAME the key of every coordctl this test runs (the harness's readiness checks too)."""
        monkeypatch.setenv("COORD_KEY", str(self.key(name)))
        monkeypatch.setenv("COORD_SERVER_KEY", str(self.pub("service")))
