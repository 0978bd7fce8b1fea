#!/usr/bin/env python3
"""deploy/nginx/caviar.conf in front of a real caviard: Debian's nginx checks it (`nginx -t`)
with a certificate the test makes with openssl, then serves it on loopback ephemeral ports (the
file's listen addresses, certificate paths and upstream port replaced, nothing else), and API
requests go through it over TLS: health, a refused request without the token, a job of no-op
trials submitted and followed to completion, caviard's own 413 for a body over its limit, and
the plain HTTP port's redirect. Every reply is validated against schemas/api.schema.json.

Usage: test_nginx.py BUILD_DIR SOURCE_ROOT"""

import http.client
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import unittest
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from caviar_harness import Coordinator, validate_api_reply  # noqa: E402
from deploy_common import wait_for  # noqa: E402

BUILD = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else "build"
SOURCE = os.path.abspath(sys.argv[2]) if len(sys.argv) > 2 else "."
CONF = os.path.join(SOURCE, "deploy", "nginx", "caviar.conf")
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
TOKEN = "t" * 48


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def replace_once(text, old, new):
    """text with old replaced by new; old must occur exactly once."""
    if text.count(old) != 1:
        raise AssertionError(f"deploy/nginx/caviar.conf: expected one {old!r}")
    return text.replace(old, new)


class Nginx(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not os.access(NGINX, os.X_OK) or shutil.which("openssl") is None:
            raise AssertionError("nginx and openssl are needed (./dev install installs them)")
        cls.tmp = tempfile.TemporaryDirectory(prefix="caviar-nginx-")
        d = cls.tmp.name
        os.chmod(d, 0o755)
        cls.cert, cls.key = os.path.join(d, "fullchain.pem"), os.path.join(d, "privkey.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                        "-keyout", cls.key, "-out", cls.cert, "-subj", "/CN=localhost",
                        "-addext", "subjectAltName=DNS:localhost"],
                       check=True, capture_output=True, timeout=60)
        token_file = os.path.join(d, "api-token")
        with open(token_file, "w") as f:
            f.write(TOKEN + "\n")
        cls.c = Coordinator(BUILD, workers=2, noop=True, extra=["--token-file", token_file])
        cls.c.start()
        cls.https_port, cls.http_port = free_port(), free_port()
        cls.main_conf = cls.write_conf(cls.cert)
        cls.proc = None

    @classmethod
    def write_conf(cls, cert, name="nginx.conf"):
        """A main nginx.conf in tmp that includes deploy/nginx/caviar.conf adapted to this
        test; returns its path."""
        d = cls.tmp.name
        with open(CONF) as f:
            site = f.read()
        site = replace_once(site, "listen 80;", f"listen 127.0.0.1:{cls.http_port};")
        site = replace_once(site, "listen [::]:80;\n", "")
        site = replace_once(site, "listen 443 ssl;", f"listen 127.0.0.1:{cls.https_port} ssl;")
        site = replace_once(site, "listen [::]:443 ssl;\n", "")
        site = replace_once(site, "/etc/ssl/caviar/fullchain.pem", cert)
        site = replace_once(site, "/etc/ssl/caviar/privkey.pem", cls.key)
        site = replace_once(site, "server 127.0.0.1:8470;", f"server 127.0.0.1:{cls.c.port};")
        with open(os.path.join(d, "caviar.conf"), "w") as f:
            f.write(site)
        for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
            os.makedirs(os.path.join(d, sub), exist_ok=True)
            os.chmod(os.path.join(d, sub), 0o777)
        path = os.path.join(d, name)
        with open(path, "w") as f:
            f.write(f"""pid {d}/nginx.pid;
error_log {d}/error.log;
events {{ worker_connections 64; }}
http {{
    access_log {d}/access.log;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    include {d}/caviar.conf;
}}
""")
        return path

    @classmethod
    def tearDownClass(cls):
        if cls.proc and cls.proc.poll() is None:
            cls.proc.terminate()
            try:
                cls.proc.wait(10)
            except subprocess.TimeoutExpired:
                cls.proc.kill()
                cls.proc.wait()
        cls.c.close()
        cls.tmp.cleanup()

    def nginx(self, *args):
        return subprocess.run([NGINX, "-p", self.tmp.name, "-c", self.main_conf, *args],
                              capture_output=True, text=True, timeout=30)

    def start(self):
        if Nginx.proc is None:
            p = self.nginx("-t")
            self.assertEqual(p.returncode, 0, p.stderr)
            Nginx.proc = subprocess.Popen(
                [NGINX, "-p", self.tmp.name, "-c", self.main_conf, "-g", "daemon off;"],
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

            def up():
                if Nginx.proc.poll() is not None:
                    raise AssertionError("nginx exited: " + Nginx.proc.stderr.read().decode())
                try:
                    socket.create_connection(("127.0.0.1", self.https_port), 0.2).close()
                    return True
                except OSError:
                    return False
            wait_for("nginx to listen", up, 15)

    def request(self, method, path, body=None, token=TOKEN, raw=None):
        """(status, parsed JSON) through nginx over TLS, the certificate checked."""
        self.start()
        ctx = ssl.create_default_context(cafile=self.cert)
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None
                                            else None)
        req = urllib.request.Request(f"https://localhost:{self.https_port}{path}", data=data,
                                     method=method, headers={"Authorization": f"Bearer {token}"}
                                     if token else {})
        try:
            with urllib.request.urlopen(req, timeout=30, context=ctx) as r:
                status, reply = r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            status, reply = e.code, json.loads(e.read())
        validate_api_reply(method, path, status, reply)
        return status, reply

    def test_nginx_t_accepts_the_configuration(self):
        p = self.nginx("-t")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("test is successful", p.stderr)
        # ... and checks what it promises: a certificate that is not there is refused.
        broken = self.write_conf(os.path.join(self.tmp.name, "missing.pem"), "broken.conf")
        p = subprocess.run([NGINX, "-p", self.tmp.name, "-c", broken, "-t"],
                           capture_output=True, text=True, timeout=30)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("missing.pem", p.stderr)
        self.write_conf(self.cert)  # caviar.conf as the running server reads it

    def test_health_and_tokens_through_tls(self):
        status, body = self.request("GET", "/v1/health", token=None)
        self.assertEqual((status, body["status"]), (200, "ok"))
        status, body = self.request("GET", "/v1/jobs", token=None)
        self.assertEqual(status, 401, body)
        status, body = self.request("GET", "/v1/jobs", token="wrong")
        self.assertEqual(status, 401, body)

    def test_a_job_submitted_and_followed_through_the_proxy(self):
        job = {"name": "through-nginx",
               "trial": {"dataset": {"format": "csv", "csv": os.path.join(
                   SOURCE, "examples", "data", "moons.csv"), "label_column": "label"},
                         "epochs": 1},
               "space": {"learning_rate": {"type": "float", "scale": "log", "min": 1e-4,
                                           "max": 1e-1}},
               "budget": {"max_trials": 6, "max_parallel": 2}, "seed": 4}
        status, body = self.request("POST", "/v1/jobs", job)
        self.assertEqual(status, 201, body)
        job_id = body["id"]
        done = wait_for("the job to finish", lambda: (lambda j: j if j["status"] != "running"
                        else None)(self.request("GET", f"/v1/jobs/{job_id}")[1]), 60,
                        self.c.log_text)
        self.assertEqual(done["status"], "completed")
        status, body = self.request("GET", f"/v1/jobs/{job_id}/trials")
        self.assertEqual([t["status"] for t in body["trials"]], ["completed"] * 6)

    def test_caviards_own_limit_answers_a_large_body(self):
        status, body = self.request("POST", "/v1/jobs", raw=b"{" + b" " * (1536 * 1024) + b"}")
        self.assertEqual(status, 413, body)

    def test_plain_http_redirects_to_https(self):
        self.start()
        conn = http.client.HTTPConnection("127.0.0.1", self.http_port, timeout=10)
        conn.request("GET", "/v1/health", headers={"Host": "caviar.example.org"})
        r = conn.getresponse()
        self.assertEqual((r.status, r.getheader("Location")),
                         (301, "https://caviar.example.org/v1/health"))
        conn.close()


if __name__ == "__main__":
    unittest.main(argv=sys.argv[:1], verbosity=2)
