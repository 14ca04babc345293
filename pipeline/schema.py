"""The one definition of the model's input: feature names, kinds, categories, ranges, missing values.

Training, the serving container, the Lambda proxy's docs and the OpenAPI description all read this
module (or the copy of it that training writes into ``manifest.json``); nothing else lists features.

Raw UCI Adult columns that are *not* features, and why:

* ``fnlwgt``: the Census Bureau's survey weight (how many people a row stands for). It describes the
  sampling, not the person, so a caller could not supply it for a new applicant.
* ``education``: a text label that maps one-to-one onto ``education_num``; keeping both would
  duplicate the same information under two encodings.
* ``income``: the target.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

RAW_COLUMNS: tuple[str, ...] = (
    "age",
    "workclass",
    "fnlwgt",
    "education",
    "education_num",
    "marital_status",
    "occupation",
    "relationship",
    "race",
    "sex",
    "capital_gain",
    "capital_loss",
    "hours_per_week",
    "native_country",
    "income",
)
DROPPED_COLUMNS: dict[str, str] = {
    "fnlwgt": "survey sampling weight: describes the sample, not the person",
    "education": "one-to-one text duplicate of education_num",
}
TARGET = "income"
POSITIVE_LABEL = ">50K"
NEGATIVE_LABEL = "<=50K"

# Spellings of "no value" after surrounding whitespace is stripped. `?` is how the raw UCI files
# mark missing values; callers may send it too, so it means the same as null everywhere.
MISSING_TOKENS: frozenset[str] = frozenset({"", "?"})


@dataclass(frozen=True)
class NumericFeature:
    """A numeric input with the domain a valid value must lie in (inclusive)."""

    name: str
    description: str
    minimum: float
    maximum: float
    optional: bool = False
    kind: str = field(default="numeric", init=False)


@dataclass(frozen=True)
class CategoricalFeature:
    """A categorical input; ``categories`` are those seen in training (others are allowed but ignored)."""

    name: str
    description: str
    categories: tuple[str, ...]
    optional: bool = False
    kind: str = field(default="categorical", init=False)


Feature = NumericFeature | CategoricalFeature

# `optional=True` means the key may be absent from a record (then it is treated as missing). Every
# feature may be explicitly null: the pipeline imputes it. Only the three columns that are really
# missing in the census data are optional, so a typo in any other key is caught as "missing field".
FEATURES: tuple[Feature, ...] = (
    NumericFeature("age", "Age in years", 0, 120),
    CategoricalFeature(
        "workclass",
        "Employer type",
        (
            "Federal-gov",
            "Local-gov",
            "Never-worked",
            "Private",
            "Self-emp-inc",
            "Self-emp-not-inc",
            "State-gov",
            "Without-pay",
        ),
        optional=True,
    ),
    NumericFeature("education_num", "Years of education, 1 (preschool) to 16 (doctorate)", 1, 16),
    CategoricalFeature(
        "marital_status",
        "Marital status",
        (
            "Divorced",
            "Married-AF-spouse",
            "Married-civ-spouse",
            "Married-spouse-absent",
            "Never-married",
            "Separated",
            "Widowed",
        ),
    ),
    CategoricalFeature(
        "occupation",
        "Occupation group",
        (
            "Adm-clerical",
            "Armed-Forces",
            "Craft-repair",
            "Exec-managerial",
            "Farming-fishing",
            "Handlers-cleaners",
            "Machine-op-inspct",
            "Other-service",
            "Priv-house-serv",
            "Prof-specialty",
            "Protective-serv",
            "Sales",
            "Tech-support",
            "Transport-moving",
        ),
        optional=True,
    ),
    CategoricalFeature(
        "relationship",
        "Role in the household",
        ("Husband", "Not-in-family", "Other-relative", "Own-child", "Unmarried", "Wife"),
    ),
    CategoricalFeature(
        "race",
        "Race as recorded by the 1994 Current Population Survey",
        ("Amer-Indian-Eskimo", "Asian-Pac-Islander", "Black", "Other", "White"),
    ),
    CategoricalFeature("sex", "Sex as recorded by the survey", ("Female", "Male")),
    NumericFeature("capital_gain", "Capital gains in USD", 0, 1_000_000),
    NumericFeature("capital_loss", "Capital losses in USD", 0, 1_000_000),
    NumericFeature("hours_per_week", "Usual hours worked per week", 0, 168),
    CategoricalFeature(
        "native_country",
        "Country of birth",
        (
            "Cambodia",
            "Canada",
            "China",
            "Columbia",
            "Cuba",
            "Dominican-Republic",
            "Ecuador",
            "El-Salvador",
            "England",
            "France",
            "Germany",
            "Greece",
            "Guatemala",
            "Haiti",
            "Holand-Netherlands",
            "Honduras",
            "Hong",
            "Hungary",
            "India",
            "Iran",
            "Ireland",
            "Italy",
            "Jamaica",
            "Japan",
            "Laos",
            "Mexico",
            "Nicaragua",
            "Outlying-US(Guam-USVI-etc)",
            "Peru",
            "Philippines",
            "Poland",
            "Portugal",
            "Puerto-Rico",
            "Scotland",
            "South",
            "Taiwan",
            "Thailand",
            "Trinadad&Tobago",
            "United-States",
            "Vietnam",
            "Yugoslavia",
        ),
        optional=True,
    ),
)


@dataclass(frozen=True)
class Schema:
    """An ordered set of features plus the target's labels; serialisable into the artifact manifest."""

    features: tuple[Feature, ...] = FEATURES
    target: str = TARGET
    positive_label: str = POSITIVE_LABEL
    negative_label: str = NEGATIVE_LABEL

    @property
    def names(self) -> list[str]:
        """Feature names in the order the model expects them (also the CSV column order)."""
        return [f.name for f in self.features]

    @property
    def numeric(self) -> list[str]:
        return [f.name for f in self.features if isinstance(f, NumericFeature)]

    @property
    def categorical(self) -> list[str]:
        return [f.name for f in self.features if isinstance(f, CategoricalFeature)]

    def feature(self, name: str) -> Feature:
        """The feature called ``name`` (KeyError if there is none)."""
        for f in self.features:
            if f.name == name:
                return f
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description, stored in ``manifest.json``."""
        features = []
        for f in self.features:
            d = asdict(f)
            if isinstance(f, CategoricalFeature):
                d["categories"] = list(f.categories)
            features.append(d)
        return {
            "features": features,
            "target": self.target,
            "positive_label": self.positive_label,
            "negative_label": self.negative_label,
            "missing_tokens": sorted(MISSING_TOKENS),
            "dropped_columns": DROPPED_COLUMNS,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Schema:
        """Rebuild a schema from :meth:`to_dict` output (as read back from a manifest)."""
        features: list[Feature] = []
        for d in data["features"]:
            common = {"name": d["name"], "description": d["description"], "optional": d["optional"]}
            if d["kind"] == "numeric":
                features.append(NumericFeature(minimum=d["minimum"], maximum=d["maximum"], **common))
            elif d["kind"] == "categorical":
                features.append(CategoricalFeature(categories=tuple(d["categories"]), **common))
            else:
                raise ValueError(f"unknown feature kind {d['kind']!r} for {d['name']!r}")
        return cls(
            features=tuple(features),
            target=data["target"],
            positive_label=data["positive_label"],
            negative_label=data["negative_label"],
        )


SCHEMA = Schema()


def is_missing(value: object) -> bool:
    """True for every spelling of "no value": None, NaN, and the MISSING_TOKENS strings."""
    if value is None:
        return True
    if isinstance(value, float):
        return math.isnan(value)
    if isinstance(value, str):
        return value.strip() in MISSING_TOKENS
    return False


EXAMPLE_RECORD: dict[str, object] = {
    "age": 39,
    "workclass": "State-gov",
    "education_num": 13,
    "marital_status": "Never-married",
    "occupation": "Adm-clerical",
    "relationship": "Not-in-family",
    "race": "White",
    "sex": "Male",
    "capital_gain": 2174,
    "capital_loss": 0,
    "hours_per_week": 40,
    "native_country": "United-States",
}
"""One valid record (the first row of ``adult.data``): the example in docs, the demo, benches and tests."""
