/*  =========================================================================
    log_handler.c - the library's log lines routed to a C function: a
    handler installed at ZGOSSIP_LOG_DEBUG receives the trace of two nodes
    on the loopback (no VERBOSE needed), with levels 1 to 5 and targets
    under "zgossip::"; a configuration file that stops loading gives a
    warning (ZGOSSIP_LOG_WARN, target zgossip::reactor); after
    zgossip_set_log_handler (NULL, NULL) the handler is called no more.
    A level out of range is refused. Every wait is bounded (valgrind runs
    it too).
    =========================================================================
*/

#define _POSIX_C_SOURCE 200809L
#undef NDEBUG                   //  the checks are asserts: keep them
#include <assert.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <zgossip.h>
#include "test_support.h"

//  Generous: valgrind runs this too, 20-50 times slower
#define DEADLINE_MS 30000

//  What the handler saw; it runs on the library's threads
typedef struct {
    pthread_mutex_t lock;
    int lines;              //  every call
    int bad_level;          //  a level outside 1..5
    int foreign;            //  a target outside zgossip:: (allowed, counted)
    bool alpha_bound;       //  DEBUG zgossip::reactor "alpha: bound ..."
    bool beta_connecting;   //  DEBUG zgossip::engine "beta: connecting to ..."
    bool reload_warning;    //  WARN zgossip::reactor "alpha: ... server/timeout ..."
    void *magic;            //  the user pointer came back
} seen_t;

static seen_t seen = { PTHREAD_MUTEX_INITIALIZER, 0, 0, 0, false, false, false, NULL };

static void
handler (int level, const char *target, const char *message, void *user)
{
    seen_t *s = (seen_t *) user;
    pthread_mutex_lock (&s->lock);
    s->lines++;
    s->magic = user;
    if (level < ZGOSSIP_LOG_ERROR || level > ZGOSSIP_LOG_TRACE)
        s->bad_level++;
    if (strncmp (target, "zgossip::", 9) != 0)
        s->foreign++;
    if (level == ZGOSSIP_LOG_DEBUG && strcmp (target, "zgossip::reactor") == 0
    &&  strncmp (message, "alpha: bound ", 13) == 0)
        s->alpha_bound = true;
    if (level == ZGOSSIP_LOG_DEBUG && strcmp (target, "zgossip::engine") == 0
    &&  strncmp (message, "beta: connecting to ", 20) == 0)
        s->beta_connecting = true;
    if (level == ZGOSSIP_LOG_WARN && strcmp (target, "zgossip::reactor") == 0
    &&  strncmp (message, "alpha: ", 7) == 0 && strstr (message, "server/timeout"))
        s->reload_warning = true;
    pthread_mutex_unlock (&s->lock);
}

//  Waits until *flag is true (read under the lock), at most DEADLINE_MS
static bool
wait_for (bool *flag)
{
    int64_t deadline = now_ms () + DEADLINE_MS;
    while (now_ms () < deadline) {
        pthread_mutex_lock (&seen.lock);
        bool set = *flag;
        pthread_mutex_unlock (&seen.lock);
        if (set)
            return true;
        sleep_ms (20);
    }
    return false;
}

static void
write_file (const char *path, const char *text)
{
    FILE *f = fopen (path, "w");
    assert (f);
    assert (fputs (text, f) >= 0);
    assert (fclose (f) == 0);
}

int
main (void)
{
    //  A level out of range is refused, with the reason
    assert (zgossip_set_log_level (6) == -ZGOSSIP_ERR_INVALID_ARG);
    assert (strstr (zgossip_last_error (), "log level"));
    assert (zgossip_set_log_level (-1) == -ZGOSSIP_ERR_INVALID_ARG);

    assert (zgossip_set_log_level (ZGOSSIP_LOG_DEBUG) == 0);
    assert (zgossip_set_log_handler (handler, &seen) == 0);

    //  The trace of two nodes, neither VERBOSE
    zgossip_t *alpha = zgossip_new ("alpha");
    zgossip_t *beta = zgossip_new ("beta");
    assert (alpha && beta);
    assert (zgossip_sendx (alpha, "BIND", "tcp://127.0.0.1:*", NULL) == 0);
    char *command = NULL, *port = NULL;
    assert (zgossip_sendx (alpha, "PORT", NULL) == 0);
    zgossip_set_rcvtimeo (alpha, DEADLINE_MS);
    assert (zgossip_recvx (alpha, &command, &port, NULL) == 2);
    char endpoint [64];
    snprintf (endpoint, sizeof endpoint, "tcp://127.0.0.1:%s", port);
    zgossip_str_free (&command);
    zgossip_str_free (&port);
    assert (zgossip_sendx (beta, "CONNECT", endpoint, NULL) == 0);
    assert (wait_for (&seen.alpha_bound));
    assert (wait_for (&seen.beta_connecting));

    //  A configuration file that no longer loads: a warning
    char dir [] = "/tmp/zgossip-ffi-log-XXXXXX";
    assert (mkdtemp (dir));
    char path [128];
    snprintf (path, sizeof path, "%s/node.cfg", dir);
    write_file (path, "server\n    timeout = 2000\n");
    assert (zgossip_sendx (alpha, "LOAD", path, NULL) == 0);
    sleep_ms (1100);            //  a new modification time
    write_file (path, "server\n    timeout = nonsense\n");
    assert (wait_for (&seen.reload_warning));

    //  NULL restores the default: the handler is called no more
    assert (zgossip_set_log_handler (NULL, NULL) == 0);
    pthread_mutex_lock (&seen.lock);
    int lines = seen.lines;
    assert (seen.bad_level == 0);
    assert (seen.magic == &seen);
    pthread_mutex_unlock (&seen.lock);
    assert (zgossip_sendx (beta, "BIND", "tcp://127.0.0.1:*", NULL) == 0);
    zgossip_destroy (&beta);
    zgossip_destroy (&alpha);
    pthread_mutex_lock (&seen.lock);
    assert (seen.lines == lines);
    pthread_mutex_unlock (&seen.lock);

    unlink (path);
    rmdir (dir);
    printf ("log_handler: %d lines (%d from other targets), levels and targets sane\n",
            lines, seen.foreign);
    return 0;
}
