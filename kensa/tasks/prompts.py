"""Prompt templates and few-shot context assembly, as the jp-stable harness does it.

A template is plain data: a description, a format string for the query text, a format
string for the target, and the separator between examples. The fields in the format
strings come from a task's *view* of a document (see ``kensa.tasks.base``).
"""

from __future__ import annotations

import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from kensa.errors import KensaError


@dataclass(frozen=True)
class PromptTemplate:
    """One prompt version of a task.

    ``context = description + sep.join(text(s) + target(s) for s in shots) + sep + text(query)``,
    with no separator before the query when there are no shots (harness ``fewshot_context``).
    """

    version: str
    description: str
    text: str
    target: str
    fewshot_sep: str = "\n\n"
    name: str = ""
    labels: tuple[str, ...] = ()
    """Label words of this prompt version, in label-id order, where they differ between versions
    (MARC-ja: ``positive/negative`` in 0.2, ``ポジティブ/ネガティブ`` after): they are the continuations,
    and the view's ``answer`` is the gold one."""
    model_kinds: tuple[str, ...] = ()
    """The kinds of model (``causal``, ``seq2seq``) this prompt is written for; empty: any model may run
    it (the harness's prompts, written for causal models)."""
    tiny_trained: bool = True
    """Whether kensa's built-in trained tiny models learn this prompt. False for prompts added after they
    were trained: teaching them a new prompt retrains them and moves every threshold they have."""

    def fields(self) -> set[str]:
        """Names the format strings use; a task checks its views provide all of them."""
        names = set()
        for fmt in (self.text, self.target):
            for _, field, _, _ in string.Formatter().parse(fmt):
                if field is not None:
                    names.add(field)
        return names

    def render_text(self, view: Mapping[str, str]) -> str:
        return self.text.format_map(view)

    def render_target(self, view: Mapping[str, str]) -> str:
        return self.target.format_map(view)

    def context(self, shots: Sequence[Mapping[str, str]], query: Mapping[str, str]) -> str:
        """The full prompt for ``query`` after the few-shot examples ``shots``."""
        if not shots:
            return self.description + self.render_text(query)
        examples = self.fewshot_sep.join(self.render_text(s) + self.render_target(s) for s in shots)
        return self.description + examples + self.fewshot_sep + self.render_text(query)


def check_unique_versions(task: str, templates: Sequence[PromptTemplate]) -> None:
    seen: set[str] = set()
    for t in templates:
        if t.version in seen:
            raise KensaError(f"task {task}: prompt version {t.version} is defined twice")
        seen.add(t.version)


# Headers shared by many tasks (jp-stable harness, spec section 3).
ALPACA_HEADER = "以下は、タスクを説明する指示と、文脈のある入力の組み合わせです。要求を適切に満たす応答を書きなさい。\n\n"
# The harness reads SYSTEM_PROMPT from the environment at import time; kensa pins the default
# so that a stray variable cannot change a score silently.
LLAMA2_SYSTEM_PROMPT = "あなたは役立つアシスタントです。"
LLAMA2_HEADER = f"<s>[INST] <<SYS>>\n{LLAMA2_SYSTEM_PROMPT}\n<</SYS>>\n\n"
LLAMA2_SEP = " </s><s>[INST] "


# The instruction-tuned prompt formats every JGLUE task writes the same way (spec section 3): a task gives its
# instruction and its query (format strings over its view), the format adds the turns and the separator.
# ``fields``: the rest of the template (``target`` defaults to ``{answer}``; ``labels``, ``model_kinds``).


def alpaca(version: str, instruction: str, query: str, **fields) -> PromptTemplate:
    """``ja-alpaca`` (0.3): the Alpaca header, then ``### 指示`` / ``### 入力`` / ``### 応答``."""
    fields.setdefault("target", "{answer}")
    return PromptTemplate(version, name="ja-alpaca", description=ALPACA_HEADER,
                          text=f"### 指示:\n{instruction}\n\n### 入力:\n{query}\n\n### 応答:\n", **fields)


def rinna_sft(version: str, instruction: str, query: str, **fields) -> PromptTemplate:
    """``rinna-sft`` (0.4): user and system turns joined by a literal ``<NL>``; the system first says 分かりました。"""
    fields.setdefault("target", "{answer}")
    return PromptTemplate(version, name="rinna-sft", description=f"ユーザー: {instruction}<NL>システム: 分かりました。<NL>",
                          text=f"ユーザー: {query}<NL>システム: ", fewshot_sep="<NL>", **fields)


def rinna_bilingual(version: str, instruction: str, query: str, **fields) -> PromptTemplate:
    """``rinna-bilingual`` (0.5): the rinna-sft turns joined by newlines."""
    fields.setdefault("target", "{answer}")
    return PromptTemplate(version, name="rinna-bilingual", description=f"ユーザー: {instruction}\nシステム: 分かりました。\n",
                          text=f"ユーザー: {query}\nシステム: ", fewshot_sep="\n", **fields)


def llama2(version: str, instruction: str, query: str, **fields) -> PromptTemplate:
    """``llama2`` (0.6): the Llama-2 chat header, the instruction and the query closed by ``[/INST]``."""
    fields.setdefault("target", "{answer}")
    return PromptTemplate(version, name="llama2", description=LLAMA2_HEADER,
                          text=f"{instruction}\n\n{query} [/INST] ", fewshot_sep=LLAMA2_SEP, **fields)
