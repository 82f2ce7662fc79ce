"""``reid-edge import``: wrap a third-party re-ID ONNX with a model card so every command can use it."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    @app.command("import")
    def import_cmd(
        model: Path = typer.Argument(..., help="The third-party re-ID model (ONNX)."),
        name: str = typer.Option(..., "--name", help="Name recorded in the model card (e.g. intel-0288)."),
        out: Path | None = typer.Option(None, "--out", help="Output ONNX [default: <name>.onnx]."),
        input_size: str | None = typer.Option(None, "--input-size", help="HEIGHTxWIDTH, e.g. 256x128 "
                                              "[default: from the graph]."),
        channel_order: str = typer.Option("rgb", "--channel-order", help="rgb | bgr: what the model expects."),
        normalize: str = typer.Option("imagenet", "--normalize", help="imagenet (ImageNet mean/std on [0,1]) | "
                                      "inside (the model takes raw 0-255 pixels) | unit ([0,1], no normalization)."),
        mean: str | None = typer.Option(None, "--mean", help="Custom per-channel mean on [0,1] pixels, e.g. "
                                        "0.5,0.5,0.5 (with --std; replaces --normalize)."),
        std: str | None = typer.Option(None, "--std", help="Custom per-channel std on [0,1] pixels."),
        output: str | None = typer.Option(None, "--output", help="The output holding the embedding "
                                          "[default: the only output]."),
        source: str = typer.Option("", "--source", help="Where the weights came from (stored in the card)."),
        license_: str = typer.Option("", "--license", help="Their licence (stored in the card)."),
        match_gate: float | None = typer.Option(None, "--match-gate", help="Cross-camera gate for `run` (distance "
                                                "between unit embeddings, 0..2) [default: the pipeline's]."),
        track_gate: float | None = typer.Option(None, "--track-gate", help="The tracker's appearance gate at "
                                                "crossings (distance between unit embeddings, 0..2) "
                                                "[default: the tracker's]."),
        same_camera_gate: float | None = typer.Option(None, "--same-camera-gate", help="The association's gate "
                                                      "for re-linking a person to an identity the same camera "
                                                      "has seen (0..2) [default: none, the gate alone]."),
        overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing --out."),
    ) -> None:
        """Import a foreign re-identification ONNX: rename its input to 'images' (dynamic batch), move
        Constant weights to initializers, L2-normalize its output into 'embedding', and store a model card
        (input size, channel order, normalization, provenance, licence). The result works with eval,
        bench, run, harvest and export --int8.

        Examples:

          reid-edge import intel-0288.onnx --name intel-0288 --channel-order bgr --normalize inside --out m.onnx

          reid-edge import osnet_x0_25.onnx --name osnet --normalize imagenet --out osnet.reid.onnx
        """
        from rich.console import Console
        from rich.table import Table

        from reid_edge.deploy.import_onnx import ImportSpec, describe, import_onnx, parse_size, parse_triple

        spec = ImportSpec(
            name=name, input_size=parse_size(input_size) if input_size else None, channel_order=channel_order,
            normalize=normalize, mean=parse_triple(mean, "--mean") if mean else None,
            std=parse_triple(std, "--std") if std else None, output=output, source=source, license=license_,
            match_gate=match_gate, track_gate=track_gate, same_camera_gate=same_camera_gate)
        path, card = import_onnx(model, out if out is not None else Path(f"{name}.onnx"), spec, overwrite=overwrite)
        table = Table(title=f"imported {model.name} -> {path}")
        table.add_column("card")
        table.add_column("value")
        for key, value in describe(card):
            table.add_row(key, value)
        Console(width=120).print(table)
