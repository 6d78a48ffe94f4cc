"""Run every benchmark module and print one table: ``python -m benchmarks [NAME ...]``."""

from __future__ import annotations

import importlib
import sys

MODULES = ("benchmarks.bench_scale", "benchmarks.bench_growth", "benchmarks.bench_sweep",
           "benchmarks.bench_micro")


def main(argv: list[str]) -> int:
    rows = []
    for name in MODULES:
        if argv and not any(a in name for a in argv):
            continue
        for bench in importlib.import_module(name).BENCHMARKS:
            result = bench()
            rows.extend(result if isinstance(result, list) else [result])
            for row in rows[-(len(result) if isinstance(result, list) else 1):]:
                print(format_row(row), flush=True)
    over = [r for r in rows if r["goal_s"] is not None and r["seconds"] > r["goal_s"]]
    print(f"\n{len(rows)} benchmarks, {len(over)} over their goal")
    return 0


def format_row(row: dict) -> str:
    goal = f"goal < {row['goal_s']:g} s" if row["goal_s"] is not None else ""
    verdict = "" if row["goal_s"] is None else ("ok" if row["seconds"] <= row["goal_s"]
                                                  else "SLOW")
    return f"{row['name']:<58} {row['seconds']:9.3f} s  {goal:<14} {verdict}"


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
