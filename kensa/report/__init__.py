"""What a run writes and prints: ``results`` (harness-shaped JSON, per-sample JSONL, the score and
gate tables) and ``snapshot_text`` (the readable text of prompt and tokenizer snapshots)."""
