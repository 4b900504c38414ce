"""Run every benchmark (or those named on the command line), write one JSON file per
benchmark to benchmarks/results/ and a markdown summary, SUMMARY.md, beside them."""

from __future__ import annotations

import json
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from benchmarks import (
    bench_answers,
    bench_base_model,
    bench_engines,
    bench_index_sync,
    bench_matmul,
    bench_processes,
    bench_retrain,
    bench_retrieval_quality,
    bench_search_latency,
    bench_server,
    bench_training,
)

RESULTS = Path(__file__).resolve().parent / "results"
BENCHMARKS = {
    "matmul": bench_matmul.run,
    "base_model": bench_base_model.run,
    "index_sync": bench_index_sync.run,
    "retrieval_quality": bench_retrieval_quality.run,
    "search_latency": bench_search_latency.run,
    "training": bench_training.run,
    "processes": bench_processes.run,
    "server": bench_server.run,
    "engines": bench_engines.run,
    "answers": bench_answers.run,
    "retrain": bench_retrain.run,
}


def machine() -> dict[str, object]:
    import os

    import torch

    return {
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
    }


def main(names: list[str]) -> int:
    unknown = set(names) - set(BENCHMARKS)
    if unknown:
        print(f"unknown benchmarks: {', '.join(sorted(unknown))}; known: {', '.join(BENCHMARKS)}")
        return 2
    RESULTS.mkdir(exist_ok=True)
    about = {"machine": machine(), "date": datetime.now(UTC).isoformat(timespec="seconds")}
    for name in names or list(BENCHMARKS):
        print(f"== {name}", flush=True)
        started = time.perf_counter()
        figures = BENCHMARKS[name]()
        result = {**about, "seconds": round(time.perf_counter() - started, 1)}
        result["figures"] = [figure.as_dict() for figure in figures]
        (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
        for figure in figures:
            print(f"   {figure.line()}")
    write_summary()
    print(f"results in {RESULTS}")
    return 0


def write_summary() -> None:
    lines = ["# Benchmark results", "", "Written by `make bench`; one JSON file per benchmark.", ""]
    for path in sorted(RESULTS.glob("*.json")):
        result = json.loads(path.read_text())
        lines += [
            f"## {path.stem}",
            "",
            f"{result['date']} · {result['machine']['cores']} cores · torch "
            f"{result['machine']['torch']} · {result['machine']['cuda'] or 'no GPU'}",
            "",
            "| figure | value | note |",
            "| --- | --- | --- |",
        ]
        for figure in result["figures"]:
            lines.append(
                f"| {figure['name']} | {figure['value']} {figure['unit']} | {figure['note']} |"
            )
        lines.append("")
    (RESULTS / "SUMMARY.md").write_text("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
