"""What a run writes and prints: :mod:`.results` (harness-shaped JSON, per-sample JSONL, the score and gate
tables), :mod:`.quiz` (the quiz report, table and figure), :mod:`.prompt_snapshot` (the text of every suite's
prompt snapshots) and :mod:`.snapshot_text` (the quoting of snapshot text and the tokenizer probe report)."""
