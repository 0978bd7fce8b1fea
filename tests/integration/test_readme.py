#!/usr/bin/env python3
"""The README's commands, run as written, so that the README cannot drift from the binaries.

Every fenced ```sh block of README.md is run, in order, as one bash script (set -euo pipefail) in
a scratch directory that holds `build` (this build), `examples` and `schemas` (the sources), so
that paths read as they do in the README and nothing is written into the tree. A block preceded
by a line `<!-- not run: REASON -->` is skipped; the reason must say why (the main job, which
./dev main runs; the test command itself). Background commands (`... &`) are ended when the
script ends, and the test fails if any command fails or a runnable block prints nothing.

Usage: test_readme.py BUILD_DIR SOURCE_DIR"""
import os
import re
import signal
import subprocess
import sys
import tempfile

FENCE = re.compile(r"^```(\w*)\s*$")
NOT_RUN = re.compile(r"^<!--\s*not run:\s*(.+?)\s*-->\s*$")


def blocks(readme):
    """Yields (line number, language, text, reason not to run or None) for each fenced block."""
    lines = readme.splitlines()
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        start, lang = i + 1, m.group(1)
        prev = next((lines[j] for j in range(i - 1, -1, -1) if lines[j].strip()), "")
        skip = NOT_RUN.match(prev)
        j = i + 1
        while j < len(lines) and not FENCE.match(lines[j]):
            j += 1
        yield start, lang, "\n".join(lines[i + 1:j]), skip.group(1) if skip else None
        i = j + 1


def main():
    build, source = (os.path.abspath(a) for a in sys.argv[1:3])
    with open(os.path.join(source, "README.md"), encoding="utf-8") as f:
        readme = f.read()
    script = ["set -euo pipefail",
              "trap 'for p in $(jobs -p); do kill $p 2>/dev/null || true; done; wait' EXIT"]
    ran = skipped = 0
    for line, lang, text, reason in blocks(readme):
        if lang != "sh":
            continue
        if reason:
            if len(reason) < 10:
                print(f"README.md:{line}: a block not run needs a real reason, got {reason!r}")
                return 1
            print(f"README.md:{line}: not run: {reason}")
            skipped += 1
            continue
        script.append(f"echo '--- README.md:{line}' >&2")
        script.append(text)
        ran += 1
    if ran == 0:
        print("README.md has no runnable sh block")
        return 1
    with tempfile.TemporaryDirectory(prefix="caviar-readme-") as tmp:
        for name, target in (("build", build), ("examples", os.path.join(source, "examples")),
                             ("schemas", os.path.join(source, "schemas"))):
            os.symlink(target, os.path.join(tmp, name))
        env = {k: v for k, v in os.environ.items() if not k.startswith("CAVIAR_")}
        proc = subprocess.Popen(["bash", "-c", "\n".join(script)], cwd=tmp, env=env,
                                start_new_session=True, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
        try:
            out, _ = proc.communicate(timeout=900)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, _ = proc.communicate()
            print(out)
            print("the README's commands did not finish within 900 s")
            return 1
        finally:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    print(out)
    if proc.returncode != 0:
        print(f"a README command failed (exit {proc.returncode}); see the output above")
        return 1
    print(f"README: {ran} blocks run, {skipped} not run (each with its reason)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
