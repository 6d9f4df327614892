/*  =========================================================================
    czmq_style.c - a program written against CZMQ's zgossip actor, using only
    the calls of the porting table. The build compiles it twice: as written,
    against CZMQ 4.2.1, and with those calls renamed (CMakeLists.txt does the
    renaming, nothing else), against zgossip. Both must pass.
    =========================================================================
*/

#define _POSIX_C_SOURCE 200809L
#undef NDEBUG                   //  the checks are asserts: keep them
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <czmq.h>

static void
nap (int msecs)
{
    struct timespec ts = { msecs / 1000, (long) (msecs % 1000) * 1000000 };
    nanosleep (&ts, NULL);
}

int
main (void)
{
    zactor_t *base = zactor_new (zgossip, "base");
    assert (base);
    zstr_sendx (base, "SET", "server/timeout", "100", NULL);
    zstr_sendx (base, "BIND", "inproc://czmq-style", NULL);

    zactor_t *alpha = zactor_new (zgossip, "alpha");
    assert (alpha);
    zsock_set_rcvtimeo (alpha, 5000);
    zstr_sendx (alpha, "CONNECT", "inproc://czmq-style", NULL);
    zstr_sendx (alpha, "PUBLISH", "inproc://alpha-1", "service1", NULL);

    zactor_t *beta = zactor_new (zgossip, "beta");
    assert (beta);
    zstr_sendx (beta, "CONNECT", "inproc://czmq-style", NULL);
    zstr_sendx (beta, "PUBLISH", "inproc://beta-1", "service1", NULL);
    nap (200);

    //  Ask STATUS until alpha holds both tuples (5 s at most); every
    //  DELIVER before each STATUS is one of the two, in order
    const char *keys [2] = { "inproc://alpha-1", "inproc://beta-1" };
    int delivered = 0, tuples = 0, rounds = 0;
    while (tuples < 2 && rounds++ < 100) {
        zstr_send (alpha, "STATUS");
        while (1) {
            char *command, *key, *value;
            int rc = zstr_recvx (alpha, &command, &key, &value, NULL);
            assert (rc >= 2);
            if (strcmp (command, "STATUS") == 0) {
                tuples = atoi (key);
                zstr_free (&command);
                zstr_free (&key);
                break;
            }
            assert (strcmp (command, "DELIVER") == 0);
            assert (delivered < 2 && strcmp (key, keys [delivered]) == 0);
            assert (strcmp (value, "service1") == 0);
            delivered++;
            zstr_free (&command);
            zstr_free (&key);
            zstr_free (&value);
        }
        if (tuples < 2)
            nap (50);
    }
    assert (tuples == 2 && delivered == 2);

    zactor_destroy (&base);
    zactor_destroy (&alpha);
    zactor_destroy (&beta);
    assert (!base && !alpha && !beta);
    printf ("czmq_style: OK\n");
    return 0;
}
