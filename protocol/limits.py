"""Size limits checked before anything from outside is parsed or decrypted."""

from __future__ import annotations

from dataclasses import dataclass, fields

MiB = 1024 * 1024


@dataclass(frozen=True)
class Limits:
    # A 50k-entry watchlist of 512-d float16 embeddings is ~68 MB after base64 twice; forces
    # with bigger lists raise this deliberately, in config.
    bundle_bytes: int = 96 * MiB
    entries_file_bytes: int = 512 * MiB
    entries: int = 50_000
    dim: int = 2048
    embeddings_per_entry: int = 16
    signatures: int = 16
    event_bytes: int = 512 * 1024
    probe_bytes: int = 256 * 1024
    command_bytes: int = 16 * 1024
    request_bytes: int = 64 * 1024
    status_bytes: int = 64 * 1024

    def __post_init__(self) -> None:
        for field in fields(self):
            value = getattr(self, field.name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"limit {field.name} must be a positive integer")


DEFAULT_LIMITS = Limits()
