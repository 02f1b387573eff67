"""The `/distributions` answer, put together from what a store counted.

Both stores count the same two things in SQL, so the figures are added up once, here: per class
and confidence bin, the predictions and their confidences' sum (a bin of None: predictions
without a confidence), and per class the inferences (rows) holding one.
"""

from __future__ import annotations

from collections.abc import Iterable

from inferwatch.store.base import ClassDistribution, Distributions

# The dashboard's histogram: its bins are whole runs of the stores' per-hour sums' 1000
# (`sketch.CONFIDENCE_BINS`), so both read it from their sums; other counts read the rows.
HISTOGRAM_BINS = 20
# At most this many classes get a confidence histogram of their own (the rest are in "all").
MAX_CLASS_HISTOGRAMS = 12


def distributions_answer(binned: Iterable[tuple[str | None, int | None, int, float | None]],
                         inferences: dict[str | None, int], bins: int) -> Distributions:
    binned = list(binned)
    counted: dict[str | None, list[float]] = {}
    for cls, b, n, total in binned:
        entry = counted.setdefault(cls, [0, 0, 0.0])
        entry[0] += n
        if b is not None:
            entry[1] += n
            entry[2] += total or 0.0
    classes = sorted(
        ((c, int(n), inferences.get(c, 0), total / scored if scored else None)
         for c, (n, scored, total) in counted.items()),
        key=lambda row: (-row[1], row[0] is None, row[0] or ""))
    overall = [0] * bins
    per_class: dict[str, list[int]] = {c: [0] * bins for c, *_ in classes[:MAX_CLASS_HISTOGRAMS] if c is not None}
    for cls, b, n, _ in binned:
        if b is not None and 0 <= b < bins:
            overall[b] += n
            if cls in per_class:
                per_class[cls][b] += n
    return Distributions([round(i / bins, 6) for i in range(bins + 1)], overall, per_class,
                         [ClassDistribution(*row) for row in classes])
