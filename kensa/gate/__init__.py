"""The gate: is a run measurably worse than its committed baseline?

:mod:`.thresholds` reads and writes the baseline files, :mod:`.stats` holds the paired tests and Holm,
:mod:`.verdicts` turns a run and a baseline entry into rows with a verdict, :mod:`.update` writes a run as the
new baseline, :mod:`.fingerprint` says which environments are comparable, :mod:`.history` finds thresholds
lowered by hand since the git base and :mod:`.latency` is the quiz's latency gate.
"""
