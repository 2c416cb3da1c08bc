/*
 * The GAP SDK (PMSIS) calls the exported GAP9 code makes, declared as the SDK's API documents them,
 * so the test suite can check names and signatures of net_port.h's GAP9 branch without the SDK.
 * Written for silentspeech's tests from the SDK's published headers (declarations only):
 *
 *   GreenWaves-Technologies/gap_sdk @ 5132ebf0226b04e1429d9c5ec4f5ff6762e76ae2
 *     rtos/pmsis/api/include/pmsis/cluster/dma/cl_dma.h: pi_cl_dma_dir_e, pi_cl_dma_cmd_t, pi_cl_dma_cmd,
 *     pi_cl_dma_cmd_2d, pi_cl_dma_cmd_wait
 *   GreenWaves-Technologies/gap_sdk @ 044b19e0211944888840a87eccfa8d2a9242d451
 *     rtos/pmsis/pmsis_api/include/pmsis/cluster/cluster_team/cl_team.h: pi_cl_team_fork
 *   GreenWaves-Technologies/gap_sdk @ 3c2f102b40e5aba8fafc05fb3e783d7dfcebae6d
 *     rtos/pulp/pulpos-2/include/pos/implem/implem.h: pi_core_id (returns uint32_t)
 *   GreenWaves-Technologies/gap_sdk @ 1efefb8892b905b48628f0e1248e1cfcf868e033
 *     rtos/pulp/pulpos-2/include/pos/data/data.h: PI_CL_L1 and PI_L2 are section attributes
 *
 * What this cannot check (it needs the SDK and its RISC-V toolchain):
 *   - the SDK defines most of these functions `static inline` in the chip's implementation; here they
 *     are plain prototypes, so only the call's name, argument count and types are checked, not the code;
 *   - the layouts of pi_cl_dma_cmd_t and pi_cl_ram_req_t belong to the implementation; the
 *     definitions marked STAND-IN give them a placeholder member so they can live on the stack,
 *     as the API says they may;
 *   - __builtin_pulp_sdotsp4 is a builtin of the PULP GCC, declared here only so a host compiler
 *     can parse the call; whether the builtin exists for GAP9's core is not checked;
 *   - linking, the memory sections and whether the DMA sizes fit the hardware.
 */
#ifndef SILENTSPEECH_TEST_PMSIS_H
#define SILENTSPEECH_TEST_PMSIS_H

#include <stdint.h>

/* Memory placement: in the SDK these put data into the cluster's L1 or into L2 by linker section. */
#define PI_CL_L1 __attribute__((section(".data_l1")))
#define PI_L2 __attribute__((section(".l2_data")))

/* A device handle (pmsis/device.h); the exported code only passes pointers to it. */
struct pi_device;

/* The id of the calling core within its cluster. */
uint32_t pi_core_id(void);

/* Run entry(arg) on nb_cores cluster cores (0: as many as the previous fork) and wait for all of them. */
void pi_cl_team_fork(int nb_cores, void (*entry)(void *), void *arg);

/* Cluster DMA: direction of a transfer between external memory (L2) and the cluster's memory (L1). */
typedef enum {
    PI_CL_DMA_DIR_LOC2EXT = 0,
    PI_CL_DMA_DIR_EXT2LOC = 1
} pi_cl_dma_dir_e;

/* One DMA command; kept alive by the caller until the transfer has finished. */
typedef struct pi_cl_dma_cmd_s pi_cl_dma_cmd_t;
struct pi_cl_dma_cmd_s { uint32_t stand_in; }; /* STAND-IN: the implementation's layout */

/* Copy size bytes between ext and loc. */
void pi_cl_dma_cmd(uint32_t ext, uint32_t loc, uint32_t size, pi_cl_dma_dir_e dir, pi_cl_dma_cmd_t *cmd);
/* Copy size bytes as lines of length bytes, stride bytes apart on the external side. */
void pi_cl_dma_cmd_2d(uint32_t ext, uint32_t loc, uint32_t size, uint32_t stride, uint32_t length,
                      pi_cl_dma_dir_e dir, pi_cl_dma_cmd_t *cmd);
/* Block the calling core until the command has finished. */
void pi_cl_dma_cmd_wait(pi_cl_dma_cmd_t *cmd);

/* STAND-IN: the PULP toolchain's 4 x int8 dot product with accumulation (a compiler builtin, not an SDK header). */
typedef signed char silentspeech_test_v4s __attribute__((vector_size(4)));
int __builtin_pulp_sdotsp4(silentspeech_test_v4s a, silentspeech_test_v4s b, int acc);

#endif
