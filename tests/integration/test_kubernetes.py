#!/usr/bin/env python3
"""deploy/kubernetes checked offline: every manifest validates against the Kubernetes OpenAPI
schemas (tests/deploy/validate_kubernetes.mjs with npm's kubernetes-models, under Debian's
nodejs) and names only fields the Kubernetes API knows (Debian's python3-kubernetes models);
the kustomization lists every manifest; and the manifests agree with the binaries: their flags
are in `caviard --help` and `caviar-worker --help`, their ports, services and probe paths are
what caviard serves, their paths lie on the volumes mounted, the worker's --threads matches its
CPU request. Then caviard and caviar-worker run with the manifests' own arguments (volume mount
paths mapped to temporary directories, listening addresses to loopback ephemeral ports): the
probes answer, a worker joins under its pod name, and each stops within its grace period on
SIGTERM with a trial running.

Usage: test_kubernetes.py BUILD_DIR SOURCE_ROOT"""

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.error
import urllib.request

import yaml  # python3-yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from caviar_harness import validate_api_reply  # noqa: E402
from deploy_common import job_spec, running_with_progress, wait_for, write_blobs  # noqa: E402

BUILD = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else "build"
SOURCE = os.path.abspath(sys.argv[2]) if len(sys.argv) > 2 else "."
K8S = os.path.join(SOURCE, "deploy", "kubernetes")
VALIDATOR = os.path.join(SOURCE, "tests", "deploy", "validate_kubernetes.mjs")
CAVIARD = os.path.join(BUILD, "server", "caviard")
WORKER = os.path.join(BUILD, "worker", "caviar-worker")


def manifests():
    """{(kind, name): object} of every document of the kustomization's resources."""
    with open(os.path.join(K8S, "kustomization.yaml")) as f:
        kustomization = yaml.safe_load(f)
    out = {}
    for name in kustomization["resources"]:
        with open(os.path.join(K8S, name)) as f:
            for doc in yaml.safe_load_all(f):
                if doc:
                    out[(doc["kind"], doc["metadata"]["name"])] = doc
    return out


def unknown_fields(value, type_name, path=""):
    """Paths in value that the Kubernetes API's model type_name (python3-kubernetes) does not
    name."""
    import kubernetes.client as kc
    m = re.fullmatch(r"list\[(.+)\]", type_name)
    if m:
        return [p for i, v in enumerate(value or [])
                for p in unknown_fields(v, m[1], f"{path}[{i}]")]
    m = re.fullmatch(r"dict\(str, (.+)\)", type_name)
    if m:
        return [p for k, v in (value or {}).items() for p in unknown_fields(v, m[1], f"{path}.{k}")]
    cls = getattr(kc, type_name, None)
    if cls is None or not isinstance(value, dict):
        return []  # str, int, object (int or string), quantities
    by_json = {j: attr for attr, j in cls.attribute_map.items()}
    bad = []
    for key, v in value.items():
        if key not in by_json:
            bad.append(f"{path}.{key}")
        else:
            bad += unknown_fields(v, cls.openapi_types[by_json[key]], f"{path}.{key}")
    return bad


def model_name(doc):
    """apps/v1 Deployment → V1Deployment, the python3-kubernetes model of a document."""
    return doc["apiVersion"].rsplit("/", 1)[-1].capitalize() + doc["kind"]


def container(doc):
    (c,) = doc["spec"]["template"]["spec"]["containers"]
    return c


def flag(args, name):
    return args[args.index(name) + 1]


def help_flags(binary):
    p = subprocess.run([binary, "--help"], capture_output=True, text=True, timeout=10)
    return set(re.findall(r"--[a-z][a-z-]*", p.stdout + p.stderr))


class Manifests(unittest.TestCase):
    def setUp(self):
        self.m = manifests()
        self.coordinator = self.m[("Deployment", "caviard")]
        self.workers = self.m[("Deployment", "caviar-worker")]

    def validate(self, *files):
        if shutil.which("node") is None:
            self.fail("node is not installed (./dev install installs nodejs)")
        if not os.path.isdir(os.path.join(SOURCE, "tests", "deploy", "node_modules",
                                          "kubernetes-models")):
            self.fail("tests/deploy/node_modules lacks kubernetes-models: ./dev install runs "
                      "`npm ci --prefix tests/deploy`")
        return subprocess.run(["node", VALIDATOR, *files], capture_output=True, text=True,
                              timeout=60)

    def test_every_manifest_validates_against_the_kubernetes_openapi_schemas(self):
        with open(os.path.join(K8S, "kustomization.yaml")) as f:
            files = [os.path.join(K8S, r) for r in yaml.safe_load(f)["resources"]]
        p = self.validate(*files)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertEqual(p.stdout.count("\nok ") + p.stdout.startswith("ok "), len(self.m),
                         p.stdout)
        # The validator does refuse what the API server would.
        with tempfile.TemporaryDirectory() as tmp:
            broken = os.path.join(tmp, "coordinator.yaml")
            with open(os.path.join(K8S, "coordinator.yaml")) as f:
                text = f.read().replace("containerPort: 8470", 'containerPort: "8470"')
            with open(broken, "w") as f:
                f.write(text.replace("type: Recreate", "type: Recreated"))
            p = self.validate(broken)
        self.assertEqual(p.returncode, 1, p.stdout)
        self.assertIn("containerPort must be integer", p.stdout)
        self.assertIn("strategy/type must be equal to one of the allowed values", p.stdout)

    def test_every_field_is_one_the_kubernetes_api_knows(self):
        for key, doc in self.m.items():
            with self.subTest(manifest=key):
                self.assertEqual(unknown_fields(doc, model_name(doc)), [])
        typo = yaml.safe_load(yaml.safe_dump(self.workers))
        container(typo)["resource"] = container(typo).pop("resources")
        self.assertEqual(unknown_fields(typo, model_name(typo)),
                         [".spec.template.spec.containers[0].resource"])

    def test_the_kustomization_lists_every_manifest(self):
        with open(os.path.join(K8S, "kustomization.yaml")) as f:
            k = yaml.safe_load(f)
        listed = set(k["resources"])
        present = {f for f in os.listdir(K8S) if f.endswith(".yaml")} - {"kustomization.yaml"}
        self.assertEqual(listed, present)
        self.assertEqual(k["namespace"], self.m[("Namespace", k["namespace"])]["metadata"]["name"])
        images = {c["image"] for d in (self.coordinator, self.workers)
                  for c in d["spec"]["template"]["spec"]["containers"]}
        self.assertEqual(images, {i["name"] for i in k["images"]})

    def test_one_coordinator_at_a_time_on_its_volume(self):
        spec = self.coordinator["spec"]
        self.assertEqual((spec["replicas"], spec["strategy"]["type"]), (1, "Recreate"))
        claim = next(v for v in spec["template"]["spec"]["volumes"]
                     if "persistentVolumeClaim" in v)["persistentVolumeClaim"]["claimName"]
        pvc = self.m[("PersistentVolumeClaim", claim)]
        self.assertEqual(pvc["spec"]["accessModes"], ["ReadWriteOnce"])

    def test_flags_are_the_binaries_own(self):
        for doc, binary in ((self.coordinator, CAVIARD), (self.workers, WORKER)):
            c = container(doc)
            self.assertEqual(c["command"], [os.path.basename(binary)])
            used = {a for a in c["args"] if a.startswith("--")}
            self.assertLessEqual(used, help_flags(binary), f"{binary} --help lacks them")

    def test_ports_services_and_probes_agree(self):
        c = container(self.coordinator)
        ports = {p["name"]: p["containerPort"] for p in c["ports"]}
        self.assertEqual(int(flag(c["args"], "--listen").rsplit(":", 1)[1]), ports["api"])
        self.assertEqual(int(flag(c["args"], "--worker-listen").rsplit(":", 1)[1]),
                         ports["workers"])
        labels = self.coordinator["spec"]["template"]["metadata"]["labels"]
        services = {}
        for (kind, name), doc in self.m.items():
            if kind == "Service":
                self.assertLessEqual(doc["spec"]["selector"].items(), labels.items())
                (p,) = doc["spec"]["ports"]
                services[p["targetPort"]] = (name, p["port"])
        self.assertEqual(set(services), {"api", "workers"})
        host, port = flag(container(self.workers)["args"], "--connect").rsplit(":", 1)
        self.assertEqual((host, int(port)), services["workers"])
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            self.assertEqual(c[probe]["httpGet"], {"path": "/v1/health", "port": "api"})

    def test_paths_lie_on_the_mounted_volumes(self):
        pod = self.coordinator["spec"]["template"]["spec"]
        c = container(self.coordinator)
        volumes = {v["name"]: v for v in pod["volumes"]}
        mounts = {m["mountPath"]: volumes[m["name"]] for m in c["volumeMounts"]}

        def volume_of(path):
            (v,) = [v for mp, v in mounts.items() if path.startswith(mp.rstrip("/") + "/")]
            return v
        for name in ("--db", "--data-dir", "--dataset-root"):
            self.assertIn("persistentVolumeClaim", volume_of(flag(c["args"], name)), name)
        secret = self.m[("Secret", volume_of(flag(c["args"], "--token-file"))["secret"]
                         ["secretName"])]
        keys = set(secret["stringData"])
        for name in ("--token-file", "--worker-token-file"):
            self.assertIn(os.path.basename(flag(c["args"], name)), keys, name)
            self.assertIn("secret", volume_of(flag(c["args"], name)))
        w = container(self.workers)
        refs = [e["valueFrom"]["secretKeyRef"] for e in w["env"]
                if "secretKeyRef" in e.get("valueFrom", {})]
        self.assertEqual(refs, [{"name": secret["metadata"]["name"], "key": "worker-token"}])
        worker_mounts = {m["mountPath"] for m in w["volumeMounts"]}
        self.assertIn(flag(w["args"], "--cache"), worker_mounts)
        self.assertIn("/tmp", worker_mounts)  # unacknowledged model files, read-only root

    def test_worker_threads_match_its_cpu(self):
        c = container(self.workers)
        threads = flag(c["args"], "--threads")
        self.assertEqual(c["resources"]["requests"]["cpu"], threads)
        self.assertEqual(c["resources"]["limits"]["cpu"], threads)


class AsDeployed(unittest.TestCase):
    """caviard and caviar-worker with the manifests' arguments."""

    def setUp(self):
        m = manifests()
        self.coordinator, self.workers = m[("Deployment", "caviard")], m[("Deployment",
                                                                           "caviar-worker")]
        self.secret = m[("Secret", "caviar-tokens")]
        self.tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self.tmp.cleanup)
        self.procs = []
        self.addCleanup(self.end_processes)

    def end_processes(self):
        for p, log in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait()
            log.close()

    def mapped(self, container_, extra_mounts=()):
        """The container's arguments with each mount path replaced by a directory under tmp
        (created) and every HOST:PORT listening address by loopback port 0."""
        out = []
        roots = {m["mountPath"]: os.path.join(self.tmp.name, m["name"])
                 for m in container_.get("volumeMounts", [])}
        for root in roots.values():
            os.makedirs(root, exist_ok=True)
        self.roots = roots
        args = container_["args"]
        for i, a in enumerate(args):
            prev = args[i - 1] if i else ""
            if prev in ("--listen", "--worker-listen"):
                a = "127.0.0.1:0"
            for mp, root in sorted(roots.items(), key=lambda r: -len(r[0])):
                if a.startswith(mp.rstrip("/") + "/") or a == mp:
                    a = root + a[len(mp.rstrip("/")):]
                    break
            out.append(a)
        return out

    def spawn(self, name, argv, env=None):
        log = open(os.path.join(self.tmp.name, f"{name}.log"), "w+")
        p = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                             env=dict(os.environ, OPENBLAS_NUM_THREADS="1", **(env or {})))
        self.procs.append((p, log))
        return p

    def log(self, name):
        with open(os.path.join(self.tmp.name, f"{name}.log")) as f:
            return f.read()

    def start_caviard(self, tokens):
        """Runs the init containers' commands, then caviard, with paths mapped."""
        for init in self.coordinator["spec"]["template"]["spec"].get("initContainers", []):
            p = subprocess.run([*init["command"][:1], *self.mapped(dict(init, args=init[
                "command"][1:]))], capture_output=True, text=True, timeout=20)
            self.assertEqual(p.returncode, 0, f"init container {init['name']}: {p.stderr}")
        c = container(self.coordinator)
        args = self.mapped(c)
        secret_dir = self.roots["/etc/caviar"]
        for key, value in tokens.items():
            with open(os.path.join(secret_dir, key), "w") as f:
                f.write(value)
        port_file = os.path.join(self.tmp.name, "ports")
        return self.spawn("caviard", [CAVIARD, *args, "--port-file", port_file]), port_file

    def test_the_shipped_secret_keeps_caviard_from_listening(self):
        proc, _ = self.start_caviard(self.secret["stringData"])
        self.assertNotEqual(proc.wait(timeout=20), 0)
        self.assertIn(os.path.join(self.roots["/etc/caviar"], "api-token"), self.log("caviard"))

    def test_probes_worker_and_grace_periods(self):
        tokens = {"api-token": "a" * 64, "worker-token": "w" * 64}
        caviard, port_file = self.start_caviard(tokens)
        def ports():
            if os.path.exists(port_file):
                with open(port_file) as f:
                    found = f.read().split()
                return [int(x) for x in found] if len(found) == 2 else None
            return None
        api, wport = wait_for("caviard's ports", ports, 20, lambda: self.log("caviard"))
        coordinator = _Api(api, tokens["api-token"])

        c = container(self.coordinator)
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            status, body = coordinator.request("GET", c[probe]["httpGet"]["path"], token=None)
            self.assertEqual(status, 200, body)
        self.assertEqual(coordinator.request("GET", "/v1/jobs", token=None)[0], 401)

        # A worker with the Deployment's arguments, $(VAR) expanded as the kubelet does.
        w = container(self.workers)
        pod = "caviar-worker-7d9f8b6c5d-x2k4q"
        env = {"POD_NAME": pod, "CAVIAR_WORKER_TOKEN": tokens["worker-token"]}
        args = [re.sub(r"\$\((\w+)\)", lambda mm: env[mm[1]], a) for a in self.mapped(w)]
        args[args.index("--connect") + 1] = f"127.0.0.1:{wport}"
        worker = self.spawn("worker", [WORKER, *args], env={"TMPDIR": self.roots["/tmp"]})
        seen = wait_for("the worker to join", lambda: {
            x["id"]: x for x in coordinator.request("GET", "/v1/workers")[1]["workers"]}.get(pod),
            20, lambda: self.log("caviard") + self.log("worker"))
        self.assertEqual(seen["threads"], int(flag(w["args"], "--threads")))

        # A job over a dataset under --dataset-root, as the coordinator manifest requires.
        data_dir = self.mapped(c)[c["args"].index("--dataset-root") + 1]
        data = os.path.join(data_dir, "blobs.csv")
        write_blobs(data)
        status, body = coordinator.request("POST", "/v1/jobs", job_spec(data, 2, 1, epochs=30))
        self.assertEqual(status, 201, body)
        job_id = body["id"]
        wait_for("a trial training", lambda: running_with_progress(coordinator, job_id, pod), 30,
                 lambda: self.log("caviard") + self.log("worker"))

        # Scaling down: SIGTERM, and the worker is gone well within its grace period.
        started = time.monotonic()
        worker.send_signal(signal.SIGTERM)
        self.assertEqual(worker.wait(timeout=60), 0, self.log("worker"))
        self.assertLess(time.monotonic() - started,
                        self.workers["spec"]["template"]["spec"]["terminationGracePeriodSeconds"])
        self.assertIn("handing it back", self.log("worker"))

        started = time.monotonic()
        caviard.send_signal(signal.SIGTERM)
        self.assertEqual(caviard.wait(timeout=60), 0, self.log("caviard"))
        self.assertLess(time.monotonic() - started,
                        self.coordinator["spec"]["template"]["spec"]
                        ["terminationGracePeriodSeconds"])


class _Api:
    """The coordinator's API on a loopback port, replies validated against their schema; also
    what deploy_common's helpers call."""

    def __init__(self, port, token):
        self.port, self.token = port, token

    def request(self, method, path, body=None, token=""):
        import json
        token = self.token if token == "" else token
        req = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{path}", method=method,
            data=json.dumps(body).encode() if body is not None else None,
            headers={"Authorization": f"Bearer {token}"} if token else {})
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                status, reply = r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            status, reply = e.code, json.loads(e.read())
        validate_api_reply(method, path, status, reply)
        return status, reply


if __name__ == "__main__":
    unittest.main(argv=sys.argv[:1], verbosity=2)
