"""``reid-edge layout-learn``: camera travel-time windows learned from a run, without labels."""

from __future__ import annotations

from pathlib import Path

import typer

from ..cli_support import MultiValueCommand


def layout_learn_command(
    events: list[Path] = typer.Option(..., "--events", help="Output folders of `reid-edge run` (or their "
                                      "events.jsonl), space-separated; the site clock must be shared."),
    out: Path = typer.Option(Path("layout.yaml"), "--out", help="Layout YAML to write (for `run --layout`)."),
    confident: float = typer.Option(0.7, "--confident", help="Matches at most this far (combined distance) "
                                    "count as evidence."),
    min_moves: int = typer.Option(3, "--min-moves", min=1, help="Moves a camera pair needs to be listed."),
    unseen_pairs: str = typer.Option("forbid", "--unseen-pairs", help="forbid: only learned camera pairs are "
                                     "allowed; allow: other pairs are listed with an open window."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing --out file."),
) -> None:
    """Learn each camera pair's travel-time window from confident matches and write the layout YAML.

    Examples:

      reid-edge run --cameras a.mp4 b.mp4 c.mp4 --out runs/day1

      reid-edge layout-learn --events runs/day1 --out layout.yaml

      reid-edge run --cameras a.mp4 b.mp4 c.mp4 --layout layout.yaml --out runs/day2
    """
    from ..errors import ConfigError
    from ..pipeline.topology import TopologyConfig, learn_layout, read_events, write_layout

    if out.exists() and not overwrite:
        raise ConfigError(f"{out} exists; pass --overwrite to replace it")
    cfg = TopologyConfig(confident_distance=confident, min_moves=min_moves, unseen_pairs=unseen_pairs)
    tracklets = [t for p in events for t in read_events(p)]
    layout = learn_layout(tracklets, cfg)
    write_layout(layout, out)
    learned = [t for t in layout.transitions if t.max_s != float("inf")]
    typer.echo(f"{len(tracklets)} tracklets, {len(learned)} camera pairs learned -> {out}")
    for t in learned:
        typer.echo(f"  {t.src} -> {t.dst}: {t.min_s:g}..{t.max_s:g} s")
    if not learned:
        typer.echo("no camera pair had enough confident moves: the layout restricts nothing "
                   "(more footage, or a lower --min-moves)", err=True)


def register(app: typer.Typer) -> None:
    app.command("layout-learn", cls=MultiValueCommand)(layout_learn_command)
