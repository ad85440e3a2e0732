"""``make eval`` (accuracy through the device pipeline) and the LFW core that models/ shares.

``lfw`` reads the dataset, ``metrics`` computes verification and identification figures;
``measure`` runs the evaluation and writes ``eval.json``; ``report`` renders ``eval.md`` and
the plots from that JSON. Nothing is imported here: the models' build venv imports ``lfw``.
"""
