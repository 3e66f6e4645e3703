"""Tokenizer loading, with a faithful slow SentencePiece path for ``use_fast=False``.

transformers 5 ignores ``use_fast=False``: ``AutoTokenizer`` always builds a fast tokenizer,
and its conversion of some SentencePiece models differs from SentencePiece itself (a unigram
model read as BPE, for one). The harness ran rinna, LINE and Stability models with the slow
tokenizer, so scores comparable with published numbers need SentencePiece's own ids.
:class:`JaSpmTokenizer` gives exactly those, inside the transformers tokenizer API.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import ClassVar

from kensa.errors import ModelLoadError

SPM_FILE_NAMES = ("spiece.model", "tokenizer.model", "sentencepiece.model", "sentencepiece.bpe.model")

_CLASS = None


def slow_tokenizer_class():
    """Build the class on first use, so importing kensa does not import transformers."""
    global _CLASS
    if _CLASS is not None:
        return _CLASS
    from transformers.tokenization_utils_sentencepiece import SentencePieceBackend

    class JaSpmTokenizer(SentencePieceBackend):
        """Slow tokenizer whose ids are exactly ``SentencePieceProcessor.encode``'s.

        Special tokens written in the text (``</s>``) still map to their ids, as in every
        transformers tokenizer; everything between them goes to SentencePiece unchanged.
        """

        vocab_files_names: ClassVar[dict[str, str]] = {"vocab_file": "tokenizer.model"}
        model_input_names: ClassVar[list[str]] = ["input_ids", "attention_mask"]

        def __init__(self, vocab_file: str, **kwargs):
            kwargs.setdefault("legacy", True)  # legacy=True: no dummy-prefix rewriting
            super().__init__(vocab_file=vocab_file, **kwargs)

        def _tokenize(self, text, **kwargs):
            return self.sp_model.encode(text, out_type=str)

        def convert_tokens_to_string(self, tokens):
            # SentencePiece's decode handles byte-fallback pieces and "▁"; special tokens
            # are not pieces it should see, so they are kept as text between decoded runs.
            specials = set(self.all_special_tokens)
            out, run = [], []
            for tok in tokens:
                if tok in specials:
                    out.append(self.sp_model.decode_pieces(run))
                    out.append(tok)
                    run = []
                else:
                    run.append(tok)
            out.append(self.sp_model.decode_pieces(run))
            return "".join(out)

        def _decode(self, token_ids, skip_special_tokens=False, clean_up_tokenization_spaces=None, **kwargs):
            if isinstance(token_ids, int):
                token_ids = [token_ids]
            if skip_special_tokens:
                special_ids = set(self.all_special_ids)
                token_ids = [i for i in token_ids if i not in special_ids]
            return self.convert_tokens_to_string(self.convert_ids_to_tokens(list(token_ids)))

    _CLASS = JaSpmTokenizer
    return _CLASS


def find_spm_file(source: str, revision: str | None = None) -> str | None:
    """The SentencePiece model file of a local directory or a Hub repo (from the local cache)."""
    path = Path(os.path.expanduser(source))
    if path.is_dir():
        for name in SPM_FILE_NAMES:
            if (path / name).is_file():
                return str(path / name)
        return None
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError

    for name in SPM_FILE_NAMES:
        try:
            return hf_hub_download(source, name, revision=revision)
        except EntryNotFoundError:
            continue
    return None


def load_tokenizer(source: str, *, revision: str | None = None, use_fast: bool = True,
                   trust_remote_code: bool = False):
    """The fast tokenizer, or with ``use_fast=False`` the SentencePiece-exact slow one."""
    from transformers import AutoTokenizer

    try:
        fast = AutoTokenizer.from_pretrained(source, revision=revision, trust_remote_code=trust_remote_code)
    except Exception as exc:
        raise ModelLoadError(f"tokenizer {source!r}: {type(exc).__name__}: {exc}") from exc
    if use_fast:
        return fast
    spm_file = find_spm_file(source, revision)
    if spm_file is None:
        raise ModelLoadError(
            f"tokenizer {source!r}: use_fast=False needs a SentencePiece model file "
            f"({', '.join(SPM_FILE_NAMES)}) and there is none; transformers 5 has no other slow "
            "tokenizers, so drop use_fast=False for this model"
        )
    cls = slow_tokenizer_class()
    specials = {k: getattr(fast, k) for k in ("bos_token", "eos_token", "unk_token", "pad_token")
                if getattr(fast, k, None) is not None}
    return cls(vocab_file=spm_file, **specials)
