#include "CMallocStats.h"

#include <stdlib.h> /* defines __GLIBC__ where glibc is the C library */

#if defined(__GLIBC__)
#include <malloc.h>

size_t cmallocstats_bytes_in_use(void) {
    struct mallinfo2 info = mallinfo2();
    return info.uordblks + info.hblkhd;
}
#else
size_t cmallocstats_bytes_in_use(void) {
    return 0;
}
#endif
