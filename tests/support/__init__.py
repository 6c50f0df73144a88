"""What tests share: size constants and the one pass/converge harness (``support.nodes``)."""

K = 1024
M = 1024**2
G = 1024**3
