"""How much of the all-reduce overlapping hides: HKBU's overlapped and non-overlapped lines.

Run: ``python -m benchmarks.overlap_gap [--csv FILE]``.

HKBU's ddl-benchmarks table measures each setup twice with Horovod: ``WFBP-A2A`` (all-reduce
overlapped with the backward pass, Tensor Fusion; the ``hkbu-*`` rows of
``published/published.csv``) and ``BSP-A2A`` (every gradient all-reduced after the backward
pass; ``published/hkbu-bsp.csv``). Their step times, less the one-GPU step, separate the two
things a scaling prediction gets right or wrong:

* ``BSP - 1 GPU``: the all-reduce alone (with Horovod's copies and cycle), the collective
  model's part;
* ``BSP - WFBP``: what overlapping hides of it, the overlap model's part.

For each pair this prints the measured and the simulated figure of both (``sync`` for BSP,
the row's strategy for WFBP, the profile scaled to the one-GPU rate as in
``benchmarks.published``), in milliseconds per step.
"""

from __future__ import annotations

from pathlib import Path

from benchmarks.published import (DATA_DIR, DEFAULT_CSV, PublishedRow, load_rows,
                                  simulated_throughput)
from vocab.argtypes import OneLineParser, report_errors

BSP_CSV = DATA_DIR / "hkbu-bsp.csv"


def step_ms(samples_s: float, gpus: int, batch: int) -> float:
    """Milliseconds per step of ``gpus`` GPUs at ``batch`` each running at ``samples_s``."""
    return 1e3 * gpus * batch / samples_s


def pairs(overlapped: list[PublishedRow], bsp: list[PublishedRow]
          ) -> list[tuple[PublishedRow, PublishedRow]]:
    """Each BSP row with the overlapped row of the same cluster, model, size and batch."""
    key = lambda r: (r.cluster, r.model, r.nodes, r.gpus_per_node, r.batch)  # noqa: E731
    by_key = {key(r): r for r in overlapped if r.set.startswith("hkbu-")
              and r.strategy == "bucketed"}
    return [(by_key[key(b)], b) for b in bsp if key(b) in by_key]


def measured_and_model(wfbp: PublishedRow, bsp: PublishedRow, csv_dir: Path
                       ) -> dict[str, float]:
    """Step times (ms): the one-GPU step, and each line measured and simulated."""
    gpus, batch = wfbp.gpus, wfbp.batch
    one = step_ms(wfbp.throughput_1gpu, 1, batch)
    sim_wfbp = simulated_throughput(wfbp, csv_dir, gpus)
    sim_bsp = simulated_throughput(bsp, csv_dir, gpus)
    return {"one": one,
            "bsp": step_ms(bsp.throughput, gpus, batch),
            "wfbp": step_ms(wfbp.throughput, gpus, batch),
            "sim_bsp": step_ms(sim_bsp, gpus, batch),
            "sim_wfbp": step_ms(sim_wfbp, gpus, batch)}


def network(row: PublishedRow) -> str:
    """The network named by the row's cluster file (``hkbu-2080ti-10gbe.yaml`` -> 10gbe)."""
    return Path(row.cluster).stem.rsplit("-", 1)[-1]


def report(overlapped_csv: Path = DEFAULT_CSV, bsp_csv: Path = BSP_CSV) -> str:
    """The table: per pair, the all-reduce alone and what overlapping hides, measured / model."""
    lines = [f"{'model':<11}{'network':<8}{'GPUs':>5}  {'1 GPU':>6}  "
             f"{'all-reduce alone':>17}  {'hidden by overlap':>18}",
             f"{'':<11}{'':<8}{'':>5}  {'ms':>6}  {'measured / model':>17}  "
             f"{'measured / model':>18}"]
    for wfbp, bsp in pairs(load_rows(overlapped_csv), load_rows(bsp_csv)):
        t = measured_and_model(wfbp, bsp, overlapped_csv.parent)
        alone = f"{t['bsp'] - t['one']:6.1f} / {t['sim_bsp'] - t['one']:6.1f}"
        hidden = f"{t['bsp'] - t['wfbp']:6.1f} / {t['sim_bsp'] - t['sim_wfbp']:6.1f}"
        lines.append(f"{wfbp.model:<11}{network(wfbp):<8}{wfbp.gpus:>5}  {t['one']:6.1f}  "
                     f"{alone:>17}  {hidden:>18}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Print the table; a bad CSV is one line naming the file, row and column (exit 2)."""
    parser = OneLineParser(prog="python -m benchmarks.overlap_gap",
                           description=__doc__.splitlines()[0])
    parser.add_argument("--csv", type=Path, default=DEFAULT_CSV,
                        help="the CSV with the overlapped (WFBP-A2A) rows")
    parser.add_argument("--bsp-csv", type=Path, default=BSP_CSV,
                        help="the CSV with the non-overlapped (BSP-A2A) rows")
    args = parser.parse_args(argv)

    def run() -> int:
        print(report(args.csv, args.bsp_csv))
        return 0
    return report_errors(parser.prog, run)


if __name__ == "__main__":
    raise SystemExit(main())
