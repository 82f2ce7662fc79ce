"""Copy the installed tensorrt-stubs into a folder mypy can use, fixing their syntax errors.

tensorrt-stubs 10.13 ships no ``py.typed`` and a few signatures that are not valid Python
(a parameter named ``in``; a parameter without default after defaulted ones), so mypy silently
treats ``tensorrt`` as untyped. This writes a fixed copy to ``DEST`` (default
``.venv/trt-stubs``); the Makefile points ``MYPYPATH`` at it so that the TensorRT code is really
checked against the documented API.
"""

from __future__ import annotations

import ast
import re
import sys
import sysconfig
from pathlib import Path

FIXES = [
    (re.compile(r"\(self(: \w+)?, in: "), r"(self\1, in_: "),
    (re.compile(r"power: Weights = None, channel_axis: int\)"), "power: Weights = None, channel_axis: int = 0)"),
]


def main(dest: str = ".venv/trt-stubs") -> int:
    site = Path(sysconfig.get_paths()["purelib"])
    out = Path(dest)
    written = 0
    for package in ("tensorrt", "tensorrt_bindings"):
        src_dir = site / package
        if not src_dir.is_dir():
            print(f"tensorrt-stubs not installed ({src_dir} missing); run: pip install --no-deps tensorrt-stubs")
            return 1
        for src in sorted(src_dir.glob("*.pyi")):
            text = src.read_text()
            for pattern, repl in FIXES:
                text = pattern.sub(repl, text)
            ast.parse(text, filename=str(src))  # fail loudly if the stubs changed shape
            target = out / package / src.name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
            written += 1
    print(f"wrote {written} patched TensorRT stub files to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
