"""``reid-edge bench``: latency and throughput of checkpoints, ONNX models and engines."""

from __future__ import annotations

from pathlib import Path

import typer

from ..cli_support import MultiValueCommand


def register(app: typer.Typer) -> None:
    @app.command("bench", cls=MultiValueCommand)
    def bench(
        models: list[Path] = typer.Argument(None, help="Checkpoints (.pt), ONNX models, engines or packaged model "
                                            "names [default: the packaged default, intel-0288]."),
        batch: str = typer.Option("1,8,32", "--batch", help="Comma-separated batch sizes."),
        iterations: int = typer.Option(20, "--iterations", help="Timed runs per model and batch."),
        warmup: int = typer.Option(3, "--warmup", help="Untimed runs first."),
        device: str = typer.Option("auto", "--device", help="auto | cpu | cuda."),
        json_out: Path | None = typer.Option(None, "--json", help="Also write the results as JSON."),
    ) -> None:
        """Benchmark models: warm-up, then p50/p95 latency and crops/s per model and batch size.

        Examples:

          reid-edge bench runs/train/export/model.onnx runs/train/export/model.int8.cpu.onnx --batch 1,8,32

          reid-edge bench model.engine --batch 32 --iterations 100 --json bench.json

          reid-edge bench default intel-0277 --batch 1,32 --device cpu
        """
        from rich.console import Console

        from reid_edge.backends import load_backend
        from reid_edge.deploy.bench import bench_backend, parse_batches, render_results
        from reid_edge.io import atomic_write_json
        from reid_edge.models import resolve

        batches = parse_batches(batch)
        console = Console(width=max(Console().width, 120))  # pipes default to 80 columns
        results = []
        for given in models or [Path("default")]:
            path = resolve(given)
            with load_backend(path, device=device) as backend:
                results.extend(bench_backend(backend, path.name, batches, iterations, warmup))
        console.print(render_results(results))
        if json_out is not None:
            atomic_write_json(json_out, {"results": [r.to_dict() for r in results],
                                         "iterations": iterations, "warmup": warmup})
            console.print(f"wrote {json_out}")
