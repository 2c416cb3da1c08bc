/*
 * Integer kernels of the exported TinyMyo network (see net_kernels.h).
 *
 * L1 layouts, in this order, each sub-buffer starting word aligned
 * (silentspeech/export/c_codegen.py sizes the tiles with the same layouts):
 *   linear:    W tile (cols x in) | x tile (rows x in) | residual tile (rows x cols) | y tile (rows x cols x 1 or 4)
 *   layernorm: x tile (rows x width) | y tile (rows x width)
 *   attention: K head (tokens x hd) | V head (tokens x hd) | q tile (rows x hd) | o tile (rows x hd)
 *              | per core: scores (tokens x 4) | e (tokens) | sums (hd x 4); rotary positions turn
 *              K and q in place in L1
 *   pool:      x tile (rows x width) | sums (width x 4) | y (width)
 */
#include "net_kernels.h"

#ifndef GAP9
int net_host_core = 0;
#endif

static inline int64_t round_shift(int64_t x, int shift) { return (x + ((int64_t)1 << (shift - 1))) >> shift; }

static inline int8_t clamp_int8(int64_t x) { return (int8_t)(x < -128 ? -128 : x > 127 ? 127 : x); }

static inline int min_int(int a, int b) { return a < b ? a : b; }

/* Contiguous share [*first, *last) of `count` items for the calling core. */
static inline void core_share(int count, int *first, int *last)
{
    int per_core = (count + NET_CORES - 1) / NET_CORES;
    *first = net_core_id() * per_core;
    *last = min_int(*first + per_core, count);
    if (*first > count) *first = count;
}

/* --- linear ------------------------------------------------------------------- */

typedef struct {
    const net_linear_t *layer;
    const int8_t *w, *x, *residual;
    void *y;
    int row0, col0, rows, cols;
} linear_job_t;

static void linear_tile(void *arg)
{
    const linear_job_t *job = (const linear_job_t *)arg;
    const net_linear_t *layer = job->layer;
    int k = layer->in_features, first, last;
    core_share(job->rows * job->cols, &first, &last);
    for (int i = first; i < last; i++) {
        int r = i / job->cols, c = i % job->cols, out = job->col0 + c;
        int bias_row = layer->bias_period != 0 ? (job->row0 + r) % layer->bias_period : 0;
        int32_t acc = layer->bias[bias_row * layer->out_features + out];
        acc = net_dot_i8(job->x + r * k, job->w + c * k, k, acc);
        if (layer->multiplier == NULL) {
            ((int32_t *)job->y)[i] = acc;
            continue;
        }
        int64_t scaled = (int64_t)acc * layer->multiplier[out];
        if (job->residual != NULL) scaled += (int64_t)job->residual[i] * layer->residual_multiplier;
        int8_t y = clamp_int8(round_shift(scaled, layer->shift[out]));
        ((int8_t *)job->y)[i] = layer->lut != NULL ? layer->lut[y + 128] : y;
    }
}

void net_linear(const net_linear_t *layer, int8_t *l1, const int8_t *input, const int8_t *residual, void *output)
{
    int k = layer->in_features, m = layer->out_features;
    uint32_t y_bytes = layer->multiplier == NULL ? 4u : 1u;
    int8_t *w = l1;
    int8_t *x = w + NET_ALIGN4((uint32_t)(layer->tile_cols * k));
    int8_t *r = x + NET_ALIGN4((uint32_t)(layer->tile_rows * k));
    int8_t *y = r + (residual != NULL ? NET_ALIGN4((uint32_t)(layer->tile_rows * layer->tile_cols)) : 0u);
    for (int col0 = 0; col0 < m; col0 += layer->tile_cols) {
        int cols = min_int(m - col0, layer->tile_cols);
        net_weights_in(w, layer->weight_offset + (uint32_t)(col0 * k), (uint32_t)(cols * k));
        for (int row0 = 0; row0 < layer->rows; row0 += layer->tile_rows) {
            int rows = min_int(layer->rows - row0, layer->tile_rows);
            linear_job_t job = {layer, w, x, NULL, y, row0, col0, rows, cols};
            net_dma_in(x, input + row0 * k, (uint32_t)(rows * k));
            if (residual != NULL) {
                net_dma_in_2d(r, residual + row0 * m + col0, (uint32_t)rows, (uint32_t)cols, (uint32_t)m);
                job.residual = r;
            }
            net_fork(linear_tile, &job);
            net_dma_out_2d((int8_t *)output + (uint32_t)(row0 * m + col0) * y_bytes, y, (uint32_t)rows, cols * y_bytes,
                           (uint32_t)m * y_bytes);
        }
    }
}

/* --- layernorm ------------------------------------------------------------------ */

/* Floor square root, digit by digit. */
static uint64_t isqrt64(uint64_t u)
{
    uint64_t root = 0, bit = (uint64_t)1 << 62;
    while (bit > u) bit >>= 2;
    while (bit != 0) {
        if (u >= root + bit) {
            u -= root + bit;
            root = (root >> 1) + bit;
        } else {
            root >>= 1;
        }
        bit >>= 2;
    }
    return root;
}

typedef struct {
    const net_layernorm_t *layer;
    const int8_t *x;
    int8_t *y;
    int rows;
} layernorm_job_t;

static void layernorm_tile(void *arg)
{
    const layernorm_job_t *job = (const layernorm_job_t *)arg;
    const net_layernorm_t *layer = job->layer;
    int width = layer->width, first, last;
    core_share(job->rows, &first, &last);
    for (int row = first; row < last; row++) {
        const int8_t *x = job->x + row * width;
        int8_t *y = job->y + row * width;
        int32_t sum = 0;
        for (int i = 0; i < width; i++) sum += x[i];
        uint64_t squares = 0;
        for (int i = 0; i < width; i++) {
            int64_t d = (int64_t)width * x[i] - sum;
            squares += (uint64_t)(d * d);
        }
        uint64_t u = squares / (uint64_t)width + (uint64_t)layer->eps_term;
        int64_t inverse = (int64_t)(((uint64_t)1 << 47) / isqrt64(u << 16));
        for (int i = 0; i < width; i++) {
            int64_t n = round_shift(((int64_t)width * x[i] - sum) * inverse, 23);
            y[i] = clamp_int8(round_shift(n * layer->gain[i] + layer->offset[i], layer->shift));
        }
    }
}

void net_layernorm(const net_layernorm_t *layer, int8_t *l1, const int8_t *input, int8_t *output)
{
    int width = layer->width;
    int8_t *x = l1, *y = l1 + NET_ALIGN4((uint32_t)(layer->tile_rows * width));
    for (int row0 = 0; row0 < layer->rows; row0 += layer->tile_rows) {
        int rows = min_int(layer->rows - row0, layer->tile_rows);
        layernorm_job_t job = {layer, x, y, rows};
        net_dma_in(x, input + row0 * width, (uint32_t)(rows * width));
        net_fork(layernorm_tile, &job);
        net_dma_out_2d(output + row0 * width, y, 1, (uint32_t)(rows * width), (uint32_t)(rows * width));
    }
}

/* --- attention ------------------------------------------------------------------- */

typedef struct {
    const net_attention_t *layer;
    int8_t *k, *q;
    const int8_t *v;
    int8_t *o;
    int8_t *scratch; /* NET_CORES slices of scratch_bytes */
    uint32_t scratch_bytes;
    int row0, rows;
} attention_job_t;

/* Rotary positions on one head's row of q or k (hd values) of the token `token`, in place. */
static void rotate_row(const net_attention_t *layer, int8_t *x, int token, int32_t multiplier, int shift)
{
    int half = layer->dim / layer->heads / 2;
    const int16_t *cos = layer->rotary_cos + (token % layer->patches) * half;
    const int16_t *sin = layer->rotary_sin + (token % layer->patches) * half;
    for (int i = 0; i < half; i++) {
        int32_t a = x[i], b = x[i + half];
        x[i] = clamp_int8(round_shift((int64_t)(a * cos[i] - b * sin[i]) * multiplier, shift));
        x[i + half] = clamp_int8(round_shift((int64_t)(b * cos[i] + a * sin[i]) * multiplier, shift));
    }
}

static void rotate_keys(void *arg)
{
    const attention_job_t *job = (const attention_job_t *)arg;
    const net_attention_t *layer = job->layer;
    int hd = layer->dim / layer->heads, first, last;
    core_share(layer->tokens, &first, &last);
    for (int j = first; j < last; j++) rotate_row(layer, job->k + j * hd, j, layer->k_multiplier, layer->k_shift);
}

static void attention_tile(void *arg)
{
    const attention_job_t *job = (const attention_job_t *)arg;
    const net_attention_t *layer = job->layer;
    int n = layer->tokens, hd = layer->dim / layer->heads, first, last;
    int8_t *mine = job->scratch + (uint32_t)net_core_id() * job->scratch_bytes;
    int32_t *scores = (int32_t *)mine;
    uint8_t *e = (uint8_t *)mine + 4u * (uint32_t)n;
    int32_t *sums = (int32_t *)((uint8_t *)e + NET_ALIGN4((uint32_t)n));
    core_share(job->rows, &first, &last);
    for (int row = first; row < last; row++) {
        int8_t *q = job->q + row * hd;
        if (layer->rotary_cos != NULL) rotate_row(layer, q, job->row0 + row, layer->q_multiplier, layer->q_shift);
        int32_t top = INT32_MIN;
        for (int j = 0; j < n; j++) {
            scores[j] = net_dot_i8(q, job->k + j * hd, hd, 0);
            if (scores[j] > top) top = scores[j];
        }
        int32_t total = 0;
        for (int j = 0; j < n; j++) {
            int64_t index = round_shift((int64_t)(top - scores[j]) * layer->index_multiplier, layer->index_shift);
            e[j] = layer->exp_table[index > 255 ? 255 : index];
            total += e[j];
        }
        for (int d = 0; d < hd; d++) sums[d] = 0;
        for (int j = 0; j < n; j++) {
            const int8_t *v = job->v + j * hd;
            int32_t weight = e[j];
            if (weight == 0) continue;
            for (int d = 0; d < hd; d++) sums[d] += weight * v[d];
        }
        int64_t reciprocal = ((int64_t)layer->output_multiplier << 16) / total;
        for (int d = 0; d < hd; d++)
            job->o[row * hd + d] = clamp_int8(round_shift(sums[d] * reciprocal, layer->output_shift + 16));
    }
}

void net_attention(const net_attention_t *layer, int8_t *l1, const int8_t *qkv, int8_t *output)
{
    int n = layer->tokens, dim = layer->dim, hd = dim / layer->heads;
    uint32_t head_bytes = NET_ALIGN4((uint32_t)(n * hd)), tile_bytes = NET_ALIGN4((uint32_t)(layer->tile_rows * hd));
    attention_job_t job;
    job.layer = layer;
    job.k = l1;
    job.v = l1 + head_bytes;
    job.q = l1 + 2 * head_bytes;
    job.o = l1 + 2 * head_bytes + tile_bytes;
    job.scratch = l1 + 2 * head_bytes + 2 * tile_bytes;
    job.scratch_bytes = 4u * (uint32_t)n + NET_ALIGN4((uint32_t)n) + 4u * (uint32_t)hd;
    for (int h = 0; h < layer->heads; h++) {
        net_dma_in_2d((int8_t *)job.k, qkv + dim + h * hd, (uint32_t)n, (uint32_t)hd, 3u * (uint32_t)dim);
        net_dma_in_2d((int8_t *)job.v, qkv + 2 * dim + h * hd, (uint32_t)n, (uint32_t)hd, 3u * (uint32_t)dim);
        if (layer->rotary_cos != NULL) net_fork(rotate_keys, &job);
        for (int row0 = 0; row0 < n; row0 += layer->tile_rows) {
            job.row0 = row0;
            job.rows = min_int(n - row0, layer->tile_rows);
            net_dma_in_2d((int8_t *)job.q, qkv + row0 * 3 * dim + h * hd, (uint32_t)job.rows, (uint32_t)hd,
                          3u * (uint32_t)dim);
            net_fork(attention_tile, &job);
            net_dma_out_2d(output + row0 * dim + h * hd, job.o, (uint32_t)job.rows, (uint32_t)hd, (uint32_t)dim);
        }
    }
}

/* --- mean over patches -------------------------------------------------------------- */

typedef struct {
    const net_pool_t *layer;
    const int8_t *x;
    int32_t *sums;
    int rows;
} pool_job_t;

static void pool_tile(void *arg)
{
    const pool_job_t *job = (const pool_job_t *)arg;
    int width = job->layer->width, first, last;
    core_share(width, &first, &last);
    for (int row = 0; row < job->rows; row++)
        for (int d = first; d < last; d++) job->sums[d] += job->x[row * width + d];
}

void net_mean_pool(const net_pool_t *layer, int8_t *l1, const int8_t *tokens, int8_t *output)
{
    int width = layer->width;
    int8_t *x = l1;
    int32_t *sums = (int32_t *)(l1 + NET_ALIGN4((uint32_t)(layer->tile_rows * width)));
    int8_t *y = (int8_t *)(sums + width);
    for (int c = 0; c < layer->channels; c++) {
        for (int d = 0; d < width; d++) sums[d] = 0;
        for (int row0 = 0; row0 < layer->patches; row0 += layer->tile_rows) {
            pool_job_t job = {layer, x, sums, 0};
            job.rows = min_int(layer->patches - row0, layer->tile_rows);
            net_dma_in(x, tokens + (c * layer->patches + row0) * width, (uint32_t)(job.rows * width));
            net_fork(pool_tile, &job);
        }
        for (int d = 0; d < width; d++)
            y[d] = clamp_int8(round_shift((int64_t)sums[d] * layer->multiplier, layer->shift));
        net_dma_out_2d(output + c * width, y, 1, (uint32_t)width, (uint32_t)width);
    }
}
