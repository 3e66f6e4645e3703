"""Cross-check against a peer: lm-eval 0.4's HF wrapper scores the token ids kensa scored.

lm-eval 0.4 encodes context and continuation jointly (``_encode_pair``), the jp-stable harness
separately; so the comparison is at the token level: kensa's own encoded requests go to
lm-eval's ``HFLM._loglikelihood_tokens``, on the same model object. Log-likelihoods must agree
within 1e-4, is-greedy flags exactly, and the final metrics computed the harness's way (numpy
argmax, lm-eval's ``mean``) must equal kensa's.
"""

from __future__ import annotations

import numpy as np
import pytest

from kensa.data import DataSource
from kensa.run.multiple_choice import evaluate_multiple_choice
from kensa.tasks.render import prepare
from tests.helpers import crosscheck_tasks, tiered

lm_eval = pytest.importorskip("lm_eval", reason="lm-eval is the peer oracle; `make install` installs it (extra 'peer')")
# Every multiple-choice variant is checked (a new task is covered without a new test): one version per task
# in the default tier, the rest marked slow (tests.helpers.tiered).
VARIANTS = tiered([v for t in crosscheck_tasks() if t.kind == "multiple_choice" for v in t.variants()])


@pytest.fixture(scope="module")
def peer(tiny_llama):
    from lm_eval.models.huggingface import HFLM

    return HFLM(pretrained=tiny_llama.model, tokenizer=tiny_llama.tokenizer, device="cpu", batch_size=4,
                max_length=tiny_llama.max_length)


@pytest.mark.parametrize("variant", VARIANTS)
def test_lm_eval_scores_kensas_tokens_identically(variant, tiny_llama, peer):
    from lm_eval.api.metrics import mean

    task = variant.task
    eval_split, pool = task.load(DataSource.fixtures())
    k = task.num_fewshot
    run = evaluate_multiple_choice(variant, tiny_llama, eval_split, pool, k, limit=12)
    docs = prepare(variant, eval_split, pool, k, limit=12)
    requests = []
    for d in docs:
        for c in d.continuations:
            whole, n = tiny_llama.encode_pair(d.prompt, c)
            requests.append(((d.prompt, c), whole[:-n], whole[-n:]))
    theirs = peer._loglikelihood_tokens(requests, disable_tqdm=True)
    ours = [(ll, greedy) for s in run.samples for ll, greedy in zip(s["loglikelihoods"], s["is_greedy"])]
    assert len(theirs) == len(ours)
    for (ll_a, g_a), (ll_b, g_b) in zip(ours, theirs):
        assert ll_a == pytest.approx(ll_b, abs=1e-4)
        assert g_a == g_b
    # The final metrics, computed from lm-eval's numbers the harness's way.
    pos, acc, acc_norm = 0, [], []
    for d in docs:
        lls = np.array([theirs[pos + i][0] for i in range(len(d.continuations))])
        pos += len(d.continuations)
        acc.append(float(np.argmax(lls) == d.gold))
        lengths = np.array([len(c) for c in d.continuations])
        acc_norm.append(float(np.argmax(lls / lengths) == d.gold))
    if "acc" in run.metrics:
        assert run.metrics["acc"] == mean(acc)
    if "acc_norm" in run.metrics:
        assert run.metrics["acc_norm"] == mean(acc_norm)
