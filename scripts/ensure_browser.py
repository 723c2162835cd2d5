"""Make sure a Chromium is installed for the browser tests of the admin console (tests/console).

The tests drive Debian's Chromium through Playwright instead of the browser builds Playwright
downloads itself: those come from a CDN outside the package registries, while Debian's
package installs like any other. Run as root with apt-get at hand, this installs the
``chromium`` package when no Chromium is found; otherwise it says what to install and
fails, so the tests never quietly skip. ``CHROMIUM`` names a browser binary to use instead.

    python scripts/ensure_browser.py
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys

CANDIDATES = ("chromium", "chromium-browser")
# fonts-liberation: without a font Chromium renders text as blanks in headless screenshots
PACKAGES = ("chromium", "fonts-liberation")


def find_chromium() -> str | None:
    """The Chromium binary: ``$CHROMIUM`` if set, else the first candidate on PATH."""
    if override := os.environ.get("CHROMIUM"):
        return override if os.access(override, os.X_OK) else None
    return next((path for name in CANDIDATES if (path := shutil.which(name))), None)


def install() -> str | None:
    """Install Debian's Chromium; the error to report if apt-get failed."""
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for args in (["apt-get", "update"], ["apt-get", "install", "-y", "--no-install-recommends", *PACKAGES]):
        print(f"ensure_browser: {shlex.join(args)}", flush=True)
        result = subprocess.run(
            args, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=900, check=False, env=env
        )
        if result.returncode != 0:
            return f"`{shlex.join(args)}` failed: {result.stderr.strip()[-500:]}"
    return None


def main() -> int:
    if (path := find_chromium()) is not None:
        print(f"ensure_browser: using {path}")
        return 0
    if os.environ.get("CHROMIUM"):
        print(f"ensure_browser: CHROMIUM={os.environ['CHROMIUM']} is not an executable file", file=sys.stderr)
        return 1
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        print(
            "ensure_browser: no Chromium found; the console's browser tests need one. Install it with "
            f"`sudo apt-get install -y {' '.join(PACKAGES)}` (or set CHROMIUM to a Chromium binary).",
            file=sys.stderr,
        )
        return 1
    if (error := install()) is not None:
        print(f"ensure_browser: {error}", file=sys.stderr)
        return 1
    if (path := find_chromium()) is None:
        print("ensure_browser: apt-get installed chromium but no binary is on PATH", file=sys.stderr)
        return 1
    print(f"ensure_browser: installed {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
