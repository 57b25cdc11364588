/*
 * prog_observer: a UDP relay on loopback with an observer beside it that
 * attacks the connection it sees (issue 30, finding 1).
 *
 *   prog_observer LISTEN_PORT SERVER_PORT COUNT IDLE_S
 *
 * The client sends to 127.0.0.1:LISTEN_PORT; the relay forwards each
 * datagram to 127.0.0.1:SERVER_PORT from a socket of its own and each
 * answer back: the server sees the client at the relay's forwarding
 * address. The observer sees every datagram and, from a third socket (an
 * address of its own, that it reads), sends the server COUNT hostile
 * datagrams made from the client's: copies with 1 to 4 bits flipped past
 * the connection ID (most of them, each ahead of its original), and
 * truncated, extended, junk, empty and replayed (an older datagram) ones.
 * It reads what the server sends to its address and never answers.
 *
 * Exits when nothing was relayed for IDLE_S seconds (the transfer is
 * over), printing one line: "observer: hostile N (flipped F ahead A,
 * truncated T, extended E, junk J, empty Z, replayed R) bytes B;
 * relayed U up D down; to the observer P datagrams Q bytes".
 */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define RING 64
#define DGRAM 65536 /* loopback's MTU: the shim's datagrams are that large there */

static uint64_t rng = 0x2545f4914f6cdd1dull;

static uint64_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static int udp_on(unsigned port)
{
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        perror("observer: bind");
        exit(2);
    }
    int big = 4 << 20;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
    return fd;
}

static struct {
    unsigned long hostile, flipped, ahead, truncated, extended, junk, empty, replayed;
    unsigned long long bytes, up, down, back, back_bytes;
} n;

static uint8_t ring[RING][DGRAM];
static size_t ring_len[RING];
static unsigned ring_n;

static void hostile(int fd, const struct sockaddr_in *srv, const uint8_t *d, size_t len)
{
    static uint8_t b[DGRAM + 128];
    size_t l = len;
    memcpy(b, d, len);
    unsigned kind = (unsigned)(rnd() % 10);
    if (kind < 5 && len > 12) { /* half: bit-flipped copies */
        int k = 1 + (int)(rnd() % 4);
        for (int i = 0; i < k; i++)
            b[12 + rnd() % (len - 12)] ^= (uint8_t)(1u << (rnd() % 8));
        n.flipped++;
    } else if (kind == 5 && len > 1) {
        l = 1 + (size_t)(rnd() % (len - 1));
        n.truncated++;
    } else if (kind == 6) {
        size_t extra = 1 + (size_t)(rnd() % 100);
        for (size_t i = 0; i < extra; i++)
            b[l++] = (uint8_t)rnd();
        n.extended++;
    } else if (kind == 7) {
        l = 1 + (size_t)(rnd() % 1400); /* junk, of a typical size */
        for (size_t i = 0; i < l; i++)
            b[i] = (uint8_t)rnd();
        if (rnd() % 2 && len >= 12)
            memcpy(b, d, 12); /* magic, version, type, connection ID */
        n.junk++;
    } else if (kind == 8) {
        l = 0;
        n.empty++;
    } else {
        unsigned i = (unsigned)(rnd() % (ring_n < RING ? ring_n : RING));
        l = ring_len[i];
        memcpy(b, ring[i], l);
        n.replayed++;
    }
    if (sendto(fd, b, l, 0, (const struct sockaddr *)srv, sizeof *srv) >= 0) {
        n.hostile++;
        n.bytes += l;
    }
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: prog_observer LISTEN_PORT SERVER_PORT COUNT IDLE_S\n");
        return 2;
    }
    unsigned long count = strtoul(argv[3], NULL, 10);
    int idle_ms = atoi(argv[4]) * 1000;
    int a = udp_on((unsigned)atoi(argv[1])), b = udp_on(0), c = udp_on(0);
    struct sockaddr_in srv = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[2])),
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    struct sockaddr_in cli;
    int have_cli = 0;
    printf("observer: relaying\n");
    fflush(stdout);
    static uint8_t d[DGRAM];
    for (;;) {
        struct pollfd p[3] = {{a, POLLIN, 0}, {b, POLLIN, 0}, {c, POLLIN, 0}};
        int r = poll(p, 3, idle_ms);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        if (p[0].revents & POLLIN) {
            struct sockaddr_in from;
            socklen_t fl = sizeof from;
            ssize_t l = recvfrom(a, d, sizeof d, 0, (struct sockaddr *)&from, &fl);
            if (l >= 0) {
                cli = from;
                have_cli = 1;
                /* past the handshake, about 3 hostile per datagram */
                if (n.up > 20 && n.hostile < count) {
                    for (int i = 0; i < 3 && n.hostile < count; i++)
                        hostile(c, &srv, d, (size_t)l);
                    if (l > 12 && n.hostile < count) { /* a flipped copy ahead of it */
                        static uint8_t f[DGRAM];
                        memcpy(f, d, (size_t)l);
                        f[12 + rnd() % ((size_t)l - 12)] ^= (uint8_t)(1u << (rnd() % 8));
                        if (sendto(c, f, (size_t)l, 0, (struct sockaddr *)&srv, sizeof srv) >= 0) {
                            n.hostile++;
                            n.flipped++;
                            n.ahead++;
                            n.bytes += (unsigned long long)l;
                        }
                    }
                }
                sendto(b, d, (size_t)l, 0, (struct sockaddr *)&srv, sizeof srv);
                n.up++;
                if ((size_t)l <= sizeof ring[0]) {
                    memcpy(ring[ring_n % RING], d, (size_t)l);
                    ring_len[ring_n % RING] = (size_t)l;
                    ring_n++;
                }
            }
        }
        if (p[1].revents & POLLIN) {
            ssize_t l = recv(b, d, sizeof d, 0);
            if (l >= 0 && have_cli) {
                sendto(a, d, (size_t)l, 0, (struct sockaddr *)&cli, sizeof cli);
                n.down++;
            }
        }
        if (p[2].revents & POLLIN) {
            ssize_t l = recv(c, d, sizeof d, 0);
            if (l >= 0) {
                n.back++;
                n.back_bytes += (unsigned long long)l;
            }
        }
    }
    printf("observer: hostile %lu (flipped %lu ahead %lu, truncated %lu, extended %lu, junk %lu, "
           "empty %lu, replayed %lu) bytes %llu; relayed %llu up %llu down; to the observer %llu "
           "datagrams %llu bytes\n",
           n.hostile, n.flipped, n.ahead, n.truncated, n.extended, n.junk, n.empty, n.replayed,
           n.bytes, n.up, n.down, n.back, n.back_bytes);
    return 0;
}
