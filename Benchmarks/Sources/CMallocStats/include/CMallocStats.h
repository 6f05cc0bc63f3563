#ifndef CMALLOCSTATS_H
#define CMALLOCSTATS_H

#include <stddef.h>

/// Bytes the C allocator has handed out and not yet taken back (glibc's mallinfo2: in-use chunks plus
/// mmapped blocks); 0 where the platform does not tell.
size_t cmallocstats_bytes_in_use(void);

#endif
