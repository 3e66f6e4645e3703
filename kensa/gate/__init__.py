"""The gate: is a run measurably worse than its committed baseline?

``thresholds`` reads and writes the baseline files, ``stats`` holds the paired tests and Holm,
``verdicts`` turns a run and a baseline entry into rows with a verdict, ``update`` writes a run as
the new baseline, and ``fingerprint`` says which environments are comparable.
"""
