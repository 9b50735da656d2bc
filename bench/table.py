"""A bench report as a Markdown table: ``python -m bench.table [bench/results.json]``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

SKIP = {"part", "case", "first_error"}


def figures(row: dict[str, Any]) -> str:
    shown = []
    for name, value in row.items():
        if name in SKIP:
            continue
        text = f"{value:,.1f}" if isinstance(value, float) else f"{value:,}"
        shown.append(f"{name.replace('_', ' ')} {text}")
    return ", ".join(shown)


def table(report: dict[str, Any]) -> str:
    machine = report["machine"]
    lines = [
        f"Run {report['run_at']} ({report['scale']}, {report['seconds']:.0f} s) on "
        f"{machine['cpus']} CPUs, {machine['platform']}, Python {machine['python']}, "
        f"PostgreSQL {machine['postgresql']} (synchronous_commit "
        f"{machine['synchronous_commit']}).",
        "",
        "| part | case | figures |",
        "|---|---|---|",
    ]
    lines += [f"| {r['part']} | {r['case']} | {figures(r)} |" for r in report["results"]]
    return "\n".join(lines)


def main() -> None:
    path = Path(sys.argv[1] if len(sys.argv) > 1 else "bench/results.json")
    print(table(json.loads(path.read_text())))  # noqa: T201


if __name__ == "__main__":
    main()
