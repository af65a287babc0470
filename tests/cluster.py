"""A throwaway PostgreSQL cluster for the tests: initdb and pg_ctl as the
postgres OS user (the server refuses to run as root), a free port, a temporary
directory, the aws_ml settings and the AWS environment of the server process."""
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pg_bindir():
    pg_config = os.environ.get("PG_CONFIG", "pg_config")
    return Path(subprocess.check_output([pg_config, "--bindir"], text=True).strip())


class Cluster:
    def __init__(self, settings, environment):
        """settings: postgresql.conf lines (name -> value); environment: the
        server process's environment (besides PATH and LANG)."""
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="aws_ml_pg_"))
        self.data = self.dir / "data"
        self.log = self.dir / "server.log"
        self.settings = settings
        self.environment = environment
        self.bindir = pg_bindir()
        self._as_postgres = os.geteuid() == 0

    def _run(self, *args, wrapper=(), **kwargs):
        """Runs a PostgreSQL program (args[0]) of bindir, after wrapper (a
        command prefix such as valgrind's), as the postgres OS user."""
        command = [*wrapper, str(self.bindir / args[0]), *args[1:]]
        env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": str(self.dir), **self.environment}
        if self._as_postgres:
            command = ["runuser", "-u", "postgres", "--", "env", "-i",
                       *(f"{k}={v}" for k, v in env.items()), *command]
            env = None
        return subprocess.run(command, env=env, check=True, capture_output=True, text=True, **kwargs)

    def _own_directory(self):
        if self._as_postgres:
            postgres = pwd.getpwnam("postgres")
            os.chown(self.dir, postgres.pw_uid, postgres.pw_gid)

    def _write_settings(self):
        """This cluster's port, socket and settings, after what
        postgresql.conf holds (the last line for a name wins)."""
        lines = [f"port = {self.port}", "listen_addresses = '127.0.0.1'",
                 f"unix_socket_directories = '{self.dir}'"]
        lines += [f"{name} = '{value}'" for name, value in self.settings.items()]
        with open(self.data / "postgresql.conf", "a") as conf:
            conf.write("\n".join(lines) + "\n")

    def init(self):
        """initdb and the settings, without starting a server."""
        self._own_directory()
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust",
                  "--encoding=UTF8", "--locale=C.UTF-8")
        self._write_settings()
        return self

    def _start_server(self):
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", "start")

    def start(self):
        self.init()
        self._start_server()
        return self

    def start_standby_of(self, primary):
        """A streaming hot standby of primary (a running Cluster): its base
        backup, with the standby.signal and primary_conninfo of
        pg_basebackup -R and primary's postgresql.conf, then this cluster's
        port, socket and settings; started."""
        self._own_directory()
        self._run("pg_basebackup", "-D", str(self.data), "-R", "-X", "stream", "-c", "fast",
                  "-d", primary.conninfo())
        self._write_settings()
        self._start_server()
        return self

    def promote(self):
        """pg_ctl promote, waiting until the standby accepts writes."""
        self._run("pg_ctl", "-D", str(self.data), "-w", "-t", "60", "promote")

    def single_user(self, sql, wrapper=(), timeout=None):
        """Runs sql (statements separated by a blank line) in a single-user
        backend of the stopped cluster; returns its output."""
        done = self._run("postgres", "--single", "-j", "-D", str(self.data), "postgres",
                         wrapper=wrapper, input=sql, timeout=timeout)
        return done.stdout + done.stderr

    def reload(self):
        self._run("pg_ctl", "-D", str(self.data), "reload")

    def stop_fast(self):
        """pg_ctl stop -m fast (SIGINT to the postmaster); the cluster stays."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "-t", "30", "stop")

    def move_to(self, bindir):
        """Stops the server and starts it from the PostgreSQL installation of
        bindir, as pg_upgrade's new cluster runs from another one."""
        self._run("pg_ctl", "-D", str(self.data), "-w", "stop")
        self.bindir = Path(bindir)
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", "start")

    def restart(self):
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", "restart")

    def stop(self):
        try:
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        except subprocess.CalledProcessError:
            pass
        shutil.rmtree(self.dir, ignore_errors=True)

    def conninfo(self, dbname="postgres", user="postgres"):
        return f"host=127.0.0.1 port={self.port} dbname={dbname} user={user}"

    def server_log(self):
        return self.log.read_text(errors="replace")
