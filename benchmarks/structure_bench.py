"""The shape of the code: function sizes (median and p90 lines) per package, the imports from
`flows/` into `deployments/` (the layering says none), and the longest flow bodies.

    .venv/bin/python benchmarks/structure_bench.py [ROOT]
"""

from __future__ import annotations

import ast
import statistics
import sys
from pathlib import Path

PACKAGES = ("mlc_tasks", "flows", "deployments", "processes")


def function_sizes(path: Path) -> list[tuple[str, int]]:
    """(name, lines) of each function and method in a module."""
    tree = ast.parse(path.read_text(), filename=str(path))
    return [(node.name, (node.end_lineno or node.lineno) - node.lineno + 1)
            for node in ast.walk(tree)
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)]


def upward_imports(path: Path) -> int:
    """Imports of `deployments` (the top layer) in a module."""
    tree = ast.parse(path.read_text(), filename=str(path))
    count = 0
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("deployments"):
            count += 1
        elif isinstance(node, ast.Import):
            count += sum(a.name.startswith("deployments") for a in node.names)
    return count


def p90(values: list[int]) -> int:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]


def main(root: Path) -> None:
    print(f"{'package':<12} {'modules':>7} {'functions':>9} {'median':>6} {'p90':>4} {'max':>4}")
    for package in PACKAGES:
        modules = sorted((root / package).rglob("*.py"))
        if not modules:
            continue
        sizes = [n for m in modules for _, n in function_sizes(m)]
        print(f"{package:<12} {len(modules):>7} {len(sizes):>9} "
              f"{statistics.median(sizes):>6.0f} {p90(sizes):>4} {max(sizes):>4}")
    flows = sorted((root / "flows").glob("*.py"))
    print(f"\nimports of deployments/ in flows/: {sum(upward_imports(m) for m in flows)}")
    longest = sorted(((n, f"{m.stem}.{name}") for m in flows for name, n in function_sizes(m)),
                     reverse=True)[:5]
    print("longest functions in flows/: " + ", ".join(f"{name} {n}" for n, name in longest))


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent)
