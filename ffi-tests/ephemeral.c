/*  =========================================================================
    ephemeral.c - ephemeral tuples through the command alone: two nodes on
    the loopback, the reader joined to the writer; the writer publishes
    one tuple with EPHEMERAL and one with PUBLISH, the reader gets both;
    when the writer is destroyed the reader gets DELETE for the ephemeral
    one only, and holds the plain one still. EPHEMERAL with bad arguments
    is refused with a message, as PUBLISH is. Every wait is bounded
    (valgrind runs it too).
    =========================================================================
*/

#define _POSIX_C_SOURCE 200809L
#undef NDEBUG                   //  the checks are asserts: keep them
#include <assert.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <zgossip.h>
#include "test_support.h"

//  Generous: valgrind runs this too, 20-50 times slower
#define DEADLINE_MS 30000

//  The news the reader's application got so far, in order:
//  "DELIVER key=value;", "DELETE key;", "EXPIRE key;"
static char news [4096];

//  Notes a DELIVER, DELETE or EXPIRE in `news`; true if it was one
static bool
note (char **frames, size_t count)
{
    size_t used = strlen (news);
    if (count == 3 && streq (frames [0], "DELIVER"))
        snprintf (news + used, sizeof news - used, "DELIVER %s=%s;", frames [1], frames [2]);
    else
    if (count == 2 && (streq (frames [0], "DELETE") || streq (frames [0], "EXPIRE")))
        snprintf (news + used, sizeof news - used, "%s %s;", frames [0], frames [1]);
    else
        return false;
    return true;
}

//  Reads until the reply named `name` (news met on the way is noted);
//  returns its frames (free them with zgossip_frames_free)
static char **
reply (zgossip_t *node, const char *name, size_t *count)
{
    while (true) {
        char **frames = NULL;
        size_t n = 0;
        int rc = zgossip_recv (node, DEADLINE_MS, &frames, &n);
        if (rc < 1) {
            fprintf (stderr, "no %s reply: %s\n", name, zgossip_last_error ());
            abort ();
        }
        assert ((size_t) rc == n);
        if (streq (frames [0], name)) {
            *count = n;
            return frames;
        }
        bool known = note (frames, n);
        assert (known);
        zgossip_frames_free (&frames, n);
    }
}

//  GET key: true if the node holds it, with that value
static bool
holds (zgossip_t *node, const char *key, const char *value)
{
    assert (zgossip_sendx (node, "GET", key, NULL) == 0);
    size_t count = 0;
    char **frames = reply (node, "VALUE", &count);
    assert ((count == 2 || count == 3) && streq (frames [1], key));
    bool held = count == 3 && streq (frames [2], value);
    zgossip_frames_free (&frames, count);
    return held;
}

//  True if GET key finds nothing
static bool
absent (zgossip_t *node, const char *key)
{
    assert (zgossip_sendx (node, "GET", key, NULL) == 0);
    size_t count = 0;
    char **frames = reply (node, "VALUE", &count);
    bool none = count == 2;
    zgossip_frames_free (&frames, count);
    return none;
}

//  The counter `name` of STATS, -1 if absent
static long
counter (zgossip_t *node, const char *name)
{
    assert (zgossip_sendx (node, "STATS", NULL) == 0);
    size_t count = 0;
    char **frames = reply (node, "STATS", &count);
    long value = -1;
    for (size_t i = 1; i + 1 < count; i += 2)
        if (streq (frames [i], name))
            value = atol (frames [i + 1]);
    zgossip_frames_free (&frames, count);
    return value;
}

//  Reads news until `news` contains `what` (at most DEADLINE_MS)
static void
wait_news (zgossip_t *node, const char *what)
{
    int64_t deadline = now_ms () + DEADLINE_MS;
    while (!strstr (news, what)) {
        if (now_ms () > deadline) {
            fprintf (stderr, "no '%s' within %d ms; news: %s\n", what, DEADLINE_MS, news);
            abort ();
        }
        char **frames = NULL;
        size_t n = 0;
        int rc = zgossip_recv (node, 100, &frames, &n);
        if (rc == -ZGOSSIP_ERR_TIMEOUT)
            continue;
        assert (rc >= 1 && (size_t) rc == n);
        bool known = note (frames, n);
        assert (known);
        zgossip_frames_free (&frames, n);
    }
}

static int
port_of (zgossip_t *node)
{
    assert (zgossip_sendx (node, "PORT", NULL) == 0);
    size_t count = 0;
    char **frames = reply (node, "PORT", &count);
    assert (count == 2);
    int port = atoi (frames [1]);
    assert (port > 0);
    zgossip_frames_free (&frames, count);
    return port;
}

int
main (void)
{
    zgossip_t *writer = zgossip_new ("writer");
    zgossip_t *reader = zgossip_new ("reader");
    assert (writer && reader);

    //  EPHEMERAL is checked as PUBLISH is, and says so in its own name;
    //  it is acknowledged, so the error comes back from the call
    assert (zgossip_sendx (writer, "EPHEMERAL", "svc/db", NULL) == -1);
    assert (streq (zgossip_last_error (),
                   "EPHEMERAL takes 2 arguments, got 1: usage: EPHEMERAL key value [ttl-msecs]"));
    const char *zero_ttl [] = { "EPHEMERAL", "svc/db", "v", "0" };
    assert (zgossip_send (writer, zero_ttl, 4) == -ZGOSSIP_ERR_COMMAND);
    assert (strstr (zgossip_last_error (), "EPHEMERAL: ttl must be a positive number"));
    char long_key [257];
    memset (long_key, 'k', 256);
    long_key [256] = 0;
    assert (zgossip_sendx (writer, "EPHEMERAL", long_key, "v", NULL) == -1);
    assert (strstr (zgossip_last_error (), "255"));
    assert (zgossip_sendx (writer, "ephemeral", "svc/db", "v", NULL) == -1);
    assert (strstr (zgossip_last_error (), "unknown command"));
    //  Nothing refused was stored
    assert (absent (writer, "svc/db"));

    //  The reader joins the writer on the loopback
    assert (zgossip_sendx (writer, "BIND", "tcp://127.0.0.1:*", NULL) == 0);
    assert (zgossip_sendx (reader, "BIND", "tcp://127.0.0.1:*", NULL) == 0);
    char writer_ep [64];
    snprintf (writer_ep, sizeof writer_ep, "tcp://127.0.0.1:%d", port_of (writer));
    assert (zgossip_sendx (reader, "JOIN", writer_ep, NULL) == 0);

    //  One ephemeral tuple, one plain; the reader gets both
    assert (zgossip_sendx (writer, "EPHEMERAL", "svc/db", "tcp://10.0.0.5:5432", NULL) == 0);
    assert (zgossip_sendx (writer, "PUBLISH", "plain", "stays", NULL) == 0);
    int64_t deadline = now_ms () + DEADLINE_MS;
    while (!(holds (reader, "svc/db", "tcp://10.0.0.5:5432") && holds (reader, "plain", "stays"))) {
        if (now_ms () > deadline) {
            fprintf (stderr, "the reader does not hold both tuples; news: %s\n", news);
            abort ();
        }
        sleep_ms (20);
    }
    assert (strstr (news, "DELIVER svc/db=tcp://10.0.0.5:5432;"));
    assert (strstr (news, "DELIVER plain=stays;"));

    //  The writer is destroyed: it leaves, and the reader deletes its
    //  ephemeral tuple and tells its application
    zgossip_destroy (&writer);
    assert (writer == NULL);
    wait_news (reader, "DELETE svc/db;");
    assert (absent (reader, "svc/db"));
    //  The plain one stays, and nothing else was deleted
    assert (holds (reader, "plain", "stays"));
    assert (!strstr (news, "DELETE plain;") && !strstr (news, "EXPIRE"));
    assert (counter (reader, "ephemeral-deleted") == 1);

    zgossip_destroy (&reader);
    printf ("ephemeral: OK (news: %s)\n", news);
    return 0;
}
