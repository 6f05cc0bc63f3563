#include "fake_nvml.h"

#include <pthread.h>
#include <string.h>

/* The layouts as the real library uses them, declared here independently of the project's own header so
 * that a mistake in one is caught by the other. */
typedef int nvmlReturn_t;
typedef struct fake_device *nvmlDevice_t;
typedef struct {
    unsigned long long total, free, used;
} nvmlMemory_t;
typedef struct {
    unsigned int version;
    unsigned long long total, reserved, free, used;
} nvmlMemory_v2_t;
typedef struct {
    unsigned int pid;
    unsigned long long usedGpuMemory;
    unsigned int gpuInstanceId, computeInstanceId;
} nvmlProcessInfo_t;

#define MAX_SCRIPT 64
#define MAX_PROCESSES 64

struct fake_device {
    int index;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct fake_device devices[4] = {{0}, {1}, {2}, {3}};
static int init_result;
static int init_balance;
static unsigned int device_count;
static unsigned long long device_offset[4];
static unsigned long long mem_total, mem_reserved;
static unsigned long long mem_used[MAX_SCRIPT];
static unsigned int mem_used_count, mem_next;
static unsigned long long memory_reads;
static int memory_v2_result;
static unsigned int process_pids[MAX_PROCESSES];
static unsigned long long process_used[MAX_PROCESSES];
static unsigned int process_count;
static int grow_processes_once;
static unsigned int process_calls;

void fake_nvml_reset(void) {
    pthread_mutex_lock(&lock);
    init_result = 0;
    init_balance = 0;
    device_count = 1;
    for (int i = 0; i < 4; i++) device_offset[i] = 0;
    mem_total = 80ull << 30;
    mem_reserved = 512ull << 20;
    mem_used[0] = 1ull << 30;
    mem_used_count = 1;
    mem_next = 0;
    memory_reads = 0;
    memory_v2_result = 0;
    process_count = 0;
    grow_processes_once = 0;
    process_calls = 0;
    pthread_mutex_unlock(&lock);
}

__attribute__((constructor)) static void fake_nvml_load(void) { fake_nvml_reset(); }

#define LOCKED(statement)                                                                                      \
    do {                                                                                                       \
        pthread_mutex_lock(&lock);                                                                             \
        statement;                                                                                             \
        pthread_mutex_unlock(&lock);                                                                           \
    } while (0)

void fake_nvml_set_init_result(int code) { LOCKED(init_result = code); }
void fake_nvml_set_device_count(unsigned int count) { LOCKED(device_count = count > 4 ? 4 : count); }
void fake_nvml_set_device_used_offset(unsigned int index, unsigned long long offset) {
    if (index < 4) LOCKED(device_offset[index] = offset);
}
void fake_nvml_set_memory_v2_result(int code) { LOCKED(memory_v2_result = code); }
void fake_nvml_grow_processes_once(void) { LOCKED(grow_processes_once = 1); }
int fake_nvml_init_balance(void) {
    int value;
    LOCKED(value = init_balance);
    return value;
}
unsigned long long fake_nvml_memory_reads(void) {
    unsigned long long value;
    LOCKED(value = memory_reads);
    return value;
}
unsigned int fake_nvml_process_calls(void) {
    unsigned int value;
    LOCKED(value = process_calls);
    return value;
}

void fake_nvml_script_memory(unsigned long long total, unsigned long long reserved, const unsigned long long *used,
                             unsigned int count) {
    pthread_mutex_lock(&lock);
    mem_total = total;
    mem_reserved = reserved;
    mem_used_count = count > MAX_SCRIPT ? MAX_SCRIPT : count;
    memcpy(mem_used, used, mem_used_count * sizeof used[0]);
    mem_next = 0;
    pthread_mutex_unlock(&lock);
}

void fake_nvml_set_processes(const unsigned int *pids, const unsigned long long *used, unsigned int count) {
    pthread_mutex_lock(&lock);
    process_count = count > MAX_PROCESSES - 1 ? MAX_PROCESSES - 1 : count;
    memcpy(process_pids, pids, process_count * sizeof pids[0]);
    memcpy(process_used, used, process_count * sizeof used[0]);
    pthread_mutex_unlock(&lock);
}

/* --- The NVML entry points ------------------------------------------------------------------------ */

static int initialized(void) {
    int value;
    LOCKED(value = init_balance > 0);
    return value;
}

nvmlReturn_t nvmlInit_v2(void) {
    pthread_mutex_lock(&lock);
    int result = init_result;
    if (result == 0) init_balance++;
    pthread_mutex_unlock(&lock);
    return result;
}

nvmlReturn_t nvmlShutdown(void) {
    pthread_mutex_lock(&lock);
    int result = init_balance > 0 ? 0 : 1;
    if (result == 0) init_balance--;
    pthread_mutex_unlock(&lock);
    return result;
}

const char *nvmlErrorString(nvmlReturn_t result) {
    switch (result) {
    case 0: return "Success";
    case 1: return "Uninitialized";
    case 2: return "Invalid Argument";
    case 3: return "Not Supported";
    case 7: return "Insufficient Size";
    case 9: return "Driver Not Loaded";
    case 13: return "Function Not Found";
    case 18: return "RM has detected an NVML/RM version mismatch.";
    case 25: return "Argument version mismatch";
    default: return "Unknown Error";
    }
}

nvmlReturn_t nvmlDeviceGetCount_v2(unsigned int *count) {
    if (!initialized()) return 1;
    if (!count) return 2;
    LOCKED(*count = device_count);
    return 0;
}

nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int index, nvmlDevice_t *device) {
    if (!initialized()) return 1;
    unsigned int count;
    LOCKED(count = device_count);
    if (!device || index >= count) return 2;
    *device = &devices[index];
    return 0;
}

nvmlReturn_t nvmlDeviceGetName(nvmlDevice_t device, char *name, unsigned int length) {
    if (!initialized()) return 1;
    const char *text = "Fake NVIDIA H100 80GB HBM3";
    if (!device || !name) return 2;
    if (length < strlen(text) + 1) return 7;
    strcpy(name, text);
    return 0;
}

/* nvmlDeviceGetUUID is deliberately missing: the monitor must cope with a function the library lacks. */

static void next_memory(nvmlDevice_t device, unsigned long long *used) {
    *used = mem_used[mem_next < mem_used_count ? mem_next : mem_used_count - 1]
        + device_offset[((struct fake_device *)device)->index];
    if (mem_next < mem_used_count) mem_next++;
    memory_reads++;
}

nvmlReturn_t nvmlDeviceGetMemoryInfo(nvmlDevice_t device, nvmlMemory_t *memory) {
    if (!initialized()) return 1;
    if (!device || !memory) return 2;
    pthread_mutex_lock(&lock);
    unsigned long long used;
    next_memory(device, &used);
    /* v1: used includes the reserved memory, and total == free + used. */
    memory->total = mem_total;
    memory->used = used + mem_reserved;
    memory->free = mem_total - memory->used;
    pthread_mutex_unlock(&lock);
    return 0;
}

nvmlReturn_t nvmlDeviceGetMemoryInfo_v2(nvmlDevice_t device, nvmlMemory_v2_t *memory) {
    if (!initialized()) return 1;
    if (!device || !memory) return 2;
    int scripted_result;
    LOCKED(scripted_result = memory_v2_result);
    if (scripted_result != 0) return scripted_result;
    if (memory->version != (unsigned int)(sizeof(nvmlMemory_v2_t) | (2u << 24))) return 25;
    pthread_mutex_lock(&lock);
    unsigned long long used;
    next_memory(device, &used);
    /* v2: reserved apart, total == reserved + free + used. */
    memory->total = mem_total;
    memory->reserved = mem_reserved;
    memory->used = used;
    memory->free = mem_total - mem_reserved - used;
    pthread_mutex_unlock(&lock);
    return 0;
}

nvmlReturn_t nvmlDeviceGetComputeRunningProcesses_v3(nvmlDevice_t device, unsigned int *count,
                                                     nvmlProcessInfo_t *infos) {
    if (!initialized()) return 1;
    if (!device || !count) return 2;
    pthread_mutex_lock(&lock);
    process_calls++;
    if (*count < process_count || (process_count > 0 && !infos)) {
        *count = process_count;
        if (grow_processes_once) {
            /* Ten processes appear between the size query and the fetch: more than a caller's headroom. */
            grow_processes_once = 0;
            for (int i = 0; i < 10 && process_count < MAX_PROCESSES; i++) {
                process_pids[process_count] = 900000 + i;
                process_used[process_count] = 1ull << 20;
                process_count++;
            }
        }
        pthread_mutex_unlock(&lock);
        return 7;
    }
    for (unsigned int i = 0; i < process_count; i++) {
        infos[i].pid = process_pids[i];
        infos[i].usedGpuMemory = process_used[i];
        infos[i].gpuInstanceId = 0xFFFFFFFFu;
        infos[i].computeInstanceId = 0xFFFFFFFFu;
    }
    *count = process_count;
    pthread_mutex_unlock(&lock);
    return 0;
}
