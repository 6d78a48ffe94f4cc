"""Which rank died first? A tiny watcher process per rank notes when its rank disappears.

A rank killed with SIGKILL cannot say anything, and MPICH's hydra then kills every other rank
and reports one pid that is not necessarily the first to die. So each rank starts a watcher in
its own session (out of reach of the job's teardown) that blocks reading a pipe whose only
write end the rank holds: the kernel closes it the instant the rank exits, for whatever reason,
and the watcher writes ``partial/death-rank-R`` with the time. The launcher names the rank with
the earliest time. The watcher costs one sleeping process per rank.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

_WATCHER = r"""
import os, sys, time
fd, path = int(sys.argv[1]), sys.argv[2]
while os.read(fd, 1):
    pass
with open(path, "w") as f:
    f.write(str(time.time_ns()))
"""
_KEEP: list[int] = []    # the write end: open for the life of the rank, closed by its exit


def start_watcher(folder: Path, rank: int) -> None:
    """Start the watcher of this process (POSIX; elsewhere the launcher uses MPI's report)."""
    if os.name != "posix":
        return
    folder.mkdir(parents=True, exist_ok=True)
    read_end, write_end = os.pipe()
    subprocess.Popen([sys.executable, "-S", "-c", _WATCHER, str(read_end),
                      str(folder / f"death-rank-{rank:04d}")], start_new_session=True,
                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                     stderr=subprocess.DEVNULL, pass_fds=(read_end,))
    os.close(read_end)
    os.set_inheritable(write_end, False)
    _KEEP.append(write_end)


def first_to_die(folder: Path) -> tuple[int, list[int]] | None:
    """``(rank, tied_ranks)`` of the earliest death note (ties within 1 ms), or None."""
    notes = []
    for path in folder.glob("death-rank-*"):
        try:
            notes.append((int(path.read_text()), int(path.name.rsplit("-", 1)[1])))
        except (OSError, ValueError):
            continue
    if not notes:
        return None
    notes.sort()
    first_ns, first_rank = notes[0]
    return first_rank, [r for t, r in notes[1:] if t - first_ns < 1_000_000]
