"""kensa (検査): the engine of a pytest regression suite for Japanese language models.

Everything under ``kensa`` imports without pytest, torch or transformers; the model
backends import them when a model is actually loaded.
"""

__version__ = "0.1.0"
