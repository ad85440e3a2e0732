"""Wire formats shared by the device and the central tools. Pure: no I/O, no clocks.

- :mod:`protocol.watchlist` — sealed, threshold-signed watchlist bundles
- :mod:`protocol.event` — signed match events with an HPKE-sealed probe crop
- :mod:`protocol.command` — signed wipe / pause / resume commands
- :mod:`protocol.entries` — the entries file produced by enrolment
- :mod:`protocol.errors` — the :class:`RejectedInput` family
"""

from protocol.errors import RejectedInput

__all__ = ["RejectedInput"]
