"""Content-based recommendations from item attributes (TF-IDF text, categories, numbers).

Each item becomes a vector of three blocks, each L2-normalized and weighted, then normalized as
a whole: TF-IDF over its free-text fields (title, description, ...), one-hot categorical
attributes (including every value of list attributes such as genres), and standardized numeric
attributes. A user's profile is the weighted mean of the vectors of the items in their row
(negative feedback subtracts), and an item's score is its cosine with the profile. Items with
no interactions at all are scored too — the model's vocabulary is the whole catalog — which is
how brand-new items reach users and item pages.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.decomposition import TruncatedSVD
from sklearn.feature_extraction import DictVectorizer
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.preprocessing import StandardScaler, normalize

from attune.errors import ValidationFailed
from attune.recommend.data import Interactions
from attune.recommend.models.ann import ANN_THRESHOLD, VectorModel
from attune.recommend.models.base import ItemAttributes, check_recency_tau, recency_weighted

#: Attributes that describe serving rules or identity rather than content.
IGNORED_ATTRIBUTES = frozenset({"item_id", "available", "url", "image", "image_url"})


class ContentBased(VectorModel):
    """Cosine similarity between a user's profile and item attribute vectors.

    With ``recency_tau`` the profile weights each row item by
    ``exp(-position_from_newest / recency_tau)``. ``text_fields=None`` treats every string attribute whose values mostly contain spaces as
    free text; other strings, booleans and lists are categorical; numbers are numeric.
    """

    name = "content"
    uses_item_attributes = True

    def __init__(
        self,
        text_fields: Sequence[str] | None = None,
        text_weight: float = 1.0,
        categorical_weight: float = 1.0,
        numeric_weight: float = 0.3,
        max_features: int = 50_000,
        ann_threshold: int = ANN_THRESHOLD,
        ann_dimensions: int = 128,
        recency_tau: float | None = None,
    ) -> None:
        self.text_fields = text_fields
        self.text_weight = text_weight
        self.categorical_weight = categorical_weight
        self.numeric_weight = numeric_weight
        self.max_features = max_features
        self.ann_threshold = ann_threshold
        self.ann_dimensions = ann_dimensions
        self.recency_tau = recency_tau

    def _fit(self, matrix: sp.csr_matrix, data: Interactions, items: ItemAttributes | None) -> None:
        check_recency_tau(self.recency_tau)
        if not items:
            raise ValidationFailed(
                "the content model needs item attributes (title, genres, description, ...): import items first"
            )
        self.item_vectors_ = item_feature_matrix(
            [str(i) for i in data.item_ids],
            items,
            text_fields=self.text_fields,
            weights=(float(self.text_weight), float(self.categorical_weight), float(self.numeric_weight)),
            max_features=int(self.max_features),
        )
        if self.item_vectors_.nnz == 0:
            raise ValidationFailed(
                "the content model found no usable item attributes (text, categories or numbers)"
            )
        self.projection_ = None
        if len(data.item_ids) > int(self.ann_threshold):
            # HNSW needs dense vectors: project the sparse features onto their main directions.
            dims = max(1, min(int(self.ann_dimensions), self.item_vectors_.shape[1] - 1))
            svd = TruncatedSVD(n_components=dims, random_state=0).fit(self.item_vectors_)
            self.projection_ = svd.components_.T.astype(np.float32)

    def _profiles(self, rows: sp.csr_matrix, ranks: sp.csr_matrix | None = None) -> sp.csr_matrix:
        """Weighted mean of the row items' vectors, as unit vectors (zero for empty rows)."""
        weighted = recency_weighted(
            sp.csr_matrix(rows, dtype=np.float32), ranks, getattr(self, "recency_tau", None)
        )
        return normalize(weighted @ self.item_vectors_)

    def _score(self, rows: sp.csr_matrix, ranks: sp.csr_matrix | None = None) -> np.ndarray:
        return np.asarray((self._profiles(rows, ranks) @ self.item_vectors_.T).toarray())

    def _similar(self, index: int) -> np.ndarray:
        return np.asarray((self.item_vectors_ @ self.item_vectors_[index].T).toarray()).ravel()

    # Dense vectors exist only for the ANN path (large catalogs).
    def _user_vectors(self, rows: sp.csr_matrix, ranks: sp.csr_matrix | None = None) -> np.ndarray:
        return normalize(np.asarray(self._profiles(rows, ranks) @ self.projection_))

    def _item_vectors(self) -> np.ndarray:
        cached = self.__dict__.get("_dense_items")
        if cached is None:
            cached = normalize(np.asarray(self.item_vectors_ @ self.projection_)).astype(np.float32)
            self.__dict__["_dense_items"] = cached
        return cached

    def _reset_caches(self) -> None:
        super()._reset_caches()
        self.__dict__.pop("_dense_items", None)


def item_feature_matrix(
    item_ids: Sequence[str],
    items: Mapping[str, Mapping[str, Any]],
    text_fields: Sequence[str] | None = None,
    weights: tuple[float, float, float] = (1.0, 1.0, 0.3),
    max_features: int = 50_000,
) -> sp.csr_matrix:
    """Unit-length attribute vectors, one row per id in ``item_ids`` (zero rows for unknown items)."""
    records = [items.get(i) or {} for i in item_ids]
    kinds = _field_kinds(records, text_fields)
    blocks = []
    text_w, cat_w, num_w = weights
    text = [" ".join(_as_text(r.get(f)) for f in kinds["text"] if r.get(f) is not None) for r in records]
    if kinds["text"] and text_w > 0 and any(t.strip() for t in text):
        try:
            tfidf = TfidfVectorizer(sublinear_tf=True, stop_words="english", max_features=max_features)
            blocks.append(text_w * normalize(tfidf.fit_transform(text)))
        except ValueError:
            pass  # only stop words: no text signal
    if kinds["categorical"] and cat_w > 0:
        cats = [
            {f: _as_categorical(r[f]) for f in kinds["categorical"] if r.get(f) is not None} for r in records
        ]
        onehot = DictVectorizer(dtype=np.float32).fit_transform(cats)
        if onehot.shape[1]:
            blocks.append(cat_w * normalize(onehot))
    if kinds["numeric"] and num_w > 0:
        values = np.array(
            [[_as_number(r.get(f)) for f in kinds["numeric"]] for r in records], dtype=np.float64
        )
        column_means = np.nanmean(np.where(np.isnan(values).all(axis=0), 0.0, values), axis=0)
        values = np.where(np.isnan(values), column_means, values)  # missing -> average item
        scaled = StandardScaler().fit_transform(values)
        blocks.append(num_w * normalize(sp.csr_matrix(scaled)))
    if not blocks:
        return sp.csr_matrix((len(item_ids), 0), dtype=np.float32)
    return normalize(sp.hstack(blocks).tocsr().astype(np.float32))


def _field_kinds(
    records: Sequence[Mapping[str, Any]], text_fields: Sequence[str] | None
) -> dict[str, list[str]]:
    """Sort attribute names into text, categorical and numeric by the values they hold."""
    samples: dict[str, list[Any]] = {}
    for record in records:
        for field, value in record.items():
            if field not in IGNORED_ATTRIBUTES and value is not None and value != "":
                samples.setdefault(field, []).append(value)
    kinds: dict[str, list[str]] = {"text": [], "categorical": [], "numeric": []}
    for field in sorted(samples):
        values = samples[field]
        if text_fields is not None and field in text_fields:
            kinds["text"].append(field)
        elif all(_is_number(v) for v in values):
            kinds["numeric"].append(field)
        elif all(isinstance(v, str) for v in values) and text_fields is None and _mostly_prose(values):
            kinds["text"].append(field)
        else:
            kinds["categorical"].append(field)
    return kinds


def _is_number(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int | float):
        return True
    if isinstance(value, str):
        try:
            float(value)
        except ValueError:
            return False
        return True
    return False


def _mostly_prose(values: Sequence[str]) -> bool:
    return sum(" " in v.strip() for v in values) * 2 > len(values)


def _as_text(value: Any) -> str:
    if isinstance(value, list | tuple | set):
        return " ".join(str(v) for v in value)
    return str(value)


def _as_categorical(value: Any) -> Any:
    # DictVectorizer one-hots strings as field=value and each member of a list of strings.
    if isinstance(value, list | tuple | set):
        return [str(v) for v in value]
    if isinstance(value, str) and "|" in value:
        return [part.strip() for part in value.split("|") if part.strip()]
    return str(value)


def _as_number(value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return math.nan
    return number if math.isfinite(number) else math.nan
