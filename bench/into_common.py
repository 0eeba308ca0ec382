"""Shared helpers of the INTO benchmark files (tables, JSON and PNG under results/into/)."""

from __future__ import annotations

import io
import statistics
from pathlib import Path
from typing import Any

from tabulate import tabulate

from mecopt.core import atomic_write_bytes, atomic_write_text, write_json

RESULTS = Path(__file__).resolve().parent.parent / "results" / "into"


def write_table(name: str, title: str, notes: list[str], headers: list[str], rows: list[list[Any]], raw: Any) -> None:
    """results/into/<name>.md (github table + notes) and <name>.json (raw records)."""
    text = (
        f"# {title}\n\n"
        + "\n".join(notes)
        + "\n\n"
        + tabulate(rows, headers=headers, tablefmt="github", floatfmt=".4g")
        + "\n"
    )
    atomic_write_text(RESULTS / f"{name}.md", text)
    write_json(RESULTS / f"{name}.json", raw)


def save_png(name: str, fig: Any) -> None:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    atomic_write_bytes(RESULTS / f"{name}.png", buf.getvalue())


def mean(xs: list[float]) -> float:
    xs = [x for x in xs if x is not None]
    return statistics.fmean(xs) if xs else float("nan")


def fmt_status(statuses: list[str]) -> str:
    counts: dict[str, int] = {}
    for s in statuses:
        counts[s] = counts.get(s, 0) + 1
    return ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
