#include "fake_nvml_legacy.h"

typedef int nvmlReturn_t;
typedef struct legacy_device *nvmlDevice_t;
typedef struct {
    unsigned long long total, free, used;
} nvmlMemory_t;

struct legacy_device {
    int index;
};

static struct legacy_device device0 = {0};
static int balance;

int fake_nvml_legacy_init_balance(void) { return balance; }

nvmlReturn_t nvmlInit_v2(void) {
    balance++;
    return 0;
}

nvmlReturn_t nvmlShutdown(void) {
    if (balance == 0) return 1;
    balance--;
    return 0;
}

nvmlReturn_t nvmlDeviceGetCount_v2(unsigned int *count) {
    *count = 1;
    return balance > 0 ? 0 : 1;
}

nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int index, nvmlDevice_t *device) {
    if (balance == 0) return 1;
    if (index != 0) return 2;
    *device = &device0;
    return 0;
}

nvmlReturn_t nvmlDeviceGetMemoryInfo(nvmlDevice_t device, nvmlMemory_t *memory) {
    if (balance == 0) return 1;
    memory->total = 16ull << 30;
    memory->used = 3ull << 30;
    memory->free = memory->total - memory->used;
    return 0;
}
