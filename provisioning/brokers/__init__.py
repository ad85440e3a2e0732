"""Renderers of the access policy (``provisioning.policy``), one module per broker."""
