"""Synthetic pedestrian data (numpy + OpenCV, deterministic, no downloads).

- :mod:`reid_edge.synth.people`: the identity model and the figure painter.
- :mod:`reid_edge.synth.camera`: site (domain) and camera models, static backgrounds.
- :mod:`reid_edge.synth.render`: one crop as a camera sees it (shared by crops and scenes).
- :mod:`reid_edge.synth.crops`: Market-1501-layout datasets (``reid-edge synth crops``).
- :mod:`reid_edge.synth.scene`: multi-camera videos with MOT ground truth (``reid-edge synth scene``).
- :mod:`reid_edge.synth.baseline`: the HSV-histogram matcher the data must defeat across cameras.
"""
