/*  gossip_bench: the same scenarios against CZMQ's zgossip actor and
    against zgossip's C API. Compile with -DUSE_CZMQ for CZMQ.
    Prints one JSON line per result. Loopback only; every wait bounded.

    usage: gossip_bench star|join|chain|memory|swarm|chain128|mesh1000 [n]

    star times n tuples after a warm-up stream of BENCH_WARMUP (50,000;
    0 for none): it measures the steady state, not the first 100 ms after
    the nodes were idle, in which a VM's scheduler may still keep the
    application's thread and the library's on one CPU.

    BENCH_PIN=1 (star only): the application's thread runs on CPU 0 and
    every other thread of the process, the library's, on CPU 1, so that
    the scheduler cannot put them on one CPU.

    BENCH_DATA_DIR=DIR (zgossip only): every node keeps its tuples in a
    data directory of its own under DIR (SET store/path DIR/name), with
    the default store/fsync.

    zgossip reads deliveries with zgossip_recv_view (nothing allocated);
    BENCH_RECVX=1 makes it read them with zgossip_recvx, a string per
    frame, as CZMQ's zstr_recvx.
*/
#define _GNU_SOURCE
#include <dirent.h>
#include <sched.h>
#include <sys/syscall.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>

#ifdef USE_CZMQ
#   include <czmq.h>
    typedef zactor_t node_t;
#   define IMPL "czmq"
#   define node_create(name) zactor_new (zgossip, (void *) (name))
#   define last_error() "zactor_new failed"
#   define node_destroy(p) zactor_destroy (p)
#   define node_sendx zstr_sendx
#   define node_recvx zstr_recvx
#   define node_rcvtimeo(n, ms) zsock_set_rcvtimeo ((n), (ms))
#   define str_free zstr_free
#else
#   include <zgossip.h>
    typedef zgossip_t node_t;
#   define IMPL "zgossip"
#   define node_create(name) zgossip_new (name)
#   define last_error() zgossip_last_error ()
#   define node_destroy(p) zgossip_destroy (p)
#   define node_sendx zgossip_sendx
#   define node_recvx zgossip_recvx
#   define node_rcvtimeo(n, ms) zgossip_set_rcvtimeo ((n), (ms))
#   define str_free zgossip_str_free
#endif

/*  Tuples the star streams before the ones it times (env BENCH_WARMUP) */
static long warmup = 50000;

/*  Every scenario gives up after this many seconds (env BENCH_DEADLINE) */
static double DEADLINE_S = 60.0;

static double now_s (void)
{
    struct timespec t;
    clock_gettime (CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static void sleep_ms (int ms)
{
    struct timespec t = { ms / 1000, (long) (ms % 1000) * 1000000L };
    nanosleep (&t, NULL);
}

static long rss_bytes (void)
{
    long pages = 0, resident = 0;
    FILE *f = fopen ("/proc/self/statm", "r");
    if (f) {
        if (fscanf (f, "%ld %ld", &pages, &resident) != 2)
            resident = 0;
        fclose (f);
    }
    return resident * sysconf (_SC_PAGESIZE);
}

/*  With BENCH_PIN set and two CPUs or more: this thread on CPU 0, every
    other thread of the process on CPU 1 */
static void pin_threads (void)
{
    if (!getenv ("BENCH_PIN") || sysconf (_SC_NPROCESSORS_ONLN) < 2)
        return;
    pid_t self = (pid_t) syscall (SYS_gettid);
    DIR *dir = opendir ("/proc/self/task");
    if (!dir)
        return;
    struct dirent *entry;
    while ((entry = readdir (dir))) {
        pid_t tid = (pid_t) atoi (entry->d_name);
        if (tid <= 0)
            continue;
        cpu_set_t set;
        CPU_ZERO (&set);
        CPU_SET (tid == self? 0: 1, &set);
        if (sched_setaffinity (tid, sizeof set, &set))
            perror ("sched_setaffinity");
    }
    closedir (dir);
}

/*  A new node, or the end of the benchmark with the reason */
static node_t *node_new (const char *name)
{
    node_t *node = node_create (name);
    if (!node) {
        fprintf (stderr, "cannot start node %s: %s\n", name, last_error ());
        exit (1);
    }
#ifndef USE_CZMQ
    const char *data = getenv ("BENCH_DATA_DIR");
    if (data) {
        char path [512];
        snprintf (path, sizeof path, "%s/%s", data, name);
        if (zgossip_sendx (node, "SET", "store/path", path, NULL) != 0) {
            fprintf (stderr, "cannot use %s: %s\n", path, last_error ());
            exit (1);
        }
    }
#endif
    return node;
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;
static unsigned below (unsigned n)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (unsigned) (rng_state % n);
}

/*  Binds to tcp://127.0.0.1:* and returns the endpoint */
static void bind_any (node_t *node, char *endpoint, size_t size)
{
    node_sendx (node, "BIND", "tcp://127.0.0.1:*", NULL);
    node_sendx (node, "PORT", NULL);
    char *command = NULL, *port = NULL;
    node_rcvtimeo (node, 5000);
    while (node_recvx (node, &command, &port, NULL) >= 0) {
        int is_port = command && strcmp (command, "PORT") == 0;
        if (is_port)
            snprintf (endpoint, size, "tcp://127.0.0.1:%s", port);
        str_free (&command);
        str_free (&port);
        if (is_port)
            return;
    }
    fprintf (stderr, "no PORT reply\n");
    exit (1);
}

/*  STATUS of a node, skipping deliveries; -1 on timeout */
static long status (node_t *node)
{
    node_sendx (node, "STATUS", NULL);
    node_rcvtimeo (node, 5000);
    while (1) {
        char *command = NULL, *a = NULL, *b = NULL;
        if (node_recvx (node, &command, &a, &b, NULL) < 0)
            return -1;
        int is_status = command && strcmp (command, "STATUS") == 0;
        long n = is_status && a? atol (a): -1;
        str_free (&command);
        str_free (&a);
        str_free (&b);
        if (is_status)
            return n;
    }
}

/*  Takes the deliveries waiting at `node` without blocking; returns how
    many were DELIVERs. Every node's application must read its pipe: a
    CZMQ node whose pipe is full stops working. */
static long take (node_t *node, int timeout_ms)
{
#ifndef USE_CZMQ
    /*  zgossip reads deliveries without allocating (zgossip_recv_view),
        unless BENCH_RECVX is set: then as CZMQ does, a string each */
    static int recvx = -1;
    if (recvx < 0)
        recvx = getenv ("BENCH_RECVX") != NULL;
    if (!recvx) {
        long got = 0;
        const char *frames [3];
        while (zgossip_recv_view (node, timeout_ms, frames, 3) > 0) {
            if (strcmp (frames [0], "DELIVER") == 0)
                got++;
            timeout_ms = 0;
        }
        return got;
    }
#endif
    node_rcvtimeo (node, timeout_ms);
    long got = 0;
    while (1) {
        char *command = NULL, *k = NULL, *v = NULL;
        if (node_recvx (node, &command, &k, &v, NULL) < 0)
            break;
        if (command && strcmp (command, "DELIVER") == 0)
            got++;
        str_free (&command);
        str_free (&k);
        str_free (&v);
        node_rcvtimeo (node, 0);
    }
    return got;
}

/*  Counts DELIVERs at `node` until n arrived, draining `others` meanwhile;
    returns seconds since `started`, or -1 past the deadline */
static double count_deliveries_while (node_t *node, long n, double started,
                                      node_t **others, int n_others, long already)
{
    long got = already;
    while (got < n) {
        got += take (node, 20);
        for (int i = 0; i < n_others; i++)
            take (others [i], 0);
        if (now_s () - started > DEADLINE_S)
            return -1;
    }
    return now_s () - started;
}

static double count_deliveries (node_t *node, long n, double started)
{
    return count_deliveries_while (node, n, started, NULL, 0, 0);
}

static void drain (node_t *node)
{
    take (node, 0);
}

static void result (const char *scenario, long n, double seconds, const char *unit, double value)
{
    printf ("{\"impl\":\"%s\",\"scenario\":\"%s\",\"n\":%ld,\"seconds\":%.6f,\"%s\":%.3f,\"ok\":%s}\n",
            IMPL, scenario, n, seconds, unit, value, seconds < 0? "false": "true");
    fflush (stdout);
}

/*  Publishes n tuples named prefix-i at pub and counts them at sub,
    draining pub and hub meanwhile; returns seconds, or -1 past the
    deadline */
static double star_stream (node_t *pub, node_t *hub, node_t *sub,
                           const char *prefix, long n)
{
    char key [32];
    node_t *others [2] = { pub, hub };
    long got = 0;
    double started = now_s ();
    for (long i = 0; i < n; i++) {
        snprintf (key, sizeof key, "%s-%08ld", prefix, i);
        node_sendx (pub, "PUBLISH", key, "value-0123456789", NULL);
        if (i % 256 == 255) {
            got += take (sub, 0);
            take (pub, 0);
            take (hub, 0);
        }
    }
    return count_deliveries_while (sub, n, started, others, 2, got);
}

static void scenario_star (long n)
{
    char hub_ep [64];
    node_t *hub = node_new ("hub");
    bind_any (hub, hub_ep, sizeof hub_ep);
    node_t *pub = node_new ("pub");
    node_t *sub = node_new ("sub");
    node_sendx (pub, "CONNECT", hub_ep, NULL);
    node_sendx (sub, "CONNECT", hub_ep, NULL);
    sleep_ms (300);
    pin_threads ();
    //  Steady state: the tuples timed follow a warm-up stream of their own
    double s = -1;
    if (warmup == 0 || star_stream (pub, hub, sub, "warm", warmup) >= 0)
        s = star_stream (pub, hub, sub, "key", n);
    result ("star", n, s, "tuples_per_s", s > 0? n / s: 0);
    node_destroy (&sub);
    node_destroy (&pub);
    node_destroy (&hub);
}

static void scenario_join (long n)
{
    char ep [64];
    node_t *full = node_new ("full");
    bind_any (full, ep, sizeof ep);
    char key [32];
    for (long i = 0; i < n; i++) {
        snprintf (key, sizeof key, "key-%08ld", i);
        node_sendx (full, "PUBLISH", key, "value-0123456789", NULL);
        if (i % 256 == 255)
            take (full, 0);
    }
    while (status (full) < n)
        take (full, 10);
    take (full, 0);
    node_t *fresh = node_new ("fresh");
    double started = now_s ();
    node_sendx (fresh, "CONNECT", ep, NULL);
    double s = count_deliveries_while (fresh, n, started, &full, 1, 0);
    result ("join", n, s, "tuples_per_s", s > 0? n / s: 0);
    node_destroy (&fresh);
    node_destroy (&full);
}

/*  A chain of `len` nodes, each connecting to the previous one; returns
    the nodes. */
static node_t **make_chain (int len)
{
    node_t **nodes = calloc (len, sizeof (node_t *));
    char ep [64];
    for (int i = 0; i < len; i++) {
        char name [16];
        snprintf (name, sizeof name, "c%d", i);
        nodes [i] = node_new (name);
        if (i > 0)
            node_sendx (nodes [i], "CONNECT", ep, NULL);
        bind_any (nodes [i], ep, sizeof ep);
    }
    return nodes;
}

static void scenario_chain (long rounds)
{
    int len = 32;
    node_t **nodes = make_chain (len);
    sleep_ms (500);
    double total = 0;
    int ok = 1;
    for (long r = 0; r < rounds; r++) {
        char key [32];
        snprintf (key, sizeof key, "hop-%ld", r);
        drain (nodes [len - 1]);
        double started = now_s ();
        node_sendx (nodes [0], "PUBLISH", key, "x", NULL);
        double s = count_deliveries (nodes [len - 1], 1, started);
        if (s < 0) { ok = 0; break; }
        total += s;
        sleep_ms (20);
    }
    double per_hop_us = ok? total / rounds / (len - 1) * 1e6: 0;
    result ("chain", len, ok? total / rounds: -1, "us_per_hop", per_hop_us);
    for (int i = 0; i < len; i++)
        node_destroy (&nodes [i]);
    free (nodes);
}

static void scenario_memory (long n)
{
    node_t *node = node_new ("mem");
    long before = rss_bytes ();
    char key [32], value [32];
    long payload = 0;
    for (long i = 0; i < n; i++) {
        snprintf (key, sizeof key, "key-%08ld", i);
        snprintf (value, sizeof value, "value-%08ld", i);
        payload += strlen (key) + strlen (value);
        node_sendx (node, "PUBLISH", key, value, NULL);
        if (i % 1000 == 999)
            drain (node);
    }
    while (status (node) < n)
        drain (node);
    drain (node);
    sleep_ms (200);
    long after = rss_bytes ();
    double per_tuple = (double) (after - before - payload) / n;
    result ("memory", n, 0, "bytes_per_tuple", per_tuple);
    node_destroy (&node);
}

/*  `count` nodes, node i connects to a random earlier node, plus one
    extra link closing a cycle; `tuples` published at random nodes; time
    until every node holds every tuple. */
static void scenario_mesh (const char *name, int count, int tuples, int chain)
{
    node_t **nodes = calloc (count, sizeof (node_t *));
    char (*eps) [64] = calloc (count, 64);
    for (int i = 0; i < count; i++) {
        char nm [16];
        snprintf (nm, sizeof nm, "m%d", i);
        nodes [i] = node_new (nm);
        bind_any (nodes [i], eps [i], 64);
    }
    for (int i = 1; i < count; i++) {
        int j = chain? i - 1: (int) below ((unsigned) i);
        node_sendx (nodes [i], "CONNECT", eps [j], NULL);
    }
    if (!chain)
        node_sendx (nodes [0], "CONNECT", eps [count - 1], NULL);
    double started = now_s ();
    for (int t = 0; t < tuples; t++) {
        char key [32];
        snprintf (key, sizeof key, "tuple-%d", t);
        node_sendx (nodes [below ((unsigned) count)], "PUBLISH", key, "v", NULL);
    }
    double s = -1;
    int complete = 0;
    while (now_s () - started < DEADLINE_S) {
        complete = 0;
        for (int i = 0; i < count; i++) {
            drain (nodes [i]);
            if (status (nodes [i]) == tuples)
                complete++;
        }
        if (complete == count) {
            s = now_s () - started;
            break;
        }
        sleep_ms (50);
    }
    result (name, count, s, "complete_nodes", complete);
    for (int i = 0; i < count; i++)
        node_destroy (&nodes [i]);
    free (nodes);
    free (eps);
}

int main (int argc, char *argv [])
{
    if (argc < 2) {
        fprintf (stderr, "usage: %s star|join|chain|memory|swarm|chain128|mesh1000 [n]\n", argv [0]);
        return 2;
    }
#ifdef USE_CZMQ
    zsys_set_max_sockets (0);
#endif
    if (getenv ("BENCH_WARMUP"))
        warmup = atol (getenv ("BENCH_WARMUP"));
    if (getenv ("BENCH_DEADLINE"))
        DEADLINE_S = atof (getenv ("BENCH_DEADLINE"));
    const char *s = argv [1];
    long n = argc > 2? atol (argv [2]): 0;
    if (strcmp (s, "star") == 0)          scenario_star (n? n: 100000);
    else if (strcmp (s, "join") == 0)     scenario_join (n? n: 100000);
    else if (strcmp (s, "chain") == 0)    scenario_chain (n? n: 20);
    else if (strcmp (s, "memory") == 0)   scenario_memory (n? n: 100000);
    else if (strcmp (s, "swarm") == 0)    scenario_mesh ("swarm", n? (int) n: 254, 1270, 0);
    else if (strcmp (s, "chain128") == 0) scenario_mesh ("chain128", 128, 10, 1);
    else if (strcmp (s, "mesh1000") == 0) scenario_mesh ("mesh1000", 1000, 100, 0);
    else {
        fprintf (stderr, "unknown scenario %s\n", s);
        return 2;
    }
    return 0;
}
