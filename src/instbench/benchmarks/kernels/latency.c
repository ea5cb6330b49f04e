/*
 * instbench latency kernel: load-to-use latency and single-thread read bandwidth over a
 * sweep of working-set sizes, from L1 to DRAM.
 *
 * Written for instbench. What it measures, and why it is done this way:
 *
 *   - Latency is a pointer chase: every cache line of the working set holds the address
 *     of the next line to visit, so each load depends on the previous one and the time
 *     per load is the latency of wherever the line lives. The visiting order is a random
 *     cyclic permutation drawn with Sattolo's algorithm (one cycle through every line), so
 *     the hardware prefetchers cannot guess the next address, and the chase touches each
 *     line exactly once per lap. One pointer per cache line (the stride is the line size
 *     the caller passes, normally the coherency_line_size the OS reports).
 *   - Bandwidth is a sum reduction over the same bytes in address order (single thread,
 *     16 independent accumulators so the adds never limit the loads), repeated; it tells
 *     what one core can stream from each level.
 *   - Per size: draw the permutation (in a side array of 32-bit indices; cycles of up to
 *     IB_CHECK_LINES lines are followed to prove they are one cycle), write it into the
 *     buffer in address order, then measure the read bandwidth, then the latency. The
 *     read comes first because its calibration pass warms a working set that fits a
 *     cache and, for one that does not, evicts the lines just written, so the chase
 *     neither starts cold nor pays for write-backs of dirty lines.
 *   - Each measurement is SAMPLES samples of about LAT_MS (chase) or BW_MS (read)
 *     milliseconds of work; the iteration counts are calibrated per size, so a sample
 *     always spans many clock steps. Consecutive chase samples walk on around the cycle.
 *     Many short samples rather than a few long ones: on a shared or busy machine some
 *     of them run undisturbed. Raw sample times are printed; statistics are computed by
 *     instbench/benchmarks/latency.py.
 *   - The buffer is 2 MiB aligned and, when HUGE=1, advised with MADV_HUGEPAGE before it
 *     is touched: with 4 KiB pages a random chase over megabytes misses the TLB on nearly
 *     every load and the page walk would be counted as cache or memory latency. Whether
 *     huge pages were granted is reported (AnonHugePages of this process).
 *   - The measuring thread is pinned to RUN_CPU (no migration mid-sweep, which would
 *     empty the caches under the measurement). The buffer is first touched by a thread
 *     pinned to MEM_CPU: with the default "local" NUMA policy its pages land on MEM_CPU's
 *     node, which is how remote-memory latency is measured without libnuma. With
 *     CHECK_PAGES=1 the node of a sample of pages is read back with move_pages(2) (query
 *     mode, nothing is moved) so the placement is verified, not assumed.
 *
 * Usage:
 *   latency sizes=S1,S2,... stride=B samples=N lat_ms=T bw_ms=T huge=0|1 seed=X
 *           run_cpu=C [mem_cpu=C] [check_pages=0|1]
 * Sizes in bytes, ascending, each a multiple of the stride and of 128.
 *
 * Output: one JSON object on stdout. Errors: a message on stderr, exit status 2 for bad
 * arguments, 3 when memory cannot be allocated, 4 when a CPU cannot be used, 5 when a
 * permutation is not one cycle (a bug).
 */

#define _GNU_SOURCE

#include <errno.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define IB_KERNEL_VERSION "1.0.0"
#define IB_ALIGNMENT (2u * 1024u * 1024u)
#define IB_MAX_SIZES 256
#define IB_MAX_SAMPLES 50
#define IB_UNROLL 16
#define IB_READ_LANES 16
#define IB_CALIBRATE_NS 1000000LL /* calibration runs until at least 1 ms */
#define IB_PAGE_CHECKS 4096
#define IB_CHECK_LINES (1u << 18) /* cycles up to this many lines are verified (~ms) */

/* Monotonic wall clock in nanoseconds. */
static int64_t ib_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + (int64_t)ts.tv_nsec;
}

/* Smallest observable step of the clock (includes the cost of reading it). */
static int64_t ib_timer_granularity_ns(void)
{
    int64_t best = INT64_MAX;
    for (int sample = 0; sample < 50; sample++) {
        int64_t start = ib_now_ns();
        int64_t next;
        do {
            next = ib_now_ns();
        } while (next == start);
        if (next - start < best)
            best = next - start;
    }
    return best;
}

/* splitmix64: a small, well-mixed generator; a fixed seed makes the permutation (and so
 * the measured order of lines) reproducible from run to run. */
static uint64_t ib_rng_state;

static uint64_t ib_rand(void)
{
    uint64_t z = (ib_rng_state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Uniform integer in [0, bound) without modulo bias worth caring about (Lemire's
 * multiply-shift; the bias is below 2^-40 for the bounds used here). */
static uint64_t ib_below(uint64_t bound)
{
    return (uint64_t)(((unsigned __int128)ib_rand() * bound) >> 64);
}

/* A random cyclic permutation of `lines` line indices (Sattolo's algorithm): next[i] is
 * the line visited after line i, and following next from any line visits every line
 * once before returning. Drawn in a side array of 32-bit indices, 16x denser than the
 * buffer, so shuffling is cache-friendly and leaves no dirty lines scattered over the
 * buffer; the buffer is then written in address order. */
static void ib_sattolo(uint32_t *next, size_t lines)
{
    for (size_t i = 0; i < lines; i++)
        next[i] = (uint32_t)i;
    for (size_t i = lines - 1; i > 0; i--) {
        size_t j = (size_t)ib_below((uint64_t)i);
        uint32_t t = next[i];
        next[i] = next[j];
        next[j] = t;
    }
}

/* Length of the cycle through line 0 (equals `lines` when the permutation is one cycle). */
static size_t ib_cycle_length(const uint32_t *next, size_t lines)
{
    size_t steps = 0;
    uint32_t at = 0;
    do {
        at = next[at];
        steps++;
    } while (at != 0 && steps <= lines);
    return steps;
}

/* Store in each line the address of the line that follows it. */
static void ib_link(char *buf, const uint32_t *next, size_t lines, size_t stride)
{
    for (size_t i = 0; i < lines; i++)
        *(void **)(buf + i * stride) = buf + (size_t)next[i] * stride;
}

/* The timed chase: `loads` dependent loads (a multiple of IB_UNROLL). */
#define IB_STEP p = (void **)*p;
static __attribute__((noinline)) void **ib_chase(void **p, uint64_t loads)
{
    for (uint64_t i = 0; i < loads; i += IB_UNROLL) {
        IB_STEP IB_STEP IB_STEP IB_STEP IB_STEP IB_STEP IB_STEP IB_STEP
        IB_STEP IB_STEP IB_STEP IB_STEP IB_STEP IB_STEP IB_STEP IB_STEP
    }
    return p;
}

/* The timed read: `passes` sum reductions over `words` 64-bit words (a multiple of
 * IB_READ_LANES). The empty asm with a memory clobber between passes makes the compiler
 * reload every word on every pass instead of reusing the first pass's sum. */
static __attribute__((noinline)) uint64_t ib_read(const uint64_t *w, size_t words,
                                                  uint64_t passes)
{
    uint64_t total = 0;
    for (uint64_t pass = 0; pass < passes; pass++) {
        uint64_t acc[IB_READ_LANES] = {0};
        for (size_t i = 0; i < words; i += IB_READ_LANES)
            for (int k = 0; k < IB_READ_LANES; k++)
                acc[k] += w[i + k];
        for (int k = 0; k < IB_READ_LANES; k++)
            total += acc[k];
        __asm__ __volatile__("" : "+r"(total) : : "memory");
    }
    return total;
}

static volatile uint64_t ib_sink_sum;

/* Where the chase stands. Every timed chase resumes here, so consecutive samples walk on
 * around the cycle: a sample shorter than a lap never revisits lines it just cached. */
static void **ib_cursor;

static int64_t ib_time_chase(uint64_t loads)
{
    int64_t t0 = ib_now_ns();
    ib_cursor = ib_chase(ib_cursor, loads);
    return ib_now_ns() - t0;
}

static int64_t ib_time_read(const uint64_t *w, size_t words, uint64_t passes)
{
    int64_t t0 = ib_now_ns();
    ib_sink_sum += ib_read(w, words, passes);
    return ib_now_ns() - t0;
}

/* Iterations for one sample of about target_ns, from a calibration that doubles the
 * count until it runs at least IB_CALIBRATE_NS; rounded up to a multiple of `unit`. */
static uint64_t ib_scale(uint64_t count, int64_t took_ns, double target_ns, uint64_t unit)
{
    double want = (double)count * target_ns / (double)(took_ns > 0 ? took_ns : 1);
    uint64_t n = (uint64_t)want;
    n = (n + unit - 1) / unit * unit;
    return n < unit ? unit : n;
}

static int ib_pin(int cpu)
{
    if (cpu < 0 || cpu >= CPU_SETSIZE)
        return -1;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    return sched_setaffinity(0, sizeof set, &set);
}

/* AnonHugePages of this process in kB, -1 if not exposed. */
static long ib_anon_huge_kb(void)
{
    FILE *fh = fopen("/proc/self/smaps_rollup", "r");
    if (fh == NULL)
        return -1;
    char line[256];
    long value = -1;
    while (fgets(line, sizeof line, fh) != NULL) {
        if (strncmp(line, "AnonHugePages:", 14) == 0) {
            value = strtol(line + 14, NULL, 10);
            break;
        }
    }
    fclose(fh);
    return value;
}

/* Node of a sample of the buffer's pages via move_pages(2) in query mode. Prints a JSON
 * object {"pages_checked": n, "nodes": {"0": count, ...}, "errors": count}. */
static void ib_print_placement(char *buf, size_t bytes)
{
    long page = sysconf(_SC_PAGESIZE);
    if (page <= 0)
        page = 4096;
    size_t pages = bytes / (size_t)page;
    size_t count = pages < IB_PAGE_CHECKS ? pages : IB_PAGE_CHECKS;
    void **addrs = calloc(count ? count : 1, sizeof(void *));
    int *status = calloc(count ? count : 1, sizeof(int));
    int counts[64] = {0};
    int errors = 0;
    long rc = -1;
    if (addrs != NULL && status != NULL && count > 0) {
        for (size_t i = 0; i < count; i++)
            addrs[i] = buf + (i * pages / count) * (size_t)page;
        rc = syscall(SYS_move_pages, 0, (unsigned long)count, addrs, NULL, status, 0);
    }
    if (rc != 0) {
        printf("{\"pages_checked\":0,\"nodes\":{},\"errors\":0,\"unavailable\":\"%s\"}",
               rc == -1 && errno ? strerror(errno) : "no pages");
    } else {
        for (size_t i = 0; i < count; i++) {
            if (status[i] >= 0 && status[i] < 64)
                counts[status[i]]++;
            else
                errors++;
        }
        printf("{\"pages_checked\":%zu,\"nodes\":{", count);
        int first = 1;
        for (int node = 0; node < 64; node++) {
            if (counts[node] == 0)
                continue;
            printf(first ? "\"%d\":%d" : ",\"%d\":%d", node, counts[node]);
            first = 0;
        }
        printf("},\"errors\":%d}", errors);
    }
    free(addrs);
    free(status);
}

/* ------------------------------------------------------------------ arguments */

struct ib_args {
    size_t sizes[IB_MAX_SIZES];
    int nsizes;
    size_t stride;
    int samples;
    double lat_ms, bw_ms;
    int huge;
    uint64_t seed;
    int run_cpu, mem_cpu;
    int check_pages;
    int seen; /* bit mask of the required arguments given */
};

static int ib_parse_u64(const char *text, unsigned long long *out)
{
    char *end = NULL;
    errno = 0;
    if (text[0] == '-' || text[0] == '\0')
        return -1;
    unsigned long long value = strtoull(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0')
        return -1;
    *out = value;
    return 0;
}

static int ib_parse_ms(const char *text, double *out)
{
    char *end = NULL;
    errno = 0;
    double value = strtod(text, &end);
    if (errno != 0 || end == text || *end != '\0' || !(value > 0.0) || value > 60000.0)
        return -1;
    *out = value;
    return 0;
}

static int ib_parse_sizes(const char *text, struct ib_args *a)
{
    char copy[8192];
    if (strlen(text) >= sizeof copy)
        return -1;
    strcpy(copy, text);
    a->nsizes = 0;
    for (char *tok = strtok(copy, ","); tok != NULL; tok = strtok(NULL, ",")) {
        unsigned long long v = 0;
        if (a->nsizes >= IB_MAX_SIZES || ib_parse_u64(tok, &v) != 0 || v == 0)
            return -1;
        if (a->nsizes > 0 && v <= a->sizes[a->nsizes - 1])
            return -1;
        a->sizes[a->nsizes++] = (size_t)v;
    }
    return a->nsizes > 0 ? 0 : -1;
}

static int ib_parse_args(int argc, char **argv, struct ib_args *a)
{
    memset(a, 0, sizeof *a);
    a->mem_cpu = -1;
    for (int i = 1; i < argc; i++) {
        char *eq = strchr(argv[i], '=');
        if (eq == NULL)
            return -1;
        *eq = '\0';
        const char *key = argv[i], *val = eq + 1;
        unsigned long long v = 0;
        if (strcmp(key, "sizes") == 0) {
            if (ib_parse_sizes(val, a) != 0)
                return -1;
            a->seen |= 1;
        } else if (strcmp(key, "stride") == 0) {
            if (ib_parse_u64(val, &v) != 0 || v < sizeof(void *) || v > 4096 || (v & (v - 1)))
                return -1;
            a->stride = (size_t)v;
            a->seen |= 2;
        } else if (strcmp(key, "samples") == 0) {
            if (ib_parse_u64(val, &v) != 0 || v < 1 || v > IB_MAX_SAMPLES)
                return -1;
            a->samples = (int)v;
            a->seen |= 4;
        } else if (strcmp(key, "lat_ms") == 0) {
            if (ib_parse_ms(val, &a->lat_ms) != 0)
                return -1;
            a->seen |= 8;
        } else if (strcmp(key, "bw_ms") == 0) {
            if (ib_parse_ms(val, &a->bw_ms) != 0)
                return -1;
            a->seen |= 16;
        } else if (strcmp(key, "huge") == 0) {
            if (ib_parse_u64(val, &v) != 0 || v > 1)
                return -1;
            a->huge = (int)v;
            a->seen |= 32;
        } else if (strcmp(key, "seed") == 0) {
            if (ib_parse_u64(val, &v) != 0)
                return -1;
            a->seed = (uint64_t)v;
            a->seen |= 64;
        } else if (strcmp(key, "run_cpu") == 0) {
            if (ib_parse_u64(val, &v) != 0 || v >= CPU_SETSIZE)
                return -1;
            a->run_cpu = (int)v;
            a->seen |= 128;
        } else if (strcmp(key, "mem_cpu") == 0) {
            if (ib_parse_u64(val, &v) != 0 || v >= CPU_SETSIZE)
                return -1;
            a->mem_cpu = (int)v;
        } else if (strcmp(key, "check_pages") == 0) {
            if (ib_parse_u64(val, &v) != 0 || v > 1)
                return -1;
            a->check_pages = (int)v;
        } else {
            return -1;
        }
    }
    if (a->seen != 255)
        return -1;
    for (int i = 0; i < a->nsizes; i++)
        if (a->sizes[i] % a->stride != 0 || a->sizes[i] % 128 != 0 ||
            a->sizes[i] / a->stride < 2 || a->sizes[i] / a->stride > UINT32_MAX)
            return -1;
    if (a->mem_cpu < 0)
        a->mem_cpu = a->run_cpu;
    return 0;
}

static void ib_print_times(const int64_t *t, int n)
{
    putchar('[');
    for (int i = 0; i < n; i++)
        printf(i ? ",%lld" : "%lld", (long long)t[i]);
    putchar(']');
}

int main(int argc, char **argv)
{
    struct ib_args a;
    if (ib_parse_args(argc, argv, &a) != 0) {
        fprintf(stderr,
                "usage: %s sizes=S1,S2,... stride=B samples=N lat_ms=T bw_ms=T huge=0|1 "
                "seed=X run_cpu=C [mem_cpu=C] [check_pages=0|1]\n"
                "  sizes ascending, multiples of the stride (a power of two) and of 128\n",
                argc > 0 ? argv[0] : "latency");
        return 2;
    }
    const size_t max_bytes = a.sizes[a.nsizes - 1];
    const size_t alloc = (max_bytes + IB_ALIGNMENT - 1) / IB_ALIGNMENT * IB_ALIGNMENT;

    /* First touch from MEM_CPU decides the node the pages live on. */
    if (ib_pin(a.mem_cpu) != 0) {
        fprintf(stderr, "latency: cannot run on CPU %d: %s\n", a.mem_cpu, strerror(errno));
        return 4;
    }
    void *mem = NULL;
    int rc = posix_memalign(&mem, IB_ALIGNMENT, alloc);
    if (rc != 0) {
        fprintf(stderr, "latency: cannot allocate %zu bytes: %s\n", alloc, strerror(rc));
        return 3;
    }
    char *buf = (char *)mem;
    uint32_t *next = malloc(sizeof(uint32_t) * (max_bytes / a.stride));
    if (next == NULL) {
        fprintf(stderr, "latency: cannot allocate the permutation (%zu lines)\n",
                max_bytes / a.stride);
        return 3;
    }
    int madvise_rc = -1;
#ifdef MADV_HUGEPAGE
    if (a.huge)
        madvise_rc = madvise(buf, alloc, MADV_HUGEPAGE) == 0 ? 0 : errno;
#endif
    memset(buf, 0, alloc);
    const long huge_kb = ib_anon_huge_kb();

    if (ib_pin(a.run_cpu) != 0) {
        fprintf(stderr, "latency: cannot run on CPU %d: %s\n", a.run_cpu, strerror(errno));
        return 4;
    }
    const int on_cpu = sched_getcpu();
    const int64_t tick_ns = ib_timer_granularity_ns();
    ib_rng_state = a.seed;

    printf("{\"program\":\"instbench-latency\",\"kernel_version\":\"%s\"", IB_KERNEL_VERSION);
    printf(",\"stride_bytes\":%zu,\"samples\":%d,\"lat_ms\":%.6g,\"bw_ms\":%.6g", a.stride,
           a.samples, a.lat_ms, a.bw_ms);
    printf(",\"seed\":%llu,\"run_cpu\":%d,\"mem_cpu\":%d,\"measured_on_cpu\":%d",
           (unsigned long long)a.seed, a.run_cpu, a.mem_cpu, on_cpu);
    printf(",\"buffer_bytes\":%zu,\"timer\":{\"clock\":\"CLOCK_MONOTONIC\","
           "\"granularity_ns\":%lld}",
           alloc, (long long)tick_ns);
    printf(",\"huge_pages\":{\"requested\":%s,\"madvise\":%s,\"anon_huge_kb\":",
           a.huge ? "true" : "false",
           madvise_rc == 0 ? "\"ok\"" : (a.huge ? "\"failed\"" : "\"not-requested\""));
    if (huge_kb >= 0)
        printf("%ld}", huge_kb);
    else
        printf("null}");
    printf(",\"placement\":");
    if (a.check_pages)
        ib_print_placement(buf, alloc);
    else
        printf("null");

    int64_t lat[IB_MAX_SAMPLES], bw[IB_MAX_SAMPLES];
    printf(",\"points\":[");
    for (int s = 0; s < a.nsizes; s++) {
        const size_t bytes = a.sizes[s];
        const size_t lines = bytes / a.stride;
        const size_t words = bytes / sizeof(uint64_t);

        ib_sattolo(next, lines);
        const int checked = lines <= IB_CHECK_LINES;
        if (checked && ib_cycle_length(next, lines) != lines) {
            fprintf(stderr, "latency: permutation of %zu lines is not one cycle\n", lines);
            return 5;
        }
        ib_link(buf, next, lines, a.stride);

        /* Read first: its calibration pass brings a working set that fits a cache into
         * it and, for one that does not, evicts the lines just written, so the chase
         * below neither starts cold nor pays for write-backs of dirty lines. */
        const uint64_t *w = (const uint64_t *)buf;
        uint64_t passes = 1;
        int64_t took = ib_time_read(w, words, passes);
        while (took < IB_CALIBRATE_NS) {
            passes *= 2;
            took = ib_time_read(w, words, passes);
        }
        passes = ib_scale(passes, took, a.bw_ms * 1e6, 1);
        for (int k = 0; k < a.samples; k++)
            bw[k] = ib_time_read(w, words, passes);

        ib_cursor = (void **)buf;
        uint64_t loads = 64 * IB_UNROLL;
        took = ib_time_chase(loads);
        while (took < IB_CALIBRATE_NS) {
            loads *= 2;
            took = ib_time_chase(loads);
        }
        loads = ib_scale(loads, took, a.lat_ms * 1e6, IB_UNROLL);
        for (int k = 0; k < a.samples; k++)
            lat[k] = ib_time_chase(loads);

        printf(s ? ",{" : "{");
        printf("\"size_bytes\":%zu,\"lines\":%zu,\"cycle_checked\":%s", bytes, lines,
               checked ? "true" : "false");
        printf(",\"chase\":{\"loads\":%llu,\"times_ns\":", (unsigned long long)loads);
        ib_print_times(lat, a.samples);
        printf("},\"read\":{\"bytes\":%llu,\"times_ns\":",
               (unsigned long long)passes * (unsigned long long)bytes);
        ib_print_times(bw, a.samples);
        printf("}}");
        fflush(stdout);
    }
    /* The cursor's line index and the read sums keep the measured work observable. */
    printf("],\"checksum\":%llu}\n",
           (unsigned long long)(ib_sink_sum + (uint64_t)((char *)ib_cursor - buf) / a.stride));
    free(next);
    free(mem);
    return 0;
}
