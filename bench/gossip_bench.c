/*  gossip_bench: the same scenarios against CZMQ's zgossip actor and
    against zgossip's C API. Compile with -DUSE_CZMQ for CZMQ.
    Prints one JSON line per result. Loopback only; every wait bounded.

    usage: gossip_bench star|join|chain|memory|swarm|chain128|mesh1000 [n]
           gossip_bench pchain|pstar|pjoin [n]

    pchain, pstar and pjoin are chain, star and join with one node per
    process, as a real deployment runs them: the benchmark forks a child
    per node before any node exists, and each child hosts its one node.
    The parent hosts none; it collects the endpoints and the result over
    pipes, then kills the children. A tuple carries the CLOCK_MONOTONIC
    second it was published at (a clock every process shares), so the far
    end measures from it. pchain's pause between rounds is BENCH_PAUSE_MS
    (20 as chain; 0 for rounds back to back).

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
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/resource.h>
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

/*  CPU seconds (user and system) of the processes that hosted the nodes:
    this one, or the children of a one-node-per-process scenario once
    reaped (set by reap) */
static double children_cpu = -1;

static double cpu_s (const struct rusage *u)
{
    return u->ru_utime.tv_sec + u->ru_utime.tv_usec / 1e6
         + u->ru_stime.tv_sec + u->ru_stime.tv_usec / 1e6;
}

static void result (const char *scenario, long n, double seconds, const char *unit, double value)
{
    struct rusage self;
    getrusage (RUSAGE_SELF, &self);
    double cpu = children_cpu >= 0? children_cpu: cpu_s (&self);
    printf ("{\"impl\":\"%s\",\"scenario\":\"%s\",\"n\":%ld,\"seconds\":%.6f,\"%s\":%.3f,\"cpu_s\":%.4f,\"ok\":%s}\n",
            IMPL, scenario, n, seconds, unit, value, cpu, seconds < 0? "false": "true");
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

/*  ---------------------------------------------------------------------
    One node per process (pchain, pstar, pjoin) */

/*  The next DELIVER at `node` within timeout_ms: its key and value copied
    out; 0 if none came */
static int next_deliver (node_t *node, int timeout_ms, char *key, char *value, size_t size)
{
#ifndef USE_CZMQ
    const char *frames [3];
    while (zgossip_recv_view (node, timeout_ms, frames, 3) > 0) {
        if (strcmp (frames [0], "DELIVER") == 0 && frames [1] && frames [2]) {
            snprintf (key, size, "%s", frames [1]);
            snprintf (value, size, "%s", frames [2]);
            return 1;
        }
    }
    return 0;
#else
    node_rcvtimeo (node, timeout_ms);
    while (1) {
        char *command = NULL, *k = NULL, *v = NULL;
        if (node_recvx (node, &command, &k, &v, NULL) < 0)
            return 0;
        int hit = command && k && v && strcmp (command, "DELIVER") == 0;
        if (hit) {
            snprintf (key, size, "%s", k);
            snprintf (value, size, "%s", v);
        }
        str_free (&command);
        str_free (&k);
        str_free (&v);
        if (hit)
            return 1;
    }
#endif
}

typedef struct {
    pid_t pid;
    int to_child;       //  the parent writes "go" here
    int from_child;     //  the child's endpoint line, then its result line
} child_t;

/*  Reads one line from fd within DEADLINE_S; 0 past it or at EOF */
static int read_line (int fd, char *line, size_t size)
{
    size_t at = 0;
    double started = now_s ();
    while (at + 1 < size) {
        struct pollfd p = { fd, POLLIN, 0 };
        int left = (int) ((DEADLINE_S - (now_s () - started)) * 1000);
        if (left <= 0 || poll (&p, 1, left) <= 0)
            return 0;
        if (read (fd, line + at, 1) != 1)
            return 0;
        if (line [at] == '\n') {
            line [at] = 0;
            return 1;
        }
        at++;
    }
    return 0;
}

static void write_line (int fd, const char *line)
{
    size_t len = strlen (line);
    if (write (fd, line, len) != (ssize_t) len)
        exit (3);
}

/*  Forks a child that runs body (i, connect_to, to_parent, from_parent);
    it prints nothing and never returns */
static child_t spawn (int i, const char *connect_to,
                      void (*body) (int, const char *, int, int))
{
    int up [2], down [2];
    if (pipe (up) || pipe (down)) {
        perror ("pipe");
        exit (1);
    }
    fflush (stdout);
    pid_t pid = fork ();
    if (pid < 0) {
        perror ("fork");
        exit (1);
    }
    if (pid == 0) {
        //  Ends with the parent, whatever ends it (a timeout: bounded);
        //  the parent's stdout is for its results only
        prctl (PR_SET_PDEATHSIG, SIGKILL);
        if (getppid () == 1 || !freopen ("/dev/null", "w", stdout))
            _exit (1);
        close (up [0]);
        close (down [1]);
        body (i, connect_to, up [1], down [0]);
        _exit (0);
    }
    close (up [1]);
    close (down [0]);
    child_t c = { pid, down [1], up [0] };
    return c;
}

static void reap (child_t *children, int count)
{
    for (int i = 0; i < count; i++) {
        kill (children [i].pid, SIGTERM);
        close (children [i].to_child);
        close (children [i].from_child);
    }
    //  SIGTERM lets a child under valgrind write its profile; a CZMQ
    //  child catches it (zsys's handler) and goes on, so after 2 s what
    //  is left gets SIGKILL
    children_cpu = 0;
    int left = count;
    double started = now_s ();
    while (left > 0) {
        for (int i = 0; i < count; i++) {
            struct rusage used;
            if (children [i].pid > 0 && wait4 (children [i].pid, NULL, WNOHANG, &used) > 0) {
                children_cpu += cpu_s (&used);
                children [i].pid = -1;
                left--;
            }
        }
        if (left > 0 && now_s () - started > 2) {
            for (int i = 0; i < count; i++)
                if (children [i].pid > 0)
                    kill (children [i].pid, SIGKILL);
            started = now_s () + 1e9;
        }
        if (left > 0)
            sleep_ms (10);
    }
}

/*  A child's start: its node, connected to connect_to (if any), bound;
    the endpoint goes to the parent */
static node_t *child_node (int i, const char *connect_to, int to_parent)
{
    char name [16], ep [64];
    snprintf (name, sizeof name, "p%d", i);
    node_t *node = node_new (name);
    if (connect_to && *connect_to)
        node_sendx (node, "CONNECT", connect_to, NULL);
    bind_any (node, ep, sizeof ep);
    strcat (ep, "\n");
    write_line (to_parent, ep);
    return node;
}

/*  Blocks until the parent says go (one line), reading deliveries */
static void wait_go (node_t *node, int from_parent)
{
    while (1) {
        struct pollfd p = { from_parent, POLLIN, 0 };
        if (poll (&p, 1, 0) > 0)
            break;
        take (node, 10);
    }
    char line [16];
    read_line (from_parent, line, sizeof line);
}

/*  Reads deliveries until killed */
static void serve_forever (node_t *node)
{
    while (1)
        take (node, 1000);
}

static long p_rounds = 60;
static int p_len = 32;

static void pchain_child (int i, const char *connect_to, int to_parent, int from_parent)
{
    node_t *node = child_node (i, connect_to, to_parent);
    int pause_ms = getenv ("BENCH_PAUSE_MS")? atoi (getenv ("BENCH_PAUSE_MS")): 20;
    if (i == 0) {
        wait_go (node, from_parent);
        for (long r = 0; r < p_rounds; r++) {
            char key [32], value [32];
            snprintf (key, sizeof key, "hop-%ld", r);
            snprintf (value, sizeof value, "%.9f", now_s ());
            node_sendx (node, "PUBLISH", key, value, NULL);
            //  Round r + 1 starts once the last node has round r (as
            //  chain), told through the parent
            char line [16];
            if (!read_line (from_parent, line, sizeof line))
                break;
            drain (node);
            if (pause_ms)
                sleep_ms (pause_ms);
        }
        serve_forever (node);
    }
    if (i < p_len - 1)
        serve_forever (node);
    //  The last: the latency of every round
    double total = 0;
    long got = 0;
    char key [64], value [64], line [64];
    while (got < p_rounds && next_deliver (node, (int) (DEADLINE_S * 1000), key, value, sizeof key)) {
        double s = now_s () - atof (value);
        total += s;
        got++;
        write_line (to_parent, "next\n");
    }
    snprintf (line, sizeof line, "%.9f %ld\n", total, got);
    write_line (to_parent, line);
    serve_forever (node);
}

static void scenario_pchain (long rounds)
{
    p_rounds = rounds;
    if (getenv ("BENCH_CHAIN_LEN"))
        p_len = atoi (getenv ("BENCH_CHAIN_LEN"));
    child_t *children = calloc (p_len, sizeof (child_t));
    char ep [64] = "";
    for (int i = 0; i < p_len; i++) {
        children [i] = spawn (i, ep, pchain_child);
        if (!read_line (children [i].from_child, ep, sizeof ep)) {
            fprintf (stderr, "child %d gave no endpoint\n", i);
            reap (children, i + 1);
            exit (1);
        }
    }
    sleep_ms (500);
    child_t *first = &children [0], *last = &children [p_len - 1];
    write_line (first->to_child, "go\n");
    char line [64];
    int ok = 1;
    for (long r = 0; r < rounds && ok; r++) {
        ok = read_line (last->from_child, line, sizeof line) && strcmp (line, "next") == 0;
        if (ok)
            write_line (first->to_child, "next\n");
    }
    double total = -1;
    long got = 0;
    if (ok && read_line (last->from_child, line, sizeof line))
        sscanf (line, "%lf %ld", &total, &got);
    ok = ok && got == rounds;
    double per_hop_us = ok? total / rounds / (p_len - 1) * 1e6: 0;
    reap (children, p_len);
    result ("pchain", p_len, ok? total / rounds: -1, "us_per_hop", per_hop_us);
    free (children);
}

static long p_n = 100000;

static void pstar_hub (int i, const char *connect_to, int to_parent, int from_parent)
{
    (void) from_parent;
    serve_forever (child_node (i, connect_to, to_parent));
}

/*  Publishes a warm-up stream, then the timed one; the timed stream's
    first value is the second it started at */
static void pstar_pub (int i, const char *connect_to, int to_parent, int from_parent)
{
    node_t *node = child_node (i, connect_to, to_parent);
    wait_go (node, from_parent);
    char key [32], value [32];
    for (int phase = warmup? 0: 1; phase < 2; phase++) {
        long n = phase? p_n: warmup;
        for (long t = 0; t < n; t++) {
            snprintf (key, sizeof key, "%s-%08ld", phase? "key": "warm", t);
            if (phase && t == 0)
                snprintf (value, sizeof value, "%.9f", now_s ());
            else
                strcpy (value, "value-0123456789");
            node_sendx (node, "PUBLISH", key, value, NULL);
            if (t % 256 == 255)
                take (node, 0);
        }
    }
    serve_forever (node);
}

/*  Counts the timed stream's tuples; reports the seconds from its start */
static void pstar_sub (int i, const char *connect_to, int to_parent, int from_parent)
{
    (void) from_parent;
    node_t *node = child_node (i, connect_to, to_parent);
    char key [64], value [64], line [64];
    double started = -1, finished = -1;
    long got = 0;
    while (got < p_n && next_deliver (node, (int) (DEADLINE_S * 1000), key, value, sizeof key)) {
        if (strncmp (key, "key-", 4) != 0)
            continue;
        if (strcmp (key, "key-00000000") == 0)
            started = atof (value);
        got++;
    }
    if (got == p_n && started > 0)
        finished = now_s ();
    snprintf (line, sizeof line, "%.9f\n", finished > 0? finished - started: -1.0);
    write_line (to_parent, line);
    serve_forever (node);
}

/*  A hub, then a publisher and a subscriber connected to it (the hub's
    endpoint passes to them as connect_to) */
static void scenario_pstar (long n)
{
    p_n = n;
    child_t children [3];
    char hub_ep [64], ep [64];
    children [0] = spawn (0, "", pstar_hub);
    if (!read_line (children [0].from_child, hub_ep, sizeof hub_ep))
        exit (1);
    children [1] = spawn (1, hub_ep, pstar_sub);
    children [2] = spawn (2, hub_ep, pstar_pub);
    int ok = read_line (children [1].from_child, ep, sizeof ep)
          && read_line (children [2].from_child, ep, sizeof ep);
    sleep_ms (300);
    double s = -1;
    char line [64];
    if (ok) {
        write_line (children [2].to_child, "go\n");
        if (read_line (children [1].from_child, line, sizeof line))
            s = atof (line);
    }
    reap (children, 3);
    result ("pstar", n, s, "tuples_per_s", s > 0? n / s: 0);
}

/*  Holds n tuples; says so on one more line */
static void pjoin_full (int i, const char *connect_to, int to_parent, int from_parent)
{
    (void) from_parent;
    node_t *node = child_node (i, connect_to, to_parent);
    char key [32];
    for (long t = 0; t < p_n; t++) {
        snprintf (key, sizeof key, "key-%08ld", t);
        node_sendx (node, "PUBLISH", key, "value-0123456789", NULL);
        if (t % 256 == 255)
            take (node, 0);
    }
    while (status (node) < p_n)
        take (node, 10);
    write_line (to_parent, "held\n");
    serve_forever (node);
}

/*  On go, connects to the endpoint the parent sends and times the n */
static void pjoin_fresh (int i, const char *connect_to, int to_parent, int from_parent)
{
    (void) connect_to;
    node_t *node = child_node (i, NULL, to_parent);
    char ep [64], line [64];
    if (!read_line (from_parent, ep, sizeof ep))
        _exit (1);
    double started = now_s ();
    node_sendx (node, "CONNECT", ep, NULL);
    double s = count_deliveries (node, p_n, started);
    snprintf (line, sizeof line, "%.9f\n", s);
    write_line (to_parent, line);
    serve_forever (node);
}

static void scenario_pjoin (long n)
{
    p_n = n;
    child_t children [2];
    char full_ep [64], ep [64], line [64];
    children [0] = spawn (0, "", pjoin_full);
    children [1] = spawn (1, "", pjoin_fresh);
    int ok = read_line (children [0].from_child, full_ep, sizeof full_ep)
          && read_line (children [1].from_child, ep, sizeof ep)
          && read_line (children [0].from_child, line, sizeof line);
    double s = -1;
    if (ok) {
        strcat (full_ep, "\n");
        write_line (children [1].to_child, full_ep);
        if (read_line (children [1].from_child, line, sizeof line))
            s = atof (line);
    }
    reap (children, 2);
    result ("pjoin", n, s, "tuples_per_s", s > 0? n / s: 0);
}

int main (int argc, char *argv [])
{
    if (argc < 2) {
        fprintf (stderr, "usage: %s star|join|chain|memory|swarm|chain128|mesh1000|pchain|pstar|pjoin [n]\n", argv [0]);
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
    else if (strcmp (s, "pchain") == 0)   scenario_pchain (n? n: 60);
    else if (strcmp (s, "pstar") == 0)    scenario_pstar (n? n: 100000);
    else if (strcmp (s, "pjoin") == 0)    scenario_pjoin (n? n: 100000);
    else {
        fprintf (stderr, "unknown scenario %s\n", s);
        return 2;
    }
    return 0;
}
