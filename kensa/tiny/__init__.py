"""The built-in tiny models, which need no download: ``build`` (their recipes, the SentencePiece tokenizer,
the random models and adapter built into the cache, a damaged copy), ``shipped`` (the trained models'
weights, shipped as package data under ``data/models/``), ``train`` (their training loop),
``training_corpus`` (their frozen training text, ``data/corpus/``), ``compare`` (two builds compared by
scores) and ``tokenizer_text`` (the tokenizer's generated training text).

This package sits below :mod:`kensa.tasks`: the task layer renders the training text
(:mod:`kensa.tasks.training_text`) when a corpus version is frozen, never when a model loads.
"""
