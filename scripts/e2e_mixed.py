"""Independent deploys, proven: the previous release's journeys with one part at that release.

Usage: python scripts/e2e_mixed.py [--base REF] [--parts auth,orders,...]

For each part in turn, every other part runs from this checkout and that one from the previous
release (``--base``; default: the newest ``v*`` tag that is an ancestor of HEAD, else ``main~20``),
and the end-to-end journeys of that release run through the gateway. Its journeys, not HEAD's:
they are what that release promised its clients, which HEAD must still keep; HEAD's own journeys
use features an older part cannot have. Each part at the release gets fresh databases, so what
this proves is the wire (APIs and events changing additively), not rolling one part's database
back to an older schema, which no part supports: migrations go forward only.

Prints one line per part and a summary; exits 1 if any run failed. Sources are unpacked with
``git archive`` into ``.data/releases/<ref>`` (ignored by git).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from libs.common import parts as registry  # noqa: E402

# a broker queue keeps the arguments it was declared with, and every part declares every consumer's
# queue: both releases must declare them alike. Releases before 1.2 knew classic queues only, so
# the mix runs as a shop upgrading from them must (README, "Upgrading"): classic, no expiry
SHARED_QUEUES = {"EVENT_QUEUE_TYPE": "classic", "EVENT_QUEUE_EXPIRES": None}


def git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=ROOT, check=True, capture_output=True, text=True).stdout.strip()


def default_base() -> str:
    """The nearest release tag behind HEAD."""
    try:
        return git("describe", "--tags", "--abbrev=0", "--match", "v*", "HEAD")
    except subprocess.CalledProcessError:
        return "main~20"


def unpack(ref: str) -> Path:
    commit = git("rev-parse", "--verify", f"{ref}^{{commit}}")
    target = ROOT / ".data" / "releases" / f"{ref.replace('/', '_')}-{commit[:10]}"
    if not (target / "services").is_dir():
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        archive = subprocess.run(["git", "archive", commit], cwd=ROOT, check=True, capture_output=True).stdout
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(target, filter="data")
    return target


def stage_journeys(source: Path) -> Path:
    """The release's journeys on their own, outside tests/ (so `make test` never collects them);
    they run with this checkout's fixtures (``-p tests.conftest``) and helpers (tests.e2e)."""
    target = source.parent / f"{source.name}-journeys"
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir()
    shutil.copy(source / "tests" / "e2e" / "test_e2e_journeys.py", target / "test_previous_journeys.py")
    return target


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base", default=os.environ.get("E2E_MIXED_BASE") or None, help="the previous release")
    ap.add_argument("--parts", default="", help="comma-separated parts (default: every part in the registry)")
    args = ap.parse_args()
    base = args.base or default_base()
    names = [n for n in args.parts.split(",") if n] or [p.name for p in registry.PARTS]
    source = unpack(base)
    journeys = stage_journeys(source)
    print(
        f"e2e-mixed: {base} ({git('rev-parse', '--short', base + '^{commit}')}) journeys, one part at {base}, HEAD elsewhere"
    )
    # parts newer than the release are left out: its journeys were written before they existed and
    # would judge their doings (a welcome mail in the customer's inbox) by rules that never knew them
    newer = [p.name for p in registry.PARTS if not (source / p.module.replace(".", "/")).is_dir()]
    if newer:
        print(f"  not started (newer than {base}): {', '.join(newer)}")
    results: list[tuple[str, str, float]] = []
    for name in names:
        if not (source / registry.part(name).module.replace(".", "/")).is_dir():
            results.append((name, f"new since {base}: nothing to mix", 0.0))
            continue
        started = time.monotonic()
        run = subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                "-q",
                "-p",
                "no:cacheprovider",
                "-p",
                "tests.conftest",
                "--rootdir",
                str(ROOT),
                str(journeys),
            ],
            cwd=ROOT,
            env={
                **os.environ,
                "E2E_PART_SOURCES": f"{name}={source}",
                "E2E_STACK_ENV": json.dumps(SHARED_QUEUES),
            },
            capture_output=True,
            text=True,
        )
        took = time.monotonic() - started
        last = (run.stdout.strip().splitlines() or ["(no output)"])[-1]
        results.append((name, ("passed: " if run.returncode == 0 else "FAILED: ") + last, took))
        print(f"  {name:<14} {took:6.1f} s  {results[-1][1]}", flush=True)
        if run.returncode != 0:
            print(run.stdout[-4000:], run.stderr[-2000:], sep="\n")
    failed = [r for r in results if r[1].startswith("FAILED")]
    print(f"e2e-mixed: {len(results) - len(failed)} of {len(results)} parts mix with {base}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
