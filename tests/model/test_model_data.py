"""Loader cleaning, the schema against the real data, and no train/test leakage."""

from __future__ import annotations

import gzip
import shutil

import numpy as np
import pandas as pd
import pytest

from pipeline.data import TEST_FILE, TRAIN_FILE, DataError, data_files_in, load_dataset, read_data_file
from pipeline.features import CATEGORICAL_MISSING
from pipeline.schema import RAW_COLUMNS, SCHEMA, CategoricalFeature, NumericFeature


@pytest.fixture(scope="module")
def train():
    return load_dataset(TRAIN_FILE)


@pytest.fixture(scope="module")
def test_split():
    return load_dataset(TEST_FILE)


def test_raw_training_file_is_cleaned(train):
    frame = train.frame
    assert len(frame) == 32561
    assert set(frame["income"]) == {">50K", "<=50K"}
    text = frame.select_dtypes(exclude="number")
    for column in text:
        values = text[column].dropna()
        assert not values.str.startswith(" ").any(), column
        assert not values.str.endswith(" ").any(), column
        assert not (values == "?").any(), column
    assert frame[["workclass", "occupation", "native_country"]].isna().sum().tolist() == [1836, 1843, 583]
    assert frame[SCHEMA.numeric].isna().sum().sum() == 0
    assert train.sources == {
        "adult.data.gz": "79d673241aeed099ca33f8cfca8928cf5223509841c9857b1af0d5d6326467ab"
    }


def test_raw_test_file_junk_line_and_label_dots_are_removed(test_split):
    frame = test_split.frame
    assert len(frame) == 16281  # 16,283 lines: the "|1x3 Cross validator" line and a blank one dropped
    assert set(frame["income"]) == {">50K", "<=50K"}
    assert frame.loc[0, "age"] == 25 and frame.loc[0, "income"] == "<=50K"
    assert round(test_split.positive_rate, 4) == 0.2362


def test_missing_becomes_the_single_model_frame_sentinel(train):
    assert (train.X["workclass"] == CATEGORICAL_MISSING).sum() == 1836
    assert train.X["workclass"].map(type).eq(str).all()


def test_plain_and_gzip_files_read_the_same(tmp_path, train):
    plain = tmp_path / "adult.data"
    plain.write_bytes(gzip.decompress(TRAIN_FILE.read_bytes()))
    again = load_dataset(plain)
    pd.testing.assert_frame_equal(again.frame, train.frame)
    assert again.sources["adult.data"] != train.sources["adult.data.gz"]


def _write_csv(path, frame: pd.DataFrame, header: list[str] | None = None) -> None:
    out = frame.copy()
    if header is not None:
        out.columns = header
    out.to_csv(path, index=False, na_rep="")


def test_csv_with_feature_header_in_any_order(tmp_path, train):
    subset = train.frame[[*SCHEMA.names, "income"]].head(300)
    shuffled = subset[list(reversed(subset.columns))]
    _write_csv(tmp_path / "train.csv", shuffled)
    loaded = load_dataset(tmp_path / "train.csv")
    pd.testing.assert_frame_equal(loaded.X, train.X.head(300))
    assert np.array_equal(loaded.y, train.y[:300])


def test_csv_with_raw_uci_header_spelling(tmp_path, train):
    subset = train.frame[list(RAW_COLUMNS)].head(50)
    header = [c.replace("_", "-").title() if c != "income" else "income" for c in RAW_COLUMNS]
    _write_csv(tmp_path / "raw-header.csv", subset, header)
    loaded = load_dataset(tmp_path / "raw-header.csv")
    pd.testing.assert_frame_equal(loaded.X, train.X.head(50))


@pytest.mark.parametrize(
    ("header_change", "message"),
    [
        (lambda cols: [c for c in cols if c != "age"], r"missing column\(s\): age"),
        (lambda cols: [*cols, "zip_code"], r"unexpected column\(s\): zip_code"),
        (lambda cols: [c for c in cols if c != "income"], r"missing column\(s\): income"),
    ],
    ids=["missing-feature", "unexpected", "no-label"],
)
def test_csv_with_wrong_columns_is_named(tmp_path, train, header_change, message):
    columns = header_change([*SCHEMA.names, "income"])
    frame = train.frame.head(5).assign(zip_code="12345")[columns]
    _write_csv(tmp_path / "bad.csv", frame)
    with pytest.raises(DataError, match=rf"bad\.csv: wrong columns: {message}"):
        load_dataset(tmp_path / "bad.csv")


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [
        ("age", "forty", r"column 'age' must be numeric; 1 value\(s\) are not, e.g. 'forty' in data row 3"),
        ("hours_per_week", "500", r"column 'hours_per_week' must lie in \[0, 168\]"),
        ("income", "rich", r"column 'income' must be '>50K' or '<=50K'; 1 value\(s\) are not, e.g. 'rich'"),
        ("income", "", r"column 'income' must be"),
    ],
)
def test_bad_values_are_named_with_row(tmp_path, train, column, value, message):
    frame = train.frame[[*SCHEMA.names, "income"]].head(5).astype(object)
    frame.loc[2, column] = value
    _write_csv(tmp_path / "values.csv", frame)
    with pytest.raises(DataError, match=message):
        load_dataset(tmp_path / "values.csv")


def test_unusable_files_get_clear_errors(tmp_path):
    (tmp_path / "empty.csv").write_text("\n\n")
    (tmp_path / "header-only.csv").write_text(",".join([*SCHEMA.names, "income"]) + "\n")
    (tmp_path / "binary.csv").write_bytes(b"\x00\xff\xfe" * 100)
    (tmp_path / "narrow.csv").write_text("1,2,3\n4,5,6\n")
    (tmp_path / "bad.gz").write_bytes(b"\x1f\x8b" + b"garbage")
    cases = {
        "empty.csv": "no data rows",
        "header-only.csv": r"no data rows \(only a header\)",
        "binary.csv": "not UTF-8 text",
        "narrow.csv": "unrecognised layout: the first row has 3 fields",
        "bad.gz": "corrupt gzip data",
    }
    for name, message in cases.items():
        with pytest.raises(DataError, match=message):
            read_data_file(tmp_path / name)


def test_channel_listing_skips_docs_and_hidden_files(tmp_path):
    for name in ("adult.data.gz", "adult.names.gz", ".hidden.csv", "sub/part-2.csv", "README.md"):
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x")
    assert [p.relative_to(tmp_path).as_posix() for p in data_files_in(tmp_path)] == [
        "adult.data.gz",
        "sub/part-2.csv",
    ]


def test_schema_categories_equal_those_in_adult_data(train):
    for feature in SCHEMA.features:
        column = train.frame[feature.name]
        if isinstance(feature, CategoricalFeature):
            assert set(feature.categories) == set(column.dropna()), feature.name
            assert list(feature.categories) == sorted(feature.categories), feature.name
            assert feature.optional == bool(column.isna().any()), feature.name
        else:
            assert isinstance(feature, NumericFeature)
            assert feature.minimum <= column.min() and column.max() <= feature.maximum, feature.name


def test_schema_round_trips_through_its_dict():
    from pipeline.schema import Schema

    assert Schema.from_dict(SCHEMA.to_dict()) == SCHEMA


def test_train_and_test_files_are_distinct_splits(train, test_split):
    assert set(train.sources.values()).isdisjoint(test_split.sources.values())
    assert len(train.y) + len(test_split.y) == 48842


def test_fitted_preprocessing_saw_only_training_rows(quick_model_dir, train, test_split):
    """Imputer medians, scaler means and one-hot levels are those of adult.data alone."""
    from pipeline.artifact import load_artifact

    artifact = load_artifact(quick_model_dir)
    preprocess = artifact.pipeline.named_steps["preprocess"]
    numeric = preprocess.named_transformers_["numeric"]
    assert np.allclose(numeric.named_steps["scale"].mean_, train.X[SCHEMA.numeric].mean().to_numpy())
    both = pd.concat([train.X, test_split.X])
    assert not np.allclose(numeric.named_steps["scale"].mean_, both[SCHEMA.numeric].mean().to_numpy())
    assert np.array_equal(
        numeric.named_steps["impute"].statistics_, train.X[SCHEMA.numeric].median().to_numpy()
    )
    onehot = preprocess.named_transformers_["categorical"].named_steps["onehot"]
    native = list(onehot.categories_[SCHEMA.categorical.index("native_country")])
    assert "Holand-Netherlands" in native  # present only in adult.data
    assert artifact.manifest["training"]["data"]["train"]["rows"] == 32561
    assert artifact.pipeline.named_steps["classify"].n_features_in_ == len(preprocess.get_feature_names_out())


def test_loading_many_files_concatenates_them(tmp_path, train):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    shutil.copy(TRAIN_FILE, a / "adult.data.gz")
    shutil.copy(TRAIN_FILE, b / "adult.data.gz")
    both = load_dataset([a / "adult.data.gz", b / "adult.data.gz"])
    assert len(both.y) == 2 * len(train.y)
    assert len(both.sources) == 2  # same file name in two folders stays two entries
