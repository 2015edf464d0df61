"""Active learning: selectors beyond assay's four strategies, on one data set.

A side study for `bench/active_learning.py`'s target (the best strategy needs at most half
the labels random needs to come within 1 point of the full-split macro-F1): the same oracle
(the true label), start (50 random rows), rounds of `--batch`, fast model and test macro-F1,
with selectors from the active-learning literature in place of assay's strategies. Rounds
before 100 labels are random, as assay's cold start.

Selectors:
- `random`, `margin` (assay's uncertainty on 2 classes: top 1 - (p1 - p2));
- `kmeans`: k-means (batch centres, MiniLM embeddings) among the 10 x batch most uncertain
  rows, weighted by uncertainty; the row nearest each centre;
- `power`: Gumbel top-k on 8 x log-uncertainty (a softened top-k);
- `embedding` / `embedding_mix`: the uncertainty of a logistic regression on MiniLM
  embeddings, alone or averaged with the fast model's probabilities;
- `contrastive`: CAL (Margatina et al. 2021): mean KL from the model's probabilities on a
  row's 10 nearest labelled rows (MiniLM) to its own;
- `views`: a committee of the fast model on word n-grams, char n-grams and both; mean KL to
  the committee's mean;
- `bagging`: a committee of 5 fast models on bootstrap samples; mean KL to its mean;
- `badge`: k-means++ seeding on the fast model's gradient embeddings (Ash et al. 2020);
- `density`: margin x mean cosine to the 20 nearest pool rows (information density,
  Settles and Craven 2008);
- `coverage`: margin x (0.1 + weight of the row's words no labelled row has)^0.5, greedy
  over the 10 x batch most uncertain, the weight log(1 + pool document frequency);
- `c1`: the margin of a more regularised selection model (C=1 instead of 4).

    python bench/active_selectors.py [--dataset sst2] [--selectors margin density ...]
        [--seeds 3] [--max-labels 3050] [--json]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from active_learning import START, full_f1, load, macro_f1, summarise

from assay.curate import active
from assay.embedding_cache import EmbeddingCache
from assay.train.fast import FastModel

SELECTORS = ("random", "margin", "kmeans", "power", "embedding", "embedding_mix",
             "contrastive", "views", "bagging", "badge", "density", "coverage", "c1")  # fmt: skip
COLD = 100  # labels below which every selector picks at random


def margin(p: np.ndarray) -> np.ndarray:
    return active.uncertainty(p, "margin")


def kl(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    p, q = np.clip(p, 1e-9, 1), np.clip(q, 1e-9, 1)
    return (p * np.log(p / q)).sum(-1)


def committee_disagreement(probas: list[np.ndarray]) -> np.ndarray:
    stack = np.stack(probas)
    mean = stack.mean(0)
    return np.mean([kl(q, mean) for q in stack], axis=0) + 1e-3 * margin(mean)


def aligned(model: FastModel, reference: list[str], proba: np.ndarray) -> np.ndarray:
    out = np.zeros((proba.shape[0], len(reference)))
    for j, c in enumerate(model.classes_):
        out[:, reference.index(c)] = proba[:, j]
    return out


class Study:
    """One data set's texts, labels, MiniLM embeddings and word sets, shared by the curves."""

    def __init__(self, name: str, cache_dir: str | None) -> None:
        self.train, self.test = load(name)
        self.texts = self.train["text"].to_list()
        self.labels = np.array(self.train["label"].to_list())
        self.classes = sorted(set(self.labels.tolist()) | set(self.test["label"].to_list()))
        vectors = EmbeddingCache(cache_dir).embed(self.texts)
        self.unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
        import scipy.sparse as sp

        words = [sorted(set(re.findall(r"\w+", t.lower()))) for t in self.texts]
        vocab = {w: i for i, w in enumerate(sorted({w for ws in words for w in ws}))}
        rows = np.repeat(np.arange(len(words)), [len(ws) for ws in words])
        cols = np.array([vocab[w] for ws in words for w in ws])
        self.words = sp.csr_matrix(
            (np.ones(len(cols)), (rows, cols)), shape=(len(words), len(vocab))
        )
        self.word_weight = np.log1p(np.asarray(self.words.sum(0)).ravel())

    def fit(self, rows: np.ndarray, seed: int, **options) -> FastModel:
        return FastModel(seed=seed, **options).fit(
            [self.texts[i] for i in rows], self.labels[rows].tolist()
        )

    def curve(self, selector: str, seed: int, batch: int, max_labels: int) -> list:
        rng = np.random.default_rng(seed)
        n = len(self.texts)
        labelled = np.zeros(n, dtype=bool)
        labelled[rng.choice(n, START, replace=False)] = True
        out = []
        while True:
            idx = np.flatnonzero(labelled)
            model = self.fit(idx, seed)
            out.append((int(idx.size), macro_f1(model, self.test, self.classes)))
            if idx.size >= max_labels or idx.size >= n:
                return out
            pool = np.flatnonzero(~labelled)
            k = min(batch, max_labels - idx.size)
            if idx.size < COLD or selector == "random":
                labelled[rng.choice(pool, k, replace=False)] = True
            else:
                labelled[pool[self.choose(selector, model, idx, pool, k, seed, rng)]] = True

    def choose(self, selector, model, idx, pool, k, seed, rng) -> np.ndarray:
        """Positions in `pool` of the next batch."""
        texts = [self.texts[i] for i in pool]
        p = model.predict_proba(texts)
        u = margin(p)
        if selector == "kmeans":
            return self._kmeans(u, pool, k, seed)
        if selector == "badge":
            return self._badge(model, texts, p, k, rng)
        if selector == "coverage":
            return self._coverage(u, idx, pool, k)
        if selector == "margin":
            score = u
        elif selector == "power":
            score = 8 * np.log(np.clip(u, 1e-9, None)) + rng.gumbel(size=u.size)
        elif selector in ("embedding", "embedding_mix"):
            from sklearn.linear_model import LogisticRegression

            lr = LogisticRegression(C=1.0, max_iter=1000).fit(self.unit[idx], self.labels[idx])
            pe = lr.predict_proba(self.unit[pool])  # classes sorted, as the fast model's
            score = margin(pe if selector == "embedding" else (p + pe) / 2)
        elif selector == "contrastive":
            own = model.predict_proba([self.texts[i] for i in idx])
            sims = self.unit[pool] @ self.unit[idx].T
            near = np.argpartition(-sims, 10, axis=1)[:, :10]
            score = np.mean([kl(own[near[:, j]], p) for j in range(10)], axis=0)
        elif selector == "views":
            probas = [p] + [
                self.fit(idx, seed, **{off: None}).predict_proba(texts)
                for off in ("char_ngrams", "word_ngrams")
            ]
            score = committee_disagreement(probas)
        elif selector == "bagging":
            probas = []
            for _ in range(5):
                draw = rng.choice(idx, idx.size, replace=True)
                while len(set(self.labels[draw])) < len(set(self.labels[idx])):
                    draw = rng.choice(idx, idx.size, replace=True)
                member = self.fit(draw, seed)
                probas.append(aligned(member, list(model.classes_), member.predict_proba(texts)))
            score = committee_disagreement(probas)
        elif selector == "density":
            sims = self.unit[pool] @ self.unit[pool].T
            near = -np.partition(-sims, 20, axis=1)[:, 1:21]
            score = u * np.clip(near.mean(1), 1e-6, None)
        elif selector == "c1":
            score = margin(self.fit(idx, seed, C=1.0).predict_proba(texts))
        else:
            raise SystemExit(f"unknown selector {selector!r}; expected one of {SELECTORS}")
        return np.lexsort((rng.random(len(pool)), -score))[:k]

    def _kmeans(self, u, pool, k, seed) -> np.ndarray:
        from sklearn.cluster import KMeans

        top = np.argsort(-u, kind="stable")[: 10 * k]
        x = self.unit[pool[top]]
        dist = KMeans(k, n_init=1, random_state=seed).fit(x, sample_weight=u[top]).transform(x)
        chosen: list[int] = []
        for j in range(k):
            chosen.append(next(int(o) for o in np.argsort(dist[:, j]) if o not in chosen))
        return top[np.array(chosen)]

    def _badge(self, model, texts, p, k, rng) -> np.ndarray:
        x = model.features(texts)
        g = p.copy()
        g[np.arange(len(texts)), p.argmax(1)] -= 1  # the loss gradient's class factor
        sq = (g * g).sum(1) * np.asarray(x.multiply(x).sum(1)).ravel()

        def dist2(j: int) -> np.ndarray:
            return sq + sq[j] - 2 * (g @ g[j]) * np.asarray((x @ x[j].T).todense()).ravel()

        chosen = [int(np.argmax(sq))]
        nearest = dist2(chosen[0])
        for _ in range(k - 1):
            d = np.clip(nearest, 0, None)
            d[chosen] = 0
            chosen.append(int(rng.choice(len(texts), p=d / d.sum())))
            nearest = np.minimum(nearest, dist2(chosen[-1]))
        return np.array(chosen)

    def _coverage(self, u, idx, pool, k) -> np.ndarray:
        seen = np.asarray(self.words[idx].sum(0)).ravel() > 0
        weight = self.word_weight * ~seen
        top = np.argsort(-u, kind="stable")[: 10 * k]
        words = self.words[pool[top]].tocsr()
        chosen: list[int] = []
        for _ in range(k):
            score = u[top] * (0.1 + words @ weight) ** 0.5
            score[chosen] = -1
            chosen.append(int(np.argmax(score)))
            weight[words[chosen[-1]].indices] = 0
        return top[np.array(chosen)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="sst2")
    parser.add_argument("--selectors", nargs="+", default=list(SELECTORS))
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--max-labels", type=int, default=3050)
    parser.add_argument("--cache-dir", default=None, help="keep MiniLM embeddings here")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    study = Study(args.dataset, args.cache_dir)
    full = full_f1(study.train, study.test)
    print(f"{args.dataset}: full train split macro-F1 {full:.4f}; to reach: {full - 0.01:.4f}")
    results = {}
    for selector in args.selectors:
        started = time.perf_counter()
        curves = [study.curve(selector, s, args.batch, args.max_labels) for s in range(args.seeds)]
        r = summarise(curves, full)
        r["seconds"] = round(time.perf_counter() - started, 1)
        results[selector] = r
        print(
            f"{selector:<14} to 1pt {r['labels_to_within_1pt'] or '>' + str(args.max_labels):>6}"
            f"  AUC {r['auc']:.4f}  macro-F1 at {r['labels'][-1]}: {r['final_macro_f1']:.4f} "
            f"[{r['ci_low'][-1]:.4f}, {r['ci_high'][-1]:.4f}]  ({r['seconds']} s)",
            flush=True,
        )
    if args.json:
        params = {k: v for k, v in vars(args).items() if k not in ("json", "cache_dir")}
        print(json.dumps({"bench": "active_selectors", "params": params, "full": full,
                          "results": results}))  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
