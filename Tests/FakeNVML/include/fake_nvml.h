#ifndef FAKE_NVML_H
#define FAKE_NVML_H

/*
 * A fake libnvidia-ml for tests: the NVML entry points swift-call-queue uses, with scripted values, plus
 * these control functions. Tests dlopen the built library by path and drive it through dlsym; no target
 * links it.
 */

/* Resets every setting and counter to the defaults (one device, 80 GiB, init succeeds). */
void fake_nvml_reset(void);
/* The code nvmlInit_v2 returns (0 = success, 9 = driver not loaded, ...). */
void fake_nvml_set_init_result(int code);
/* How many devices the fake reports. */
void fake_nvml_set_device_count(unsigned int count);
/* Memory used on device `index` is the scripted value plus this offset, so devices read differently. */
void fake_nvml_set_device_used_offset(unsigned int index, unsigned long long offset);
/* Memory reads: total and reserved stay fixed; each read takes the next "used" value (the last repeats). */
void fake_nvml_script_memory(unsigned long long total, unsigned long long reserved, const unsigned long long *used,
                             unsigned int count);
/* What nvmlDeviceGetMemoryInfo_v2 does: 0 answers, otherwise it returns this code (3, 13, 25, ...). */
void fake_nvml_set_memory_v2_result(int code);
/* The processes on the device: pids and their memory. */
void fake_nvml_set_processes(const unsigned int *pids, const unsigned long long *used, unsigned int count);
/* Grows the process list by ten between the size query and the fetch, once, to exercise the retry. */
void fake_nvml_grow_processes_once(void);
/* Successful nvmlInit_v2 calls minus nvmlShutdown calls. */
int fake_nvml_init_balance(void);
/* Memory reads answered so far (v1 and v2). */
unsigned long long fake_nvml_memory_reads(void);
/* nvmlDeviceGetComputeRunningProcesses_v3 calls so far. */
unsigned int fake_nvml_process_calls(void);

#endif
