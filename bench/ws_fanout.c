/* bench/ws_fanout.c — the load generator in C of `make bench`: the rooms of figure 4 and the
 * calls through the gateway (HTTP and WebSocket) of figure 6.
 *
 * The Node client (bench/ws_bench.mjs) spends ~10-20 µs of CPU per received frame; in a room of
 * 10,000 sockets one broadcast is 10,000 frames, so it measures itself more than the gateway.
 * This client measures the same figures with one epoll loop, non-blocking sockets and a frame
 * parser that only looks at the bytes it needs (libc only, no TLS):
 *
 *   ws_fanout room  --sockets N --broadcasts 200 --flood-seconds 3 --inflight 4 --per-call 10
 *                   [--timeout-ms 10000 --gateway-pid P --host-pids a,b]
 *        N sockets on ws://127.0.0.1:$DURABLE_PORT/objects/bench_room/room<N> (the bench_room
 *        class of bench/setup.sql), each opened with one "echo" call (its $connect accepted);
 *        memory per idle socket (gateway VmRSS); 200 times (after 5 of warm-up) a "bcast" call
 *        {"k":k,"n":1} from the first socket, timed from sending it until all N sockets got the
 *        event; then a flood: `inflight` "bcast" calls of `per-call` broadcasts each kept in
 *        flight, deliveries counted over `flood-seconds` after a warm-up of 0.5 s.
 *   ws_fanout floor --sockets N [the same options] [--bulk 1]
 *        the same phases against a trivial server forked from this process (one epoll loop in C
 *        that answers "echo" and "bcast" call frames; a bcast writes its events to every socket
 *        one write() per frame, as the gateway does, or with --bulk 1 all frames of a call to a
 *        socket in one write): what this client can take, to show it is not the bottleneck.
 *        Its CPU is reported as gateway_cpu.
 *   --spin 1: epoll_wait without sleeping (the server then pays no wake-ups; burns a core).
 *
 *   ws_fanout calls-http|calls-ws --connections 32 --objects 1000 --seconds 5
 *                   [--class bench_counter_web --method inc]
 *        figure 6: calls of random objects c1..cN through the gateway, for 1 s of warm-up and
 *        then `seconds`; calls-http: POST /objects/CLASS/cK/METHOD on `connections` keep-alive
 *        connections, one request in flight on each; calls-ws: one socket per object, call
 *        frames with `connections` calls in flight in all, each on a random object's socket.
 *        One JSON line: calls_per_s, p50_ms/p99_ms of the calls sent in the window, errors
 *        (non-200 answers, error frames, calls lost with a closed connection), cpu.
 *
 * The result of room and floor: one JSON line on stdout in the shape of `node ws_bench.mjs room` (fields fanout,
 * flood, open, kib_per_socket, ... with cpu objects per phase), plus "client": "c".  CPU shares
 * are of one core: client_cpu from getrusage, gateway/hosts from /proc/<pid>/stat, machine_busy
 * and steal from /proc/stat; client_loop_busy = 1 - the share of the phase spent in epoll_wait.
 * Progress goes to stderr.  Build: cc -O2 -o ws_fanout bench/ws_fanout.c
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------------------------------------ */
/* options, clock, log */

static int opt_sockets = 100, opt_broadcasts = 200, opt_inflight = 4, opt_per = 10;
static int opt_timeout_ms = 10000, opt_bulk = 0, opt_parallel = 200, opt_spin = 0;
static double opt_flood_s = 3;
static int gateway_pid = 0;
/* calls mode */
static int opt_http = 1, opt_connections = 32, opt_objects = 1000;
static double opt_seconds = 5;
static const char *opt_class = "bench_counter_web", *opt_method = "inc";
static int calls_mode;
static long calls_errors;
static int host_pids[64], n_host_pids = 0;
static int port = 7432;

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void logf_(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("  [ws_fanout] ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static void die(const char *what)
{
    fprintf(stderr, "ws_fanout: %s: %s\n", what, strerror(errno));
    exit(1);
}

/* ------------------------------------------------------------------------------------------ */
/* connections: indexed by fd */

enum { S_FREE, S_CONNECTING, S_HTTP, S_ECHO, S_OPEN, S_CLOSING, S_CLOSED, S_RESPONSES };

#define CALL_RING 64                    /* calls in flight on one connection, at most */

typedef struct conn {
    uint8_t state;
    uint8_t sent_close;
    uint16_t close_code;
    uint32_t events;
    uint32_t next_id;
    uint32_t echo_id;
    unsigned char *rbuf;
    uint32_t rlen, rcap;
    unsigned char *wbuf;
    uint32_t wlen, woff, wcap;
    uint32_t object;                    /* calls mode: the object of a WebSocket, 1-based */
    uint32_t sent, answered;            /* calls mode: calls sent and answered, in order */
    double *sent_at;                    /* calls mode: send times, CALL_RING of them */
} conn;

static conn *conns;
static int max_fd;
static int ep = -1;
static int listen_fd = -1;
static double wait_ms_total;            /* time spent blocked in epoll_wait */
static int is_server;

static void conn_gone(int fd);
static void on_http(int fd, const unsigned char *head, size_t len);
static void on_frame(int fd, int op, unsigned char *p, size_t n);
static void on_response(int fd, int status, const unsigned char *body, size_t n);

static void ep_set(int fd, uint32_t events, int add)
{
    struct epoll_event e = { .events = events, .data.fd = fd };
    if (epoll_ctl(ep, add ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, fd, &e) < 0 && add)
        die("epoll_ctl");
}

static void grow(unsigned char **buf, uint32_t *cap, size_t need)
{
    if (need <= *cap) return;
    size_t c = *cap ? *cap : 256;
    while (c < need) c *= 2;
    unsigned char *b = realloc(*buf, c);
    if (!b) { fprintf(stderr, "ws_fanout: out of memory\n"); exit(1); }
    *buf = b;
    *cap = (uint32_t) c;
}

/* write now if nothing is queued; queue what the kernel did not take */
static void conn_send(int fd, const void *data, size_t n)
{
    conn *c = &conns[fd];
    const unsigned char *d = data;
    if (c->state == S_CLOSED || c->state == S_FREE) return;
    if (c->wlen == c->woff) {
        ssize_t w = send(fd, d, n, MSG_NOSIGNAL);
        if (w == (ssize_t) n) return;
        if (w < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != ENOTCONN) { conn_gone(fd); return; }
            w = 0;
        }
        d += w;
        n -= w;
        c->wlen = c->woff = 0;
        ep_set(fd, EPOLLIN | EPOLLOUT, 0);
    }
    grow(&c->wbuf, &c->wcap, c->wlen + n);
    memcpy(c->wbuf + c->wlen, d, n);
    c->wlen += n;
}

static void conn_flush(int fd)
{
    conn *c = &conns[fd];
    while (c->woff < c->wlen) {
        ssize_t w = send(fd, c->wbuf + c->woff, c->wlen - c->woff, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) return;
            conn_gone(fd);
            return;
        }
        c->woff += w;
    }
    c->wlen = c->woff = 0;
    ep_set(fd, EPOLLIN, 0);
}

/* a frame from this client: masked (RFC 6455 5.3) */
static void ws_send(int fd, int op, const void *payload, size_t n)
{
    static unsigned char f[65536 + 14];
    static uint32_t seed = 0x9e3779b9;
    size_t h;
    if (n > 65536) return;
    f[0] = 0x80 | op;
    if (n < 126) { f[1] = 0x80 | n; h = 2; }
    else { f[1] = 0x80 | 126; f[2] = n >> 8; f[3] = n & 255; h = 4; }
    seed = seed * 1664525 + 1013904223;
    memcpy(f + h, &seed, 4);
    const unsigned char *m = f + h, *p = payload;
    h += 4;
    for (size_t i = 0; i < n; i++) f[h + i] = p[i] ^ m[i & 3];
    conn_send(fd, f, h + n);
}

/* a frame from the floor server: unmasked */
static size_t frame_head(unsigned char *f, int op, size_t n)
{
    f[0] = 0x80 | op;
    if (n < 126) { f[1] = n; return 2; }
    if (n < 65536) { f[1] = 126; f[2] = n >> 8; f[3] = n & 255; return 4; }
    f[1] = 127;
    for (int i = 0; i < 8; i++) f[2 + i] = (uint64_t) n >> (56 - 8 * i);
    return 10;
}

static void srv_send(int fd, int op, const void *p, size_t n)
{
    unsigned char f[65536 + 10];
    if (n > 65536) return;
    size_t h = frame_head(f, op, n);
    memcpy(f + h, p, n);
    conn_send(fd, f, h + n);
}

/* bytes read: the HTTP head first (client: the 101; server: the GET), then frames of any size,
 * several per read or split between reads; what is left of an incomplete one waits in rbuf */
static void feed(int fd, unsigned char *d, size_t n)
{
    conn *c = &conns[fd];
    unsigned char *b = d;
    size_t len = n, off = 0;
    if (c->rlen) {
        grow(&c->rbuf, &c->rcap, c->rlen + n);
        memcpy(c->rbuf + c->rlen, d, n);
        c->rlen += n;
        b = c->rbuf;
        len = c->rlen;
    }
    while (c->state == S_RESPONSES) {
        /* HTTP/1.1 responses, one after the other: status line, headers, Content-Length body */
        unsigned char *h = b + off, *end = memmem(h, len - off, "\r\n\r\n", 4);
        if (!end) {
            if (len - off > 16384) { conn_gone(fd); return; }
            goto keep;
        }
        size_t hl = end - h + 4, body = 0;
        unsigned char *cl = memmem(h, hl, "\r\ncontent-length:", 17);
        if (!cl) cl = memmem(h, hl, "\r\nContent-Length:", 17);
        if (cl) body = strtoul((const char *) cl + 17, NULL, 10);
        if (len - off < hl + body) goto keep;
        on_response(fd, len - off > 12 ? atoi((const char *) h + 9) : 0, h + hl, body);
        off += hl + body;
    }
    if (c->state == S_HTTP) {
        unsigned char *end = memmem(b, len, "\r\n\r\n", 4);
        if (!end) {
            if (len > 16384) { conn_gone(fd); return; }
            goto keep;
        }
        off = end - b + 4;
        on_http(fd, b, end - b);
    }
    while (c->state != S_CLOSED && c->state != S_FREE) {
        size_t avail = len - off, hl = 2;
        if (avail < 2) break;
        unsigned char *h = b + off;
        int op = h[0] & 15, masked = h[1] & 0x80;
        uint64_t pl = h[1] & 127;
        if (pl == 126) {
            if (avail < 4) break;
            pl = (h[2] << 8) | h[3];
            hl = 4;
        } else if (pl == 127) {
            if (avail < 10) break;
            pl = 0;
            for (int i = 0; i < 8; i++) pl = (pl << 8) | h[2 + i];
            hl = 10;
            if (pl > (64u << 20)) { conn_gone(fd); return; }
        }
        if (masked) hl += 4;
        if (avail < hl || avail - hl < pl) break;
        unsigned char *p = h + hl;
        if (masked)
            for (uint64_t i = 0; i < pl; i++) p[i] ^= h[hl - 4 + (i & 3)];
        off += hl + pl;
        on_frame(fd, op, p, pl);
    }
keep:
    if (c->state == S_CLOSED || c->state == S_FREE) { c->rlen = 0; return; }
    {
        size_t rest = len - off;
        if (b == c->rbuf) {
            if (off) memmove(c->rbuf, c->rbuf + off, rest);
        } else if (rest) {
            grow(&c->rbuf, &c->rcap, rest);
            memcpy(c->rbuf, b + off, rest);
        }
        c->rlen = rest;
    }
}

static unsigned char rd[1 << 18];

static void conn_readable(int fd)
{
    for (;;) {
        ssize_t n = read(fd, rd, sizeof rd);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return;
            conn_gone(fd);
            return;
        }
        if (n == 0) { conn_gone(fd); return; }
        feed(fd, rd, n);
        if (conns[fd].state == S_CLOSED || (size_t) n < sizeof rd) return;
    }
}

static void client_connected(int fd);
static void srv_accept(void);

/* one epoll_wait and its events; level-triggered, one read per ready socket */
static void loop_once(double timeout_ms)
{
    static struct epoll_event ev[1024];
    int t = timeout_ms <= 0 || (opt_spin && !is_server) ? 0 : (int) (timeout_ms + 0.999);
    double t0 = now_ms();
    int n = epoll_wait(ep, ev, 1024, t);
    wait_ms_total += now_ms() - t0;
    if (n < 0) {
        if (errno == EINTR) return;
        die("epoll_wait");
    }
    for (int i = 0; i < n; i++) {
        int fd = ev[i].data.fd;
        if (fd == listen_fd) { srv_accept(); continue; }
        conn *c = &conns[fd];
        if (c->state == S_FREE || c->state == S_CLOSED) continue;
        if (c->state == S_CONNECTING) {
            if (ev[i].events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) client_connected(fd);
            continue;
        }
        if (ev[i].events & EPOLLOUT) conn_flush(fd);
        if (c->state != S_CLOSED && (ev[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))) conn_readable(fd);
    }
}

static void conn_release(int fd)
{
    conn *c = &conns[fd];
    close(fd);
    c->state = S_CLOSED;
    c->rlen = c->wlen = c->woff = 0;
}

/* ------------------------------------------------------------------------------------------ */
/* CPU and memory of this process, the gateway, the hosts, the machine */

static long proc_ticks(int pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *p = strrchr(buf, ')');
    if (!p) return -1;
    p += 2;
    unsigned long ut = 0, st = 0;
    /* state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime */
    if (sscanf(p, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2) return -1;
    return (long) (ut + st);
}

static long proc_rss_kib(int pid)
{
    char path[64], line[256];
    long kib = -1;
    snprintf(path, sizeof path, "/proc/%d/status", pid);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld kB", &kib) == 1) break;
    fclose(f);
    return kib;
}

static void machine_jiffies(unsigned long long j[3])
{
    unsigned long long v[10] = {0};
    FILE *f = fopen("/proc/stat", "r");
    j[0] = j[1] = j[2] = 0;
    if (!f) return;
    if (fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu",
               &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7], &v[8], &v[9]) >= 8) {
        for (int i = 0; i < 10; i++) j[0] += v[i];
        j[1] = v[3] + v[4];
        j[2] = v[7];
    }
    fclose(f);
}

typedef struct {
    double t, user, sys, wait;
    long g, h[64];
    unsigned long long m[3];
} meter;

static double tick_ms;

static void rusage_ms(double *user, double *sys)
{
    struct rusage r;
    getrusage(RUSAGE_SELF, &r);
    *user = r.ru_utime.tv_sec * 1e3 + r.ru_utime.tv_usec / 1e3;
    *sys = r.ru_stime.tv_sec * 1e3 + r.ru_stime.tv_usec / 1e3;
}

static void meter_start(meter *m)
{
    m->t = now_ms();
    rusage_ms(&m->user, &m->sys);
    m->wait = wait_ms_total;
    m->g = gateway_pid ? proc_ticks(gateway_pid) : 0;
    for (int i = 0; i < n_host_pids; i++) m->h[i] = proc_ticks(host_pids[i]);
    machine_jiffies(m->m);
}

/* the cpu object of ws_bench.mjs, written to out */
static void meter_stop(meter *m, char *out, size_t sz, double *wall_out)
{
    double wall = now_ms() - m->t, user, sys;
    unsigned long long j[3];
    int k;
    rusage_ms(&user, &sys);
    machine_jiffies(j);
    if (wall <= 0) wall = 1e-3;
    double busy = 1 - (wait_ms_total - m->wait) / wall;
    if (busy < 0) busy = 0;
    k = snprintf(out, sz, "{\"wall_ms\":%.1f,\"client_cpu\":%.2f,\"client_user_cpu\":%.2f,\"client_loop_busy\":%.2f",
                 wall, (user + sys - m->user - m->sys) / wall, (user - m->user) / wall, busy);
    if (gateway_pid)
        k += snprintf(out + k, sz - k, ",\"gateway_cpu\":%.2f", (proc_ticks(gateway_pid) - m->g) * tick_ms / wall);
    if (j[0] > m->m[0]) {
        double dt = j[0] - m->m[0];
        long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
        k += snprintf(out + k, sz - k, ",\"machine_busy\":%.2f,\"steal\":%.2f",
                      (1 - (j[1] - m->m[1]) / dt) * ncpu, (j[2] - m->m[2]) / dt * ncpu);
    }
    if (n_host_pids) {
        long h = 0;
        for (int i = 0; i < n_host_pids; i++) h += proc_ticks(host_pids[i]) - m->h[i];
        k += snprintf(out + k, sz - k, ",\"hosts_cpu\":%.2f", h * tick_ms / wall);
    }
    snprintf(out + k, sz - k, "}");
    if (wall_out) *wall_out = wall;
}

/* ------------------------------------------------------------------------------------------ */
/* the client */

static char path_[256];
static int *socks, nsocks;              /* accepted sockets, in the order they were accepted */
static int inprog, failed;
static char last_err[200];
static int driver = -1;
static uint64_t total_events;

/* fan-out phase */
static int fan_got, fan_target, fan_reply_seen;
static double fan_done_at;

/* flood phase */
static int flood_on, flood_running, flood_pending, flood_errors;
static long flood_sent;
static double resend_at[256];
static int n_resend;

static void set_err(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_err, sizeof last_err, fmt, ap);
    va_end(ap);
}

static void open_failed(int fd, const char *why)
{
    if (why) set_err("%s", why);
    failed++;
    inprog--;
    conn_release(fd);
}

static void conn_gone(int fd)
{
    conn *c = &conns[fd];
    if (is_server) { conn_release(fd); return; }
    if (c->state == S_CONNECTING || c->state == S_HTTP || c->state == S_ECHO) {
        open_failed(fd, c->close_code ? NULL : "connection closed while opening");
        return;
    }
    if (c->close_code == 0) c->close_code = 1006;
    if (calls_mode && c->sent != c->answered) calls_errors += c->sent - c->answered;
    conn_release(fd);
}

static void call(int fd, const char *method, const char *args)
{
    char buf[512];
    conn *c = &conns[fd];
    uint32_t id = ++c->next_id;
    int n = snprintf(buf, sizeof buf, "{\"type\":\"call\",\"id\":%u,\"method\":\"%s\",\"args\":%s}", id, method, args);
    if (strcmp(method, "echo") == 0) c->echo_id = id;
    ws_send(fd, 1, buf, n);
}

static uint32_t objects_started;        /* calls mode: the object of the next WebSocket */

static void start_connect(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) { set_err("socket: %s", strerror(errno)); failed++; return; }
    if (fd > max_fd) { close(fd); set_err("fd %d over the limit", fd); failed++; return; }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    conn *c = &conns[fd];
    c->state = S_CONNECTING;
    c->sent_close = 0;
    c->close_code = 0;
    c->events = 0;
    c->next_id = 0;
    c->rlen = c->wlen = c->woff = 0;
    c->sent = c->answered = 0;
    c->object = ++objects_started;
    inprog++;
    if (connect(fd, (struct sockaddr *) &a, sizeof a) < 0 && errno != EINPROGRESS) {
        set_err("connect: %s", strerror(errno));
        ep_set(fd, EPOLLIN, 1);
        open_failed(fd, NULL);
        return;
    }
    ep_set(fd, EPOLLOUT, 1);
}

static void calls_connected(int fd);
static void calls_reply(int fd, int ok);

static void client_connected(int fd)
{
    int err = 0;
    socklen_t l = sizeof err;
    char req[512];
    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &l);
    if (err) { set_err("connect: %s", strerror(err)); open_failed(fd, NULL); return; }
    static uint32_t r = 12345;
    unsigned char key[16];
    for (int i = 0; i < 16; i++) { r = r * 1103515245 + 12345; key[i] = r >> 16; }
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char k64[25];
    for (int i = 0, o = 0; i < 16; i += 3) {
        uint32_t v = key[i] << 16 | (i + 1 < 16 ? key[i + 1] << 8 : 0) | (i + 2 < 16 ? key[i + 2] : 0);
        k64[o++] = b64[v >> 18 & 63];
        k64[o++] = b64[v >> 12 & 63];
        k64[o++] = i + 1 < 16 ? b64[v >> 6 & 63] : '=';
        k64[o++] = i + 2 < 16 ? b64[v & 63] : '=';
    }
    k64[24] = 0;
    if (calls_mode && opt_http) {
        conns[fd].state = S_RESPONSES;
        ep_set(fd, EPOLLIN, 0);
        calls_connected(fd);
        return;
    }
    char path[300];
    if (calls_mode) snprintf(path, sizeof path, "/objects/%s/c%u", opt_class, conns[fd].object);
    else snprintf(path, sizeof path, "%s", path_);
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n",
                     path, port, k64);
    conns[fd].state = S_HTTP;
    ep_set(fd, EPOLLIN, 0);
    conn_send(fd, req, n);
}

static void client_http(int fd, const unsigned char *head, size_t len)
{
    char status[4] = {0};
    const unsigned char *sp = memchr(head, ' ', len);
    if (sp && (size_t) (sp - head) + 4 <= len) memcpy(status, sp + 1, 3);
    if (strcmp(status, "101") != 0) {
        set_err("upgrade refused: HTTP %s", status);
        open_failed(fd, NULL);
        return;
    }
    if (calls_mode) {
        inprog--;
        conns[fd].state = S_OPEN;
        socks[nsocks++] = fd;
        return;
    }
    conns[fd].state = S_ECHO;
    call(fd, "echo", "{}");
}

static long parse_id(const unsigned char *p, size_t n)
{
    size_t lim = n < 96 ? n : 96;
    const unsigned char *q = memmem(p, lim, "\"id\":", 5);
    if (!q) return -1;
    return strtol((const char *) q + 5, NULL, 10);
}

static void flood_send(void)
{
    char a[64];
    snprintf(a, sizeof a, "{\"k\":0,\"n\":%d}", opt_per);
    call(driver, "bcast", a);
    flood_pending++;
}

/* a reply (or error) of a flood call: the next call at once (after 10 ms after an error) */
static void flood_reply(int ok)
{
    flood_pending--;
    if (ok) flood_sent += opt_per;
    else flood_errors++;
    if (!flood_running) return;
    if (ok) flood_send();
    else if (n_resend < 256) resend_at[n_resend++] = now_ms() + 10;
}

static void client_frame(int fd, int op, unsigned char *p, size_t n)
{
    conn *c = &conns[fd];
    if (op == 1) {
        /* {"type":"event"...: byte 9 is 'e', 10 'v' (the byte test of ws_bench.mjs) */
        if (n > 10 && p[9] == 'e' && p[10] == 'v') {
            c->events++;
            total_events++;
            if (++fan_got == fan_target) fan_done_at = now_ms();
            return;
        }
        int ok = n > 9 && p[9] == 'r';          /* reply; error is 'e' 'r' */
        long id = parse_id(p, n);
        if (c->state == S_ECHO && id == (long) c->echo_id) {
            inprog--;
            if (!ok) {
                set_err("echo failed: %.*s", (int) (n < 150 ? n : 150), p);
                failed++;
                ws_send(fd, 8, "\x03\xe8", 2);
                conn_release(fd);
                return;
            }
            c->state = S_OPEN;
            socks[nsocks++] = fd;
            return;
        }
        if (calls_mode) calls_reply(fd, ok);
        else if (fd == driver) {
            if (flood_on) flood_reply(ok);
            else fan_reply_seen = 1;
        }
    } else if (op == 8) {
        c->close_code = n >= 2 ? (p[0] << 8 | p[1]) : 1005;
        if (c->state != S_OPEN && c->state != S_CLOSING)
            set_err("closed by the server while opening: %u %.*s", c->close_code, (int) (n > 2 ? (n - 2 < 100 ? n - 2 : 100) : 0), p + 2);
        if (!c->sent_close) ws_send(fd, 8, p, n >= 2 ? 2 : 0);
        c->sent_close = 1;
        conn_gone(fd);
    } else if (op == 9) {
        ws_send(fd, 10, p, n);
    }
}

/* ------------------------------------------------------------------------------------------ */
/* the floor server: a child process on its own core, in the gateway's role */

static uint32_t srv_seq = 1000;

static void srv_accept(void)
{
    for (;;) {
        int fd = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) return;
        if (fd > max_fd) { close(fd); continue; }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        conn *c = &conns[fd];
        memset(c, 0, offsetof(conn, rbuf));
        c->rlen = c->wlen = c->woff = 0;
        c->state = S_HTTP;
        ep_set(fd, EPOLLIN, 1);
    }
}

static void srv_http(int fd, const unsigned char *head, size_t len)
{
    static const char ok[] = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                             "Sec-WebSocket-Accept: not-checked-by-ws_fanout=\r\n\r\n";
    (void) head;
    (void) len;
    conns[fd].state = S_OPEN;
    conn_send(fd, ok, sizeof ok - 1);
}

static long json_int(const unsigned char *p, size_t n, const char *key)
{
    const unsigned char *q = memmem(p, n, key, strlen(key));
    return q ? strtol((const char *) q + strlen(key), NULL, 10) : -1;
}

static void srv_frame(int fd, int op, unsigned char *p, size_t n)
{
    if (op == 8) {
        srv_send(fd, 8, p, n >= 2 ? 2 : 0);
        conn_release(fd);
        return;
    }
    if (op == 9) { srv_send(fd, 10, p, n); return; }
    if (op != 1) return;
    char r[256];
    long id = json_int(p, n, "\"id\":");
    int rn;
    if (memmem(p, n, "\"method\":\"bcast\"", 16)) {
        const unsigned char *a = memmem(p, n, "\"args\":", 7);
        size_t an = a ? n - (a - p) : 0;
        long cnt = a ? json_int(a, an, "\"n\":") : 1, k = a ? json_int(a, an, "\"k\":") : 0;
        if (cnt < 1) cnt = 1;
        static unsigned char bulk[1 << 20];
        size_t bl = 0;
        for (long i = 1; i <= cnt; i++) {
            unsigned char *f = bulk + bl;
            char ev[160];
            int en = snprintf(ev, sizeof ev, "{\"type\":\"event\",\"seq\":%u,\"data\":{\"i\": %ld, \"k\": %ld, \"p\": null}}", srv_seq++, i, k);
            size_t h = frame_head(f, 1, en);
            memcpy(f + h, ev, en);
            if (!opt_bulk) {
                for (int s = 0; s <= max_fd; s++)
                    if (conns[s].state == S_OPEN) conn_send(s, f, h + en);
            } else {
                bl += h + en;
                if (bl > sizeof bulk - 256) break;
            }
        }
        if (opt_bulk)
            for (int s = 0; s <= max_fd; s++)
                if (conns[s].state == S_OPEN) conn_send(s, bulk, bl);
        rn = snprintf(r, sizeof r, "{\"type\":\"reply\",\"id\":%ld,\"result\":%ld}", id, cnt);
    } else {
        rn = snprintf(r, sizeof r, "{\"type\":\"reply\",\"id\":%ld,\"result\":{}}", id);
    }
    srv_send(fd, 1, r, rn);
}

static void on_http(int fd, const unsigned char *head, size_t len)
{
    if (is_server) srv_http(fd, head, len);
    else client_http(fd, head, len);
}

static void on_frame(int fd, int op, unsigned char *p, size_t n)
{
    if (is_server) srv_frame(fd, op, p, n);
    else client_frame(fd, op, p, n);
}

static void on_response(int fd, int status, const unsigned char *body, size_t n)
{
    (void) body;
    (void) n;
    calls_reply(fd, status == 200);
}

static pid_t start_floor_server(void)
{
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = 0 };
    socklen_t l = sizeof a;
    int one = 1;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (listen_fd < 0) die("socket");
    setsockopt(listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(listen_fd, (struct sockaddr *) &a, sizeof a) < 0) die("bind");
    if (listen(listen_fd, 4096) < 0) die("listen");
    getsockname(listen_fd, (struct sockaddr *) &a, &l);
    port = ntohs(a.sin_port);
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) die("fork");
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        is_server = 1;
        ep = epoll_create1(EPOLL_CLOEXEC);
        ep_set(listen_fd, EPOLLIN, 1);
        for (;;) loop_once(1000);
    }
    close(listen_fd);
    listen_fd = -1;
    return pid;
}

/* ------------------------------------------------------------------------------------------ */
/* phases */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *) a, y = *(const double *) b;
    return x < y ? -1 : x > y;
}

static double pct(const double *s, int n, double p)
{
    int i = (int) ((p / 100) * n + 0.999999999) - 1;       /* ceil(p/100 * n) - 1, as ws_bench */
    if (i < 0) i = 0;
    if (i > n - 1) i = n - 1;
    return s[i];
}

static void run_for(double ms)
{
    double end = now_ms() + ms;
    for (double t = now_ms(); t < end; t = now_ms()) loop_once(end - t);
}

static int open_phase(char *json, size_t sz)
{
    meter m;
    double t0 = now_ms(), wall;
    char cpu[512];
    int started = 0;
    meter_start(&m);
    while ((started < opt_sockets || inprog > 0) && now_ms() - t0 < 240000) {
        while (inprog < opt_parallel && started < opt_sockets) {
            start_connect();
            started++;
        }
        loop_once(100);
    }
    meter_stop(&m, cpu, sizeof cpu, &wall);
    if (failed) logf_("%d of %d sockets failed to open (%s)", failed, opt_sockets, last_err);
    if (failed)
        return snprintf(json, sz, "{\"seconds\":%.2f,\"failed\":%d,\"error\":\"%s\",\"cpu\":%s}",
                        wall / 1000, failed, last_err, cpu);
    return snprintf(json, sz, "{\"seconds\":%.2f,\"failed\":0,\"error\":null,\"cpu\":%s}", wall / 1000, cpu);
}

static void fanout_phase(char *json, size_t sz)
{
    double *ms = calloc(opt_broadcasts + 1, sizeof *ms), sum = 0;
    int nms = 0, timeouts = 0;
    meter m;
    char cpu[512];
    meter_start(&m);
    fan_target = nsocks;
    for (int k = 1; k <= opt_broadcasts + 5; k++) {
        char a[64];
        if (conns[driver].state != S_OPEN) break;
        fan_got = 0;
        fan_reply_seen = 0;
        fan_done_at = 0;
        snprintf(a, sizeof a, "{\"k\":%d,\"n\":1}", k);
        double t0 = now_ms();
        call(driver, "bcast", a);
        while (fan_got < fan_target && now_ms() - t0 < opt_timeout_ms)
            loop_once(opt_timeout_ms - (now_ms() - t0));
        int ok = fan_got >= fan_target;
        double t = ok ? fan_done_at - t0 : 0;
        double tr = now_ms();
        while (!fan_reply_seen && conns[driver].state == S_OPEN && now_ms() - tr < 30000) loop_once(100);
        if (k <= 5) continue;
        if (ok) { ms[nms++] = t; sum += t; } else timeouts++;
    }
    meter_stop(&m, cpu, sizeof cpu, NULL);
    qsort(ms, nms, sizeof *ms, cmp_double);
    if (nms)
        snprintf(json, sz, "{\"n\":%d,\"p50_ms\":%.3f,\"p99_ms\":%.3f,\"max_ms\":%.3f,\"avg_ms\":%.3f,\"timeouts\":%d,\"cpu\":%s}",
                 nms, pct(ms, nms, 50), pct(ms, nms, 99), pct(ms, nms, 100), sum / nms, timeouts, cpu);
    else
        snprintf(json, sz, "{\"n\":0,\"timeouts\":%d,\"cpu\":%s}", timeouts, cpu);
    logf_("fan-out p50 %.3f ms p99 %.3f ms (%d timeouts)", nms ? pct(ms, nms, 50) : -1.0, nms ? pct(ms, nms, 99) : -1.0, timeouts);
    free(ms);
}

static void flood_run_for(double ms)
{
    double end = now_ms() + ms;
    for (double t = now_ms(); t < end; t = now_ms()) {
        double wait = end - t;
        if (n_resend) {
            for (int i = 0; i < n_resend; i++) {
                if (resend_at[i] <= t) {
                    resend_at[i--] = resend_at[--n_resend];
                    if (flood_running) flood_send();
                } else if (resend_at[i] - t < wait) {
                    wait = resend_at[i] - t;
                }
            }
        }
        loop_once(wait);
    }
}

static void flood_phase(char *json, size_t sz, double *dps, double *gw)
{
    char cpu[512];
    meter m;
    double start = now_ms(), wall;
    uint64_t base = total_events, e0, e1;
    flood_on = flood_running = 1;
    flood_sent = 0;
    for (int i = 0; i < opt_inflight; i++) flood_send();
    flood_run_for(500);
    e0 = total_events;
    meter_start(&m);
    flood_run_for(opt_flood_s * 1000);
    e1 = total_events;
    meter_stop(&m, cpu, sizeof cpu, &wall);
    flood_running = 0;
    n_resend = 0;
    for (double t0 = now_ms(); flood_pending > 0 && conns[driver].state == S_OPEN && now_ms() - t0 < 60000;)
        loop_once(100);
    /* let the queues drain, then compare what was sent with what arrived */
    uint64_t before = (uint64_t) -1;
    for (int i = 0; i < 100 && total_events != before; i++) {
        before = total_events;
        run_for(100);
    }
    flood_on = 0;
    int closed = 0;
    for (int i = 0; i < nsocks; i++)
        if (conns[socks[i]].state != S_OPEN) closed++;
    double secs = wall / 1000;
    *dps = (e1 - e0) / secs;
    const char *g = strstr(cpu, "\"gateway_cpu\":");
    *gw = g ? atof(g + 14) : -1;
    snprintf(json, sz, "{\"deliveries_per_s\":%.0f,\"broadcasts_per_s\":%.0f,\"broadcasts_sent\":%ld,"
             "\"deliveries_total\":%llu,\"deliveries_expected\":%ld,\"sockets_closed\":%d,\"call_errors\":%d,"
             "\"elapsed_s\":%.1f,\"cpu\":%s}",
             (e1 - e0) / secs, (e1 - e0) / (double) nsocks / secs, flood_sent,
             (unsigned long long) (total_events - base), flood_sent * (long) (nsocks - closed), closed, flood_errors,
             (now_ms() - start) / 1000, cpu);
}

static double close_phase(void)
{
    double t0 = now_ms();
    int open = 0;
    for (int i = 0; i < nsocks; i++) {
        int fd = socks[i];
        if (conns[fd].state != S_OPEN) continue;
        ws_send(fd, 8, "\x03\xe8", 2);
        conns[fd].sent_close = 1;
        if (conns[fd].state == S_OPEN) conns[fd].state = S_CLOSING;
    }
    for (;;) {
        open = 0;
        for (int i = 0; i < nsocks; i++)
            if (conns[socks[i]].state == S_CLOSING) open++;
        if (!open || now_ms() - t0 > 5000) break;
        loop_once(50);
    }
    for (int i = 0; i < nsocks; i++)
        if (conns[socks[i]].state == S_CLOSING) conn_release(socks[i]);
    return (now_ms() - t0) / 1000;
}

/* ------------------------------------------------------------------------------------------ */
/* the calls mode (figure 6): increments of random objects through the gateway, over HTTP
 * (keep-alive connections, one request in flight on each) or over WebSockets (one socket per
 * object; `connections` calls in flight in all, each sent on the socket of a random object) */

static uint32_t rnd_state = 0x2545F491;
static double calls_from, calls_until;  /* the measured window */
static long calls_done, calls_lat_n, calls_lat_cap;
static double *calls_lat;

static uint32_t random_object(void)
{
    rnd_state ^= rnd_state << 13;
    rnd_state ^= rnd_state >> 17;
    rnd_state ^= rnd_state << 5;
    return rnd_state % (uint32_t) opt_objects + 1;
}

static void calls_send(int fd)
{
    conn *c = &conns[fd];
    if (!c->sent_at) c->sent_at = calloc(CALL_RING, sizeof *c->sent_at);
    c->sent_at[c->sent % CALL_RING] = now_ms();
    c->sent++;
    if (opt_http) {
        char req[512];
        int n = snprintf(req, sizeof req, "POST /objects/%s/c%u/%s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
                         "Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}",
                         opt_class, random_object(), opt_method, port);
        conn_send(fd, req, n);
    } else {
        call(fd, opt_method, "{}");
    }
}

/* WebSockets: a random object's socket with room in its ring */
static void calls_send_any(void)
{
    for (int tries = 0; tries < 1000; tries++) {
        int fd = socks[random_object() % (uint32_t) nsocks];
        conn *c = &conns[fd];
        if (c->state == S_OPEN && c->sent - c->answered < CALL_RING) {
            calls_send(fd);
            return;
        }
    }
}

static void calls_connected(int fd)
{
    inprog--;
    socks[nsocks++] = fd;
}

static void calls_reply(int fd, int ok)
{
    conn *c = &conns[fd];
    double t = now_ms(), sent = c->sent_at ? c->sent_at[c->answered % CALL_RING] : t;
    c->answered++;
    if (t >= calls_from && t < calls_until) {
        calls_done++;
        if (!ok) calls_errors++;
        if (sent >= calls_from) {
            if (calls_lat_n == calls_lat_cap) {
                calls_lat_cap = calls_lat_cap ? calls_lat_cap * 2 : 65536;
                calls_lat = realloc(calls_lat, calls_lat_cap * sizeof *calls_lat);
                if (!calls_lat) { fprintf(stderr, "ws_fanout: out of memory\n"); exit(1); }
            }
            calls_lat[calls_lat_n++] = t - sent;
        }
    }
    if (t >= calls_until) return;
    if (opt_http) calls_send(fd);
    else calls_send_any();
}

static int calls_main(void)
{
    char cpu[512];
    meter m;
    double wall;
    /* HTTP: the connections; WebSockets: a socket per object */
    opt_sockets = opt_http ? opt_connections : opt_objects;
    socks = calloc(opt_sockets, sizeof *socks);
    if (!socks) { fprintf(stderr, "ws_fanout: out of memory\n"); return 1; }
    {
        double t0 = now_ms();
        int started = 0;
        while ((started < opt_sockets || inprog > 0) && now_ms() - t0 < 120000) {
            while (inprog < opt_parallel && started < opt_sockets) {
                started++;
                start_connect();
            }
            loop_once(100);
        }
    }
    if (failed || nsocks == 0) {
        printf("{\"fig\":6,\"series\":\"%s\",\"error\":\"%d of %d connections failed: %s\"}\n",
               opt_http ? "http" : "ws", failed, opt_sockets, last_err);
        return 1;
    }
    logf_("%d %s open; %d calls in flight for 1 s of warm-up and %g s", nsocks,
          opt_http ? "connections" : "sockets", opt_connections, opt_seconds);
    calls_from = now_ms() + 1000;
    calls_until = calls_from + opt_seconds * 1000;
    if (opt_http)
        for (int i = 0; i < nsocks; i++) calls_send(socks[i]);
    else
        for (int i = 0; i < opt_connections; i++) calls_send_any();
    run_for(1000);
    meter_start(&m);
    run_for(opt_seconds * 1000);
    meter_stop(&m, cpu, sizeof cpu, &wall);
    /* the calls still in flight end before the connections close */
    run_for(500);
    qsort(calls_lat, calls_lat_n, sizeof *calls_lat, cmp_double);
    printf("{\"fig\":6,\"series\":\"%s\",\"class\":\"%s\",\"connections\":%d,\"objects\":%d,"
           "\"calls\":%ld,\"errors\":%ld,\"calls_per_s\":%.1f,\"p50_ms\":%.3f,\"p99_ms\":%.3f,\"cpu\":%s}\n",
           opt_http ? "http" : "ws", opt_class, opt_connections, opt_objects, calls_done, calls_errors,
           calls_done / (wall / 1000), calls_lat_n ? pct(calls_lat, calls_lat_n, 50) : -1.0,
           calls_lat_n ? pct(calls_lat, calls_lat_n, 99) : -1.0, cpu);
    logf_("%.0f calls/s, p50 %.3f ms, p99 %.3f ms, %ld errors", calls_done / (wall / 1000),
          calls_lat_n ? pct(calls_lat, calls_lat_n, 50) : -1.0, calls_lat_n ? pct(calls_lat, calls_lat_n, 99) : -1.0,
          calls_errors);
    return calls_errors ? 1 : 0;
}

/* ------------------------------------------------------------------------------------------ */

static void usage(void)
{
    fprintf(stderr, "usage: ws_fanout room|floor [--sockets N] [--broadcasts B] [--flood-seconds S] [--inflight I]\n"
                    "         [--per-call P] [--timeout-ms T] [--gateway-pid P] [--host-pids a,b] [--bulk 0|1]\n"
                    "       ws_fanout calls-http|calls-ws [--connections 32] [--objects 1000] [--seconds 5]\n"
                    "         [--class bench_counter_web] [--method inc] [--gateway-pid P] [--host-pids a,b]\n"
                    "       (the gateway: 127.0.0.1:$DURABLE_PORT)\n");
    exit(2);
}

int main(int argc, char **argv)
{
    if (argc < 2) usage();
    const char *mode = argv[1];
    int floor_mode = strcmp(mode, "floor") == 0;
    calls_mode = strcmp(mode, "calls-http") == 0 || strcmp(mode, "calls-ws") == 0;
    opt_http = strcmp(mode, "calls-http") == 0;
    if (!floor_mode && !calls_mode && strcmp(mode, "room") != 0) usage();
    for (int i = 2; i + 1 < argc; i += 2) {
        const char *k = argv[i], *v = argv[i + 1];
        if (!strcmp(k, "--sockets")) opt_sockets = atoi(v);
        else if (!strcmp(k, "--broadcasts")) opt_broadcasts = atoi(v);
        else if (!strcmp(k, "--flood-seconds")) opt_flood_s = atof(v);
        else if (!strcmp(k, "--inflight")) opt_inflight = atoi(v);
        else if (!strcmp(k, "--per-call")) opt_per = atoi(v);
        else if (!strcmp(k, "--timeout-ms")) opt_timeout_ms = atoi(v);
        else if (!strcmp(k, "--bulk")) opt_bulk = atoi(v);
        else if (!strcmp(k, "--spin")) opt_spin = atoi(v);
        else if (!strcmp(k, "--parallel")) opt_parallel = atoi(v);
        else if (!strcmp(k, "--gateway-pid")) gateway_pid = atoi(v);
        else if (!strcmp(k, "--connections")) opt_connections = atoi(v);
        else if (!strcmp(k, "--objects")) opt_objects = atoi(v);
        else if (!strcmp(k, "--seconds")) opt_seconds = atof(v);
        else if (!strcmp(k, "--class")) opt_class = v;
        else if (!strcmp(k, "--method")) opt_method = v;
        else if (!strcmp(k, "--host-pids")) {
            char *s = strdup(v), *tok, *save;
            for (tok = strtok_r(s, ",", &save); tok && n_host_pids < 64; tok = strtok_r(NULL, ",", &save))
                host_pids[n_host_pids++] = atoi(tok);
            free(s);
        } else usage();
    }
    if (opt_sockets < 1 || opt_inflight < 1 || opt_per < 1 || opt_parallel < 1 ||
        opt_connections < 1 || opt_objects < 1 || opt_seconds <= 0) usage();
    if (getenv("DURABLE_PORT")) port = atoi(getenv("DURABLE_PORT"));
    tick_ms = 1000.0 / sysconf(_SC_CLK_TCK);
    signal(SIGPIPE, SIG_IGN);

    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    getrlimit(RLIMIT_NOFILE, &rl);
    max_fd = rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > (1 << 20) ? (1 << 20) - 1 : (int) rl.rlim_cur - 1;
    conns = calloc(max_fd + 1, sizeof *conns);
    if (!conns) { fprintf(stderr, "ws_fanout: out of memory\n"); return 1; }
    ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0) die("epoll_create1");
    if (calls_mode) return calls_main();
    socks = calloc(opt_sockets, sizeof *socks);
    if (!socks) { fprintf(stderr, "ws_fanout: out of memory\n"); return 1; }

    pid_t server = 0;
    if (floor_mode) {
        server = start_floor_server();
        gateway_pid = server;           /* its CPU is reported as gateway_cpu */
        n_host_pids = 0;
        snprintf(path_, sizeof path_, "/objects/bench_room/floor");
    } else {
        snprintf(path_, sizeof path_, "/objects/bench_room/room%d", opt_sockets);
    }

    static char open_json[1024], fan_json[1024], flood_json[2048];
    long rss0 = gateway_pid && !floor_mode ? proc_rss_kib(gateway_pid) : -1;
    open_phase(open_json, sizeof open_json);
    logf_("%d sockets open and accepted", nsocks);
    printf("{\"fig\":4,\"series\":\"%s\",\"sockets\":%d,\"client\":\"c\"", mode, opt_sockets);
    if (floor_mode) printf(",\"bulk\":%d", opt_bulk);
    printf(",\"open\":%s", open_json);
    if (nsocks == 0) {
        printf(",\"error\":\"no socket opened: %s\"}\n", last_err);
        if (server) kill(server, SIGKILL), waitpid(server, NULL, 0);
        return 1;
    }
    run_for(1000);
    if (rss0 >= 0) {
        long rss1 = proc_rss_kib(gateway_pid);
        printf(",\"gateway_rss_kib_before\":%ld,\"gateway_rss_kib_after\":%ld,\"kib_per_socket\":%.2f",
               rss0, rss1, (double) (rss1 - rss0) / nsocks);
    }
    printf(",\"sockets_open\":%d", nsocks);
    driver = socks[0];
    logf_("one broadcast to all %d: %d times", nsocks, opt_broadcasts);
    fanout_phase(fan_json, sizeof fan_json);
    printf(",\"fanout\":%s", fan_json);
    logf_("flood for %g s", opt_flood_s);
    double dps, gw;
    flood_phase(flood_json, sizeof flood_json, &dps, &gw);
    printf(",\"flood\":%s", flood_json);
    logf_("flood: %.0f deliveries/s (%s cpu %.2f)", dps, floor_mode ? "server" : "gateway", gw);
    if (gateway_pid && !floor_mode) printf(",\"gateway_rss_kib_end\":%ld", proc_rss_kib(gateway_pid));
    printf(",\"close_seconds\":%.2f}\n", close_phase());
    fflush(stdout);
    if (server) {
        kill(server, SIGKILL);
        waitpid(server, NULL, 0);
    }
    return 0;
}
