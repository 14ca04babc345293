"""Cut the exported graph where its preprocessing meets its classifier, to replace the string half.

The skl2onnx graph takes one tensor per feature, imputes and scales the numeric ones, one-hot
encodes the categorical ones (string operators: ``LabelEncoder``, ``OneHotEncoder``), concatenates
both blocks and feeds the classifier. :func:`cut_graph` finds that concatenation and returns:

* a session that computes the **numeric block** from the numeric inputs (cheap ONNX operators, kept
  in ONNX Runtime so the imputation and scaling stay bit for bit the graph's own); and, when that
  branch is the plain impute-then-scale chain in double, the same as a :class:`NumericPlan` of
  Python arithmetic for one-row calls, where a session run's fixed cost would dominate;
* for every categorical feature, a ``value -> one-hot column`` index, so the **categorical block**
  is a lookup per value instead of string operators. The index is not read from operator
  attributes: it is learned by feeding every string the branch's lookup operators know through
  the full graph and reading the block back, so it is what the graph does, by construction. Any
  string outside that set is, by those operators' semantics, an unknown category (no column);
* the classifier node and where each block sits in its input.

A graph of another shape raises :class:`GraphCutError`; callers then keep the full graph.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from pipeline.coded_column import CodedColumn
from pipeline.onnx_scoring import ONNX_CATEGORICAL_MISSING, FeedBuilder, normalise_category, open_session
from pipeline.schema import CategoricalFeature, Schema

# Operators the categorical branch may contain: lookups by exact string, and operators that move
# values without looking at them. Any other operator could treat an unprobed string specially.
_VALUE_AGNOSTIC_OPS = frozenset(
    {"Concat", "Gather", "ArrayFeatureExtractor", "Where", "Cast", "Reshape", "Identity"}
)
_LOOKUP_OPS = frozenset({"LabelEncoder", "OneHotEncoder"})
UNKNOWN_PROBE = "\x00unknown category probe\x00"
"""A string no model knows: probed to learn what an unknown category encodes to (no column)."""


class GraphCutError(Exception):
    """The graph does not have the shape this cut needs (the message says what differs)."""


@dataclass(frozen=True)
class GraphCut:
    """The graph's preprocessing, split into a numeric session and categorical indexes."""

    classifier: Any
    """The node (an ONNX ``NodeProto``) that consumes the concatenated blocks; None in a cut read
    back with :meth:`from_state` (the classifier is only needed to compile the tables)."""
    numeric_offset: int
    numeric_width: int
    categorical_offset: int
    categorical_width: int
    indexes: dict[str, dict[object, int]]
    """Per categorical feature: value (``None`` and ``""`` = missing) -> block column, -1 for none."""
    probes: list[str]
    numeric_session: Any
    numeric_block: str
    numeric_model: bytes
    """The numeric branch as a serialised ONNX model (what ``numeric_session`` runs)."""
    numeric_plan: NumericPlan | None = None
    """The numeric branch as arithmetic, when it is the plain impute-then-scale chain (one-row calls)."""

    def numeric_values(
        self, feeds: FeedBuilder, columns: Mapping[str, Sequence[object]], n_rows: int
    ) -> np.ndarray:
        """The numeric block (imputed and scaled by ONNX Runtime), ``[n_rows, numeric_width]``."""
        (block,) = self.numeric_session.run([self.numeric_block], feeds.build_numeric(columns, n_rows))
        return np.asarray(block).reshape(n_rows, self.numeric_width)

    def numeric_row(self, feeds: FeedBuilder, columns: Mapping[str, Sequence[object]]) -> list[float]:
        """:meth:`numeric_values` of a one-row call, as Python floats (arithmetic when there is a plan)."""
        if self.numeric_plan is None:
            return self.numeric_values(feeds, columns, 1)[0].tolist()
        feed = feeds.build_numeric(columns, 1)
        return self.numeric_plan.apply([float(feed[name][0, 0]) for name in self.numeric_plan.inputs])

    def codes(self, name: str, values: Sequence[object] | None, n_rows: int) -> np.ndarray:
        """The block column of each value of feature ``name`` (-1: none), as an int array."""
        index = self.indexes[name]
        if values is None:  # an absent optional feature: every value is missing
            return np.full(n_rows, index[None], dtype=np.intp)
        if isinstance(values, CodedColumn):  # each distinct value looked up once
            return values.map_values(lambda value: _code(index, value), np.intp)
        codes = list(map(index.get, values))
        if None in codes:  # values the index does not know verbatim: normalise them first
            codes = [
                code if code is not None else _code(index, value)
                for code, value in zip(codes, values, strict=True)
            ]
        return np.fromiter(codes, dtype=np.intp, count=n_rows)

    def code_of_one(self, name: str, values: Sequence[object] | None) -> int:
        """:meth:`codes` of a one-row column, as a Python int."""
        index = self.indexes[name]
        if values is None:
            return index[None]
        if isinstance(values, CodedColumn):
            return int(self.codes(name, values, 1)[0])
        return _code(index, values[0])

    def state(self) -> tuple[dict[str, Any], dict[str, np.ndarray], bytes]:
        """What :meth:`from_state` needs: JSON-ready fields, named arrays and the numeric model."""
        meta: dict[str, Any] = {
            "numeric_offset": self.numeric_offset,
            "numeric_width": self.numeric_width,
            "categorical_offset": self.categorical_offset,
            "categorical_width": self.categorical_width,
            "numeric_block": self.numeric_block,
            "probes": self.probes,
            # Lists of pairs: a JSON object's keys cannot be null (missing is None here).
            "indexes": {name: list(index.items()) for name, index in self.indexes.items()},
            "numeric_plan": None,
        }
        arrays: dict[str, np.ndarray] = {}
        if self.numeric_plan is not None:
            meta["numeric_plan"] = list(self.numeric_plan.inputs)
            for field in ("fill", "offset", "divisor"):
                arrays[f"plan_{field}"] = np.array(getattr(self.numeric_plan, field), dtype=np.float64)
        return meta, arrays, self.numeric_model

    @classmethod
    def from_state(
        cls, meta: dict[str, Any], arrays: dict[str, np.ndarray], numeric_model: bytes
    ) -> GraphCut:
        """The cut :meth:`state` described, with a session opened on its numeric model."""
        try:
            plan = None
            if meta["numeric_plan"] is not None:
                plan = NumericPlan(
                    tuple(meta["numeric_plan"]),
                    *(tuple(arrays[f"plan_{field}"].tolist()) for field in ("fill", "offset", "divisor")),
                )
            return cls(
                classifier=None,
                numeric_offset=int(meta["numeric_offset"]),
                numeric_width=int(meta["numeric_width"]),
                categorical_offset=int(meta["categorical_offset"]),
                categorical_width=int(meta["categorical_width"]),
                indexes={
                    name: {value: int(code) for value, code in pairs}
                    for name, pairs in meta["indexes"].items()
                },
                probes=list(meta["probes"]),
                numeric_session=open_session(numeric_model),
                numeric_block=str(meta["numeric_block"]),
                numeric_model=numeric_model,
                numeric_plan=plan,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise GraphCutError(f"the saved cut is incomplete: {type(exc).__name__}: {exc}") from None

    def columns_of(self, name: str) -> set[int]:
        """The categorical block's columns that belong to feature ``name``."""
        return {column for column in self.indexes[name].values() if column >= 0}


def _code(index: dict[object, int], value: object) -> int:
    code = index.get(value)
    return code if code is not None else index.get(normalise_category(value), -1)


def cut_graph(model_bytes: bytes, schema: Schema) -> GraphCut:
    """Analyse ``model_bytes`` (a serialised ONNX model) and cut it; GraphCutError if it cannot be."""
    import onnx  # in the serving image too (requirements.txt); only needed here

    model = onnx.load_from_string(model_bytes)
    merge, numeric_tensor, block_tensor = _merge_point(model, schema)
    inferred = onnx.shape_inference.infer_shapes(model)  # once: for the widths and the sub-graph
    widths = _tensor_widths(inferred, [numeric_tensor, block_tensor])
    order = list(merge.input)
    offsets = {numeric_tensor: 0, block_tensor: 0}
    offsets[order[1]] = widths[order[0]]
    probes = _probe_values(model, schema)
    indexes = _learn_indexes(model, block_tensor, schema, probes, widths[block_tensor])
    numeric_graph = _subgraph(inferred, list(schema.numeric), [numeric_tensor])
    numeric_model = numeric_graph.SerializeToString()
    return GraphCut(
        classifier=_only_consumer(model, merge.output[0]),
        numeric_offset=offsets[numeric_tensor],
        numeric_width=widths[numeric_tensor],
        categorical_offset=offsets[block_tensor],
        categorical_width=widths[block_tensor],
        indexes=indexes,
        probes=probes,
        numeric_session=open_session(numeric_model),
        numeric_block=numeric_tensor,
        numeric_model=numeric_model,
        numeric_plan=_numeric_plan(numeric_graph, widths[numeric_tensor]),
    )


@dataclass(frozen=True)
class NumericPlan:
    """``Concat`` of the inputs, ``Where(IsNaN, fill)``, ``Sub``, ``Div``: all in double, as here.

    Python floats are IEEE doubles, and a subtraction or a division is correctly rounded however an
    implementation vectorises it, so :meth:`apply` is the branch's own result, bit for bit (and the
    load-time verification checks it on every kind of value).
    """

    inputs: tuple[str, ...]
    fill: tuple[float, ...]
    offset: tuple[float, ...]
    divisor: tuple[float, ...]

    def apply(self, values: list[float]) -> list[float]:
        """The numeric block of one row from its input values (NaN: missing)."""
        return [
            ((fill if value != value else value) - offset) / divisor  # NaN != NaN
            for value, fill, offset, divisor in zip(values, self.fill, self.offset, self.divisor, strict=True)
        ]


def _numeric_plan(model: Any, width: int) -> NumericPlan | None:
    """The :class:`NumericPlan` of the numeric branch (an ONNX ``ModelProto``) if it is exactly that
    chain, else None."""
    import onnx
    from onnx import numpy_helper

    nodes = list(model.graph.node)
    if [node.op_type for node in nodes] != ["Concat", "IsNaN", "Where", "Sub", "Div"]:
        return None
    concat, isnan, where, sub, div = nodes
    constants = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    doubles = {i.name for i in model.graph.input if i.type.tensor_type.elem_type == onnx.TensorProto.DOUBLE}
    chained = (
        list(isnan.input) == [concat.output[0]]
        and list(where.input) == [isnan.output[0], where.input[1], concat.output[0]]
        and list(sub.input) == [where.output[0], sub.input[1]]
        and list(div.input) == [sub.output[0], div.input[1]]
        and set(concat.input) <= doubles
        and next((a.i for a in concat.attribute if a.name == "axis"), None) in (1, -1)
    )
    vectors = [constants.get(name) for name in (where.input[1], sub.input[1], div.input[1])]
    if not chained or any(v is None or v.dtype != np.float64 or v.size != width for v in vectors):
        return None
    fill, offset, divisor = (tuple(v.reshape(-1).tolist()) for v in vectors)  # type: ignore[union-attr]
    if len(concat.input) != width or any(value != value for value in fill):
        return None
    return NumericPlan(tuple(concat.input), fill, offset, divisor)


def _producers(model: Any) -> dict[str, Any]:
    return {output: node for node in model.graph.node for output in node.output}


def _ancestors(model: Any, tensor: str) -> tuple[set[str], set[str]]:
    """The graph inputs ``tensor`` depends on, and the operator types on the way."""
    producers = _producers(model)
    graph_inputs = {i.name for i in model.graph.input}
    inputs: set[str] = set()
    ops: set[str] = set()
    stack, seen = [tensor], set()
    while stack:
        name = stack.pop()
        if name in seen:
            continue
        seen.add(name)
        if name in graph_inputs:
            inputs.add(name)
        elif name in producers:
            node = producers[name]
            ops.add(node.op_type)
            stack.extend(node.input)
    return inputs, ops


def _merge_point(model: Any, schema: Schema) -> tuple[Any, str, str]:
    """The two-input Concat that joins a numeric-only block and a categorical-only block."""
    numeric, categorical = set(schema.numeric), set(schema.categorical)
    for node in model.graph.node:
        if node.op_type != "Concat" or len(node.input) != 2:
            continue
        found: dict[str, str] = {}
        for tensor in node.input:
            inputs, ops = _ancestors(model, tensor)
            if inputs == numeric and not ops & _LOOKUP_OPS:
                found["numeric"] = tensor
            elif inputs == categorical and "OneHotEncoder" in ops:
                unexpected = ops - _VALUE_AGNOSTIC_OPS - _LOOKUP_OPS
                if unexpected:
                    raise GraphCutError(f"the categorical branch uses {sorted(unexpected)}")
                found["categorical"] = tensor
        if len(found) == 2:
            axis = next((a.i for a in node.attribute if a.name == "axis"), None)
            if axis not in (1, -1):
                raise GraphCutError(f"the blocks are concatenated along axis {axis}, not the feature axis")
            return node, found["numeric"], found["categorical"]
    raise GraphCutError("no Concat joins a numeric-only and a categorical-only one-hot block")


def _only_consumer(model: Any, tensor: str) -> Any:
    consumers = [node for node in model.graph.node if tensor in node.input]
    if len(consumers) != 1:
        raise GraphCutError(f"{tensor!r} feeds {len(consumers)} nodes, expected exactly the classifier")
    return consumers[0]


def _tensor_widths(inferred: Any, tensors: list[str]) -> dict[str, int]:
    """The static second dimension of each tensor, from a shape-inferred model."""
    shapes = {v.name: v.type.tensor_type.shape for v in inferred.graph.value_info}
    widths = {}
    for tensor in tensors:
        shape = shapes.get(tensor)
        dims = list(shape.dim) if shape is not None else []
        if len(dims) != 2 or not dims[1].HasField("dim_value"):
            raise GraphCutError(f"the width of {tensor!r} is not known statically")
        widths[tensor] = int(dims[1].dim_value)
    return widths


def _subgraph(inferred: Any, inputs: list[str], outputs: list[str]) -> Any:
    """The part of a shape-inferred model from ``inputs`` to ``outputs`` (a ``ModelProto``)."""
    import onnx.utils

    extractor = onnx.utils.Extractor(inferred)
    return extractor.extract_model(inputs, outputs)


def _probe_values(model: Any, schema: Schema) -> list[str]:
    """Every string the graph's lookup operators know, every schema category, missing and unknown."""
    strings: set[str] = {ONNX_CATEGORICAL_MISSING, UNKNOWN_PROBE}
    for feature in schema.features:
        if isinstance(feature, CategoricalFeature):
            strings.update(feature.categories)
    for node in model.graph.node:
        if node.op_type in _LOOKUP_OPS:
            for attribute in node.attribute:
                strings.update(s.decode("utf-8") for s in attribute.strings)
    return sorted(strings)


def _learn_indexes(
    model: Any, block: str, schema: Schema, probes: list[str], width: int
) -> dict[str, dict[object, int]]:
    """Per categorical feature, ``value -> block column`` (-1: none), read from the graph's output.

    Each feature's probes run with every other feature missing. Columns set in *every* probe row of
    a feature belong to the other features (their missing-value columns); what remains in a row is
    the probed value's own column, at most one.
    """
    import onnx

    probe_model = onnx.ModelProto()
    probe_model.CopyFrom(model)
    del probe_model.graph.output[:]
    probe_model.graph.output.append(onnx.helper.make_empty_tensor_value_info(block))
    session = open_session(probe_model.SerializeToString())
    feeds = FeedBuilder(schema)
    n = len(probes)
    indexes: dict[str, dict[object, int]] = {}
    for name in schema.categorical:
        columns: dict[str, Sequence[object]] = {other: [None] * n for other in schema.names}
        columns[name] = probes
        (values,) = session.run([block], feeds.build(columns))
        values = np.asarray(values).reshape(n, width)
        if not np.isin(values, (0, 1)).all():
            raise GraphCutError(f"the one-hot block for {name!r} holds values other than 0 and 1")
        own = values.astype(bool) & ~values.all(axis=0)
        if (own.sum(axis=1) > 1).any():
            raise GraphCutError(f"a value of {name!r} sets more than one one-hot column")
        index: dict[object, int] = {}
        for value, row in zip(probes, own, strict=True):
            hits = np.flatnonzero(row)
            index[value] = int(hits[0]) if hits.size else -1
        index[None] = index[ONNX_CATEGORICAL_MISSING]
        indexes[name] = index
    owners: dict[int, str] = {}
    for name, index in indexes.items():
        for column in {c for c in index.values() if c >= 0}:
            if owners.setdefault(column, name) != name:
                raise GraphCutError(f"one-hot column {column} answers to {owners[column]!r} and {name!r}")
    return indexes
