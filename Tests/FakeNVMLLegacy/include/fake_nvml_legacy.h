#ifndef FAKE_NVML_LEGACY_H
#define FAKE_NVML_LEGACY_H
/* A fake libnvidia-ml of an old driver: no nvmlDeviceGetMemoryInfo_v2, no name, no UUID, no process list. */
int fake_nvml_legacy_init_balance(void);
#endif
