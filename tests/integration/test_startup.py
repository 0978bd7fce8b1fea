#!/usr/bin/env python3
"""Specification of caviard's start-up and of the local workers it starts, with real processes
on loopback ephemeral ports and temporary databases.

- Token files (--token-file, --worker-token-file, caviar-worker --token-file) lose surrounding
  whitespace; an empty, blank or whitespace-only token, one with whitespace inside and one over
  the limit are refused at start-up with a message naming the file, never truncated or ignored.
- A worker port on a non-loopback address needs a worker token, unless
  --allow-remote-workers-without-token.
- One caviard per database: a second one on the same --db refuses to start, naming the database
  and the first one's pid.
- Local workers (--workers N) get the worker token through their environment (never argv, which
  `ps` shows), and die with caviard even when it is killed by SIGKILL.

Usage: test_startup.py BUILD_DIR SOURCE_ROOT"""

import os
import signal
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from caviar_harness import Coordinator, csv_job, write_moons  # noqa: E402

BUILD = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else "build"
CAVIARD = os.path.join(BUILD, "server", "caviard")
WORKER = os.path.join(BUILD, "worker", "caviar-worker")
WORKER_TOKEN = "wrk-startup-0123456789"


def clean_env():
    """The test's environment without the tokens a developer's shell may hold."""
    return {k: v for k, v in os.environ.items()
            if k not in ("CAVIAR_TOKEN", "CAVIAR_WORKER_TOKEN")}


def job_spec(csv, trials=2):
    return csv_job(csv, "startup", trials, seed=5)


def proc_children(pid):
    """Pids of the children of pid, from /proc."""
    children = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        if int(fields[1]) == pid:
            children.append(int(entry))
    return children


def cmdline(pid):
    """The argv of pid as a list, or None when it is gone (or a zombie, whose is empty)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            args = f.read().split(b"\0")[:-1]
    except OSError:
        return None
    return [a.decode(errors="replace") for a in args] or None


class StartupCase(unittest.TestCase):
    def setUp(self):
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        self.dir = tmp.name

    def write(self, name, data):
        path = os.path.join(self.dir, name)
        with open(path, "wb") as f:
            f.write(data if isinstance(data, bytes) else data.encode())
        return path

    def caviard(self, *extra, db="x.db"):
        """Runs caviard expecting it to refuse to start: (exit status, stderr)."""
        p = subprocess.run([CAVIARD, "--listen", "127.0.0.1:0", "--worker-listen", "127.0.0.1:0",
                            "--db", os.path.join(self.dir, db), "--data-dir",
                            os.path.join(self.dir, "data"), *extra],
                           capture_output=True, text=True, timeout=30, env=clean_env())
        return p.returncode, p.stderr


class TokenFiles(StartupCase):
    def test_empty_blank_and_whitespace_only_token_files_are_refused(self):
        for option in ("--token-file", "--worker-token-file"):
            for name, data in (("empty", b""), ("blank", b"\n"), ("blank-lines", b"\n\n\n"),
                               ("spaces", b"   \n"), ("crlf", b" \t\r\n")):
                path = self.write(name, data)
                status, err = self.caviard(option, path)
                self.assertEqual(status, 1, (option, name, err))
                self.assertIn(f"token file {path} is empty or holds only whitespace", err)
                self.assertNotIn("Success", err)
                self.assertFalse(os.path.exists(os.path.join(self.dir, "x.db")), "it started")

    def test_a_token_with_whitespace_inside_is_refused(self):
        path = self.write("two-words", "two words\n")
        status, err = self.caviard("--token-file", path)
        self.assertEqual(status, 1, err)
        self.assertIn(f"token file {path}: the token contains whitespace or a control character",
                      err)

    def test_tokens_over_the_limit_are_refused_not_truncated(self):
        path = self.write("long-api", "a" * 512 + "\n")
        status, err = self.caviard("--token-file", path)
        self.assertEqual(status, 1, err)
        self.assertIn(f"token file {path}: the token is 512 bytes long; at most 511 are allowed",
                      err)
        path = self.write("long-worker", "w" * 257)
        status, err = self.caviard("--worker-token-file", path)
        self.assertEqual(status, 1, err)
        self.assertIn(f"token file {path}: the token is 257 bytes long; at most 256 are allowed",
                      err)

    def test_a_missing_file_names_the_file_and_the_reason(self):
        path = os.path.join(self.dir, "missing")
        status, err = self.caviard("--token-file", path)
        self.assertEqual(status, 1, err)
        self.assertIn(f"token file {path}: No such file or directory", err)

    def test_surrounding_whitespace_is_stripped_from_the_api_token(self):
        """Trailing spaces, CR LF and blank lines around the token do not become part of it, and
        the longest allowed token works whole."""
        for token, data in (("s3cret", "  s3cret  \r\n"), ("s3cret", "\n\ns3cret\n"),
                            ("k" * 511, "k" * 511 + "\n")):
            c = Coordinator(BUILD, workers=0)
            self.addCleanup(c.close)
            with open(os.path.join(c.dir, "api.token"), "w") as f:
                f.write(data)
            c.extra += ["--token-file", os.path.join(c.dir, "api.token")]
            c.start()
            self.assertEqual(c.request("GET", "/v1/jobs")[0], 401, "authentication is on")
            self.assertEqual(c.request("GET", "/v1/jobs", headers={
                "Authorization": f"Bearer {token[:-1]}"})[0], 401, "a prefix is refused")
            self.assertEqual(c.request("GET", "/v1/jobs", headers={
                "Authorization": f"Bearer {token}"})[0], 200)
            c.close()

    def test_caviar_worker_refuses_bad_token_files_and_variables(self):
        empty = self.write("empty", "\n")
        long = self.write("long", "w" * 257)
        for args, env, want in (
                (["--token-file", empty], {}, f"token file {empty} is empty or holds only"),
                (["--token-file", long], {}, f"token file {long}: the token is 257 bytes long"),
                ([], {"CAVIAR_WORKER_TOKEN": "  \n"}, "CAVIAR_WORKER_TOKEN is empty or holds"),
                (["--token", "x", "--token-file", long], {}, "--token or --token-file, not both")):
            p = subprocess.run([WORKER, "--connect", "127.0.0.1:1", "--once", *args],
                               capture_output=True, text=True, timeout=30,
                               env=dict(clean_env(), **env))
            self.assertEqual(p.returncode, 2, (args, p.stderr))
            self.assertIn(want, p.stderr)


class RemoteWorkerPort(StartupCase):
    def test_a_remote_worker_port_without_a_token_is_refused(self):
        for address in ("0.0.0.0:0", "[::]:0"):
            status, err = self.caviard("--worker-listen", address)
            self.assertEqual(status, 1, err)
            self.assertIn("is not a loopback address and no worker token is set", err)
            self.assertIn("--allow-remote-workers-without-token", err)
            self.assertFalse(os.path.exists(os.path.join(self.dir, "x.db")), "it started")

    def test_it_can_be_allowed_with_a_warning_or_opened_with_a_token(self):
        c = Coordinator(BUILD, workers=0, extra=["--worker-listen", "0.0.0.0:0",
                                                 "--allow-remote-workers-without-token"])
        self.addCleanup(c.close)
        c.start()
        c.stop()
        self.assertIn("no worker token is set and the worker port listens on 0.0.0.0",
                      c.log_text())
        c = Coordinator(BUILD, workers=0, extra=["--worker-listen", "0.0.0.0:0"])
        self.addCleanup(c.close)
        with open(os.path.join(c.dir, "worker.token"), "w") as f:
            f.write(WORKER_TOKEN)
        c.extra += ["--worker-token-file", os.path.join(c.dir, "worker.token")]
        c.start()
        c.stop()
        self.assertNotIn("no worker token", c.log_text())


class DatabaseLock(unittest.TestCase):
    def test_a_second_caviard_on_the_same_database_refuses_to_start(self):
        first = Coordinator(BUILD, workers=0)
        self.addCleanup(first.close)
        first.start()
        second = subprocess.run([CAVIARD, "--listen", "127.0.0.1:0", "--worker-listen",
                                 "127.0.0.1:0", "--db", first.db, "--data-dir",
                                 os.path.join(first.dir, "data2")],
                                capture_output=True, text=True, timeout=30, env=clean_env())
        self.assertEqual(second.returncode, 1, second.stderr)
        self.assertIn(f"database {first.db} is in use by another caviard "
                      f"(pid {first.proc.pid}, lock file {first.db}.lock)", second.stderr)
        self.assertEqual(first.request("GET", "/v1/health")[0], 200, "the first one runs on")
        first.stop(signal.SIGKILL)  # a killed owner leaves no stale lock behind
        again = Coordinator(BUILD, workers=0, db=first.db)
        self.addCleanup(again.close)
        again.start()
        self.assertEqual(again.request("GET", "/v1/health")[0], 200)


class Options(StartupCase):
    """caviard and caviar-worker --connect take --opt value and --opt=value alike, and refuse a
    bad command line with exit status 2 and a message naming the option."""

    def test_caviard_refuses_bad_options_naming_them(self):
        for args, want in ((["--workers"], "caviard: --workers needs a value"),
                           (["--workers=x"], "caviard: bad value for --workers: 'x'"),
                           (["--workers", "257"], "caviard: bad value for --workers: '257'"),
                           (["--lease-seconds=0"], "caviard: bad value for --lease-seconds: '0'"),
                           (["--synchronous", "fast"], "bad value for --synchronous: 'fast'"),
                           (["--verbose=yes"], "caviard: --verbose takes no value"),
                           (["--bogus"], "caviard: unknown or ambiguous option '--bogus'"),
                           (["stray"], "caviard: unexpected argument 'stray'"),
                           (["--listen", "nohost"],
                            "caviard: bad value for --listen: 'nohost' (want HOST:PORT)"),
                           (["--worker-listen=h:70000"],
                            "caviard: bad value for --worker-listen: 'h:70000' (want HOST:PORT)"),
                           (["--quarantine-seconds", "-1"],
                            "bad value for --quarantine-seconds: '-1' (want a number of seconds "
                            "of at least 0 (0: until released))"),
                           (["--db-max-bytes", "0"], "bad value for --db-max-bytes: '0' (want a "
                            "number of bytes of at least 1)"),
                           (["--http-max-connections", "4294967296"],
                            "bad value for --http-max-connections: '4294967296' (want an integer "
                            "of at least 1)"),
                           (["--dataset-root="],
                            "caviard: bad value for --dataset-root: '' (want a directory)"),
                           (["--dataset-root", "/"] * 65, "caviard: --dataset-root: at most 64 "
                            "roots"),
                           (["--port-file"], "caviard: --port-file needs a value")):
            status, err = self.caviard(*args)
            self.assertEqual(status, 2, (args, err))
            self.assertIn(want, err)
            self.assertIn("usage: caviard", err)

    def test_caviard_help_exits_0(self):
        p = subprocess.run([CAVIARD, "--help"], capture_output=True, text=True, timeout=10)
        self.assertEqual(p.returncode, 0)
        self.assertIn("--allow-remote-workers-without-token", p.stdout)

    def test_equals_forms_work_for_both_programs(self):
        token_file = self.write("worker.token", WORKER_TOKEN)
        c = Coordinator(BUILD, workers=0, extra=["--lease-seconds=30", "--heartbeat-seconds=1",
                                                 f"--worker-token-file={token_file}"])
        self.addCleanup(c.close)
        c.start()
        w = subprocess.Popen([WORKER, f"--connect=127.0.0.1:{c.worker_port}", "--id=eq",
                              "--threads=1", f"--token-file={token_file}", "--noop"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             env=clean_env())
        try:
            c.wait_workers(1, timeout=20)
        finally:
            w.terminate()
            w.wait(20)
        status, body = c.request("GET", "/v1/workers")
        self.assertEqual([x["id"] for x in body["workers"]], ["eq"])

    def test_caviar_worker_refuses_bad_options_naming_them(self):
        for args, want in ((["--connect", "h:1", "--threads=0"], "--threads must be an integer"),
                           (["--connect", "h:1", "--once=1"], "--once takes no value"),
                           (["--connect", "h:1", "--id"], "--id needs a value"),
                           (["--connect", "h:1", "--bogus"], "unknown or ambiguous option"),
                           (["--connect", "h:1", "stray"], "unexpected argument 'stray'")):
            p = subprocess.run([WORKER, *args], capture_output=True, text=True, timeout=10,
                               env=clean_env())
            self.assertEqual(p.returncode, 2, (args, p.stderr))
            self.assertIn(want, p.stderr)


class LocalWorkers(unittest.TestCase):
    def worker_pids(self, c, n, timeout=30):
        """The pids of caviard's n caviar-worker children once n workers said hello."""
        c.wait_workers(n, timeout)
        pids = [p for p in proc_children(c.proc.pid)
                if (cmdline(p) or [""])[0].endswith("caviar-worker")]
        self.assertEqual(len(pids), n, pids)
        return pids

    def test_local_workers_get_the_worker_token_but_not_in_argv(self):
        c = Coordinator(BUILD, workers=1)
        self.addCleanup(c.close)
        token_file = os.path.join(c.dir, "worker.token")
        with open(token_file, "w") as f:
            f.write(WORKER_TOKEN + "\n")
        c.extra += ["--worker-token-file", token_file]
        data = os.path.join(c.dir, "moons.csv")
        write_moons(data, n=200)
        c.start()
        (pid,) = self.worker_pids(c, 1)
        args = cmdline(pid)
        self.assertNotIn(WORKER_TOKEN, " ".join(args), "the token shows in ps")
        ps = subprocess.run(["ps", "-ww", "-o", "args=", "-p", str(pid)], capture_output=True,
                            text=True, timeout=10)
        self.assertIn("caviar-worker", ps.stdout)
        self.assertNotIn(WORKER_TOKEN, ps.stdout)
        status, body = c.request("POST", "/v1/jobs", job_spec(data))
        self.assertEqual(status, 201, body)
        job = c.wait_job(body["id"], timeout=60)
        self.assertEqual(job["status"], "completed", c.log_text())
        self.assertEqual(job["counts"].get("completed"), 2)
        self.assertNotIn("wrong worker token", c.log_text())

    def test_caviar_worker_takes_the_token_from_a_file_or_the_environment(self):
        c = Coordinator(BUILD, workers=0)
        self.addCleanup(c.close)
        token_file = os.path.join(c.dir, "worker.token")
        with open(token_file, "w") as f:
            f.write(WORKER_TOKEN + "\r\n")
        c.extra += ["--worker-token-file", token_file]
        c.start()
        for i, (args, env) in enumerate(((["--token-file", token_file], {}),
                                         ([], {"CAVIAR_WORKER_TOKEN": WORKER_TOKEN}))):
            w = subprocess.Popen([WORKER, "--connect", f"127.0.0.1:{c.worker_port}", "--id",
                                  f"w{i}", "--noop", *args], stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL, env=dict(clean_env(), **env))
            try:
                c.wait_workers(i + 1, timeout=20)
            finally:
                w.terminate()
                w.wait(20)
            time.sleep(0.2)
        self.assertNotIn("wrong worker token", c.log_text())

    def test_local_workers_die_with_a_killed_caviard(self):
        for _ in range(2):  # a restarted caviard's workers die with it too
            c = Coordinator(BUILD, workers=2, noop=True)
            self.addCleanup(c.close)
            c.start()
            pids = self.worker_pids(c, 2)
            self.addCleanup(self.kill_leftovers, pids)
            c.stop(signal.SIGKILL)
            deadline = time.time() + 3
            alive = pids
            while alive and time.time() < deadline:
                time.sleep(0.05)
                alive = [p for p in pids if (cmdline(p) or [""])[0].endswith("caviar-worker")]
            self.assertEqual(alive, [], "local workers outlived their coordinator")

    @staticmethod
    def kill_leftovers(pids):
        for p in pids:
            if (cmdline(p) or [""])[0].endswith("caviar-worker"):
                os.kill(p, signal.SIGKILL)

    def test_a_worker_whose_parent_is_already_gone_stops(self):
        """--exit-with-parent names the process that started the worker: when the worker's
        parent is another one (the starter died before the worker could ask to follow it), it
        exits at once instead of serving forever."""
        p = subprocess.run([WORKER, "--connect", "127.0.0.1:1", "--exit-with-parent", "1"],
                           capture_output=True, text=True, timeout=30, env=clean_env())
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn("--exit-with-parent: process 1, which started this worker, has exited",
                      p.stderr)


if __name__ == "__main__":
    unittest.main(argv=sys.argv[:1], verbosity=2)
