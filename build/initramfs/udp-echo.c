// moat-udp-echo PORT [SECONDS]: the UDP echo server of Moat's Linux
// initramfs (busybox's nc has no UDP). Sends every datagram on PORT back to
// its sender, byte for byte, until it gets "moat-udp-done" (which it echoes
// too, as the system tests' host client and the demo's guests expect), or
// SECONDS pass (0: no limit). Exit status 0 only after "moat-udp-done".
// Built static by the host compiler (build/cmake/Linux.cmake).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static const char kDone[] = "moat-udp-done";

int main(int argc, char** argv) {
    int port = argc > 1 ? atoi(argv[1]) : 7;
    long seconds = argc > 2 ? atol(argv[2]) : 120;
    if (port <= 0 || port > 65535 || seconds < 0) {
        fprintf(stderr, "usage: moat-udp-echo PORT [SECONDS]\n");
        return 2;
    }
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((unsigned short)port);
    a.sin_addr.s_addr = htonl(INADDR_ANY);
    if (s < 0 || bind(s, (struct sockaddr*)&a, sizeof a) != 0) {
        perror("moat-udp-echo: socket/bind");
        return 1;
    }
    printf("moat-linux: udp echo ready on port %d\n", port);
    fflush(stdout);
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    static unsigned char buf[65536];
    long echoed = 0;
    int done = 0;
    while (!done) {
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (seconds && now.tv_sec - start.tv_sec >= seconds) break;
        struct pollfd p = {s, POLLIN, 0};
        if (poll(&p, 1, 1000) <= 0) continue;
        struct sockaddr_in from;
        socklen_t len = sizeof from;
        ssize_t n = recvfrom(s, buf, sizeof buf, 0, (struct sockaddr*)&from, &len);
        if (n < 0) continue;
        if (sendto(s, buf, (size_t)n, 0, (struct sockaddr*)&from, len) == n) ++echoed;
        done = n == (ssize_t)(sizeof kDone - 1) && memcmp(buf, kDone, sizeof kDone - 1) == 0;
    }
    printf("moat-linux: udp echo: %ld datagrams echoed, %s\n", echoed,
           done ? "got moat-udp-done" : "time is up");
    return done ? 0 : 1;
}
