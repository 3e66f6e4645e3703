"""Where kensa's generation time goes: the stop check's share of ``generate_until``, and the model work
saved by letting finished rows leave the batch.

The share is measured with cProfile on one extra, untimed run of the same requests (the profiler slows
everything a little, so the timed rounds run without it): the cumulative time inside
``StopChecker.hit`` over the cumulative time of ``generate_until``. The same profile is then taken with
a checker that decodes the whole generation at every step, as kensa did before, so the run shows both.
"""

from __future__ import annotations

import cProfile
import pstats
from collections.abc import Callable, Sequence
from typing import Any

from kensa.backends.decoding import DecodeStats
from kensa.backends.stopping import StopChecker


class FullDecodeChecker(StopChecker):
    """The old stop check: decode every token generated so far, at every step."""

    def hit(self, tokens: Sequence[int]) -> bool:
        if not self.stops:
            return False
        self.decoded_tokens += len(tokens)
        text = self.decode(list(tokens))
        return any(s in text for s in self.stops)


def _cumulative(stats: pstats.Stats, name: str) -> float:
    return sum(row[3] for (_file, _line, func), row in stats.stats.items() if func == name)  # type: ignore[attr-defined]


def stop_check_share(lm: Any, run: Callable[[], Any], full_decode: bool = False) -> dict[str, float]:
    """Profile ``run()`` (a call of ``lm.generate_until``): seconds in the stop check and in the whole call."""
    import kensa.backends.hf_causal as hf

    saved = hf.StopChecker
    if full_decode:
        hf.StopChecker = FullDecodeChecker
    profile = cProfile.Profile()
    try:
        profile.runcall(run)
    finally:
        hf.StopChecker = saved
    stats = pstats.Stats(profile)
    total = _cumulative(stats, "generate_until")
    check = _cumulative(stats, "hit")
    return {"stop_check_seconds": round(check, 4), "generate_until_seconds": round(total, 4),
            "share": round(check / total, 4) if total else 0.0}


def decode_work(lm: Any, run: Callable[[], Any]) -> dict[str, int]:
    """Decode steps and rows computed in one run, against what keeping every row to the end would cost."""
    saved = lm.decode_stats
    lm.decode_stats = stats = DecodeStats()
    try:
        run()
    finally:
        lm.decode_stats = saved
    return {"decode_steps": stats.steps, "row_steps": stats.row_steps, "compactions": stats.compactions,
            "row_steps_if_finished_rows_stayed": stats.row_steps_if_kept}
