// moat-boot-insns: the linux_boot_insns figure (bench/linux.cmake), run by
// /init as the first thing it prints when the kernel command line says
// moat.bench. Under QEMU's -icount shift=0 the TSC counts guest instructions
// (one tick each); the builder leaves the TSC at which it let this domain
// run (its unpause) in XenStore as moat/start-tsc, so that
//     now - start = instructions from the domain's first to this line
// (the whole machine's: the services' work while Linux boots is counted, as
// a user waiting for the prompt sees it). Prints
//     BENCH linux_boot_insns N
// or a FAIL line. XenStore through Linux's /dev/xen/xenbus (the xenbus
// front-end's device: the wire protocol of xs_wire.h, one XS_READ).
// Built static by the host compiler (build/cmake/Linux.cmake).
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { kXsRead = 2, kXsError = 16 };

struct XsHeader {
    uint32_t type, req_id, tx_id, len;
};

static uint64_t rdtsc(void) {
    uint32_t lo, hi;
    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
    return (uint64_t)hi << 32 | lo;
}

static int full_read(int fd, void* p, size_t n) {
    for (size_t got = 0; got < n;) {
        ssize_t r = read(fd, (char*)p + got, n - got);
        if (r <= 0) return -1;
        got += (size_t)r;
    }
    return 0;
}

// The value of a node relative to our home (/local/domain/<id>), or -1.
static int xs_read(const char* path, char* out, size_t cap) {
    int fd = open("/dev/xen/xenbus", O_RDWR);
    if (fd < 0) return -1;
    size_t plen = strlen(path) + 1;
    char msg[sizeof(struct XsHeader) + 256];
    if (plen > 256) return -1;
    struct XsHeader h = {kXsRead, 1, 0, (uint32_t)plen};
    memcpy(msg, &h, sizeof h);
    memcpy(msg + sizeof h, path, plen);
    int rc = -1;
    struct XsHeader r;
    if (write(fd, msg, sizeof h + plen) == (ssize_t)(sizeof h + plen) && full_read(fd, &r, sizeof r) == 0 &&
        r.len < cap && full_read(fd, out, r.len) == 0 && r.type == kXsRead) {
        out[r.len] = '\0';
        rc = (int)r.len;
    }
    close(fd);
    return rc;
}

int main(void) {
    uint64_t now = rdtsc();
    char v[32];
    if (xs_read("moat/start-tsc", v, sizeof v) <= 0) {
        printf("FAIL linux.boot_insns: no moat/start-tsc in XenStore (/dev/xen/xenbus)\n");
        return 1;
    }
    char* end;
    unsigned long long start = strtoull(v, &end, 10);
    if (*end || start == 0 || start >= now) {
        printf("FAIL linux.boot_insns: moat/start-tsc \"%s\", now %llu\n", v, (unsigned long long)now);
        return 1;
    }
    printf("BENCH linux_boot_insns %llu\n", (unsigned long long)(now - start));
    return 0;
}
