/* A stand-in for the Ethos-U core driver, for the tests. There is no NPU here (QEMU models none), so
 * invoking a command stream means: check the call as the driver and the NPU would see it (a "COP1"
 * payload, 16-byte aligned, at most 8 regions, every base address 16-byte aligned, region 0 the
 * partition's read-only data, regions 1 and 2 its scratch area, every feature map inside the scratch
 * area at the offset Vela chose), then compute the partition with edgecc's reference kernels, reading
 * the inputs from and writing the outputs to the addresses the command stream would use.
 * fake_partitions.c (written by the test) lists each partition's arrays and reference function. */
#include <stdio.h>
#include <string.h>

#include "ethosu_driver.h"
#include "fake_partitions.h"

struct ethosu_driver {
  int reserved;
};

static struct ethosu_driver the_driver;

struct ethosu_driver *ethosu_reserve_driver(void) {
  if (the_driver.reserved) return NULL;
  the_driver.reserved = 1;
  return &the_driver;
}

void ethosu_release_driver(struct ethosu_driver *drv) {
  drv->reserved = 0;
}

static int refuse(const char *why) {
  fprintf(stderr, "fake ethos-u driver: %s\n", why);
  return -1;
}

int ethosu_invoke_v3(struct ethosu_driver *drv, const void *custom_data_ptr, const int custom_data_size,
                     uint64_t *const base_addr, const size_t *base_addr_size, const int num_base_addr,
                     void *user_arg) {
  (void)user_arg;
  if (drv != &the_driver || !drv->reserved) return refuse("invoke without a reserved driver");
  if (((uintptr_t)custom_data_ptr & 15u) || custom_data_size % 4 || memcmp(custom_data_ptr, "COP1", 4))
    return refuse("the command stream is not a 16-byte aligned COP1 payload");
  if (num_base_addr < 3 || num_base_addr > 8) return refuse("not 3 to 8 regions");
  for (int i = 0; i < num_base_addr; i++)
    if (base_addr[i] & 15u) return refuse("a region is not 16-byte aligned");
  const struct fake_partition *p = NULL;
  for (int k = 0; k < fake_num_partitions; k++)
    if (fake_partitions[k].command_stream == custom_data_ptr) p = &fake_partitions[k];
  if (p == NULL || (size_t)custom_data_size != p->command_stream_bytes) return refuse("an unknown command stream");
  if (base_addr[0] != (uintptr_t)p->weights || base_addr_size[0] != p->weights_bytes)
    return refuse("region 0 is not the partition's read-only data");
  if (base_addr[1] != base_addr[2] || base_addr_size[1] != p->scratch_bytes || base_addr_size[2] != p->scratch_bytes)
    return refuse("regions 1 and 2 are not the scratch area");
  if (num_base_addr != 3 + p->num_inputs + p->num_outputs) return refuse("not one region per feature map");
  const void *inputs[8];
  void *outputs[8];
  for (int i = 0; i < p->num_inputs + p->num_outputs; i++) {
    uint64_t at = base_addr[3 + i];
    if (at != base_addr[1] + p->fmap_offset[i] || base_addr_size[3 + i] != p->fmap_bytes[i])
      return refuse("a feature map is not where Vela placed it");
    if (i < p->num_inputs) inputs[i] = (const void *)(uintptr_t)at;
    else outputs[i - p->num_inputs] = (void *)(uintptr_t)at;
  }
  return p->run(inputs, outputs);
}
