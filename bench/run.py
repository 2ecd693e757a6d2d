"""`make bench`: every benchmark in turn (each in its own process), then docs/benchmarks.md.

.venv/bin/python -m bench.run [--scale small|full] [--only name ...]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

from bench.common import ROOT
from bench.report import ORDER
from bench.report import main as write_report


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scale", choices=["small", "full"], default="small")
    parser.add_argument("--only", nargs="*", default=None, help="benchmark names (default: all)")
    args = parser.parse_args()
    failures = []
    for name in args.only or ORDER:
        started = time.monotonic()
        print(f"== {name} ({args.scale})", flush=True)
        result = subprocess.run([sys.executable, "-m", f"bench.{name}", "--scale", args.scale], cwd=ROOT)
        print(
            f"== {name}: {'ok' if result.returncode == 0 else 'FAILED'} in {time.monotonic() - started:.0f} s",
            flush=True,
        )
        if result.returncode != 0:
            failures.append(name)
    write_report()
    print("wrote docs/benchmarks.md" + (f"; failed: {', '.join(failures)}" if failures else ""))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
