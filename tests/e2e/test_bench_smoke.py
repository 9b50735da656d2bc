"""The bench runs, end to end, for a moment: it never rots. No figure is judged."""

from __future__ import annotations

import json
import subprocess
import sys

from bench.__main__ import PARTS


def test_the_bench_runs_every_part(server_url, tmp_path):
    output = tmp_path / "results.json"
    done = subprocess.run(  # noqa: S603 - this interpreter, fixed arguments
        [
            sys.executable,
            "-m",
            "bench",
            "--smoke",
            "--database-url",
            server_url,
            "--output",
            str(output),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(output.read_text())
    assert {row["part"] for row in report["results"]} == {*PARTS, "memory"}
    contended = next(r for r in report["results"] if r["case"].endswith("one account"))
    assert contended["lost"] == 0
    graphql = [r for r in report["results"] if r["part"] == "graphql"]
    assert all(r["errors"] == 0 and r["requests_per_s"] > 0 for r in graphql)
