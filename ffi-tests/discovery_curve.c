/*  =========================================================================
    discovery_curve.c - through the C API: a node with a CURVE key pair
    that runs DISCOVER links only with nodes that beacon a public key, as
    their CURVE client; it never links with a plain node, in either
    direction. Runs inside a sealed network namespace (in_sealed_netns.sh):
    the beacons never leave the machine. Every wait is bounded.
    =========================================================================
*/

#define _POSIX_C_SOURCE 200809L
#undef NDEBUG
#include <assert.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <zgossip.h>
#include "test_support.h"

static zgossip_t *
start (const char *name, bool secured, const char *key)
{
    zgossip_t *node = zgossip_new (name);
    assert (node);
    zgossip_set_rcvtimeo (node, 5000);
    if (secured) {
        char *public_key, *secret_key;
        assert (zgossip_keypair (&public_key, &secret_key) == 0);
        assert (zgossip_sendx (node, "SET PUBLICKEY", public_key, NULL) == 0);
        assert (zgossip_sendx (node, "SET SECRETKEY", secret_key, NULL) == 0);
        zgossip_str_free (&public_key);
        zgossip_str_free (&secret_key);
    }
    assert (zgossip_sendx (node, "DISCOVER", "interface=lo", "interval=50", NULL) == 0);
    assert (zgossip_sendx (node, "PUBLISH", key, "x", NULL) == 0);
    return node;
}

//  The reply to a command: the next message that is not a DELIVER.
static size_t
reply (zgossip_t *node, const char *command, char ***frames)
{
    size_t count;
    while (true) {
        assert (zgossip_recv (node, 5000, frames, &count) > 0);
        if (strcmp ((*frames) [0], "DELIVER") != 0)
            break;
        zgossip_frames_free (frames, count);
    }
    assert (strcmp ((*frames) [0], command) == 0);
    return count;
}

//  Whether the node holds the key: GET replies VALUE key [value].
static bool
holds (zgossip_t *node, const char *key)
{
    assert (zgossip_sendx (node, "GET", key, NULL) == 0);
    char **frames;
    size_t count = reply (node, "VALUE", &frames);
    assert (count >= 2);
    bool found = count == 3;
    zgossip_frames_free (&frames, count);
    return found;
}

//  A counter of STATS.
static long
counter (zgossip_t *node, const char *name)
{
    assert (zgossip_sendx (node, "STATS", NULL) == 0);
    char **frames;
    size_t count = reply (node, "STATS", &frames);
    long value = -1;
    for (size_t i = 1; i + 1 < count; i += 2)
        if (strcmp (frames [i], name) == 0)
            value = atol (frames [i + 1]);
    zgossip_frames_free (&frames, count);
    return value;
}

int
main (void)
{
    zgossip_t *a = start ("a", true, "secret-a");
    zgossip_t *d = start ("d", true, "secret-d");
    zgossip_t *b = start ("b", false, "evil-b");
    zgossip_t *c = start ("c", false, "evil-c");

    //  Each pair converges: discovery works for both kinds.
    bool converged = false;
    for (int i = 0; i < 500 && !converged; i++) {
        converged = holds (a, "secret-d") && holds (d, "secret-a")
                 && holds (b, "evil-c") && holds (c, "evil-b");
        if (!converged)
            sleep_ms (20);
    }
    assert (converged);
    sleep_ms (300);           //  several beacon intervals for a leak to show

    assert (!holds (a, "evil-b") && !holds (a, "evil-c"));
    assert (!holds (d, "evil-b") && !holds (d, "evil-c"));
    assert (!holds (b, "secret-a") && !holds (b, "secret-d"));
    assert (!holds (c, "secret-a") && !holds (c, "secret-d"));
    assert (counter (a, "discovery-ignored-plain") > 0);
    assert (counter (b, "discovery-ignored-curve") > 0);
    assert (counter (a, "plain-dials") == 0);

    zgossip_destroy (&a);
    zgossip_destroy (&b);
    zgossip_destroy (&c);
    zgossip_destroy (&d);
    printf ("discovery_curve: OK\n");
    return 0;
}
