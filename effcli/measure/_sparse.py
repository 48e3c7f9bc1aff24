"""TFLite's sparse tensor encoding, read back into dense arrays.

A converter run with `tf.lite.Optimize.EXPERIMENTAL_SPARSITY` stores a pruned kernel as its
nonzero values plus, per dimension in traversal order, either a dense size or a CSR-like pair of
arrays (segments, indices); a DENSIFY op rebuilds the dense kernel at load time. Optional block
dimensions (`block_map`) tile some original dimensions. This follows the layout of TFLite's own
`FormatConverter` (tensorflow/lite/kernels/internal/utils/sparsity_format_converter.cc).
"""

from __future__ import annotations

from typing import Any

import numpy as np

DENSE = 0  # DimensionType.DENSE; SPARSE_CSR is 1


def _array(union: Any) -> np.ndarray:
    """The values of an Int32Vector / Uint16Vector / Uint8Vector union member."""
    values = getattr(union, "values", None)
    return np.asarray(values if values is not None else [], dtype=np.int64)


def densify(values: np.ndarray, shape: list[int], sparsity: Any) -> np.ndarray:
    """The dense array of `shape` that a sparse tensor's `values` and `sparsity` encode."""
    order = [int(d) for d in sparsity.traversalOrder]
    block_map = [int(d) for d in (sparsity.blockMap if sparsity.blockMap is not None else [])]
    metas = list(sparsity.dimMetadata)
    n = len(shape)
    block_sizes = [int(metas[order.index(n + k)].denseSize) for k in range(len(block_map))]
    expanded = list(shape)
    for k, dim in enumerate(block_map):
        expanded[dim] //= block_sizes[k]
    expanded += block_sizes
    dense = np.zeros(expanded, dtype=values.dtype)
    flat = values.reshape(-1)
    index = [0] * len(expanded)
    position = 0
    last = len(order) - 1

    def walk(level: int, parent: int) -> None:
        nonlocal position
        meta, dim = metas[level], order[level]
        if meta.format == DENSE:
            size = int(meta.denseSize)
            children = [(i, parent * size + i) for i in range(size)]
        else:
            segments, indices = _array(meta.arraySegments), _array(meta.arrayIndices)
            children = [(int(indices[j]), j) for j in range(segments[parent], segments[parent + 1])]
        for coordinate, child in children:
            index[dim] = coordinate
            if level == last:
                dense[tuple(index)] = flat[position]
                position += 1
            else:
                walk(level + 1, child)

    walk(0, 0)
    if not block_map:
        return dense
    # Put each block dimension right after the dimension it tiles, then merge the two.
    axes: list[int] = []
    for dim in range(n):
        axes.append(dim)
        if dim in block_map:
            axes.append(n + block_map.index(dim))
    return dense.transpose(axes).reshape(shape)
