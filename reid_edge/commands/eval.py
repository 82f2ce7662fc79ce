"""``reid-edge eval``: mAP and CMC of a checkpoint, ONNX model or engine on a re-id dataset."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

FORMATS = ("auto", "market1501", "dukemtmc", "msmt17", "cuhk03", "folder")


def _lambda_c(backend: Any) -> float:
    """The same-camera penalty of the combined distance: the run's method setting, else the paper's 0.05."""
    extra = getattr(backend.card, "extra", None) or {}
    if "lambda_c" in extra:
        return float(extra["lambda_c"])
    return 0.05


def register(app: typer.Typer) -> None:
    @app.command("eval")
    def eval_cmd(
        checkpoint: Path = typer.Option(..., "--checkpoint", help="Checkpoint (.pt), ONNX model or engine."),
        data: Path = typer.Option(..., "--data", help="Dataset folder with a query/gallery split."),
        fmt: str = typer.Option("auto", "--format", help="auto|market1501|dukemtmc|msmt17|cuhk03|folder."),
        json_out: Path = typer.Option(None, "--json", help="Write the metrics as JSON here."),
        rerank: bool = typer.Option(False, "--rerank", help="k-reciprocal re-ranking (k1=20, k2=6, lambda=0.3)."),
        distance: str = typer.Option("combined", "--distance",
                                     help="combined (paper: global+stripes+camera term) | global (deployed)."),
        device: str = typer.Option("auto", "--device", help="auto|cpu|cuda."),
        batch_size: int = typer.Option(64, "--batch-size", help="Images per inference batch."),
        plot: Path = typer.Option(None, "--plot", help="Write the CMC curve as a PNG here."),
        cuhk03_variant: str = typer.Option("detected", "--cuhk03-variant", help="detected|labeled (CUHK03-NP)."),
    ) -> None:
        """Evaluate re-identification accuracy (Market-1501 protocol: mAP, rank-1/5/10).

        Gallery images of the query's identity seen by the query's own camera are ignored.
        Values are fractions in [0, 1] in the JSON and percentages in the table.

        Examples:

            reid-edge eval --checkpoint runs/train/best.pt --data Market-1501-v15.09.15

            reid-edge eval --checkpoint model.onnx --data ../shared/data/market1501_mini --distance global --json m.json

            reid-edge eval --checkpoint reid.engine --data DukeMTMC-reID --rerank --plot cmc.png
        """
        from reid_edge.backends import load_backend
        from reid_edge.errors import ConfigError, DataError
        from reid_edge.io import atomic_write_json
        from reid_edge.train.data.datasets import check_readable, evaluation_split, read_dataset
        from reid_edge.train.evaluate import evaluate

        if fmt not in FORMATS:
            raise ConfigError(f"--format {fmt!r} is not one of {', '.join(FORMATS)}")
        if distance not in ("combined", "global"):
            raise ConfigError(f"--distance {distance!r} is not one of combined, global")
        if device not in ("auto", "cpu", "cuda"):
            raise ConfigError(f"--device {device!r} is not one of auto, cpu, cuda")
        if batch_size < 1:
            raise ConfigError("--batch-size must be >= 1")
        dataset = read_dataset(data, fmt, cuhk03_variant)
        split = evaluation_split(dataset)
        if split is None:
            raise DataError(f"{data} has no query/gallery split with identities to evaluate on")
        query = check_readable(split[0])
        gallery = query if split[1] is split[0] else check_readable(split[1])
        with load_backend(checkpoint, device=device) as backend:
            result = evaluate(backend, query, gallery, batch_size=batch_size, distance=distance,
                              lambda_c=_lambda_c(backend), rerank=rerank)
        summary = result.to_dict()
        typer.echo(f"{checkpoint.name} on {data} ({dataset.name}): {summary['num_query']} query, "
                   f"{summary['num_gallery']} gallery, distance {distance}{', re-ranked' if rerank else ''}")
        typer.echo(f"{'mAP':>8} {'rank-1':>8} {'rank-5':>8} {'rank-10':>8}")
        typer.echo(" ".join(f"{100 * summary[k]:7.1f}%" for k in ("mAP", "rank1", "rank5", "rank10")))
        if json_out is not None:
            atomic_write_json(json_out, summary)
        if plot is not None:
            from reid_edge.train.plots import plot_cmc

            plot_cmc(result.cmc, plot, title=f"CMC ({distance}{', re-ranked' if rerank else ''})")
