"""``reid-edge associate``: the central associator of a camera fleet (Redis Streams)."""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path
from typing import Any

import typer

from ..cli_support import GALLERY_MAX_AGE_OPTION, GALLERY_MAX_SIZE_OPTION, MultiValueCommand


def register(app: typer.Typer) -> None:
    @app.command("associate", cls=MultiValueCommand)
    def associate(
        redis: str = typer.Option(..., "--redis", help="redis://HOST:PORT/DB of the site's Redis."),
        edges: list[str] = typer.Option(None, "--edges", help="Edge ids to wait for before deciding anything "
                                        "(default: whichever edges say hello)."),
        layout: Path = typer.Option(None, "--layout", help="Camera layout YAML: transitions, and the camera "
                                    "order of a step's new tracklets (default: names sorted)."),
        config: Path = typer.Option(None, "--config", help="Pipeline YAML; its association section applies."),
        max_distance: float = typer.Option(None, "--max-distance", help="Cross-camera match gate, combined "
                                           "distance 0..2 (default: the gate of the edges' model card, else 1.0)."),
        edge_timeout: float = typer.Option(30.0, "--edge-timeout", min=0.0, help="Seconds of silence after "
                                           "which an edge stops holding decisions back (0: wait for ever)."),
        prefix: str = typer.Option("reid", "--prefix", help="Key prefix of the fleet's streams in Redis."),
        exit_when_done: bool = typer.Option(False, "--exit-when-done", help="Stop once every edge has finished "
                                            "its footage and all is decided (replays, tests)."),
        summary: Path = typer.Option(None, "--summary", help="Write identities and counters as JSON at exit."),
        gallery: Path = typer.Option(None, "--gallery", help="SQLite identity gallery: people keep their id "
                                     "across fleet sessions and restarts (created when missing)."),
        gallery_max_age: float = GALLERY_MAX_AGE_OPTION,
        gallery_max_size: int = GALLERY_MAX_SIZE_OPTION,
    ) -> None:
        """Assign global identities to the tracklets every edge box publishes.

        Edges run `reid-edge run --cameras ... --publish redis://HOST:PORT/DB`. Decisions are
        at-least-once and idempotent per tracklet; a restarted associator replays its batch log
        and takes over the pending entries. Ctrl-C or SIGTERM stops it cleanly.

        Examples:

          reid-edge associate --redis redis://10.0.0.2:6379/0

          reid-edge associate --redis redis://127.0.0.1:6379/0 --edges box1 box2 --layout site.yaml

          reid-edge associate --redis redis://10.0.0.2:6379/0 --gallery site-gallery.sqlite
        """
        from ..config import from_dict, load_yaml, to_dict
        from ..errors import ConfigError
        from ..fleet.central import Central, CentralConfig
        from ..fleet.redis_transport import connect
        from ..io import atomic_write_json
        from ..pipeline.associate import Associator
        from ..pipeline.layout import load_layout
        from ..pipeline.runner import PipelineConfig

        cfg = load_yaml(PipelineConfig, config)
        if max_distance is not None:
            data = to_dict(cfg)
            data["association"] = {**data["association"], "max_distance": max_distance}
            cfg = from_dict(PipelineConfig, data)
        lay = load_layout(layout) if layout is not None else None
        if gallery_max_age <= 0:
            raise ConfigError("--gallery-max-age must be > 0 (days)")
        transport = connect(redis, "--redis", prefix=prefix)
        acfg = cfg.association
        opened: list[Any] = []

        def make(lambda_g: float, global_dim: int, model: str, edge_gate: float | None,
                 edge_same_camera_gate: float | None) -> Associator:
            lam = acfg.lambda_g if acfg.lambda_g is not None else lambda_g
            store = None
            if gallery is not None:
                from ..fleet.central import open_fleet_gallery
                from ..pipeline.gallery import GalleryConfig

                store = open_fleet_gallery(gallery, global_dim, model, transport.fleet_id(), prefix,
                                           GalleryConfig(gallery_max_age * 86400.0, gallery_max_size))
                opened.append(store)
            # the gates: --max-distance / --config here, else the ones the edges' model card gives
            gate = acfg.max_distance if acfg.max_distance is not None else edge_gate
            same_cam = acfg.same_camera_max_distance if acfg.same_camera_max_distance is not None \
                else edge_same_camera_gate
            return Associator(acfg, lam, global_dim, lay, store, max_distance=gate, same_camera_max_distance=same_cam)

        def log(msg: str) -> None:
            print(f"associate: {msg}", file=sys.stderr, flush=True)

        central = Central(transport, make, CentralConfig(
            edges=tuple(edges or ()), camera_order=tuple(c.name for c in lay.cameras) if lay is not None else (),
            edge_timeout_s=edge_timeout or None, exit_when_done=exit_when_done), log=log)
        stop = threading.Event()

        def on_signal(signum: int, _frame: Any) -> None:
            stop.set()

        old = signal.signal(signal.SIGTERM, on_signal)
        log(f"deciding for the fleet on {transport.url} (prefix {prefix!r})")
        try:
            stats = central.run(stop)
        except KeyboardInterrupt:
            stats = central.stats
        finally:
            signal.signal(signal.SIGTERM, old)
            transport.close()
            for store in opened:
                store.close()
        idents = central.assoc.identities if central.assoc is not None else {}
        log(f"{stats.decisions} decisions in {stats.batches} batches ({stats.events} tracklet events), "
            f"{len(idents)} identities; replayed {stats.replayed_batches} batches with {stats.replay_mismatches} "
            f"mismatches")
        if summary is not None:
            atomic_write_json(summary, {
                "stats": {k: v for k, v in vars(stats).items()},
                "identities": {str(g): sorted({iv.camera for iv in ivs}) for g, ivs in idents.items()},
                "num_identities": len(idents),
            })
