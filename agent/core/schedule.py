"""When a tracked face is embedded: compute follows people, not frames x faces.

Detection runs on every frame; embedding (the expensive part) runs for a face only when it can
change the outcome. The decision reads a track's :class:`EmbedState` (the best quality score it
has embedded and the frame of its last embedding) and the face's quality score
(:func:`agent.core.quality.score`); the frame index is the clock. A track keeps nothing else
for this (no embedding): the state is two numbers, reset when the track ends.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Decision(StrEnum):
    NEW = "new"  # the track has never been embedded: embed
    BETTER = "better"  # a face clearly better than the best embedded so far: embed
    DUE = "due"  # the periodic re-embedding is due: embed
    ALERTED = "alerted"  # the track has alerted (or was suppressed by the cool-down): skip
    HELD = "held"  # nothing improved and nothing is due: skip

    @property
    def embed(self) -> bool:
        return self in (Decision.NEW, Decision.BETTER, Decision.DUE)


@dataclass(frozen=True)
class EmbedPolicy:
    # Re-embed a track at most every this many frames when nothing improved; 0: never.
    reembed_every: int = 10
    # A face counts as better when its score beats the best embedded one by this fraction.
    gain: float = 0.2

    def __post_init__(self) -> None:
        if self.reembed_every < 0 or self.gain < 0:
            raise ValueError("reembed_every and gain must not be negative")


@dataclass
class EmbedState:
    """What a track remembers about its embeddings: a score and a frame index, no face."""

    best: float = 0.0  # best quality score embedded so far
    last_frame: int | None = None  # frame index of the last embedding; None: never

    def reset(self) -> None:
        self.best, self.last_frame = 0.0, None


def decide(
    state: EmbedState, quality: float, frame: int, *, alerted: bool, policy: EmbedPolicy
) -> Decision:
    """Should this frame's face of the track (past the quality gate) be embedded?"""
    if alerted:
        return Decision.ALERTED
    if state.last_frame is None:
        return Decision.NEW
    if quality > state.best * (1.0 + policy.gain):
        return Decision.BETTER
    if policy.reembed_every and frame - state.last_frame >= policy.reembed_every:
        return Decision.DUE
    return Decision.HELD


def record(state: EmbedState, quality: float, frame: int) -> None:
    """The face was embedded: remember its frame, and its score if it is the best so far."""
    state.best = max(state.best, quality)
    state.last_frame = frame
