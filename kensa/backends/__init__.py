"""Backends: the engines that run a model, behind one contract (:mod:`kensa.backends.contract`).

``hf_causal`` is the Hugging Face causal-LM backend (with ``packing`` for shared-prompt rows);
``tokenizers`` loads the slow SentencePiece tokenizers; ``args`` holds what a backend is asked to
load; ``identity`` names the weights scored. A backend imports the contract and its own helpers,
never a run loop, the gate or the plugin.
"""
