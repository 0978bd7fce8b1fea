"""The house's one direction: common <- worker, common <- server, common <- client.

Every JSON frame the coordinator sends is built by a cv_msg_* function of common/message.c,
the builders the protocol-schema test checks: no server/ file formats a message by hand (a
string literal with a "type" member) or frames JSON itself (a CV_FRAME_JSON header).

No file under server/ includes a header from worker/, and caviard, the coordinator's fuzz
targets and the store benchmark neither link OpenBLAS (ldd, and meson's introspection of the
flags they are compiled with) nor carry the trainer's code (nm: no cv_train_, cv_nnf_ or
cv_ensemble_ symbols).

Usage: test_dependencies.py SOURCE_ROOT BUILD_ROOT"""
import json
import os
import re
import shutil
import subprocess
import sys
import unittest

SOURCE = sys.argv[1] if len(sys.argv) > 1 else "."
BUILD = sys.argv[2] if len(sys.argv) > 2 else "build"
# The coordinator's binaries: caviard, its fuzz targets, the store benchmark.
SERVER_BINARIES = ["server/caviard", "bench/store_bench", "fuzz/fuzz_job_spec",
                   "fuzz/fuzz_http_request", "fuzz/fuzz_csv_scan"]
TRAINER_SYMBOL = re.compile(r"\b(cv_train_|cv_nnf_|cv_ensemble_|cv_model_load)\w*")
INCLUDE = re.compile(r'^\s*#\s*include\s*[<"]([^>"]+)[>"]', re.M)


def binaries():
    found = [os.path.join(BUILD, b) for b in SERVER_BINARIES]
    return [b for b in found if os.path.exists(b)]


class Dependencies(unittest.TestCase):
    def test_no_server_file_includes_a_worker_header(self):
        offenders = []
        server = os.path.join(SOURCE, "server")
        for name in sorted(os.listdir(server)):
            if not name.endswith((".c", ".h")):
                continue
            with open(os.path.join(server, name), encoding="utf-8") as f:
                for header in INCLUDE.findall(f.read()):
                    if header.startswith(("worker/", "../worker/")):
                        offenders.append(f"server/{name} includes {header}")
        self.assertEqual(offenders, [])

    def test_the_coordinator_sends_only_frames_built_by_message_c(self):
        offenders = []
        server = os.path.join(SOURCE, "server")
        for name in sorted(os.listdir(server)):
            if not name.endswith(".c"):
                continue
            with open(os.path.join(server, name), encoding="utf-8") as f:
                for number, line in enumerate(f, 1):
                    if re.search(r'\\"type\\"\s*:', line) or "encode_header(CV_FRAME_JSON" in line:
                        offenders.append(f"server/{name}:{number}: {line.strip()}")
        self.assertEqual(offenders, [])
        with open(os.path.join(server, "worker_server.c"), encoding="utf-8") as f:
            text = f.read()
        sends = re.findall(r"send_msg\(\s*\w+\s*,\s*([^;]*)", text)
        self.assertGreater(len(sends), 5)
        for arg in sends:
            with self.subTest(arg):
                self.assertTrue(arg.startswith(("cv_msg_", "msg)")), arg)

    def test_caviard_is_built(self):
        self.assertIn(os.path.join(BUILD, "server/caviard"), binaries())

    def test_the_coordinators_binaries_do_not_load_openblas(self):
        if not shutil.which("ldd"):
            self.skipTest("no ldd")
        for b in binaries():
            with self.subTest(b):
                out = subprocess.run(["ldd", b], capture_output=True, text=True, timeout=30)
                self.assertEqual(out.returncode, 0, out.stderr)
                self.assertNotIn("openblas", out.stdout.lower())
                self.assertNotIn("blas", out.stdout.lower())

    def test_the_coordinators_binaries_carry_no_trainer_code(self):
        if not shutil.which("nm"):
            self.skipTest("no nm")
        for b in binaries():
            with self.subTest(b):
                out = subprocess.run(["nm", b], capture_output=True, text=True, timeout=30)
                self.assertEqual(out.returncode, 0, out.stderr)
                self.assertEqual(sorted(set(TRAINER_SYMBOL.findall(out.stdout))), [])

    def test_meson_compiles_the_coordinator_without_openblas(self):
        with open(os.path.join(BUILD, "meson-info", "intro-targets.json")) as f:
            targets = json.load(f)
        names = {os.path.basename(b) for b in SERVER_BINARIES} | {"cv_server_core"}
        seen = set()
        for t in targets:
            if t["name"] not in names:
                continue
            seen.add(t["name"])
            flags = " ".join(p for s in t.get("target_sources", [])
                             for p in s.get("parameters", []))
            with self.subTest(t["name"]):
                self.assertNotIn("openblas", flags.lower())
                worker_dir = os.path.join(os.path.abspath(SOURCE), "worker") + os.sep
                self.assertEqual([src for s in t.get("target_sources", [])
                                  for src in s.get("sources", []) if src.startswith(worker_dir)],
                                 [])
        self.assertIn("caviard", seen)
        self.assertIn("cv_server_core", seen)


if __name__ == "__main__":
    unittest.main(argv=sys.argv[:1])
