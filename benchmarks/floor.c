/* The floor in C, for benchmarks/continuous.py: what the kernel alone costs a probe in the lab.

   Usage: floor VERSION DST COUNT INTERVAL TCP PACKETS
   Sends the packets of the file PACKETS (each a 2-byte native-order length, then the bytes: one
   per TTL, built by tracekit's probe method) to DST over a raw socket, once a round, COUNT
   rounds INTERVAL seconds apart; reads every answer from raw ICMP (and, with TCP=1, TCP)
   sockets with kernel timestamps on, without blocking, once a round; sleeps between rounds.
   Prints "SENT RECEIVED". The same loop as the Python floor (FLOOR in continuous.py). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    if (argc < 7) return 2;
    int version = atoi(argv[1]), count = atoi(argv[3]), tcp = atoi(argv[5]);
    double interval = atof(argv[4]);
    const char *path = argv[6];
    int family = version == 4 ? AF_INET : AF_INET6;
    struct sockaddr_storage dst = {0};
    socklen_t dlen;
    if (version == 4) {
        struct sockaddr_in *d = (struct sockaddr_in *)&dst;
        d->sin_family = AF_INET;
        inet_pton(AF_INET, argv[2], &d->sin_addr);
        dlen = sizeof *d;
    } else {
        struct sockaddr_in6 *d = (struct sockaddr_in6 *)&dst;
        d->sin6_family = AF_INET6;
        inet_pton(AF_INET6, argv[2], &d->sin6_addr);
        dlen = sizeof *d;
    }
    unsigned char packets[64][1600];
    int lengths[64], hops = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return 3;
    unsigned short n;
    while (hops < 64 && fread(&n, 2, 1, f) == 1) {
        if (fread(packets[hops], 1, n, f) != n) return 3;
        lengths[hops++] = n;
    }
    fclose(f);
    int sender = socket(family, SOCK_RAW, IPPROTO_RAW);
    int receivers[2], nr = 0, one = 1;
    receivers[nr++] = socket(family, SOCK_RAW | SOCK_NONBLOCK,
                             version == 4 ? IPPROTO_ICMP : IPPROTO_ICMPV6);
    if (tcp) receivers[nr++] = socket(family, SOCK_RAW | SOCK_NONBLOCK, IPPROTO_TCP);
    if (sender < 0 || receivers[0] < 0) return 4;
    for (int i = 0; i < nr; i++) setsockopt(receivers[i], SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof one);
    long sent = 0, received = 0, total = (long)count * hops;
    double due = now(), end = due + count * interval + 0.05;
    unsigned char buf[65536], control[256];
    for (;;) {
        double t = now();
        if (sent < total && t >= due) {
            for (int i = 0; i < hops; i++)
                sendto(sender, packets[i], lengths[i], 0, (struct sockaddr *)&dst, dlen);
            sent += hops;
            due += interval;
        }
        for (int i = 0; i < nr; i++) {
            for (;;) {
                struct sockaddr_storage from;
                struct iovec iov = {buf, sizeof buf};
                struct msghdr msg = {&from, sizeof from, &iov, 1, control, sizeof control, 0};
                if (recvmsg(receivers[i], &msg, 0) < 0) break;
                received++;
            }
        }
        if (t >= end) break;
        double wait = (due < end ? due : end) - now();
        if (wait > 0) {
            struct timespec ts = {(time_t)wait, (long)((wait - (time_t)wait) * 1e9)};
            nanosleep(&ts, NULL);
        }
    }
    printf("%ld %ld\n", sent, received);
    return 0;
}
