/*
 * instbench netlat: TCP request/response round-trip time, 1-byte messages, one connection.
 *
 * Written for instbench. Python's own overhead per send/recv is tens of microseconds,
 * the size of what is measured between two instances of one placement group, so the
 * round trips are timed here, in C, with the monotonic clock around each one.
 *
 * Server: netlat server ADDRESS PORT TIMEOUT_S
 *   Listens on ADDRESS:PORT (TCP_NODELAY), prints "listening PORT" on stdout once it
 *   accepts connections, serves exactly one connection (every byte read is written
 *   back), and exits 0 when the client closes it. Exits 3 when nobody connects within
 *   TIMEOUT_S seconds: a server whose client never came is not left running.
 * Client: netlat client ADDRESS PORT COUNT WARMUP CONNECT_S
 *   Connects (retrying for up to CONNECT_S seconds while the server is not yet
 *   listening), sends WARMUP untimed round trips, then COUNT timed ones, and prints one
 *   JSON object on stdout: median, p99, p99.9, min, max and mean in microseconds.
 *
 * Percentiles are order statistics of the sorted samples (nearest rank), so they are
 * values that were really observed.
 */

#define _GNU_SOURCE

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define IB_KERNEL_VERSION "1.0.0"
#define MAX_COUNT 100000000L

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int die(const char *what) {
    fprintf(stderr, "netlat: %s: %s\n", what, strerror(errno));
    return 1;
}

static int parse_address(const char *text, int port, struct sockaddr_in *out) {
    memset(out, 0, sizeof(*out));
    out->sin_family = AF_INET;
    out->sin_port = htons((unsigned short)port);
    return inet_pton(AF_INET, text, &out->sin_addr) == 1 ? 0 : -1;
}

static void nodelay(int fd) {
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

/* Read exactly one byte (0 on EOF, -1 on error). */
static int read_one(int fd, char *c) {
    for (;;) {
        ssize_t n = recv(fd, c, 1, 0);
        if (n == 1) return 1;
        if (n == 0) return 0;
        if (errno != EINTR) return -1;
    }
}

static int write_one(int fd, char c) {
    for (;;) {
        ssize_t n = send(fd, &c, 1, MSG_NOSIGNAL);
        if (n == 1) return 1;
        if (n < 0 && errno != EINTR) return -1;
    }
}

static int serve(const char *address, int port, double timeout_s) {
    struct sockaddr_in addr;
    if (parse_address(address, port, &addr) != 0) {
        fprintf(stderr, "netlat: not an IPv4 address: %s\n", address);
        return 2;
    }
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return die("socket");
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0) return die("bind");
    if (listen(fd, 1) != 0) return die("listen");
    printf("listening %d\n", port);
    fflush(stdout);
    struct pollfd pfd = {fd, POLLIN, 0};
    int ready = poll(&pfd, 1, (int)(timeout_s * 1000.0));
    if (ready <= 0) {
        fprintf(stderr, "netlat: no client connected within %.0f s\n", timeout_s);
        return 3;
    }
    int conn = accept(fd, NULL, NULL);
    if (conn < 0) return die("accept");
    close(fd);
    nodelay(conn);
    long served = 0;
    char c;
    for (;;) {
        int r = read_one(conn, &c);
        if (r == 0) break;
        if (r < 0) return die("recv");
        if (write_one(conn, c) < 0) return die("send");
        served++;
    }
    close(conn);
    fprintf(stderr, "netlat: served %ld round trips\n", served);
    return 0;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Nearest-rank percentile of sorted samples: the smallest value with at least p % of
 * the samples at or below it. */
static double rank(const double *sorted, long n, double p) {
    long k = (long)((p / 100.0) * (double)n + 0.999999999);
    if (k < 1) k = 1;
    if (k > n) k = n;
    return sorted[k - 1];
}

static int client(const char *address, int port, long count, long warmup, double connect_s) {
    struct sockaddr_in addr;
    if (parse_address(address, port, &addr) != 0) {
        fprintf(stderr, "netlat: not an IPv4 address: %s\n", address);
        return 2;
    }
    int fd = -1;
    double give_up = now_s() + connect_s;
    for (;;) {
        fd = socket(AF_INET, SOCK_STREAM, 0);
        if (fd < 0) return die("socket");
        if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) == 0) break;
        int err = errno;
        close(fd);
        if ((err != ECONNREFUSED && err != ETIMEDOUT && err != EHOSTUNREACH) ||
            now_s() > give_up) {
            errno = err;
            return die("connect");
        }
        usleep(200000);
    }
    nodelay(fd);
    double *samples = malloc(sizeof(double) * (size_t)count);
    if (samples == NULL) return die("malloc");
    char c = 'x';
    for (long i = 0; i < warmup + count; i++) {
        double t0 = now_s();
        if (write_one(fd, c) < 0) return die("send");
        int r = read_one(fd, &c);
        if (r <= 0) {
            fprintf(stderr, "netlat: the server closed the connection after %ld round trips\n", i);
            return 1;
        }
        double t1 = now_s();
        if (i >= warmup) samples[i - warmup] = (t1 - t0) * 1e6;
    }
    close(fd);
    double sum = 0.0;
    for (long i = 0; i < count; i++) sum += samples[i];
    qsort(samples, (size_t)count, sizeof(double), cmp_double);
    printf("{\"kernel\": \"netlat\", \"kernel_version\": \"%s\", \"message_bytes\": 1, "
           "\"round_trips\": %ld, \"warmup\": %ld, \"median_us\": %.3f, \"p99_us\": %.3f, "
           "\"p999_us\": %.3f, \"min_us\": %.3f, \"max_us\": %.3f, \"mean_us\": %.3f}\n",
           IB_KERNEL_VERSION, count, warmup, rank(samples, count, 50.0),
           rank(samples, count, 99.0), rank(samples, count, 99.9), samples[0],
           samples[count - 1], sum / (double)count);
    free(samples);
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 5 && strcmp(argv[1], "server") == 0) {
        int port = atoi(argv[3]);
        double timeout_s = atof(argv[4]);
        if (port < 1 || port > 65535 || !(timeout_s > 0)) {
            fprintf(stderr, "netlat: bad server arguments\n");
            return 2;
        }
        return serve(argv[2], port, timeout_s);
    }
    if (argc == 7 && strcmp(argv[1], "client") == 0) {
        int port = atoi(argv[3]);
        long count = atol(argv[4]), warmup = atol(argv[5]);
        double connect_s = atof(argv[6]);
        if (port < 1 || port > 65535 || count < 1 || count > MAX_COUNT || warmup < 0 ||
            !(connect_s >= 0)) {
            fprintf(stderr, "netlat: bad client arguments\n");
            return 2;
        }
        return client(argv[2], port, count, warmup, connect_s);
    }
    fprintf(stderr,
            "usage: netlat server ADDRESS PORT TIMEOUT_S | "
            "netlat client ADDRESS PORT COUNT WARMUP CONNECT_S\n");
    return 2;
}
