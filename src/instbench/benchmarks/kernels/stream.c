/*
 * instbench STREAM kernel: sustainable memory bandwidth, measured by the STREAM rules.
 *
 * Written for instbench (not derived from any other STREAM source). It follows the rules
 * of John McCalpin's STREAM benchmark so its numbers can be compared with the reference:
 *
 *   - four kernels, in this order, on double-precision arrays a, b, c with q = 3.0:
 *       Copy  c = a          16 bytes counted per element
 *       Scale b = q * c      16 bytes
 *       Add   c = a + b      24 bytes
 *       Triad a = b + q * c  24 bytes
 *   - plain C loops under `#pragma omp parallel for schedule(static)`: no intrinsics, no
 *     streaming-store hints, no madvise. Whatever the compiler makes of a loop (for Copy,
 *     gcc substitutes a memcpy call, exactly as it does for the reference) is what runs.
 *   - the three arrays in one posix_memalign block, each page aligned, with a fixed gap of
 *     IB_GAP_ELEMENTS between them (what STREAM's OFFSET is for): arrays whose equal
 *     indices sit a power of two apart collide in the memory system and lose 5-15 %,
 *     which would make the result depend on whether the size happens to be 2^k;
 *   - first touch by the same static schedule the kernels use, so each thread's pages sit
 *     on its own NUMA node;
 *   - initial values a = 1, b = 2, c = 0, then a = 2 * a (as STREAM does before timing);
 *   - NTIMES trials of the four kernels, each kernel timed on its own with
 *     clock_gettime(CLOCK_MONOTONIC); the caller discards the first trial;
 *   - validation: the same recurrence replayed on scalars gives the expected final values;
 *     the mean absolute error of each array relative to its expected value must stay
 *     below 1e-13.
 *
 * Usage:  stream ELEMENTS NTIMES       (threads come from OMP_NUM_THREADS)
 *
 * Output: one JSON object on stdout (raw per-trial times; statistics are computed by
 * instbench/benchmarks/stream.py). Errors: a message on stderr, exit status 2 for bad
 * arguments, 3 when memory cannot be allocated.
 */

#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define IB_KERNEL_VERSION "1.0.0"
#define IB_ALIGNMENT 4096
#define IB_PAGE_ELEMENTS (IB_ALIGNMENT / sizeof(double))
#define IB_GAP_ELEMENTS 1024 /* 8 KiB between consecutive arrays */
#define IB_EPSILON 1e-13
#define IB_MIN_TICKS 20
#define IB_MAX_NTIMES 200
#define IB_SCALAR 3.0

enum { IB_COPY, IB_SCALE, IB_ADD, IB_TRIAD, IB_NKERNELS };

static const char *const ib_names[IB_NKERNELS] = {"copy", "scale", "add", "triad"};

/* Monotonic wall clock in nanoseconds. */
static int64_t ib_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + (int64_t)ts.tv_nsec;
}

/* Smallest observable step of the clock: spin until the reading changes, keep the
 * smallest step over a few samples. This includes the cost of reading the clock, which
 * is what limits the precision of a trial time. */
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

/* AnonHugePages of this process in kB (transparent huge pages actually in use), or -1
 * when the kernel does not expose it. Reported so a reader can see that the arrays got
 * only what the system THP policy gives them. */
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

/* One page-aligned block for the three arrays; exits with status 3 if it cannot. */
static double *ib_alloc(size_t count)
{
    void *p = NULL;
    if (count > SIZE_MAX / sizeof(double)) {
        fprintf(stderr, "stream: %zu elements cannot be addressed\n", count);
        exit(3);
    }
    int rc = posix_memalign(&p, IB_ALIGNMENT, count * sizeof(double));
    if (rc != 0) {
        fprintf(stderr, "stream: cannot allocate %zu bytes: %s\n", count * sizeof(double),
                strerror(rc));
        exit(3);
    }
    return (double *)p;
}

/* The three arrays. File-scope restrict pointers: like the reference's three distinct
 * static arrays, they tell the compiler the arrays never overlap (they are only ever
 * accessed through these names), so it compiles our loops as it compiles the
 * reference's: vectorised without alias checks, and the Copy loop substituted by a
 * memcpy call. (restrict on function parameters would be lost when gcc outlines the
 * OpenMP region; restrict on file-scope pointers is kept.) */
static double *restrict ib_a;
static double *restrict ib_b;
static double *restrict ib_c;
static size_t ib_n;

/* The kernels. Each is its own function so the timing brackets exactly one parallel
 * region (one fork, one join), as in STREAM. */
static void ib_copy(void)
{
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < ib_n; i++)
        ib_c[i] = ib_a[i];
}

static void ib_scale(double q)
{
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < ib_n; i++)
        ib_b[i] = q * ib_c[i];
}

static void ib_add(void)
{
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < ib_n; i++)
        ib_c[i] = ib_a[i] + ib_b[i];
}

static void ib_triad(double q)
{
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < ib_n; i++)
        ib_a[i] = ib_b[i] + q * ib_c[i];
}

/* Mean of |v[i] - expected| over the array. */
static double ib_mean_abs_error(size_t n, const double *v, double expected)
{
    double sum = 0.0;
#pragma omp parallel for schedule(static) reduction(+ : sum)
    for (size_t i = 0; i < n; i++)
        sum += fabs(v[i] - expected);
    return sum / (double)n;
}

static int ib_parse_count(const char *text, unsigned long long *out)
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

static void ib_print_list(const double *values, int count)
{
    putchar('[');
    for (int i = 0; i < count; i++)
        printf(i ? ",%.17g" : "%.17g", values[i]);
    putchar(']');
}

int main(int argc, char **argv)
{
    unsigned long long n_arg = 0, ntimes_arg = 0;
    if (argc != 3 || ib_parse_count(argv[1], &n_arg) != 0 ||
        ib_parse_count(argv[2], &ntimes_arg) != 0) {
        fprintf(stderr, "usage: %s ELEMENTS NTIMES\n", argc > 0 ? argv[0] : "stream");
        return 2;
    }
    if (n_arg < 1000 || n_arg > (unsigned long long)(SIZE_MAX / sizeof(double) / 4)) {
        fprintf(stderr, "stream: ELEMENTS must be at least 1000 and addressable\n");
        return 2;
    }
    if (ntimes_arg < 2 || ntimes_arg > IB_MAX_NTIMES) {
        fprintf(stderr, "stream: NTIMES must be between 2 and %d\n", IB_MAX_NTIMES);
        return 2;
    }
    const size_t n = (size_t)n_arg;
    const int ntimes = (int)ntimes_arg;
    const double q = IB_SCALAR;

    /* Array starts: page aligned, IB_GAP_ELEMENTS apart beyond the array itself. */
    const size_t stride = (n + IB_PAGE_ELEMENTS - 1) / IB_PAGE_ELEMENTS * IB_PAGE_ELEMENTS +
                          IB_GAP_ELEMENTS;
    double *block = ib_alloc(3 * stride);
    ib_n = n;
    ib_a = block;
    ib_b = block + stride;
    ib_c = block + 2 * stride;
    double *times = malloc(sizeof(double) * IB_NKERNELS * (size_t)ntimes);
    if (times == NULL) {
        fprintf(stderr, "stream: cannot allocate the timing table\n");
        return 3;
    }

    int threads = 0;
#pragma omp parallel
    {
#pragma omp single
        threads = omp_get_num_threads();
    }

    /* First touch with the kernels' schedule: each page is faulted in by the thread that
     * will stream through it. */
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) {
        ib_a[i] = 1.0;
        ib_b[i] = 2.0;
        ib_c[i] = 0.0;
    }

    const int64_t tick_ns = ib_timer_granularity_ns();
    struct timespec res;
    clock_getres(CLOCK_MONOTONIC, &res);

#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++)
        ib_a[i] = 2.0 * ib_a[i];

    const long huge_kb = ib_anon_huge_kb();

    for (int k = 0; k < ntimes; k++) {
        int64_t t0 = ib_now_ns();
        ib_copy();
        int64_t t1 = ib_now_ns();
        ib_scale(q);
        int64_t t2 = ib_now_ns();
        ib_add();
        int64_t t3 = ib_now_ns();
        ib_triad(q);
        int64_t t4 = ib_now_ns();
        times[IB_COPY * ntimes + k] = (double)(t1 - t0) * 1e-9;
        times[IB_SCALE * ntimes + k] = (double)(t2 - t1) * 1e-9;
        times[IB_ADD * ntimes + k] = (double)(t3 - t2) * 1e-9;
        times[IB_TRIAD * ntimes + k] = (double)(t4 - t3) * 1e-9;
    }

    /* Expected values: the same operations on scalars. */
    double ea = 1.0, eb = 2.0, ec = 0.0;
    ea = 2.0 * ea;
    for (int k = 0; k < ntimes; k++) {
        ec = ea;
        eb = q * ec;
        ec = ea + eb;
        ea = eb + q * ec;
    }
    const double err_a = ib_mean_abs_error(n, ib_a, ea);
    const double err_b = ib_mean_abs_error(n, ib_b, eb);
    const double err_c = ib_mean_abs_error(n, ib_c, ec);
    const double rel_a = err_a / fabs(ea), rel_b = err_b / fabs(eb), rel_c = err_c / fabs(ec);
    const int passed = rel_a <= IB_EPSILON && rel_b <= IB_EPSILON && rel_c <= IB_EPSILON;

    printf("{\"program\":\"instbench-stream\",\"kernel_version\":\"%s\"", IB_KERNEL_VERSION);
    printf(",\"elements\":%zu,\"ntimes\":%d,\"threads\":%d,\"alignment\":%d", n, ntimes,
           threads, IB_ALIGNMENT);
    printf(",\"array_stride_bytes\":%zu", stride * sizeof(double));
    printf(",\"timer\":{\"clock\":\"CLOCK_MONOTONIC\",\"granularity_ns\":%lld,"
           "\"getres_ns\":%lld}",
           (long long)tick_ns, (long long)res.tv_sec * 1000000000LL + (long long)res.tv_nsec);
    if (huge_kb >= 0)
        printf(",\"anon_huge_kb\":%ld", huge_kb);
    else
        printf(",\"anon_huge_kb\":null");
    printf(",\"times_s\":{");
    for (int kern = 0; kern < IB_NKERNELS; kern++) {
        printf(kern ? ",\"%s\":" : "\"%s\":", ib_names[kern]);
        ib_print_list(times + (size_t)kern * (size_t)ntimes, ntimes);
    }
    printf("}");
    printf(",\"validation\":{\"epsilon\":%.3g,\"passed\":%s", IB_EPSILON,
           passed ? "true" : "false");
    printf(",\"expected\":{\"a\":%.17g,\"b\":%.17g,\"c\":%.17g}", ea, eb, ec);
    printf(",\"mean_abs_error\":{\"a\":%.17g,\"b\":%.17g,\"c\":%.17g}", err_a, err_b, err_c);
    printf(",\"relative_error\":{\"a\":%.17g,\"b\":%.17g,\"c\":%.17g}}", rel_a, rel_b, rel_c);

    /* A trial shorter than IB_MIN_TICKS clock steps is timed too coarsely to trust. */
    printf(",\"warnings\":[");
    int nwarn = 0;
    for (int kern = 0; kern < IB_NKERNELS; kern++) {
        double shortest = INFINITY;
        for (int k = 1; k < ntimes; k++) {
            double t = times[(size_t)kern * (size_t)ntimes + k];
            if (t < shortest)
                shortest = t;
        }
        double ticks = shortest * 1e9 / (double)(tick_ns > 0 ? tick_ns : 1);
        if (ticks < IB_MIN_TICKS) {
            if (nwarn)
                putchar(',');
            printf("\"%s: fastest trial is %.0f timer steps (< %d); use larger arrays\"",
                   ib_names[kern], ticks, IB_MIN_TICKS);
            nwarn++;
        }
    }
    printf("]}\n");

    free(times);
    free(block);
    return 0;
}
