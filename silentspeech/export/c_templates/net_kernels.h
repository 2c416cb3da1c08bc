/*
 * Integer kernels of the exported TinyMyo network.
 *
 * Each kernel runs on the cluster's master core: it moves tiles of its
 * operands from L2 into the L1 work area `l1` by DMA, forks the arithmetic
 * on a tile over NET_CORES cores, and moves the result tile back. Tile sizes
 * are chosen at export time so that each kernel fits the L1 area the
 * network declares (NET_L1_BYTES in network.h).
 *
 * The arithmetic is that of silentspeech/export/int_reference.py, bit for
 * bit: int8 operands, int32 accumulators, int64 fixed-point products,
 * round_shift(x, s) = (x + 2^(s-1)) >> s.
 */
#ifndef NET_KERNELS_H
#define NET_KERNELS_H

#include "net_port.h"

/* y = x W^T + b on int8 x (rows, in_features), requantised per output feature. */
typedef struct {
    int rows, in_features, out_features;
    uint32_t weight_offset;     /* of W (out, in) in the weight blob */
    const int32_t *bias;        /* (out,), or (bias_period, out) with row r taking row r % bias_period */
    int bias_period;            /* 0: one bias row */
    const int32_t *multiplier;  /* (out,); NULL: the int32 accumulator is the output */
    const uint8_t *shift;       /* (out,) */
    int32_t residual_multiplier; /* 0: no residual; else y = rs(acc*m + r*residual_multiplier, shift) */
    const int8_t *lut;          /* NULL, or 256 entries applied to y (indexed by y + 128) */
    int tile_rows, tile_cols;
} net_linear_t;

/* Integer LayerNorm over rows of `width` int8 values. */
typedef struct {
    int rows, width;
    const int32_t *gain, *offset; /* (width,) */
    int shift;
    int64_t eps_term;
    int tile_rows;
} net_layernorm_t;

/* Softmax attention with an exponent table over qkv (tokens, 3 * dim) -> (tokens, dim).
 * With rotary_cos set, q and k turn first: token n at patch time n % patches. */
typedef struct {
    int tokens, dim, heads;
    int32_t index_multiplier;
    int index_shift;
    const uint8_t *exp_table; /* 256 entries */
    int32_t output_multiplier;
    int output_shift;
    int tile_rows;
    const int16_t *rotary_cos, *rotary_sin; /* (patches, hd / 2) in Q14, or NULL */
    int patches;
    int32_t q_multiplier, k_multiplier; /* rotated q and k to their scales */
    int q_shift, k_shift;
} net_attention_t;

/* Mean over each channel's patches: (channels * patches, width) -> (channels, width). */
typedef struct {
    int channels, patches, width;
    int32_t multiplier;
    int shift;
    int tile_rows;
} net_pool_t;

/* output: int8 (rows, out), or int32 (rows, out) without multipliers; residual (rows, out) or NULL.
 * output may be the residual buffer itself (each element reads only its own residual). */
void net_linear(const net_linear_t *layer, int8_t *l1, const int8_t *input, const int8_t *residual, void *output);
void net_layernorm(const net_layernorm_t *layer, int8_t *l1, const int8_t *input, int8_t *output);
void net_attention(const net_attention_t *layer, int8_t *l1, const int8_t *qkv, int8_t *output);
void net_mean_pool(const net_pool_t *layer, int8_t *l1, const int8_t *tokens, int8_t *output);

#endif /* NET_KERNELS_H */
