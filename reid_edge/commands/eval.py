"""``reid-edge eval``: mAP and CMC of a checkpoint, ONNX model or engine on a re-id dataset."""

from __future__ import annotations

from pathlib import Path

import typer

from ..cli_support import check_choice
from ..names import DEVICES, DISTANCES, EVAL_DATA_FORMATS


def register(app: typer.Typer) -> None:
    @app.command("eval")
    def eval_cmd(
        checkpoint: Path = typer.Option(..., "--checkpoint", help="Checkpoint (.pt), ONNX model or engine."),
        data: Path = typer.Option(..., "--data", help="Dataset folder with a query/gallery split."),
        fmt: str = typer.Option("auto", "--format", help="|".join(("auto", *EVAL_DATA_FORMATS)) + "."),
        json_out: Path = typer.Option(None, "--json", help="Write the metrics as JSON here."),
        rerank: bool = typer.Option(False, "--rerank", help="k-reciprocal re-ranking (k1=20, k2=6, lambda=0.3)."),
        distance: str = typer.Option(DISTANCES[0], "--distance",
                                     help="combined (paper: global+stripes+camera term) | global (deployed)."),
        device: str = typer.Option("auto", "--device", help="|".join(DEVICES) + "."),
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
        from reid_edge.errors import ConfigError
        from reid_edge.io import atomic_write_json
        from reid_edge.train.evaluate import evaluate_artifact

        check_choice(fmt, ("auto", *EVAL_DATA_FORMATS), "--format")
        check_choice(distance, DISTANCES, "--distance")
        check_choice(device, DEVICES, "--device")
        if batch_size < 1:
            raise ConfigError("--batch-size must be >= 1")
        evaluated = evaluate_artifact(checkpoint, data, fmt, distance=distance, device=device, batch_size=batch_size,
                                      rerank=rerank, cuhk03_variant=cuhk03_variant)
        result = evaluated.result
        summary = result.to_dict()
        typer.echo(f"{checkpoint.name} on {data} ({evaluated.dataset_name}): {summary['num_query']} query, "
                   f"{summary['num_gallery']} gallery, distance {distance}{', re-ranked' if rerank else ''}")
        typer.echo(f"{'mAP':>8} {'rank-1':>8} {'rank-5':>8} {'rank-10':>8}")
        typer.echo(" ".join(f"{100 * summary[k]:7.1f}%" for k in ("mAP", "rank1", "rank5", "rank10")))
        if json_out is not None:
            atomic_write_json(json_out, summary)
        if plot is not None:
            from reid_edge.train.plots import plot_cmc

            plot_cmc(result.cmc, plot, title=f"CMC ({distance}{', re-ranked' if rerank else ''})")
