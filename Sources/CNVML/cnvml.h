#ifndef CNVML_H
#define CNVML_H

/*
 * The part of NVIDIA's NVML C API that swift-call-queue uses: types and function-pointer typedefs only.
 * Written from the NVML API reference (API version 13); nothing here links libnvidia-ml. The library is
 * opened with dlopen at run time and each function looked up with dlsym by its versioned name, so the same
 * binary runs on machines with and without a driver.
 */

#include <stddef.h>

typedef int nvmlReturn_t; /* a C enum in NVML: 4 bytes */
typedef struct nvmlDevice_st *nvmlDevice_t;

typedef struct {
    unsigned long long total;
    unsigned long long free;
    unsigned long long used;
} nvmlMemory_t;

typedef struct {
    unsigned int version; /* must be cnvml_memory_v2_version() */
    unsigned long long total;
    unsigned long long reserved;
    unsigned long long free;
    unsigned long long used;
} nvmlMemory_v2_t;

typedef struct {
    unsigned int pid;
    unsigned long long usedGpuMemory;
    unsigned int gpuInstanceId;
    unsigned int computeInstanceId;
} nvmlProcessInfo_t; /* the 24-byte entry of nvmlDeviceGetComputeRunningProcesses_v3 */

/* Layouts, as NVML's own header lays them out on LP64 (x86_64, aarch64). */
_Static_assert(sizeof(nvmlReturn_t) == 4, "nvmlReturn_t is 4 bytes");
_Static_assert(sizeof(nvmlDevice_t) == 8, "nvmlDevice_t is a pointer");
_Static_assert(sizeof(nvmlMemory_t) == 24, "nvmlMemory_t is 24 bytes");
_Static_assert(offsetof(nvmlMemory_t, free) == 8 && offsetof(nvmlMemory_t, used) == 16, "nvmlMemory_t offsets");
_Static_assert(sizeof(nvmlMemory_v2_t) == 40, "nvmlMemory_v2_t is 40 bytes");
_Static_assert(offsetof(nvmlMemory_v2_t, total) == 8 && offsetof(nvmlMemory_v2_t, reserved) == 16 &&
                   offsetof(nvmlMemory_v2_t, free) == 24 && offsetof(nvmlMemory_v2_t, used) == 32,
               "nvmlMemory_v2_t offsets (4 bytes of padding after version)");
_Static_assert(sizeof(nvmlProcessInfo_t) == 24, "nvmlProcessInfo_t is 24 bytes");
_Static_assert(offsetof(nvmlProcessInfo_t, usedGpuMemory) == 8 && offsetof(nvmlProcessInfo_t, gpuInstanceId) == 16 &&
                   offsetof(nvmlProcessInfo_t, computeInstanceId) == 20,
               "nvmlProcessInfo_t offsets (4 bytes of padding after pid)");

enum {
    CNVML_SUCCESS = 0,
    CNVML_ERROR_UNINITIALIZED = 1,
    CNVML_ERROR_NOT_SUPPORTED = 3,
    CNVML_ERROR_INSUFFICIENT_SIZE = 7,
    CNVML_ERROR_DRIVER_NOT_LOADED = 9,
    CNVML_ERROR_LIBRARY_NOT_FOUND = 12,
    CNVML_ERROR_FUNCTION_NOT_FOUND = 13,
    CNVML_ERROR_ARGUMENT_VERSION_MISMATCH = 25,
    CNVML_DEVICE_NAME_BUFFER_SIZE = 96,
    CNVML_DEVICE_UUID_BUFFER_SIZE = 96,
};

/* NVML_STRUCT_VERSION(Memory, 2): the struct's size with the version in the top byte, 0x02000028. */
static inline unsigned int cnvml_memory_v2_version(void) {
    return (unsigned int)(sizeof(nvmlMemory_v2_t) | (2u << 24));
}

typedef nvmlReturn_t (*PFN_nvmlInit_v2)(void);
typedef nvmlReturn_t (*PFN_nvmlShutdown)(void);
typedef const char *(*PFN_nvmlErrorString)(nvmlReturn_t result);
typedef nvmlReturn_t (*PFN_nvmlDeviceGetCount_v2)(unsigned int *deviceCount);
typedef nvmlReturn_t (*PFN_nvmlDeviceGetHandleByIndex_v2)(unsigned int index, nvmlDevice_t *device);
typedef nvmlReturn_t (*PFN_nvmlDeviceGetName)(nvmlDevice_t device, char *name, unsigned int length);
typedef nvmlReturn_t (*PFN_nvmlDeviceGetUUID)(nvmlDevice_t device, char *uuid, unsigned int length);
typedef nvmlReturn_t (*PFN_nvmlDeviceGetMemoryInfo)(nvmlDevice_t device, nvmlMemory_t *memory);
typedef nvmlReturn_t (*PFN_nvmlDeviceGetMemoryInfo_v2)(nvmlDevice_t device, nvmlMemory_v2_t *memory);
typedef nvmlReturn_t (*PFN_nvmlDeviceGetComputeRunningProcesses_v3)(nvmlDevice_t device, unsigned int *infoCount,
                                                                     nvmlProcessInfo_t *infos);

#endif
