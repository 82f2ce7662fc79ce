"""``reid-edge eval``: mAP, CMC and mINP of a checkpoint, ONNX model or engine on a re-id test split."""

from __future__ import annotations

from pathlib import Path

import typer

from ..cli_support import check_choice
from ..names import DEVICES, DISTANCES, EVAL_DATA_FORMATS


def register(app: typer.Typer) -> None:
    @app.command("eval")
    def eval_cmd(
        checkpoint: Path = typer.Option(None, "--model", "--checkpoint", help="Checkpoint (.pt), ONNX model, engine "
                                        "or packaged model name [default: the packaged default, intel-0288]."),
        data: Path = typer.Option(..., "--data", help="Dataset folder with a query/gallery split (query/ and "
                                  "bounding_box_test/ for Market-1501 and DukeMTMC-reID)."),
        fmt: str = typer.Option("auto", "--format", help="|".join(("auto", *EVAL_DATA_FORMATS)) + " (folder: every "
                                "Market-named crop queries all others; only when asked for)."),
        json_out: Path = typer.Option(None, "--json", help="Write the metrics as JSON here."),
        rerank: bool = typer.Option(False, "--rerank", help="k-reciprocal re-ranking (k1=20, k2=6, lambda=0.3)."),
        camera_centre: bool = typer.Option(False, "--camera-centre",
                                           help="Subtract each camera's mean embedding over the training crops "
                                                "(bounding_box_train/; identities unused) before ranking."),
        distance: str = typer.Option(DISTANCES[0], "--distance",
                                     help="combined (paper: global+stripes+camera term; for imported global-only "
                                          "models the same as global) | global (deployed)."),
        device: str = typer.Option("auto", "--device", help="|".join(DEVICES) + "."),
        batch_size: int = typer.Option(64, "--batch-size", help="Images per inference batch."),
        plot: Path = typer.Option(None, "--plot", help="Write the CMC curve as a PNG here."),
        cuhk03_variant: str = typer.Option("detected", "--cuhk03-variant", help="detected|labeled (CUHK03-NP)."),
    ) -> None:
        """Evaluate re-identification accuracy (Market-1501 protocol: mAP, rank-1/5/10, mINP).

        Needs query/ and bounding_box_test/ (bounding_box_train/ is read only for --camera-centre:
        per-camera centring, an adaptation to a site without labels or training). Junk images (id -1)
        are ignored, distractors (id 0000) stay in the gallery, and gallery images of the query's
        identity seen by the query's own camera are ignored. A folder without a query/gallery split
        is an error (never another protocol). Values are fractions in [0, 1] in the JSON and
        percentages in the table.

        Examples:

            reid-edge eval --data Market-1501-v15.09.15                       # the packaged default model

            reid-edge eval --model intel-0277 --data DukeMTMC-reID --json duke.json

            reid-edge eval --model runs/train/best.pt --data ../shared/data/market1501_mini --distance global

            reid-edge eval --model reid.engine --data Market-1501-v15.09.15 --rerank --plot cmc.png

            reid-edge eval --data DukeMTMC-reID --distance global --camera-centre
        """
        import sys

        from reid_edge.errors import ConfigError
        from reid_edge.evaluation import evaluate_artifact
        from reid_edge.io import atomic_write_json

        check_choice(fmt, ("auto", *EVAL_DATA_FORMATS), "--format")
        check_choice(distance, DISTANCES, "--distance")
        check_choice(device, DEVICES, "--device")
        if batch_size < 1:
            raise ConfigError("--batch-size must be >= 1")
        progress = None
        bar = None
        if sys.stderr.isatty():
            from rich.console import Console
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

            bar = Progress(TextColumn("embedding"), BarColumn(), TextColumn("{task.completed} crops"),
                           TimeElapsedColumn(), console=Console(stderr=True), transient=True)
            task = bar.add_task("embed", total=None)
            bar.start()

            def progress(n: int) -> None:
                bar.advance(task, n)
        try:
            evaluated = evaluate_artifact(checkpoint, data, fmt, distance=distance, device=device,
                                          batch_size=batch_size, rerank=rerank, cuhk03_variant=cuhk03_variant,
                                          progress=progress, camera_centre=camera_centre)
        finally:
            if bar is not None:
                bar.stop()
        result = evaluated.result
        summary = {**result.to_dict(), "model": str(evaluated.model), "backbone": evaluated.card.backbone,
                   "protocol": evaluated.protocol}
        typer.echo(f"{evaluated.model.name} ({evaluated.card.backbone}) on {data} ({evaluated.protocol}): "
                   f"{summary['num_query']} query, {summary['num_gallery']} gallery, distance {distance}"
                   f"{', re-ranked' if rerank else ''}{', camera-centred' if camera_centre else ''}")
        typer.echo(f"{'mAP':>8} {'rank-1':>8} {'rank-5':>8} {'rank-10':>8} {'mINP':>8}")
        typer.echo(" ".join(f"{100 * summary[k]:7.1f}%" for k in ("mAP", "rank1", "rank5", "rank10", "mINP")))
        if json_out is not None:
            atomic_write_json(json_out, summary)
        if plot is not None:
            from reid_edge.train.plots import plot_cmc

            plot_cmc(result.cmc, plot, title=f"CMC ({distance}{', re-ranked' if rerank else ''})")
