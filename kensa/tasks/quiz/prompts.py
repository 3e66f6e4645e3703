"""The quiz prompt versions, as data: the same families as the JGLUE tasks, for numbered choices.

* ``0.1`` is the seed's *training* format (question and choices inside the instruction, ending in
  ``### 回答:``): what a model fine-tuned on converted AI王 / JAQKET data with Axolotl expects. A
  training-format record is rendered as its own ``instruction``, byte for byte (a model is scored on its own
  training text, spaces and hints included).
* ``0.2`` is the seed's *evaluation* format: the record's ``instruction`` followed by its ``input``
  (the numbered choices and three newlines), byte for byte, answered as ``2: クリオネ``.

Only sources that carry no instruction (JMMLU, AI王, JAQKET, and an evaluation record at 0.1) get the canonical
instruction below (:data:`TRAIN_TEXT`, :data:`EVAL_TEXT`).
* ``0.3`` (ja-alpaca), ``0.4`` (rinna-sft, ``<NL>``), ``0.5`` (rinna-bilingual) and ``0.6`` (Llama-2
  ``[INST]``) are the jp-stable harness's instruction families, as in JCommonsenseQA.

Each version fixes the **continuation form** (:attr:`QuizTemplate.form`), which is what the
log-likelihood mode scores for every choice and what a shot or a fine-tuned model answers:
``{i}: {text}`` (0.1, 0.2, 0.3), the choice text alone (0.4, 0.5, as JCommonsenseQA's rinna prompts),
or the number alone (0.6). The generation mode parses any of the three (:mod:`.answers`).
Quiz prompts are zero-shot: the fine-tuned models are evaluated without examples.
"""

from __future__ import annotations

from dataclasses import dataclass

from kensa.tasks.prompts import ALPACA_HEADER, LLAMA2_HEADER, LLAMA2_SEP, PromptTemplate

FULL, TEXT, LABEL = "{i}: {text}", "{text}", "{i}"
FORM_NAMES = {FULL: "number and text", TEXT: "choice text", LABEL: "number"}


@dataclass(frozen=True)
class QuizTemplate(PromptTemplate):
    form: str = FULL
    """How one choice is written as a continuation or an answer: ``{i}`` its number, ``{text}`` its text."""

    def continuation(self, index: int, text: str) -> str:
        return self.form.format(i=index, text=text)


ASK = "以下の問題について、{labels}から選んで答えてください。"
RINNA_ASK = "以下の問題について、選択肢の中から最適な答えを選んでください。"

TRAIN_TEXT = "以下の問題について、{labels}の選択肢から選んで答えてください。\n\n問題: {question}\n選択肢\n\n{choices}\n\n\n### 回答:\n"
EVAL_TEXT = ASK + "\n問題: {question}\n{choices}\n\n\n"

CHOICE_TEMPLATES = (
    QuizTemplate("0.1", name="quiz-train", description="", text="{train_prompt}", target="{answer_full}", form=FULL),
    QuizTemplate("0.2", name="quiz-eval", description="", text="{eval_prompt}", target="{answer_full}", form=FULL),
    QuizTemplate("0.3", name="ja-alpaca", description=ALPACA_HEADER,
                 text=f"### 指示:\n{ASK}\n\n### 入力:\n問題: {{question}}\n{{choices}}\n\n### 応答:\n",
                 target="{answer_full}", form=FULL),
    QuizTemplate("0.4", name="rinna-sft", description=f"ユーザー: {RINNA_ASK}<NL>システム: 分かりました。<NL>",
                 text="ユーザー: 問題: {question}<NL>{choices_nl}<NL>システム: ", target="{answer_text}",
                 fewshot_sep="<NL>", form=TEXT),
    QuizTemplate("0.5", name="rinna-bilingual", description=f"ユーザー: {RINNA_ASK}\nシステム: 分かりました。\n",
                 text="ユーザー: 問題: {question}\n{choices}\nシステム: ", target="{answer_text}", fewshot_sep="\n",
                 form=TEXT),
    QuizTemplate("0.6", name="llama2", description=LLAMA2_HEADER,
                 text="以下の問題について、{labels}から選んで、番号だけで答えてください。\n\n問題: {question}\n{choices} [/INST] ",
                 target="{answer_label}", fewshot_sep=LLAMA2_SEP, form=LABEL),
)

OPEN_ASK = "以下の問題に答えてください。"

OPEN_TEMPLATES = (
    QuizTemplate("0.1", name="quiz-train", description="", text=f"{OPEN_ASK}\n\n問題: {{question}}\n\n### 回答:\n",
                 target="{answer}"),
    QuizTemplate("0.2", name="quiz-eval", description="", text=f"{OPEN_ASK}\n問題: {{question}}\n\n\n", target="{answer}"),
    QuizTemplate("0.3", name="ja-alpaca", description=ALPACA_HEADER,
                 text=f"### 指示:\n{OPEN_ASK}\n\n### 入力:\n{{question}}\n\n### 応答:\n", target="{answer}"),
    QuizTemplate("0.4", name="rinna-sft", description=f"ユーザー: {OPEN_ASK}<NL>システム: 分かりました。<NL>",
                 text="ユーザー: {question}<NL>システム: ", target="{answer}", fewshot_sep="<NL>"),
    QuizTemplate("0.5", name="rinna-bilingual", description=f"ユーザー: {OPEN_ASK}\nシステム: 分かりました。\n",
                 text="ユーザー: {question}\nシステム: ", target="{answer}", fewshot_sep="\n"),
    QuizTemplate("0.6", name="llama2", description=LLAMA2_HEADER, text=f"{OPEN_ASK}\n\n{{question}} [/INST] ",
                 target="{answer}", fewshot_sep=LLAMA2_SEP),
)

MAX_NEW_TOKENS = 32
"""One budget for every model and version, so that latency compares like with like: ``2: `` and a choice
text (AI王 answers are at most 35 characters) fit in most tokenizers; a longer answer is cut, and a cut
``2: クリオ`` still parses by its number."""


def choice_stops(template: PromptTemplate) -> tuple[str, ...]:
    """The next blank line or ``###`` ends an answer; rinna-sft's ``<NL>`` too (its line separator)."""
    return ("\n\n", "###", "<NL>") if template.fewshot_sep == "<NL>" else ("\n\n", "###")


def open_stops(template: PromptTemplate) -> tuple[str, ...]:
    """An open answer is one line."""
    return ("\n", "###", "<NL>") if template.fewshot_sep == "<NL>" else ("\n", "###")
