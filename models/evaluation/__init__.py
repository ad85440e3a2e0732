"""Model evaluation scripts run by models/Makefile (build/eval time only, not shipped).

The LFW reading and the metrics they share with ``make eval`` are in ``tools.evaluation``.
"""
