"""MACE — Multi-Annotator Competence Estimation (Hovy, Berg-Kirkpatrick, Vaswani & Hovy
2013), by vectorised EM.

Each reviewer ``r`` either knows the answer (probability ``competence[r]``) and gives the
true label, or spams, drawing a label from their own distribution ``spam[r]``. So
``skills[r] = competence[r] * I + (1 - competence[r]) * spam[r]`` (every row the same
spam distribution): a spammer who always answers the majority class gets competence near
0 however often the majority class is right.

E-step as Dawid–Skene's (one sparse product). M-step: the expected share of "knew it" for
an answer ``l`` is ``q(l) * c / (c + (1 - c) * spam[l])`` with ``q`` the item's posterior;
competence and spam distributions are these expected counts plus ``smoothing * k``
pseudo-answers at the crowd's pooled values. Unlike the original (uniform class prior,
random restarts) the class prior is estimated and EM starts once, from vote shares.

>>> import numpy as np
>>> from loopwise.consensus.answers import as_answers
>>> a = as_answers([0, 0, 0, 1, 1, 1], [0, 1, 2, 0, 1, 2], [1, 1, 0, 0, 0, 0])
>>> mace(a, random_state=0).labels.tolist()
[1, 0]
"""

from __future__ import annotations

import numpy as np

from loopwise.consensus.answers import Answers, FloatArray, Gold, Seed, gold_labels
from loopwise.consensus.dawid_skene import class_prior, run_em
from loopwise.consensus.result import Aggregation, finish


def mace_skills(competence: FloatArray, spam: FloatArray) -> FloatArray:
    """``(n_reviewers, k, k)`` confusion matrices of MACE reviewers.

    >>> mace_skills(np.array([0.5]), np.array([[1.0, 0.0]]))[0].tolist()
    [[1.0, 0.0], [0.5, 0.5]]
    """
    k = spam.shape[1]
    out = np.repeat(((1.0 - competence)[:, None] * spam)[:, None, :], k, axis=1)
    idx = np.arange(k)
    out[:, idx, idx] += competence[:, None]
    return out


def mace(
    answers: Answers,
    *,
    gold: Gold = None,
    smoothing: float = 2.0,
    max_iter: int = 100,
    tol: float = 1e-5,
    random_state: Seed = None,
) -> Aggregation:
    """MACE by EM; ``skills`` are the implied confusion matrices."""
    if smoothing < 0:
        raise ValueError(f"smoothing must be >= 0, got {smoothing}")
    k, n_r = answers.n_classes, answers.n_reviewers
    g = gold_labels(gold, answers.n_items, k)
    rv, lb = answers.reviewers, answers.labels
    n_answers = np.bincount(rv, minlength=n_r).astype(np.float64)
    competence = np.full(n_r, 0.5)
    spam = np.full((n_r, k), 1.0 / k)
    pseudo = smoothing * k

    def m_step(post: FloatArray) -> tuple[FloatArray, FloatArray]:
        nonlocal competence, spam
        c = competence[rv]
        knew = post[answers.items, lb] * c / (c + (1.0 - c) * spam[rv, lb])
        knew_r = np.bincount(rv, weights=knew, minlength=n_r)
        spam_rl = np.bincount(rv * k + lb, weights=1.0 - knew, minlength=n_r * k)
        spam_rl = spam_rl.reshape(n_r, k)
        pooled_c = knew_r.sum() / max(n_answers.sum(), 1.0)
        pooled_spam = (spam_rl.sum(axis=0) + 1e-10) / (spam_rl.sum() + k * 1e-10)
        competence = np.clip(
            (knew_r + pseudo * pooled_c) / np.maximum(n_answers + pseudo, 1e-10), 1e-6, 1 - 1e-6
        )
        spam_counts = spam_rl + pseudo * pooled_spam + 1e-10
        spam = spam_counts / spam_counts.sum(axis=1, keepdims=True)
        return mace_skills(competence, spam), class_prior(answers, post, g, smoothing)

    post, skills, prior, it, ok, ll = run_em(
        answers, m_step, g, init_skills=None, max_iter=max_iter, tol=tol
    )
    rng = np.random.default_rng(random_state)
    return finish(
        answers, post, prior, skills, "mace", rng, g, n_iter=it, converged=ok, log_likelihood=ll
    )
