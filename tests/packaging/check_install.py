"""`pip install .` alone, as a team that only produces mail installs it: run by `make check-package`.

Creates a fresh virtualenv (outside the checkout, so nothing of it is importable by accident),
installs the project WITHOUT extras at the versions requirements.txt pins, then, from an empty
directory, checks that the client imports, that ``stepmail schema`` and ``stepmail send --help``
work, that ``stepmail doctor`` (its imports included) asks for a configuration where there is none,
and that ``stepmail demo`` says how to install the twin instead of crashing.  It reaches the
package registry (or pip's cache), which is why it is a Makefile check and not a pytest test.

Exits non-zero naming the first check that failed.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
#: What a checkout holds besides its source (virtualenvs, caches, build output).
NOT_SOURCE = (".git", ".venv*", "node_modules", "cdk.out", "build", "*.egg-info", "__pycache__", ".*_cache")
NOT_SOURCE += (".stepmail", ".bench", "test-artifacts")


def run(command: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=600, check=False)


def check(name: str, passed: bool, detail: str = "") -> None:
    print(f"  {'ok  ' if passed else 'FAIL'} {name}")
    if not passed:
        print(detail)
        sys.exit(1)


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="stepmail-package-") as temp:
        home, empty = Path(temp) / "venv", Path(temp) / "work"
        empty.mkdir()
        venv.create(home, with_pip=True)
        python, stepmail = home / "bin" / "python", home / "bin" / "stepmail"
        pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
        source = Path(temp) / "source"  # a clean copy: setuptools would build into the checkout's build/
        shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(*NOT_SOURCE))
        installed = run([*pip, "-c", str(ROOT / "requirements.txt"), str(source)], empty)
        check("pip install . (no extras)", installed.returncode == 0, installed.stderr)

        absent = run([str(python), "-c", "import moto"], empty)
        check("the twin's and CDK's packages are not installed", absent.returncode != 0, absent.stdout)
        client = run([str(python), "-c", "from producer.client import StepmailClient"], empty)
        check("the producer client imports", client.returncode == 0, client.stderr)

        schema = run([str(stepmail), "schema"], empty)
        check(
            "stepmail schema",
            schema.returncode == 0 and "mailKey" in json.loads(schema.stdout or "{}").get("required", []),
            schema.stderr,
        )
        send = run([str(stepmail), "send", "--help"], empty)
        check("stepmail send --help", send.returncode == 0 and "--attach" in send.stdout, send.stderr)

        doctor = run([str(stepmail), "doctor"], empty)
        asks = "no configuration here" in doctor.stderr and "Traceback" not in doctor.stderr
        check("stepmail doctor asks for a configuration", doctor.returncode == 1 and asks, doctor.stderr)

        demo = run([str(stepmail), "demo"], empty)
        hint = "pip install -e '.[twin]'" in demo.stderr and "Traceback" not in demo.stderr
        check("stepmail demo says how to install the twin", demo.returncode == 1 and hint, demo.stderr)
    print("package check: the client and the CLI work without extras")


if __name__ == "__main__":
    main()
