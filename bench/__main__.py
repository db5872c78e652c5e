"""`make bench` / `python -m bench [NAME ...]`: run every benchmark (or the named).

A benchmark is any module here with a `main()` (e.g. `bench/parse.py`,
`bench/bench_extract.py`); NAME is its file name with or without `bench_`.
"""

from __future__ import annotations

import importlib
import logging
import sys
from pathlib import Path

NOT_BENCHMARKS = {"__init__", "__main__", "common"}


def _module_names() -> list[str]:
    here = Path(__file__).parent
    return sorted(p.stem for p in here.glob("*.py") if p.stem not in NOT_BENCHMARKS)


def main(argv: list[str]) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    available = _module_names()
    wanted = argv or available
    for name in wanted:
        module_name = name if name in available else f"bench_{name}"
        if module_name not in available:
            raise SystemExit(f"no benchmark {name!r}; available: {available}")
        importlib.import_module(f"bench.{module_name}").main()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
