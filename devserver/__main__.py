"""``python -m devserver [--data-dir .data] [--port-offset 0] [--seed-products 200]``."""

from __future__ import annotations

import sys

from devserver.embedded import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
