"""A tree ensemble compiled into lookup tables that score whole columns at once, like ONNX Runtime.

Walking 172 trees per row is what costs ONNX Runtime ~4 µs a row. But each tree looks at only a
few features, and at few thresholds of each: which leaf a row reaches depends only on, per feature
the tree uses, *how many of the tree's thresholds lie below the value* (numeric), or *which of the
tree's one-hot columns is set* (categorical). So each tree becomes a table indexed by those small
counts, filled once at load time by walking the tree for one representative of every cell; scoring
is then a few vectorised ``take``s for all trees and the whole batch.

The tables reproduce ONNX Runtime's ``TreeEnsembleClassifier`` (binary, ``LOGISTIC``, double
thresholds and weights) **bit for bit**: leaf weights are summed in double in tree order from zero,
the base value added last, and the probability computed in float as ONNX Runtime's
``ComputeLogistic`` does, with the C library's ``expf``. :mod:`pipeline.table_scoring` proves the
equality on a verification batch before it uses the tables at all.
"""

from __future__ import annotations

import bisect
import ctypes
import ctypes.util
from collections import defaultdict
from dataclasses import dataclass
from functools import cache, cached_property
from typing import Any

import numpy as np

MAX_TABLE_CELLS = 1 << 20
"""A tree whose table would be larger than this is not compiled (memory, load time)."""
MAX_TOTAL_CELLS = 1 << 22
"""All tables together (32 MiB, shared by the workers). Deep trees on many thresholds can need far
more (train --quick's model: ~20 M cells, 6 s to build): the graph then scores every call."""
_HARD_ROUNDING = 0.49
"""``exp`` results this close (in float ULPs) to a rounding midpoint are computed by libm's ``expf``."""

Key = tuple[str, int] | str
"""What a tree cell depends on: ``("numeric", j)`` for numeric column j, or a categorical feature name."""


class TreeTablesError(Exception):
    """The classifier is not one these tables reproduce exactly (the message says what differs)."""


@dataclass(frozen=True)
class InputLayout:
    """Where each column of the classifier's input comes from."""

    numeric: dict[int, int]
    """Input column -> column of the numeric block."""
    categorical: dict[int, tuple[str, int]]
    """Input column -> (categorical feature, its one-hot code: the categorical block's column)."""

    @cached_property
    def code_space(self) -> int:
        """How many values ``code + 1`` takes: 0 for "no column", then one per block column."""
        return 2 + max((code for _, code in self.categorical.values()), default=-1)


@dataclass(frozen=True)
class _Tree:
    keys: tuple[Key, ...]
    remaps: tuple[np.ndarray, ...]
    """Per key: cell index (times the key's stride) for each global bin (numeric) or code + 1."""
    table: np.ndarray


@dataclass(frozen=True)
class _KeyGroup:
    """Keys read together: one joint index per row, ``sum(value * stride)``, computed once a call."""

    keys: tuple[Key, ...]
    sizes: tuple[int, ...]

    @property
    def size(self) -> int:
        return int(np.prod(self.sizes))

    def joint(self, values: dict[Key, np.ndarray]) -> np.ndarray:
        """Each row's joint index from its per-key values."""
        joint = values[self.keys[0]].copy()
        for key, size in zip(self.keys[1:], self.sizes[1:], strict=True):
            joint *= size
            joint += values[key]
        return joint

    def remap(self, tree: _Tree) -> np.ndarray:
        """The tree's cell offset for every joint index: its per-key remaps summed over the grid."""
        total = np.zeros(self.sizes, dtype=np.intp)
        for axis, key in enumerate(self.keys):
            if key in tree.keys:
                shape = [1] * len(self.keys)
                shape[axis] = self.sizes[axis]
                total += tree.remaps[tree.keys.index(key)].reshape(shape)
        return total.reshape(-1)


class TreeTables:
    """Scores a batch from its numeric block and categorical codes; see the module docstring.

    Keys that many trees read together are grouped (:func:`_group_keys`) into one joint index per
    row, computed once a call. Each group's remaps are one ``[joint index, tree]`` int32 array
    (zeros for trees that do not read the group): taking a row gives every tree's cell offset for
    that row at once, so a call is a few numpy calls per group whatever the number of trees. Calls
    are scored :attr:`chunk_rows` rows at a time (:data:`CHUNK_LEAF_BYTES`); the leaves are added
    tree after tree, as ONNX Runtime adds them.
    """

    def __init__(
        self,
        thresholds: dict[int, np.ndarray],
        base: float,
        all_tables: np.ndarray,
        offsets: np.ndarray,
        local_codes: dict[str, tuple[np.ndarray, np.ndarray]],
        groups: list[_KeyGroup],
        rows: list[np.ndarray],
    ) -> None:
        """The assembled tables (:meth:`compile` builds them; :meth:`from_state` reads them back)."""
        self._thresholds = thresholds
        self._base = base
        self._all_tables = all_tables
        """Every tree's table, one after another: one ``take`` reads every tree's leaf."""
        self._local_codes = local_codes
        self._groups = groups
        self._rows = rows
        """Per key group, ``[joint index, tree]`` cell offsets; the first group's include each
        tree's table offset (int32 suffices: MAX_TOTAL_CELLS < 2**31)."""
        self._offsets = offsets
        self._offsets_row = offsets[None, :]
        self.chunk_rows = max(1, CHUNK_LEAF_BYTES // (8 * max(1, offsets.size)))
        """Rows scored at once; larger calls go in chunks of this many rows."""
        # The same tables as Python lists and ints, for one row at a time (:meth:`row_probability`).
        self._row_bounds = [(column, bounds.tolist()) for column, bounds in thresholds.items()]
        self._row_local = [(name, local_of.tolist()) for name, (_, local_of) in local_codes.items()]
        self._row_groups = [
            (tuple(zip(group.keys, group.sizes, strict=True)), rows)
            for group, rows in zip(groups, rows, strict=True)
        ]

    @classmethod
    def _assemble(
        cls, thresholds: dict[int, np.ndarray], trees: list[_Tree], base: float, layout: InputLayout
    ) -> TreeTables:
        all_tables = np.concatenate([tree.table for tree in trees])
        offsets = np.cumsum([0] + [tree.table.size for tree in trees[:-1]]).astype(np.int32)
        local_codes = _local_codes(layout)
        cardinality: dict[Key, int] = {("numeric", c): len(b) + 1 for c, b in thresholds.items()}
        cardinality.update({name: len(codes_of) for name, (codes_of, _) in local_codes.items()})
        groups = _group_keys([tree.keys for tree in trees], cardinality)
        local_trees = [_local_tree(tree, local_codes) for tree in trees]
        rows = [
            np.stack([group.remap(tree) for tree in local_trees], axis=1).astype(np.int32) for group in groups
        ]
        if rows:
            rows[0] += offsets
        return cls(thresholds, base, all_tables, offsets, local_codes, groups, rows)

    def state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """What :meth:`from_state` needs: JSON-ready fields and named arrays."""
        meta = {
            "base": self._base,
            "threshold_columns": list(self._thresholds),
            "categorical": list(self._local_codes),
            "groups": [
                {
                    "keys": [list(key) if isinstance(key, tuple) else key for key in group.keys],
                    "sizes": group.sizes,
                }
                for group in self._groups
            ],
        }
        arrays = {"all_tables": self._all_tables, "offsets": self._offsets}
        arrays.update({f"thresholds_{column}": bounds for column, bounds in self._thresholds.items()})
        for i, (plus_one, local_of) in enumerate(self._local_codes.values()):
            arrays[f"plus_one_{i}"] = plus_one
            arrays[f"local_of_{i}"] = local_of
        arrays.update({f"rows_{i}": rows for i, rows in enumerate(self._rows)})
        return meta, arrays

    @classmethod
    def from_state(cls, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> TreeTables:
        """The tables :meth:`state` described; TreeTablesError if a field or an array is missing."""
        try:
            thresholds = {int(c): arrays[f"thresholds_{c}"] for c in meta["threshold_columns"]}
            local_codes = {
                name: (arrays[f"plus_one_{i}"], arrays[f"local_of_{i}"])
                for i, name in enumerate(meta["categorical"])
            }
            groups = [
                _KeyGroup(
                    tuple(tuple(key) if isinstance(key, list) else key for key in group["keys"]),
                    tuple(int(size) for size in group["sizes"]),
                )
                for group in meta["groups"]
            ]
            rows = [arrays[f"rows_{i}"] for i in range(len(groups))]
            return cls(
                thresholds,
                float(meta["base"]),
                arrays["all_tables"],
                arrays["offsets"],
                local_codes,
                groups,
                rows,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise TreeTablesError(f"the saved tables are incomplete: {type(exc).__name__}: {exc}") from None

    @property
    def n_cells(self) -> int:
        """Total table size (for the load log)."""
        return int(self._all_tables.size)

    @property
    def n_groups(self) -> int:
        """Key groups: one row ``take`` each per chunk of a call (for the load log)."""
        return len(self._groups)

    @classmethod
    def compile(cls, node: Any, layout: InputLayout) -> TreeTables:
        """Tables for ``node`` (an ONNX ``TreeEnsembleClassifier``); TreeTablesError if not exact.

        Every tree's table size is known before any tree is walked, so an ensemble over the caps
        is refused at once (the quick model's took seconds to refuse, tree after tree)."""
        attributes = _attributes(node)
        nodes = _tree_nodes(attributes)
        thresholds = _global_thresholds(nodes, layout)
        ordered = [tree_nodes for _, tree_nodes in sorted(nodes.items())]
        grids = [_tree_grid(tree_nodes, layout, thresholds) for tree_nodes in ordered]
        total = sum(grid.n_cells for grid in grids)
        if total > MAX_TOTAL_CELLS:
            raise TreeTablesError(f"the tables would need {total} cells in all (limit {MAX_TOTAL_CELLS})")
        trees = [
            _compile_tree(tree_nodes, grid, layout) for tree_nodes, grid in zip(ordered, grids, strict=True)
        ]
        return cls._assemble(thresholds, trees, attributes["base"], layout)

    def margins(self, numeric: np.ndarray, codes: dict[str, np.ndarray]) -> np.ndarray:
        """The ensemble's raw score per row, summed exactly as ONNX Runtime sums it."""
        n_rows = numeric.shape[0]
        keys: dict[Key, np.ndarray] = {
            ("numeric", column): np.searchsorted(bounds, numeric[:, column], side="left")
            for column, bounds in self._thresholds.items()
        }
        for name, (_, local_of) in self._local_codes.items():
            keys[name] = local_of.take(codes[name] + 1)
        joints = [group.joint(keys) for group in self._groups]
        step = self.chunk_rows
        if n_rows <= step:
            return self._chunk_margins(joints, n_rows)
        chunks = [
            self._chunk_margins([joint[start : start + step] for joint in joints], min(step, n_rows - start))
            for start in range(0, n_rows, step)
        ]
        return np.concatenate(chunks)

    def _chunk_margins(self, joints: list[np.ndarray], n_rows: int) -> np.ndarray:
        """:meth:`margins` of up to :attr:`chunk_rows` rows: every tree at once, ``[row, tree]`` cells."""
        if self._rows:
            # Indices are in range by construction, and mode="clip" skips numpy's checks.
            cells = self._rows[0].take(joints[0], axis=0, mode="clip")
            for rows, joint in zip(self._rows[1:], joints[1:], strict=True):
                cells += rows.take(joint, axis=0, mode="clip")
        else:  # every tree is a single leaf
            cells = np.repeat(self._offsets_row, n_rows, axis=0)
        # Indexed by the transposed cells, the leaves come out ``[tree, row]``: each tree's reads
        # stay in its own table (cache-friendly), and the sum below runs over trees.
        leaves = self._all_tables.take(cells.T, mode="clip")
        if n_rows == 1:  # one column would be summed as a 1-D array: pairwise, not in tree order
            total = np.zeros(1)
            for leaf in leaves:
                total += leaf
        else:
            # A reduction over the first axis of a C-ordered array adds row after row, in order:
            # ONNX Runtime's order (from zero, tree after tree). The load-time check proves it.
            total = np.add.reduce(leaves, axis=0)
        return total + self._base

    def row_probability(self, numeric: list[float], codes: dict[str, int]) -> float:
        """:meth:`probabilities` of one row, with Python scalars where numpy's per-call cost dominates.

        ``numeric`` is the row's numeric block (no NaN), ``codes`` each feature's block column (-1:
        none). The same cells, added in the same order (``cumsum`` adds one after another, from
        the first), and ONNX Runtime's logistic on one value: a third of a graph run for one record.
        """
        keys: dict[Key, int] = {
            ("numeric", column): bisect.bisect_left(bounds, numeric[column])
            for column, bounds in self._row_bounds
        }
        for name, local_of in self._row_local:
            keys[name] = local_of[codes[name] + 1]
        if not self._row_groups:  # every tree is a single leaf
            return logistic_one_like_onnxruntime(float(np.cumsum(self._all_tables)[-1]) + self._base)
        cells = None
        for pairs, rows in self._row_groups:
            joint = 0
            for key, size in pairs:
                joint = joint * size + keys[key]
            cells = rows[joint] if cells is None else cells + rows[joint]
        margin = float(np.cumsum(self._all_tables.take(cells))[-1]) + self._base
        return logistic_one_like_onnxruntime(margin)

    def probabilities(self, numeric: np.ndarray, codes: dict[str, np.ndarray]) -> np.ndarray:
        """P(positive) per row, as ONNX Runtime's float32 output widened to float64."""
        return logistic_like_onnxruntime(self.margins(numeric, codes))


def logistic_like_onnxruntime(margins: np.ndarray) -> np.ndarray:
    """ONNX Runtime's ``ComputeLogistic``: ``v = 1 / (1 + expf(-|x|))`` in float, ``1 - v`` for x < 0.

    numpy's float32 ``exp`` is not the C library's ``expf``; the double ``exp`` rounded to float is
    (``expf`` is accurate to ~0.502 ULP) except near a rounding midpoint, so those few values are
    computed by libm's ``expf`` itself.
    """
    x = margins.astype(np.float32)
    exponent = -np.abs(x)
    wide = np.exp(exponent.astype(np.float64))
    e = wide.astype(np.float32)
    spacing = np.spacing(e).astype(np.float64)
    off = np.abs(wide - e.astype(np.float64)) / spacing
    mantissa, _ = np.frexp(e)  # at a power of two the spacing below is half: treat as hard too
    hard = np.flatnonzero((off > _HARD_ROUNDING) | (mantissa == 0.5) | (e == 0))
    if hard.size:
        expf = _libm_expf()
        e[hard] = [expf(value) for value in exponent[hard].tolist()]
    one = np.float32(1)
    v = one / (one + e)
    return np.where(x < 0, one - v, v).astype(np.float64)


_ONE = np.float32(1)


def logistic_one_like_onnxruntime(margin: float) -> float:
    """:func:`logistic_like_onnxruntime` of one margin: ``expf`` itself, float32 arithmetic."""
    x = np.float32(margin)
    v = _ONE / (_ONE + np.float32(_libm_expf()(-abs(x))))
    return float(_ONE - v if x < 0 else v)


@cache
def _libm_expf() -> Any:
    try:  # glibc's soname first: find_library runs ldconfig in a subprocess
        library = ctypes.CDLL("libm.so.6")
    except OSError:
        library = ctypes.CDLL(ctypes.util.find_library("m"))
    expf = library.expf
    expf.restype = ctypes.c_float
    expf.argtypes = [ctypes.c_float]
    return expf


def _attributes(node: Any) -> dict[str, Any]:
    """The classifier's attributes, checked against the one configuration reproduced here."""
    from onnx import helper, numpy_helper

    if node.op_type != "TreeEnsembleClassifier":
        raise TreeTablesError(f"the classifier is {node.op_type}, not a TreeEnsembleClassifier")
    raw = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    for name in ("nodes_values_as_tensor", "class_weights_as_tensor", "base_values_as_tensor"):
        if name not in raw:
            raise TreeTablesError(f"{name[: -len('_as_tensor')]} are not double tensors")
    if raw.get("post_transform") != b"LOGISTIC":
        raise TreeTablesError(f"post_transform is {raw.get('post_transform')!r}, not LOGISTIC")
    labels = raw.get("classlabels_int64s") or raw.get("classlabels_strings") or []
    if len(labels) != 2 or set(raw["class_ids"]) != {0}:
        raise TreeTablesError("not a binary classifier with one weight per leaf")
    base = numpy_helper.to_array(raw["base_values_as_tensor"]).astype(np.float64)
    if base.size != 1:
        raise TreeTablesError(f"{base.size} base values, expected 1")
    modes = set(raw["nodes_modes"])
    if not modes <= {b"BRANCH_LEQ", b"LEAF"}:
        raise TreeTablesError(
            f"node modes {sorted(m.decode() for m in modes)}: only BRANCH_LEQ is reproduced"
        )
    return {
        **raw,
        "thresholds": numpy_helper.to_array(raw["nodes_values_as_tensor"]).astype(np.float64),
        "weights": numpy_helper.to_array(raw["class_weights_as_tensor"]).astype(np.float64),
        "base": float(base[0]),
    }


def _tree_nodes(attributes: dict[str, Any]) -> dict[int, dict[int, dict[str, Any]]]:
    """tree id -> node id -> node (feature, threshold, children; or the leaf's weight)."""
    weights: dict[tuple[int, int], list[float]] = defaultdict(list)
    for tree, node, weight in zip(
        attributes["class_treeids"], attributes["class_nodeids"], attributes["weights"].tolist(), strict=True
    ):
        weights[(tree, node)].append(weight)
    trees: dict[int, dict[int, dict[str, Any]]] = defaultdict(dict)
    columns = zip(
        attributes["nodes_treeids"],
        attributes["nodes_nodeids"],
        attributes["nodes_modes"],
        attributes["nodes_featureids"],
        attributes["thresholds"].tolist(),
        attributes["nodes_truenodeids"],
        attributes["nodes_falsenodeids"],
        strict=True,
    )
    for tree, node, mode, feature, threshold, true_id, false_id in columns:
        if mode == b"LEAF":
            leaf_weights = weights.get((tree, node), [])
            if len(leaf_weights) > 1:
                raise TreeTablesError(f"leaf {node} of tree {tree} has {len(leaf_weights)} weights")
            trees[tree][node] = {"leaf": True, "weight": leaf_weights[0] if leaf_weights else 0.0}
        else:
            if not np.isfinite(threshold):
                raise TreeTablesError(f"tree {tree} node {node} has threshold {threshold}")
            trees[tree][node] = {
                "leaf": False,
                "feature": feature,
                "threshold": threshold,
                "true": true_id,
                "false": false_id,
            }
    return dict(trees)


def _key(column: int, layout: InputLayout) -> Key:
    if column in layout.numeric:
        return ("numeric", layout.numeric[column])
    if column in layout.categorical:
        return layout.categorical[column][0]
    raise TreeTablesError(f"a split uses input column {column}, which is neither block")


def _global_thresholds(
    nodes: dict[int, dict[int, dict[str, Any]]], layout: InputLayout
) -> dict[int, np.ndarray]:
    """Per numeric block column, every threshold any tree uses on it, sorted."""
    found: dict[int, set[float]] = defaultdict(set)
    for tree in nodes.values():
        for node in tree.values():
            if not node["leaf"] and node["feature"] in layout.numeric:
                found[layout.numeric[node["feature"]]].add(node["threshold"])
    return {column: np.array(sorted(values)) for column, values in sorted(found.items())}


@dataclass(frozen=True)
class _Grid:
    """A tree's table shape: its keys, each key's representative value per cell, and remaps."""

    keys: list[Key]
    cells: list[np.ndarray]
    remaps: list[np.ndarray]

    @property
    def sizes(self) -> list[int]:
        return [len(c) for c in self.cells]

    @property
    def n_cells(self) -> int:
        return int(np.prod(self.sizes)) if self.sizes else 1


def _tree_grid(
    tree: dict[int, dict[str, Any]], layout: InputLayout, thresholds: dict[int, np.ndarray]
) -> _Grid:
    """Which keys one tree reads and the cells of each; TreeTablesError if its table is too large."""
    splits = [node for node in tree.values() if not node["leaf"]]
    keys: list[Key] = sorted({_key(node["feature"], layout) for node in splits}, key=str)
    cells: list[np.ndarray] = []  # per key: representative input values per cell
    remaps: list[np.ndarray] = []
    for key in keys:
        if isinstance(key, tuple):  # numeric: cell = how many of this tree's thresholds lie below
            own = np.array(
                sorted({n["threshold"] for n in splits if layout.numeric.get(n["feature"]) == key[1]})
            )
            bounds = thresholds[key[1]]
            representatives = np.append(bounds, np.inf)  # a value inside each global bin
            remaps.append(np.searchsorted(own, representatives, side="left"))
            cells.append(np.append(own, np.inf))
        else:  # categorical: cell = which of this tree's one-hot columns is set (last: none)
            own_codes = sorted(
                {layout.categorical[n["feature"]][1] for n in splits if _key(n["feature"], layout) == key}
            )
            remap = np.full(layout.code_space, len(own_codes), dtype=np.intp)  # index: code + 1 (0: none)
            for cell, code in enumerate(own_codes):
                remap[code + 1] = cell
            remaps.append(remap)
            cells.append(np.array([*own_codes, -1]))
    grid = _Grid(keys, cells, remaps)
    if grid.n_cells > MAX_TABLE_CELLS:
        raise TreeTablesError(f"a tree needs a table of {grid.n_cells} cells (limit {MAX_TABLE_CELLS})")
    return grid


def _compile_tree(tree: dict[int, dict[str, Any]], grid: _Grid, layout: InputLayout) -> _Tree:
    """One tree's table: the leaf weight for every combination of its keys' cells."""
    sizes = grid.sizes
    cell_index = np.indices(sizes).reshape(len(sizes), -1) if sizes else np.zeros((0, 1), dtype=np.intp)
    table = _walk(tree, grid.keys, grid.cells, cell_index, layout)
    strides = [int(np.prod(sizes[i + 1 :])) for i in range(len(sizes))]
    scaled = tuple(
        (remap * stride).astype(np.intp) for remap, stride in zip(grid.remaps, strides, strict=True)
    )
    return _Tree(tuple(grid.keys), scaled, table)


def _walk(
    tree: dict[int, dict[str, Any]],
    keys: list[Key],
    cells: list[np.ndarray],
    grid: np.ndarray,
    layout: InputLayout,
) -> np.ndarray:
    """Walk the tree for every cell's representative input at once; the leaf weight per cell."""
    n_cells = grid.shape[1]
    node_ids = sorted(tree)
    position = {node_id: i for i, node_id in enumerate(node_ids)}
    is_leaf = np.array([tree[n]["leaf"] for n in node_ids])
    threshold = np.array([0.0 if tree[n]["leaf"] else tree[n]["threshold"] for n in node_ids])
    true_next = np.array([position[tree[n].get("true", n)] for n in node_ids])
    false_next = np.array([position[tree[n].get("false", n)] for n in node_ids])
    weight = np.array([tree[n]["weight"] if tree[n]["leaf"] else 0.0 for n in node_ids])
    # Each split's input value for every cell.
    value_at = np.zeros((len(node_ids), n_cells))
    key_index = {key: i for i, key in enumerate(keys)}
    for i, node_id in enumerate(node_ids):
        node = tree[node_id]
        if node["leaf"]:
            continue
        k = key_index[_key(node["feature"], layout)]
        chosen = cells[k][grid[k]]
        if isinstance(keys[k], tuple):
            value_at[i] = chosen
        else:
            value_at[i] = (chosen == layout.categorical[node["feature"]][1]).astype(np.float64)
    current = np.full(n_cells, position.get(0, 0))
    columns = np.arange(n_cells)
    for _ in range(len(node_ids)):
        if is_leaf[current].all():
            break
        go_true = value_at[current, columns] <= threshold[current]
        step = np.where(go_true, true_next[current], false_next[current])
        current = np.where(is_leaf[current], current, step)
    if not is_leaf[current].all():
        raise TreeTablesError("a tree has a cycle")
    return weight[current]


CHUNK_LEAF_BYTES = 512 * 1024
"""A chunk's ``[tree, row]`` leaves array is at most this large: with the other working arrays it
stays in the CPU caches and under the workers' mmap threshold (:mod:`pipeline.heap`), whose
per-call page faults measured 3-6x slower than the scoring itself."""
MAX_GROUP_CELLS = 1024
"""A key group's joint index space is at most this large (a remap per tree that touches it)."""
MAX_REMAP_CELLS = 1 << 19
"""All grouped remaps together hold at most this many cells (4 MiB); more only adds cache misses."""


def _local_codes(layout: InputLayout) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per categorical feature: (``code + 1`` of each local code, local code of each ``code + 1``).

    Local code 0 is "no column set"; the feature's block columns follow in order. Grouping keys
    multiplies their sizes, so each feature counts only its own columns, not the whole block's.
    """
    columns: dict[str, list[int]] = defaultdict(list)
    for name, code in layout.categorical.values():
        columns[name].append(code)
    local: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for name, codes in columns.items():
        plus_one = np.array([0, *(code + 1 for code in sorted(codes))], dtype=np.intp)
        local_of = np.zeros(layout.code_space, dtype=np.intp)
        local_of[plus_one] = np.arange(len(plus_one))
        local[name] = (plus_one, local_of)
    return local


def _local_tree(tree: _Tree, local_codes: dict[str, tuple[np.ndarray, np.ndarray]]) -> _Tree:
    """``tree`` with its categorical remaps indexed by local code instead of ``code + 1``."""
    remaps = tuple(
        remap.take(local_codes[key][0]) if isinstance(key, str) else remap
        for key, remap in zip(tree.keys, tree.remaps, strict=True)
    )
    return _Tree(tree.keys, remaps, tree.table)


def _group_keys(tree_keys: list[tuple[Key, ...]], cardinality: dict[Key, int]) -> list[_KeyGroup]:
    """Keys grouped greedily: merge the two groups most trees read together, while the caps allow.

    Each merge saves one ``[row, tree]`` take and add per call, and costs a remap of ``|A| x |B|``
    cells for every tree; preferring groups read by the same trees keeps those remaps' cells
    meaningful. Merges stop at :data:`MAX_GROUP_CELLS` per group and :data:`MAX_REMAP_CELLS` in
    all (larger remaps measured no faster: cache misses outweigh the saved takes).
    """
    used = sorted({key for keys in tree_keys for key in keys}, key=str)
    groups: list[tuple[Key, ...]] = [(key,) for key in used]
    # Which trees read a key, as bits of an int: set operations on all trees at once.
    read_by = {key: sum(1 << t for t, keys in enumerate(tree_keys) if key in keys) for key in used}

    def size(group: tuple[Key, ...]) -> int:
        return int(np.prod([cardinality[key] for key in group]))

    def readers(group: tuple[Key, ...]) -> int:
        mask = 0
        for key in group:
            mask |= read_by[key]
        return mask

    def cells(all_groups: list[tuple[Key, ...]]) -> int:  # a row of remaps per tree and group
        return sum(size(group) for group in all_groups) * len(tree_keys)

    while True:
        best: tuple[int, int, int, int] | None = None  # (saved takes, -size, i, j)
        for i, first in enumerate(groups):
            for j in range(i + 1, len(groups)):
                second = groups[j]
                merged_size = size(first) * size(second)
                if merged_size > MAX_GROUP_CELLS:
                    continue
                saved = (readers(first) & readers(second)).bit_count()
                candidate = (saved, -merged_size, i, j)
                if saved and (best is None or candidate > best):
                    merged = [g for k, g in enumerate(groups) if k not in (i, j)] + [first + second]
                    if cells(merged) <= MAX_REMAP_CELLS:
                        best = candidate
        if best is None:
            break
        _, _, i, j = best
        groups = [g for k, g in enumerate(groups) if k not in (i, j)] + [groups[i] + groups[j]]
    return [_KeyGroup(group, tuple(cardinality[key] for key in group)) for group in groups]
