"""When a tracked face is embedded: compute follows people, not frames x faces.

Detection runs on every frame; embedding (the expensive part) runs for a face only when it can
change the outcome. The decision reads a track's :class:`EmbedState` (the best quality score it
has embedded and the frame of its last embedding) and the face's quality score
(:func:`agent.core.quality.score`); the frame index is the clock. The schedule keeps nothing
else (no embedding): the state is two numbers, reset when the track ends.

Under the track rule (``[matching] decision = "track"``) the decision also reads the track's
template (:mod:`agent.core.template`): while it has room, a face is embedded every
``fill_every`` frames (:attr:`Decision.FILL`) so the track reaches K faces quickly; then only a
face that beats the best embedded so far by ``gain`` is (it replaces the template's weakest
face); the periodic re-embedding does not apply, since a face no better than those held cannot
change the outcome. Compute per person stays bounded: K faces, then one per ``gain`` of quality
(at most ``log(1 / q_first) / log(1 + gain)``; quality is in [0, 1]), however long the person
stays in view.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol


class Decision(StrEnum):
    NEW = "new"  # the track has never been embedded: embed
    BETTER = "better"  # a face clearly better than the best embedded so far: embed
    DUE = "due"  # the periodic re-embedding is due: embed
    FILL = "fill"  # the track's template has room for another face: embed
    ALERTED = "alerted"  # the track has alerted (or was suppressed by the cool-down): skip
    HELD = "held"  # nothing improved and nothing is due: skip

    @property
    def embed(self) -> bool:
        return self in (Decision.NEW, Decision.BETTER, Decision.DUE, Decision.FILL)


@dataclass(frozen=True)
class EmbedPolicy:
    # Re-embed a track at most every this many frames when nothing improved; 0: never.
    reembed_every: int = 10
    # A face counts as better when its score beats the best embedded one by this fraction.
    gain: float = 0.2
    # Track rule: while the template has room, embed a face every this many frames (>= 1).
    fill_every: int = 2

    def __post_init__(self) -> None:
        if self.reembed_every < 0 or self.gain < 0:
            raise ValueError("reembed_every and gain must not be negative")
        if self.fill_every < 1:
            raise ValueError("fill_every must be at least 1")


class Slots(Protocol):
    """What the schedule reads of a track's template (:class:`agent.core.template.Template`)."""

    @property
    def free(self) -> int: ...


@dataclass
class EmbedState:
    """What a track remembers about its embeddings: a score and a frame index, no face."""

    best: float = 0.0  # best quality score embedded so far
    last_frame: int | None = None  # frame index of the last embedding; None: never

    def reset(self) -> None:
        self.best, self.last_frame = 0.0, None


def decide(
    state: EmbedState,
    quality: float,
    frame: int,
    *,
    alerted: bool,
    policy: EmbedPolicy,
    template: Slots | None = None,
) -> Decision:
    """Should this frame's face of the track (past the quality gate) be embedded?

    ``template``: the track's template under the track rule; None under the one-frame rule."""
    if alerted:
        return Decision.ALERTED
    if state.last_frame is None:
        return Decision.NEW
    if template is not None:
        return _decide_for_template(state, quality, frame, policy, template)
    if quality > state.best * (1.0 + policy.gain):
        return Decision.BETTER
    if policy.reembed_every and frame - state.last_frame >= policy.reembed_every:
        return Decision.DUE
    return Decision.HELD


def record(state: EmbedState, quality: float, frame: int) -> None:
    """The face was embedded: remember its frame, and its score if it is the best so far."""
    state.best = max(state.best, quality)
    state.last_frame = frame


def _decide_for_template(
    state: EmbedState, quality: float, frame: int, policy: EmbedPolicy, template: Slots
) -> Decision:
    assert state.last_frame is not None
    if quality > state.best * (1.0 + policy.gain):
        return Decision.BETTER  # it joins the template (a full one drops its weakest face)
    if template.free > 0 and frame - state.last_frame >= policy.fill_every:
        return Decision.FILL
    # No periodic re-embedding: a face no better than those held cannot change the outcome.
    return Decision.HELD
