"""The encoder both Transformer families share (`vit` for images, `transformer` for sequences).

Tokens (patches of the input, each embedded by a strided convolution) get their position from a
depthwise convolution over the token grid added to them (a conditional positional encoding, Chu
et al. 2021: no custom layer, so every tf_keras tool can save, clone and wrap the model), then
pass `blocks` pre-norm encoder blocks (LayerNorm -> multi-head self-attention -> residual,
LayerNorm -> MLP -> residual), a final LayerNorm, global average pooling and a logits Dense.

The grow knobs: `width_multiplier` scales the embedding width (rounded to a multiple of the
heads), `depth_multiplier` the number of blocks, `resolution_multiplier` the input size.
What TF-MOT does with the parts: the MLP's and the head's Dense kernels prune, cluster and
factorize like any Dense; MultiHeadAttention's four projection kernels (query, key, value,
output) prune unstructured (TF-MOT's prune registry lists them), but not 2:4, clustering or
low-rank; QAT's registry has neither MultiHeadAttention nor LayerNormalization, so QAT leaves them
float (the quantize stage records them); post-training int8 quantizes all.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from effcli.models._scaling import GrowParams, repeats, scaled


class TransformerParams(GrowParams):
    """The encoder's size: embedding width, blocks, heads, MLP ratio, patches, activation."""

    dim: int = Field(64, ge=4, le=4096, description="embedding width before the width multiplier")
    blocks: int = Field(4, ge=1, le=64, description="encoder blocks before the depth multiplier")
    heads: int = Field(4, ge=1, le=64, description="attention heads, >= 1")
    mlp_ratio: float = Field(2.0, gt=0, le=16, description="MLP hidden width / embedding width")
    activation: Literal["gelu", "relu"] = Field(
        "gelu", description="gelu (the original) or relu (simpler to quantize)"
    )
    dropout: float = Field(0.0, ge=0, lt=1, description="dropout in attention and MLP, 0 <= p < 1")


def embedding_width(params: TransformerParams, width: float) -> int:
    """The embedding width at a width multiplier: a multiple of the heads, at least one each."""
    heads = params.heads
    return max(heads, scaled(params.dim, width) // heads * heads)


def classifier(
    inputs: Any, embedded: Any, params: TransformerParams, num_classes: int, prefix: str
) -> Any:
    """The model from `inputs` to logits, given the patch embedding (batch, H', W', dim): its
    grid of tokens through the encoder, then a logits Dense."""
    from effcli._tf import keras

    grid = (int(embedded.shape[1]), int(embedded.shape[2]))
    dim = int(embedded.shape[-1])
    tokens = keras.layers.Reshape((grid[0] * grid[1], dim), name="patches")(embedded)
    outputs = keras.layers.Dense(num_classes, name="logits")(encoder(tokens, params, grid, prefix))
    return keras.Model(inputs, outputs, name=params.tag(prefix))


def encoder(tokens: Any, params: TransformerParams, grid: tuple[int, int], prefix: str) -> Any:
    """Position-encode `tokens` (batch, grid[0] * grid[1], dim) and run the encoder blocks;
    returns the pooled (batch, dim) features."""
    from effcli._tf import keras

    layers = keras.layers
    width, depth, _ = params.effective()
    dim = int(tokens.shape[-1])
    grid_view = layers.Reshape((*grid, dim), name=f"{prefix}_grid")(tokens)
    position = layers.DepthwiseConv2D(3, padding="same", name=f"{prefix}_position")(grid_view)
    x = layers.Add(name=f"{prefix}_with_position")(
        [tokens, layers.Reshape((grid[0] * grid[1], dim), name=f"{prefix}_tokens")(position)]
    )
    hidden = max(1, round(dim * params.mlp_ratio))
    for i in range(1, repeats(params.blocks, depth) + 1):
        name = f"{prefix}_block{i}"
        y = layers.LayerNormalization(epsilon=1e-6, name=f"{name}_norm1")(x)
        y = layers.MultiHeadAttention(
            params.heads, dim // params.heads, dropout=params.dropout, name=f"{name}_attention"
        )(y, y)
        x = layers.Add(name=f"{name}_residual1")([x, y])
        y = layers.LayerNormalization(epsilon=1e-6, name=f"{name}_norm2")(x)
        y = layers.Dense(hidden, activation=params.activation, name=f"{name}_mlp1")(y)
        if params.dropout:
            y = layers.Dropout(params.dropout, name=f"{name}_dropout")(y)
        y = layers.Dense(dim, name=f"{name}_mlp2")(y)
        x = layers.Add(name=f"{name}_residual2")([x, y])
    x = layers.LayerNormalization(epsilon=1e-6, name=f"{prefix}_norm")(x)
    return layers.GlobalAveragePooling1D(name=f"{prefix}_pool")(x)
