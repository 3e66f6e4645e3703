"""The QA suite (``suites/qa``): question answering (QA), answer-aware question generation (AQG) and AQG with
the answer span highlighted (AQG-HL) on JSQuAD, for seq2seq (T5) and causal models, plus the users' own TSV
format. :mod:`kensa.tasks.qa.common` holds the views, the highlight, the checks and the scoring;
:mod:`kensa.tasks.qa.jsquad_qa` and :mod:`kensa.tasks.qa.tsv` register the tasks."""
