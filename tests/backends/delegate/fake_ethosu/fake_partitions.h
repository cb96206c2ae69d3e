/* What the fake driver knows of each partition (fake_partitions.c, written by the test). */
#ifndef FAKE_PARTITIONS_H
#define FAKE_PARTITIONS_H

#include <stddef.h>
#include <stdint.h>

struct fake_partition {
  const uint8_t *command_stream;
  size_t command_stream_bytes;
  const uint8_t *weights;
  size_t weights_bytes;
  size_t scratch_bytes;
  int num_inputs;
  int num_outputs;
  size_t fmap_offset[8];
  size_t fmap_bytes[8];
  int (*run)(const void *const inputs[], void *const outputs[]);
};

extern const struct fake_partition fake_partitions[];
extern const int fake_num_partitions;

#endif
