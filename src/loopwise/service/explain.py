"""Why the model said what it said, for the person reviewing it: the features of a tabular
item that moved the model's prediction most.

Occlusion against the training inputs: each feature in turn is set to its mean over the
champion's training rows (kept by its novelty detector) and the drop in the predicted
class's probability is that feature's effect — one batched ``predict_proba`` of ``d`` rows.
It works for any model, says nothing causal, and is labelled as such on the page.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from loopwise.domain import InputKind
from loopwise.learning import featurize
from loopwise.service.base import Principal, ServiceBase
from loopwise.store.tables import items

TOP = 3
"""Features highlighted per item."""


class ExplainMixin(ServiceBase):
    def explain(self, actor: Principal, project: str, item_id: int) -> dict[str, Any]:
        """The features that moved the champion's prediction of an item most.

        Returns ``{"label": predicted label, "effects": [{"feature", "value", "effect"}]}``
        (``effect``: how much the predicted label's probability falls when the feature is
        set to its training mean; largest first, at most :data:`TOP`), or ``{"effects": []}``
        when the project has no tabular champion or its item cannot be scored.
        """
        self.require_reader(actor)
        with self.reading() as conn:
            p = self.project_row(conn, project)
            if p.champion_id is None or p.input_kind != InputKind.TABULAR:
                return {"effects": []}
            data = conn.execute(
                items.select().with_only_columns(items.c.data)
                .where(items.c.id == item_id, items.c.project_id == p.id)
            ).scalar()
            model = self.load_model(conn, p.champion_id)
            det = self.load_novelty(conn, p.champion_id, 0.01)
        if data is None or det is None or det.mean_ is None or not model.features:
            return {"effects": []}
        try:
            x = np.asarray(featurize(model.kind, [data], model.features), dtype=np.float64)
        except Exception:  # an item the model cannot read: nothing to show, nothing to break
            return {"effects": []}
        d = x.shape[1]
        rows = np.repeat(x, d + 1, axis=0)
        rows[np.arange(1, d + 1), np.arange(d)] = det.mean_
        proba = np.asarray(model.estimator.predict_proba(rows), dtype=np.float64)
        top = int(np.argmax(proba[0]))
        effect = proba[0, top] - proba[1:, top]
        order = np.argsort(-np.abs(effect), kind="stable")[:TOP]
        return {
            "label": p.labels[model.classes[top]],
            "effects": [
                {"feature": model.features[j], "value": float(x[0, j]),
                 "effect": float(effect[j])}
                for j in order.tolist() if abs(effect[j]) > 1e-6
            ],
        }
