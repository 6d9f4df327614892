/*  =========================================================================
    members.c - membership through the command alone: two nodes on the
    loopback, one joined to the other, list each other with MEMBERS (id as
    16 hex digits, name, state, endpoint, this node first); the node that
    asked for events (SET membership/events 1) gets MEMBER alive, then
    MEMBER left when the other is destroyed; MEMBERS with an argument is
    refused with a message. Every wait is bounded (valgrind runs it too).
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

//  True if s is 16 lowercase hex digits
static bool
is_id (const char *s)
{
    if (strlen (s) != 16)
        return false;
    for (const char *c = s; *c; c++)
        if (!((*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'f')))
            return false;
    return true;
}

static bool
is_state (const char *s)
{
    return streq (s, "alive") || streq (s, "suspect")
        || streq (s, "failed") || streq (s, "left");
}

//  The MEMBER events met so far, "name=state;" each, in order
static char events [1024];

//  Sends MEMBERS and returns the reply's frames (free them with
//  zgossip_frames_free); MEMBER events met on the way are checked and
//  noted in `events`. The reply is checked: "MEMBERS", then four frames
//  per member, `self` first.
static char **
members (zgossip_t *node, const char *self, size_t *count)
{
    assert (zgossip_sendx (node, "MEMBERS", NULL) == 0);
    while (true) {
        char **frames = NULL;
        size_t n = 0;
        int rc = zgossip_recv (node, 5000, &frames, &n);
        assert (rc >= 1 && (size_t) rc == n);
        if (streq (frames [0], "MEMBER")) {
            assert (n == 5 && is_id (frames [1]) && is_state (frames [3]));
            size_t used = strlen (events);
            snprintf (events + used, sizeof events - used, "%s=%s;", frames [2], frames [3]);
            zgossip_frames_free (&frames, n);
            continue;
        }
        assert (streq (frames [0], "MEMBERS"));
        assert (n >= 5 && (n - 1) % 4 == 0);
        for (size_t i = 1; i < n; i += 4) {
            assert (is_id (frames [i]));
            assert (is_state (frames [i + 2]));
        }
        assert (streq (frames [2], self));          //  itself first
        *count = n;
        return frames;
    }
}

//  Index of the member named `name` in a MEMBERS reply, 0 if absent
static size_t
find (char **frames, size_t count, const char *name)
{
    for (size_t i = 1; i < count; i += 4)
        if (streq (frames [i + 1], name))
            return i;
    return 0;
}

//  Asks MEMBERS until `node` lists `name` in `state` and `total` members in
//  all (at most 15 s); returns the last reply (free it)
static char **
wait_for (zgossip_t *node, const char *self, const char *name, const char *state,
          size_t total, size_t *count)
{
    int64_t deadline = now_ms () + 15000;
    while (true) {
        char **frames = members (node, self, count);
        size_t i = find (frames, *count, name);
        if (*count == 1 + 4 * total && i && streq (frames [i + 2], state))
            return frames;
        if (now_ms () > deadline) {
            fprintf (stderr, "%s does not list %s %s (%zu frames)\n",
                     self, name, state, *count);
            abort ();
        }
        zgossip_frames_free (&frames, *count);
        sleep_ms (20);
    }
}

static int
port_of (zgossip_t *node)
{
    assert (zgossip_sendx (node, "PORT", NULL) == 0);
    char *command = NULL, *value = NULL;
    assert (zgossip_recvx (node, &command, &value, NULL) == 2);
    assert (streq (command, "PORT"));
    int port = atoi (value);
    assert (port > 0);
    zgossip_str_free (&command);
    zgossip_str_free (&value);
    return port;
}

int
main (void)
{
    zgossip_t *alpha = zgossip_new ("alpha");
    zgossip_t *beta = zgossip_new ("beta");
    assert (alpha && beta);
    zgossip_set_rcvtimeo (alpha, 5000);
    zgossip_set_rcvtimeo (beta, 5000);

    //  MEMBERS takes no argument: refused, with a message saying so
    assert (zgossip_sendx (alpha, "MEMBERS", "x", NULL) == -1);
    assert (strstr (zgossip_last_error (), "MEMBERS takes 0 arguments"));
    const char *with_argument [] = { "MEMBERS", "x" };
    assert (zgossip_send (alpha, with_argument, 2) == -ZGOSSIP_ERR_COMMAND);
    assert (strstr (zgossip_last_error (), "MEMBERS"));
    //  So is a bad value of membership/events
    assert (zgossip_sendx (alpha, "SET", "membership/events", "yes", NULL) == -1);
    assert (strstr (zgossip_last_error (), "membership/events"));

    //  Alone, a node lists itself, alive, without an endpoint
    size_t count = 0;
    char **frames = members (alpha, "alpha", &count);
    assert (count == 5 && streq (frames [3], "alive") && streq (frames [4], ""));
    char alpha_id [17];
    snprintf (alpha_id, sizeof alpha_id, "%s", frames [1]);
    zgossip_frames_free (&frames, count);
    assert (frames == NULL);

    //  alpha asks for MEMBER events; beta joins it on the loopback
    assert (zgossip_sendx (alpha, "SET", "membership/events", "1", NULL) == 0);
    assert (zgossip_sendx (alpha, "BIND", "tcp://127.0.0.1:*", NULL) == 0);
    assert (zgossip_sendx (beta, "BIND", "tcp://127.0.0.1:*", NULL) == 0);
    char alpha_ep [64], beta_ep [64];
    snprintf (alpha_ep, sizeof alpha_ep, "tcp://127.0.0.1:%d", port_of (alpha));
    snprintf (beta_ep, sizeof beta_ep, "tcp://127.0.0.1:%d", port_of (beta));
    assert (zgossip_sendx (beta, "JOIN", alpha_ep, NULL) == 0);

    //  Each lists both, alive, with their endpoints and one id each
    frames = wait_for (beta, "beta", "alpha", "alive", 2, &count);
    assert (streq (frames [3], "alive") && streq (frames [4], beta_ep));
    size_t i = find (frames, count, "alpha");
    assert (i == 5);
    assert (streq (frames [i], alpha_id) && streq (frames [i + 3], alpha_ep));
    char beta_id [17];
    snprintf (beta_id, sizeof beta_id, "%s", frames [1]);
    assert (!streq (alpha_id, beta_id));
    zgossip_frames_free (&frames, count);

    frames = wait_for (alpha, "alpha", "beta", "alive", 2, &count);
    assert (streq (frames [1], alpha_id) && streq (frames [4], alpha_ep));
    assert (streq (frames [5], beta_id) && streq (frames [8], beta_ep));
    zgossip_frames_free (&frames, count);
    assert (strstr (events, "beta=alive;"));

    //  beta, destroyed, leaves: alpha lists it as left, and says so
    zgossip_destroy (&beta);
    assert (beta == NULL);
    frames = wait_for (alpha, "alpha", "beta", "left", 2, &count);
    zgossip_frames_free (&frames, count);
    assert (strstr (events, "beta=left;"));
    assert (!strstr (events, "beta=failed;"));

    zgossip_destroy (&alpha);
    printf ("members: OK (events: %s)\n", events);
    return 0;
}
