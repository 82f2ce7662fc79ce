"""``reid-edge eval``: mAP, CMC and mINP of a checkpoint, ONNX model or engine on a re-id test split."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    @app.command("eval")
    def eval_cmd(
        checkpoint: Path = typer.Option(None, "--model", "--checkpoint", help="Checkpoint (.pt), ONNX model, engine "
                                        "or packaged model name [default: the packaged default, intel-0288]."),
        data: Path = typer.Option(..., "--data", help="Dataset folder with a query/gallery split (query/ and "
                                  "bounding_box_test/ for Market-1501 and DukeMTMC-reID)."),
        fmt: str = typer.Option("auto", "--format", help="auto|market1501|dukemtmc|msmt17|cuhk03|folder (folder: "
                                "every Market-named crop queries all others; only when asked for)."),
        json_out: Path = typer.Option(None, "--json", help="Write the metrics as JSON here."),
        rerank: bool = typer.Option(False, "--rerank", help="k-reciprocal re-ranking (k1=20, k2=6, lambda=0.3)."),
        distance: str = typer.Option("combined", "--distance",
                                     help="combined (paper: global+stripes+camera term; for imported global-only "
                                          "models the same as global) | global (deployed)."),
        device: str = typer.Option("auto", "--device", help="auto|cpu|cuda."),
        batch_size: int = typer.Option(64, "--batch-size", help="Images per inference batch."),
        plot: Path = typer.Option(None, "--plot", help="Write the CMC curve as a PNG here."),
        cuhk03_variant: str = typer.Option("detected", "--cuhk03-variant", help="detected|labeled (CUHK03-NP)."),
    ) -> None:
        """Evaluate re-identification accuracy (Market-1501 protocol: mAP, rank-1/5/10, mINP).

        Needs query/ and bounding_box_test/ (bounding_box_train/ is not read). Junk images (id -1)
        are ignored, distractors (id 0000) stay in the gallery, and gallery images of the query's
        identity seen by the query's own camera are ignored. A folder without a query/gallery split
        is an error (never another protocol). Values are fractions in [0, 1] in the JSON and
        percentages in the table.

        Examples:

            reid-edge eval --data Market-1501-v15.09.15                       # the packaged default model

            reid-edge eval --model intel-0277 --data DukeMTMC-reID --json duke.json

            reid-edge eval --model runs/train/best.pt --data ../shared/data/market1501_mini --distance global

            reid-edge eval --model reid.engine --data Market-1501-v15.09.15 --rerank --plot cmc.png
        """
        import sys

        from reid_edge.errors import ConfigError
        from reid_edge.evaluation import DISTANCES, evaluate, read_test_split
        from reid_edge.io import atomic_write_json
        from reid_edge.models import load_model, resolve

        if distance not in DISTANCES:
            raise ConfigError(f"--distance {distance!r} is not one of {', '.join(DISTANCES)}")
        if device not in ("auto", "cpu", "cuda"):
            raise ConfigError(f"--device {device!r} is not one of auto, cpu, cuda")
        if batch_size < 1:
            raise ConfigError("--batch-size must be >= 1")
        protocol, query, gallery = read_test_split(data, fmt, cuhk03_variant)
        model_path = resolve(checkpoint)
        backend = load_model(model_path, device=device)
        progress = None
        bar = None
        if sys.stderr.isatty():
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            bar = Progress(TextColumn("embedding"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                           console=Console(stderr=True), transient=True)
            task = bar.add_task("embed", total=len(query) + (0 if query is gallery else len(gallery)))
            bar.start()

            def progress(n: int) -> None:
                bar.advance(task, n)
        try:
            result = evaluate(backend, query, gallery, batch_size=batch_size, distance=distance, rerank=rerank,
                              progress=progress)
        finally:
            if bar is not None:
                bar.stop()
            backend.close()
        summary = {**result.to_dict(), "model": str(model_path), "backbone": backend.card.backbone,
                   "protocol": protocol}
        typer.echo(f"{model_path.name} ({backend.card.backbone}) on {data} ({protocol}): {summary['num_query']} "
                   f"query, {summary['num_gallery']} gallery, distance {distance}{', re-ranked' if rerank else ''}")
        typer.echo(f"{'mAP':>8} {'rank-1':>8} {'rank-5':>8} {'rank-10':>8} {'mINP':>8}")
        typer.echo(" ".join(f"{100 * summary[k]:7.1f}%" for k in ("mAP", "rank1", "rank5", "rank10", "mINP")))
        if json_out is not None:
            atomic_write_json(json_out, summary)
        if plot is not None:
            from reid_edge.train.plots import plot_cmc

            plot_cmc(result.cmc, plot, title=f"CMC ({distance}{', re-ranked' if rerank else ''})")
