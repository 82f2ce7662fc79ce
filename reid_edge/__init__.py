"""reid-edge: unsupervised person re-identification, from unlabeled footage to an edge engine.

The package root stays light: importing it (or the CLI) never imports torch or tensorrt.
"""

__version__ = "0.1.0"
