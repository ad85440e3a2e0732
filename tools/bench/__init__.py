"""``make bench``: speed, memory and scaling of the device's pipeline, publishing and process.

``measure`` runs the sections (``stages``, ``publishing``, ``runtime_compare`` with the
``runtimes`` script, ``throughput``, ``matching``, ``footprint``) and writes ``bench.json``;
``report`` renders ``bench.md`` and the plots from that JSON.
"""
