"""Create the project's venv with the newest Python 3.11+ at hand (``make`` calls this once).

``python3`` on a machine may be older than the project needs while ``python3.12`` sits
beside it; this picks a suitable interpreter and says plainly when there is none.
"""

from __future__ import annotations

import shutil
import subprocess
import sys

CANDIDATES = ("python3.13", "python3.12", "python3.11", "python3")


def main(target: str) -> int:
    for name in CANDIDATES:
        exe = shutil.which(name)
        if exe is None:
            continue
        # quietly: a pyenv shim for a version that is not installed answers with a page of advice
        ok = subprocess.run(
            [exe, "-c", "import sys; sys.exit(sys.version_info < (3, 11))"],
            check=False,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        if ok.returncode == 0:
            return subprocess.run([exe, "-m", "venv", target], check=False).returncode
    print("Python 3.11 or newer is needed (tried: " + ", ".join(CANDIDATES) + ")", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else ".venv"))
