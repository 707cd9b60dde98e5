"""Memory of a server and the processes it started (uvicorn workers), from Linux's /proc: RSS
counts pages the workers share once per worker, PSS splits them among the sharers."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")


@dataclass(frozen=True)
class TreeMemory:
    processes: int
    rss_bytes: int
    pss_bytes: int


def descendants(pid: int) -> list[int]:
    """`pid` and every process below it."""
    children: dict[int, list[int]] = {}
    for stat in PROC.glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:  # gone meanwhile
            continue
        # the command name (field 2) may hold spaces; the parent pid is 2nd after its ')'
        parent = int(text.rsplit(")", 1)[1].split()[1])
        children.setdefault(parent, []).append(int(stat.parent.name))
    found, queue = [], [pid]
    while queue:
        current = queue.pop()
        found.append(current)
        queue.extend(children.get(current, []))
    return found


def rollup_kib(pid: int, key: str) -> int:
    try:
        lines = (PROC / str(pid) / "smaps_rollup").read_text().splitlines()
    except OSError:
        return 0
    return next((int(line.split()[1]) for line in lines if line.startswith(f"{key}:")), 0)


def tree_memory(pid: int) -> TreeMemory:
    pids = descendants(pid)
    return TreeMemory(processes=len(pids),
                      rss_bytes=sum(rollup_kib(p, "Rss") for p in pids) * 1024,
                      pss_bytes=sum(rollup_kib(p, "Pss") for p in pids) * 1024)
