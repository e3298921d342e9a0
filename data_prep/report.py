"""The bad-input report of one build: every skipped file with its reason, counted by kind, and
the clips whose face crop fell back to the centre. Printed once at the end of a build."""

from __future__ import annotations

import collections
import dataclasses
import logging

from mmae_jax.data_prep.media.errors import BadInputError

log = logging.getLogger(__name__)


@dataclasses.dataclass
class BuildReport:
    """Counts for one build; ``skipped`` holds (file, kind, reason) in the order found."""

    dataset: str
    written: int = 0
    skipped: list[tuple[str, str, str]] = dataclasses.field(default_factory=list)
    excluded: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    face_fallbacks: list[str] = dataclasses.field(default_factory=list)

    def bad_input(self, error: BadInputError) -> None:
        """Record a skipped file; logs it at once so a long build shows problems as they come."""
        self.skipped.append((error.path, error.kind, error.reason))
        log.warning("skipped %s (%s): %s", error.path, error.kind, error.reason)

    def exclude(self, reason: str) -> None:
        """Count a clip that is valid but not part of this config (e.g. an IEMOCAP 'fru' label)."""
        self.excluded[reason] += 1

    def face_fallback(self, clip_id: str) -> None:
        self.face_fallbacks.append(clip_id)

    def skipped_by_kind(self) -> dict[str, int]:
        return dict(collections.Counter(kind for _, kind, _ in self.skipped))

    def summary(self) -> str:
        lines = [f"{self.dataset}: {self.written} clips written, {len(self.skipped)} skipped as bad input, "
                 f"{sum(self.excluded.values())} excluded, {len(self.face_fallbacks)} centre-crop fallbacks"]
        for kind, count in sorted(self.skipped_by_kind().items()):
            lines.append(f"  bad input '{kind}': {count}")
        lines.extend(f"    {path}: {reason}" for path, _, reason in self.skipped)
        lines.extend(f"  excluded ({reason}): {count}" for reason, count in sorted(self.excluded.items()))
        if self.face_fallbacks:
            lines.append(f"  no face found, centre crop used: {', '.join(self.face_fallbacks)}")
        return "\n".join(lines)

    def print_summary(self) -> None:
        print(self.summary(), flush=True)
