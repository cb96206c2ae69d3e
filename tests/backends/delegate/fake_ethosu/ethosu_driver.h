/* ethosu_driver.h for the tests: the part of the Arm Ethos-U core driver's API that edgecc's generated
 * ethosu/NAME_delegate_ethosu.c calls, declared as the driver documents it (ethos-u-core-driver 1.x).
 * fake_driver.c implements it without an NPU. */
#ifndef ETHOSU_DRIVER_H
#define ETHOSU_DRIVER_H

#include <stddef.h>
#include <stdint.h>

struct ethosu_driver;

struct ethosu_driver *ethosu_reserve_driver(void);
void ethosu_release_driver(struct ethosu_driver *drv);
int ethosu_invoke_v3(struct ethosu_driver *drv, const void *custom_data_ptr, const int custom_data_size,
                     uint64_t *const base_addr, const size_t *base_addr_size, const int num_base_addr,
                     void *user_arg);

#endif
