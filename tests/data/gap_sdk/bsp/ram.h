/*
 * The GAP SDK's external-RAM calls the exported GAP9 code makes with -DNET_WEIGHTS_IN_L3, declared as
 * the SDK's API documents them (declarations only; see ../pmsis.h for what this cannot check).
 * Written for silentspeech's tests from the SDK's published header:
 *
 *   GreenWaves-Technologies/gap_sdk @ 486589f192d4169d3e270858d9a136df059c6fa4
 *     rtos/pmsis/bsp/include/bsp/ram.h: pi_cl_ram_req_t, pi_cl_ram_read, pi_cl_ram_read_wait
 *
 * As in the SDK, these live in the board support package's bsp/ram.h, not in pmsis.h.
 */
#ifndef SILENTSPEECH_TEST_BSP_RAM_H
#define SILENTSPEECH_TEST_BSP_RAM_H

#include "pmsis.h"

/* A cluster-side request for a RAM copy; kept alive by the caller until the copy has finished. */
typedef struct pi_cl_ram_req_s pi_cl_ram_req_t;
struct pi_cl_ram_req_s { uint32_t stand_in; }; /* STAND-IN: the implementation's layout */

/* From the cluster, ask for size bytes at pi_ram_addr in the RAM device to be copied to addr. */
void pi_cl_ram_read(struct pi_device *device, uint32_t pi_ram_addr, void *addr, uint32_t size, pi_cl_ram_req_t *req);
/* Block the calling core until that copy has finished. */
void pi_cl_ram_read_wait(pi_cl_ram_req_t *req);

#endif
