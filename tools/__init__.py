"""Measurement and stress tools: fuzzing, load generation, bench, evaluation, the demo.

Not installed with the product (the node and the central tools do not need them); run from a
checkout (`make bench`, `make eval`, `make fuzz`, `make demo`). Tests import these tools; the
tools never import tests.
"""
