"""``python -m reid_edge ...``: the ``reid-edge`` command without the console script."""

from reid_edge.cli import main

raise SystemExit(main())
