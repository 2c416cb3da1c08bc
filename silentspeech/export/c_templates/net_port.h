/*
 * Portability layer of the exported network: GAP9 cluster or host.
 *
 * The kernels are written for GAP9's cluster: the master core moves tiles
 * between L2 (or L3) and the cluster's L1 by DMA, then forks the work on a
 * tile over NET_CORES cores and joins them. Everything machine specific is
 * here:
 *
 *   -DGAP9              PMSIS: pi_cl_team_fork, cluster DMA, SIMD dot products;
 *                       network_run() must run on the cluster (a cluster task).
 *   -DNET_WEIGHTS_IN_L3 with GAP9: the int8 weights (weights.bin) sit in external
 *                       RAM at net_l3_weights on device net_l3_ram, loaded by the
 *                       application; tiles are read with pi_cl_ram_read.
 *   (neither)           host: the fork is a sequential loop over the core ids,
 *                       DMA is memcpy; builds with any C99 compiler.
 *
 * Fork/join is the only synchronisation the kernels use (no barriers inside a
 * fork), so the sequential host loop computes exactly what the cores do.
 */
#ifndef NET_PORT_H
#define NET_PORT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define NET_CORES 8

/* Rounding shifts rely on >> of a negative value flooring (arithmetic shift),
 * which C99 leaves to the implementation: refuse to build where it does not. */
typedef char net_arithmetic_shift_check[((-1) >> 1) == -1 ? 1 : -1];

#ifdef GAP9

#include "pmsis.h"

#define NET_L1 PI_CL_L1
#define NET_L2 PI_L2
/* Largest single cluster-DMA command this port issues. */
#define NET_DMA_CHUNK 32768u

static inline int net_core_id(void) { return pi_core_id(); }

static inline void net_fork(void (*entry)(void *), void *arg) { pi_cl_team_fork(NET_CORES, entry, arg); }

/* Copy `lines` lines of `line_bytes` between L2 (stride `ext_stride`) and contiguous L1. */
static inline void net_dma_2d(void *l1, const void *ext, uint32_t lines, uint32_t line_bytes, uint32_t ext_stride,
                              pi_cl_dma_dir_e dir)
{
    uint32_t per_command = line_bytes >= NET_DMA_CHUNK ? 1u : NET_DMA_CHUNK / line_bytes;
    for (uint32_t first = 0; first < lines; first += per_command) {
        uint32_t count = lines - first < per_command ? lines - first : per_command;
        uint32_t loc = (uint32_t)l1 + first * line_bytes;
        uint32_t far = (uint32_t)ext + first * ext_stride;
        pi_cl_dma_cmd_t cmd;
        if (ext_stride == line_bytes)
            pi_cl_dma_cmd(far, loc, count * line_bytes, dir, &cmd);
        else
            pi_cl_dma_cmd_2d(far, loc, count * line_bytes, ext_stride, line_bytes, dir, &cmd);
        pi_cl_dma_cmd_wait(&cmd);
    }
}

static inline void net_dma_in_2d(void *l1, const void *l2, uint32_t lines, uint32_t line_bytes, uint32_t stride)
{
    net_dma_2d(l1, l2, lines, line_bytes, stride, PI_CL_DMA_DIR_EXT2LOC);
}

static inline void net_dma_out_2d(void *l2, const void *l1, uint32_t lines, uint32_t line_bytes, uint32_t stride)
{
    net_dma_2d((void *)l1, l2, lines, line_bytes, stride, PI_CL_DMA_DIR_LOC2EXT);
}

static inline void net_dma_in(void *l1, const void *l2, uint32_t bytes) { net_dma_in_2d(l1, l2, 1, bytes, bytes); }

#ifdef NET_WEIGHTS_IN_L3
#include "bsp/ram.h" /* the SDK declares the RAM calls in its board support package, not in pmsis.h */
extern struct pi_device *net_l3_ram;
extern uint32_t net_l3_weights;
static inline void net_weights_in(void *l1, uint32_t offset, uint32_t bytes)
{
    pi_cl_ram_req_t request;
    pi_cl_ram_read(net_l3_ram, net_l3_weights + offset, l1, bytes, &request);
    pi_cl_ram_read_wait(&request);
}
#else
extern const int8_t net_weights[];
static inline void net_weights_in(void *l1, uint32_t offset, uint32_t bytes) { net_dma_in(l1, net_weights + offset, bytes); }
#endif

/* int8 dot product with the 4-way SIMD sdotp when both rows are word aligned. */
typedef signed char net_v4s __attribute__((vector_size(4)));
static inline int32_t net_dot_i8(const int8_t *a, const int8_t *b, int n, int32_t acc)
{
    int i = 0;
    if ((((uint32_t)a | (uint32_t)b) & 3u) == 0) {
        const net_v4s *va = (const net_v4s *)a, *vb = (const net_v4s *)b;
        for (; i + 4 <= n; i += 4) acc = __builtin_pulp_sdotsp4(*va++, *vb++, acc);
    }
    for (; i < n; i++) acc += (int32_t)a[i] * b[i];
    return acc;
}

#else /* host */

#define NET_L1
#define NET_L2

/* The core id the sequential fork is running as. */
extern int net_host_core;

static inline int net_core_id(void) { return net_host_core; }

static inline void net_fork(void (*entry)(void *), void *arg)
{
    for (net_host_core = 0; net_host_core < NET_CORES; net_host_core++) entry(arg);
    net_host_core = 0;
}

static inline void net_dma_in_2d(void *l1, const void *l2, uint32_t lines, uint32_t line_bytes, uint32_t stride)
{
    for (uint32_t i = 0; i < lines; i++) memcpy((int8_t *)l1 + i * line_bytes, (const int8_t *)l2 + i * stride, line_bytes);
}

static inline void net_dma_out_2d(void *l2, const void *l1, uint32_t lines, uint32_t line_bytes, uint32_t stride)
{
    for (uint32_t i = 0; i < lines; i++) memcpy((int8_t *)l2 + i * stride, (const int8_t *)l1 + i * line_bytes, line_bytes);
}

static inline void net_dma_in(void *l1, const void *l2, uint32_t bytes) { memcpy(l1, l2, bytes); }

extern const int8_t net_weights[];
static inline void net_weights_in(void *l1, uint32_t offset, uint32_t bytes) { memcpy(l1, net_weights + offset, bytes); }

static inline int32_t net_dot_i8(const int8_t *a, const int8_t *b, int n, int32_t acc)
{
    for (int i = 0; i < n; i++) acc += (int32_t)a[i] * b[i];
    return acc;
}

#endif /* GAP9 */

/* Byte offsets of L1 sub-buffers are kept word aligned. */
#define NET_ALIGN4(n) (((n) + 3u) & ~3u)

#endif /* NET_PORT_H */
