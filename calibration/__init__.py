"""INT8 calibration (installed as ``reid_edge.calibration``): calibration sets, Q/DQ
quantization, TensorRT calibration cache and the INT8 accuracy report."""
