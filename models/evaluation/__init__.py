"""LFW evaluation helpers for models/eval_lfw.py (build/eval time only, not shipped)."""
