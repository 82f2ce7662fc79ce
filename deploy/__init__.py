"""Deployment stage (installed as ``reid_edge.deploy``): ONNX export, parity gate, TensorRT
engine build and benchmarks."""
