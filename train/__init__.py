"""Training stage (installed as ``reid_edge.train``): model, memory banks, selection, loss,
trainer and evaluation of the selective contrastive method (Pang et al., TOMM 2022)."""
