"""The preprocessing half of the model: one ColumnTransformer saved inside the fitted Pipeline.

It expects the output of :func:`pipeline.features.to_model_frame` (NaN for missing numbers, ``""``
for missing categories), so preprocessing at serving time is exactly the one fitted in training.
"""

from __future__ import annotations

from sklearn.base import BaseEstimator
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from pipeline.features import CATEGORICAL_MISSING
from pipeline.schema import SCHEMA, Schema

CATEGORICAL_FILL_VALUE = "missing"
"""What a missing category becomes before one-hot encoding: its own level where training saw it."""


def build_preprocessor(schema: Schema = SCHEMA) -> ColumnTransformer:
    """Numeric: median imputation + standard scaling; categorical: constant imputation + one-hot.

    Unknown categories at inference encode as all zeros (``handle_unknown="ignore"``). The output is
    dense (``sparse_output=False``): HistGradientBoosting rejects sparse input and ONNX export wants dense.
    """
    numeric = Pipeline(
        [
            ("impute", SimpleImputer(strategy="median")),
            ("scale", StandardScaler()),
        ]
    )
    categorical = Pipeline(
        [
            (
                "impute",
                SimpleImputer(
                    missing_values=CATEGORICAL_MISSING,
                    strategy="constant",
                    fill_value=CATEGORICAL_FILL_VALUE,
                ),
            ),
            ("onehot", OneHotEncoder(handle_unknown="ignore", sparse_output=False)),
        ]
    )
    return ColumnTransformer(
        [
            ("numeric", numeric, schema.numeric),
            ("categorical", categorical, schema.categorical),
        ],
        remainder="drop",
        verbose_feature_names_out=True,
    )


def build_pipeline(classifier: BaseEstimator, schema: Schema = SCHEMA) -> Pipeline:
    """The full model: preprocessing followed by ``classifier`` (steps ``preprocess`` and ``classify``)."""
    return Pipeline([("preprocess", build_preprocessor(schema)), ("classify", classifier)])
