/*  =========================================================================
    selftest.c - the zgossip self-test of CZMQ 4.2.1 (zgossip_test), ported
    to the zgossip C API: the same scenario and the same assertions, with
    the calls renamed (zactor_new (zgossip, name) -> zgossip_new (name),
    zstr_sendx -> zgossip_sendx, zstr_send -> zgossip_str_send,
    zstr_recvx -> zgossip_recvx, zstr_free -> zgossip_str_free,
    zsock_set_rcvtimeo -> zgossip_set_rcvtimeo, zactor_destroy ->
    zgossip_destroy).

    Two differences, both forced: the raw client is a real libzmq DEALER,
    which cannot reach our inproc:// (that namespace lives inside libzgossip),
    so the server half binds tcp on the loopback; and every wait is bounded
    (a 5 s receive timeout, and STATUS is asked again until it reports the
    four tuples, for a slow machine or valgrind).

    Run with -v for the nodes' trace on stderr.
    =========================================================================
*/

#define _POSIX_C_SOURCE 200809L
#undef NDEBUG                   //  the checks are asserts: keep them
#include <assert.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#include <zgossip.h>
#include "test_support.h"

//  ZGP v1 messages, one frame each: signature AA A0, id, version 1
static const unsigned char zgp_hello [] = { 0xAA, 0xA0, 1, 1 };
static const unsigned char zgp_ping [] = { 0xAA, 0xA0, 3, 1 };
static const unsigned char zgp_pong [] = { 0xAA, 0xA0, 4, 1 };

int
main (int argc, char *argv [])
{
    bool verbose = argc > 1 && streq (argv [1], "-v");
    printf (" * zgossip: ");
    if (verbose)
        printf ("\n");

    //  Test basic client-to-server operation of the protocol
    zgossip_t *server = zgossip_new ("server");
    assert (server);
    zgossip_set_rcvtimeo (server, 5000);
    if (verbose)
        zgossip_str_send (server, "VERBOSE");
    int rc = zgossip_sendx (server, "BIND", "tcp://127.0.0.1:*", NULL);
    assert (rc == 0);
    char *command, *status, *key, *value;
    zgossip_sendx (server, "PORT", NULL);
    rc = zgossip_recvx (server, &command, &value, NULL);
    assert (rc == 2);
    assert (streq (command, "PORT"));
    int port = atoi (value);
    assert (port > 0);
    zgossip_str_free (&command);
    zgossip_str_free (&value);
    char endpoint [64];
    snprintf (endpoint, sizeof endpoint, "tcp://127.0.0.1:%d", port);

    void *ctx = zmq_ctx_new ();
    assert (ctx);
    void *client = zmq_socket (ctx, ZMQ_DEALER);
    assert (client);
    int timeout = 2000;
    zmq_setsockopt (client, ZMQ_RCVTIMEO, &timeout, sizeof timeout);
    int linger = 0;
    zmq_setsockopt (client, ZMQ_LINGER, &linger, sizeof linger);
    rc = zmq_connect (client, endpoint);
    assert (rc == 0);

    //  Send HELLO, which gets no message
    rc = zmq_send (client, zgp_hello, sizeof zgp_hello, 0);
    assert (rc == (int) sizeof zgp_hello);

    //  Send PING, expect PONG back
    rc = zmq_send (client, zgp_ping, sizeof zgp_ping, 0);
    assert (rc == (int) sizeof zgp_ping);
    unsigned char reply [16];
    rc = zmq_recv (client, reply, sizeof reply, 0);
    assert (rc == (int) sizeof zgp_pong);
    assert (memcmp (reply, zgp_pong, sizeof zgp_pong) == 0);

    zgossip_destroy (&server);
    assert (server == NULL);
    zmq_close (client);
    zmq_ctx_term (ctx);

    //  Test peer-to-peer operations
    zgossip_t *base = zgossip_new ("base");
    assert (base);
    if (verbose)
        zgossip_str_send (base, "VERBOSE");
    //  Set a 100msec timeout on clients so we can test expiry
    rc = zgossip_sendx (base, "SET", "server/timeout", "100", NULL);
    assert (rc == 0);
    rc = zgossip_sendx (base, "BIND", "inproc://base", NULL);
    assert (rc == 0);

    zgossip_t *alpha = zgossip_new ("alpha");
    assert (alpha);
    zgossip_set_rcvtimeo (alpha, 5000);
    if (verbose)
        zgossip_str_send (alpha, "VERBOSE");
    zgossip_sendx (alpha, "CONNECT", "inproc://base", NULL);
    zgossip_sendx (alpha, "PUBLISH", "inproc://alpha-1", "service1", NULL);
    zgossip_sendx (alpha, "PUBLISH", "inproc://alpha-2", "service2", NULL);

    zgossip_t *beta = zgossip_new ("beta");
    assert (beta);
    if (verbose)
        zgossip_str_send (beta, "VERBOSE");
    zgossip_sendx (beta, "CONNECT", "inproc://base", NULL);
    zgossip_sendx (beta, "PUBLISH", "inproc://beta-1", "service1", NULL);
    zgossip_sendx (beta, "PUBLISH", "inproc://beta-2", "service2", NULL);

    //  got nothing
    sleep_ms (200);

    //  Alpha gets the four tuples in this order, then STATUS 4. STATUS
    //  comes after every DELIVER produced before it; on a slow machine
    //  not all four may be there yet, so ask again until they are.
    const char *expected [4][2] = {
        { "inproc://alpha-1", "service1" },
        { "inproc://alpha-2", "service2" },
        { "inproc://beta-1", "service1" },
        { "inproc://beta-2", "service2" },
    };
    int delivered = 0;
    int tuples = 0;
    int64_t deadline = now_ms () + 5000;
    while (true) {
        zgossip_str_send (alpha, "STATUS");
        while (true) {
            rc = zgossip_recvx (alpha, &command, &key, &value, NULL);
            assert (rc >= 2);
            if (streq (command, "STATUS")) {
                status = key;
                key = NULL;
                assert (value == NULL);
                tuples = atoi (status);
                zgossip_str_free (&command);
                zgossip_str_free (&status);
                break;
            }
            assert (streq (command, "DELIVER"));
            assert (delivered < 4);
            assert (streq (key, expected [delivered][0]));
            assert (streq (value, expected [delivered][1]));
            delivered++;
            zgossip_str_free (&command);
            zgossip_str_free (&key);
            zgossip_str_free (&value);
        }
        assert (tuples == delivered);
        if (tuples == 4 || now_ms () > deadline)
            break;
        sleep_ms (50);
    }
    assert (tuples == 4);

    zgossip_destroy (&base);
    zgossip_destroy (&alpha);
    zgossip_destroy (&beta);
    assert (!base && !alpha && !beta);

    //  @end
    printf ("OK\n");
    return 0;
}
