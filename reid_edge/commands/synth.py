"""Placeholder: the 'synth' command is registered by its owning issue's work."""

import typer


def register(app: typer.Typer) -> None:
    return None
