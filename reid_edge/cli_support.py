"""CLI plumbing: multi-value options and the error contract.

Typer gives an option one value per occurrence (fastapi/typer#554), but users type
``reid-edge run --cameras cam1.mp4 cam2.mp4``. :class:`MultiValueCommand` rewrites, before
Click parses, every run of bare values after a ``multiple=True`` option into repeated
occurrences (``--cameras a --cameras b``). A value that itself starts with ``-`` ends the run.
"""

from __future__ import annotations

import typer
from typer.core import TyperCommand

try:  # typer >= 0.2x vendors Click; older releases depend on it
    from typer import _click as click
except ImportError:  # pragma: no cover - depends on the installed typer
    import click  # type: ignore[no-redef]


def _ends_values(token: str, all_opts: set[str]) -> bool:
    """A long option, ``--`` or a known short option ends a run of values; ``-1`` does not."""
    return token.startswith("--") or token.partition("=")[0] in all_opts


def expand_multi_value_args(args: list[str], multi_opts: set[str], all_opts: set[str]) -> list[str]:
    """Rewrite ``--opt a b c`` to ``--opt a --opt b --opt c`` for options in ``multi_opts``.

    Args:
        args: the command's argument list (after the command name).
        multi_opts: option spellings that accept several values (``--cameras``).
        all_opts: every option spelling of the command (ends a run of values).
    """
    out: list[str] = []
    i = 0
    while i < len(args):
        tok = args[i]
        if tok == "--":
            out.extend(args[i:])
            break
        name, eq, value = tok.partition("=")
        if name in multi_opts:
            values = [value] if eq else []
            j = i + 1
            while j < len(args) and not _ends_values(args[j], all_opts):
                values.append(args[j])
                j += 1
            if not values:
                out.append(tok)  # let Click report the missing value
            for v in values:
                out.extend([name, v])
            i = j
            continue
        out.append(tok)
        i += 1
    return out


class MultiValueCommand(TyperCommand):
    """A Typer command whose list options take space-separated values."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:  # type: ignore[override]
        multi: set[str] = set()
        every: set[str] = set()
        for param in self.params:
            if getattr(param, "param_type_name", "") != "option":
                continue
            every.update(param.opts)
            every.update(getattr(param, "secondary_opts", ()))
            if getattr(param, "multiple", False):
                multi.update(param.opts)
        every.update(["--help"])
        return super().parse_args(ctx, expand_multi_value_args(list(args), multi, every))



def check_choice(value: str | None, allowed: tuple[str, ...], flag: str) -> str | None:
    """``value`` when it is one of ``allowed`` (or None: the flag was not given).

    Raises:
        ConfigError: any other value (the CLI maps it to one line and exit code 2).
    """
    from .errors import ConfigError

    if value is not None and value not in allowed:
        raise ConfigError(f"{flag} {value!r} is not one of {', '.join(allowed)}")
    return value


# identity-gallery limits, shared by `run --gallery` and `associate --gallery`
GALLERY_MAX_AGE_OPTION = typer.Option(30.0, "--gallery-max-age", help="Days an unseen person stays in --gallery.")
GALLERY_MAX_SIZE_OPTION = typer.Option(100_000, "--gallery-max-size", min=1, help="Most people kept in --gallery "
                                       "(the least recently seen go first).")
