"""Backends: the engines that run a model, behind one contract (:mod:`.contract`), found by name in the
registry (:mod:`.registry`). A backend imports the contract and its own helpers, never a run loop, the gate or
the plugin.

* The registered backends: :mod:`.hf` (transformers in this process: :mod:`.hf_causal` for causal models,
  :mod:`.hf_seq2seq` for encoder-decoders, both on :mod:`.hf_common`), :mod:`.vllm` (a vLLM engine in the
  worker process of :mod:`.vllm_worker`) and :mod:`.served` (a model behind an OpenAI-compatible server;
  :mod:`.vllm_server` starts one locally).
* What they share: :mod:`.args` (``--model-args`` and the :class:`~.args.ModelSpec` a backend loads),
  :mod:`.tokenized` (the exact token ids of a request), :mod:`.tokenizers` (tokenizer loading),
  :mod:`.identity` (which weights were scored), :mod:`.decoding` (batched greedy decoding with a KV cache),
  :mod:`.stopping` (stop strings), :mod:`.packing` (shared-prompt packing of log-likelihood requests) and
  :mod:`.bad_words` (the token sequences of words the output must not contain).
"""
