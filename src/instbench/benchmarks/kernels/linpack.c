/*
 * instbench LINPACK kernel: solve a dense n x n system A x = b in double precision by LU
 * factorisation with partial pivoting (LAPACK dgetrf + dgetrs) and check the answer with
 * the HPL scaled residual.
 *
 * Written for instbench. What it does, and why:
 *
 *   - The BLAS/LAPACK is loaded with dlopen from the path given as lib=PATH (chosen by
 *     instbench/benchmarks/linpack.py: OpenBLAS first, then the system liblapack). Loading
 *     at run time rather than linking means the kernel builds with nothing but a C
 *     compiler, the library actually used is recorded by path, and a missing library is a
 *     clear error instead of a link failure.
 *   - A and b are uniform in [-0.5, 0.5) from a 64-bit xorshift generator (seeded), like
 *     HPL's random matrices. Only A is kept in memory (n*n doubles): the residual pass
 *     regenerates A from the same seed in the same (column-major) order, so the memory
 *     budget is one matrix.
 *   - Each trial regenerates A and b, then times dgetrf + dgetrs together (wall clock,
 *     CLOCK_MONOTONIC). GFLOPS = (2/3 n^3 + 2 n^2) / t, the HPL operation count.
 *   - Check: r = A x - b; scaled residual = ||r||_inf / (eps * (||A||_inf * ||x||_inf +
 *     ||b||_inf) * n), which HPL requires to be below 16. Computed on the last trial's x.
 *     perturb=1 deliberately corrupts x (x[0] += 1) before the check: the test that the
 *     check fails on a wrong solution.
 *   - With OpenBLAS, the library's threads are set with openblas_set_num_threads when
 *     threads=N is given, and its build configuration is reported.
 *
 * Usage: linpack lib=PATH n=N trials=T seed=S [threads=N] [perturb=0|1]
 * Output: one JSON object on stdout. Errors: message on stderr; exit 2 bad arguments,
 * 3 out of memory, 4 library cannot be loaded or lacks dgetrf_/dgetrs_, 5 singular matrix.
 */

#define _GNU_SOURCE

#include <dlfcn.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define IB_KERNEL_VERSION "1.0.0"
#define MAX_TRIALS 100

typedef void (*dgetrf_t)(const int *, const int *, double *, const int *, int *, int *);
typedef void (*dgetrs_t)(const char *, const int *, const int *, const double *, const int *,
                         const int *, double *, const int *, int *);
typedef void (*set_threads_t)(int);
typedef int (*get_int_t)(void);
typedef char *(*get_str_t)(void);

static uint64_t rng_state;

static void rng_seed(uint64_t seed) { rng_state = seed ? seed : 0x9E3779B97F4A7C15ULL; }

static double rng_next(void) {
    uint64_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    rng_state = x;
    return (double)(x >> 11) * (1.0 / 9007199254740992.0) - 0.5;
}

/* Column-major A, then b: the residual pass regenerates exactly this sequence. */
static void generate(double *a, double *b, int n, uint64_t seed) {
    rng_seed(seed);
    for (long j = 0; j < n; j++)
        for (long i = 0; i < n; i++) a[j * (long)n + i] = rng_next();
    for (int i = 0; i < n; i++) b[i] = rng_next();
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void json_string(const char *s) {
    putchar('"');
    for (; s && *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            printf("\\%c", c);
        else if (c < 0x20)
            printf("\\u%04x", c);
        else
            putchar(c);
    }
    putchar('"');
}

int main(int argc, char **argv) {
    const char *lib = NULL;
    long n = 0, trials = 1, threads = 0, perturb = 0;
    unsigned long long seed = 42;
    for (int i = 1; i < argc; i++) {
        char *eq = strchr(argv[i], '=');
        if (!eq) {
            fprintf(stderr, "bad argument %s\n", argv[i]);
            return 2;
        }
        *eq = '\0';
        const char *v = eq + 1;
        if (!strcmp(argv[i], "lib"))
            lib = v;
        else if (!strcmp(argv[i], "n"))
            n = strtol(v, NULL, 10);
        else if (!strcmp(argv[i], "trials"))
            trials = strtol(v, NULL, 10);
        else if (!strcmp(argv[i], "seed"))
            seed = strtoull(v, NULL, 10);
        else if (!strcmp(argv[i], "threads"))
            threads = strtol(v, NULL, 10);
        else if (!strcmp(argv[i], "perturb"))
            perturb = strtol(v, NULL, 10);
        else {
            fprintf(stderr, "unknown argument %s\n", argv[i]);
            return 2;
        }
    }
    if (!lib || n < 2 || n > 1000000 || trials < 1 || trials > MAX_TRIALS || threads < 0) {
        fprintf(stderr, "usage: linpack lib=PATH n=N trials=T seed=S [threads=N] [perturb=0|1]\n");
        return 2;
    }

    void *handle = dlopen(lib, RTLD_NOW | RTLD_LOCAL);
    if (!handle) {
        fprintf(stderr, "cannot load %s: %s\n", lib, dlerror());
        return 4;
    }
    dgetrf_t dgetrf = (dgetrf_t)dlsym(handle, "dgetrf_");
    dgetrs_t dgetrs = (dgetrs_t)dlsym(handle, "dgetrs_");
    if (!dgetrf || !dgetrs) {
        fprintf(stderr, "%s has no dgetrf_/dgetrs_ (not a LAPACK)\n", lib);
        return 4;
    }
    set_threads_t set_threads = (set_threads_t)dlsym(handle, "openblas_set_num_threads");
    get_int_t get_threads = (get_int_t)dlsym(handle, "openblas_get_num_threads");
    get_int_t get_parallel = (get_int_t)dlsym(handle, "openblas_get_parallel");
    get_str_t get_config = (get_str_t)dlsym(handle, "openblas_get_config");
    get_str_t get_core = (get_str_t)dlsym(handle, "openblas_get_corename");
    if (threads > 0 && set_threads) set_threads((int)threads);

    double *a = malloc(sizeof(double) * (size_t)n * (size_t)n);
    double *b = malloc(sizeof(double) * (size_t)n);
    double *r = calloc((size_t)n, sizeof(double));
    double *rowsum = calloc((size_t)n, sizeof(double));
    int *ipiv = malloc(sizeof(int) * (size_t)n);
    if (!a || !b || !r || !rowsum || !ipiv) {
        fprintf(stderr, "cannot allocate a %ld x %ld matrix\n", n, n);
        return 3;
    }

    int in = (int)n, one = 1, info = 0;
    double times[MAX_TRIALS];
    double best = 0.0;
    for (long t = 0; t < trials; t++) {
        generate(a, b, in, seed);
        double t0 = now_s();
        dgetrf(&in, &in, a, &in, ipiv, &info);
        if (info == 0) dgetrs("N", &in, &one, a, &in, ipiv, b, &in, &info);
        double dt = now_s() - t0;
        if (info != 0) {
            fprintf(stderr, "dgetrf/dgetrs failed: info=%d (singular matrix?)\n", info);
            return 5;
        }
        times[t] = dt;
        if (t == 0 || dt < best) best = dt;
    }
    /* b now holds x of the last trial. */
    double *x = b;
    if (perturb) x[0] += 1.0;

    /* Regenerate A (and the original b) to compute r = A x - b and the norms. */
    rng_seed(seed);
    for (long j = 0; j < n; j++) {
        double xj = x[j];
        for (long i = 0; i < n; i++) {
            double aij = rng_next();
            r[i] += aij * xj;
            rowsum[i] += fabs(aij);
        }
    }
    double b_inf = 0.0, r_inf = 0.0, a_inf = 0.0, x_inf = 0.0;
    for (long i = 0; i < n; i++) {
        double bi = rng_next();
        double ri = fabs(r[i] - bi);
        if (fabs(bi) > b_inf) b_inf = fabs(bi);
        if (ri > r_inf) r_inf = ri;
        if (rowsum[i] > a_inf) a_inf = rowsum[i];
        if (fabs(x[i]) > x_inf) x_inf = fabs(x[i]);
    }
    double eps = DBL_EPSILON / 2.0; /* unit roundoff, as HPL's dlamch("eps") */
    double scaled = r_inf / (eps * (a_inf * x_inf + b_inf) * (double)n);
    double flops = 2.0 / 3.0 * (double)n * (double)n * (double)n + 2.0 * (double)n * (double)n;

    printf("{\"program\":\"instbench-linpack\",\"kernel_version\":\"%s\",\"library\":",
           IB_KERNEL_VERSION);
    json_string(lib);
    printf(",\"n\":%ld,\"seed\":%llu,\"trials\":%ld,\"times_s\":[", n, seed, trials);
    for (long t = 0; t < trials; t++) printf("%s%.9g", t ? "," : "", times[t]);
    printf("],\"best_s\":%.9g,\"gflops\":%.9g,\"flops\":%.17g", best, flops / best / 1e9, flops);
    printf(",\"residual_inf\":%.17g,\"a_inf\":%.17g,\"x_inf\":%.17g,\"b_inf\":%.17g", r_inf,
           a_inf, x_inf, b_inf);
    printf(",\"eps\":%.17g,\"scaled_residual\":%.17g,\"perturbed\":%s", eps, scaled,
           perturb ? "true" : "false");
    printf(",\"openblas\":");
    if (get_config) {
        printf("{\"config\":");
        json_string(get_config());
        printf(",\"core\":");
        json_string(get_core ? get_core() : "");
        printf(",\"threads\":%d,\"parallel\":%d}", get_threads ? get_threads() : -1,
               get_parallel ? get_parallel() : -1);
    } else {
        printf("null");
    }
    printf("}\n");
    free(a);
    free(b);
    free(r);
    free(rowsum);
    free(ipiv);
    return 0;
}
