/*  curve_peer: a libzmq CURVE peer speaking ZGP v1 by hand, so Rust tests
    can check our CURVE against libzmq's (the system libzmq, 4.3.x, driven
    through CZMQ's zsock so it links with the libczmq pkg-config flags).

    Usage:
      curve_peer server SECRET PUBLIC
          ROUTER, CURVE server with that key pair (Z85), bound on
          tcp://127.0.0.1:*; prints "PORT n". On a ZGP HELLO from a client
          it answers with PUBLISH from-router=libzmq.
      curve_peer client ENDPOINT SERVER_PUBLIC PUBLIC SECRET
          DEALER, CURVE client; sends HELLO and PUBLISH from-dealer=libzmq.

    Both print "PUBLISH key value" for every ZGP PUBLISH received, and exit
    after 10 s or at end of standard input, whichever comes first.

    Build: cc -O1 -o curve_peer curve_peer.c $(pkg-config --cflags --libs libczmq)
*/
#include <czmq.h>
#include <unistd.h>
#include <poll.h>

//  A ZGP v1 message: AA A0 id version(1) [key value ttl]
static size_t
s_zgp (unsigned char *buf, int id, const char *key, const char *value)
{
    size_t n = 0;
    buf [n++] = 0xAA;
    buf [n++] = 0xA0;
    buf [n++] = (unsigned char) id;
    buf [n++] = 1;
    if (id == 2) {
        size_t klen = strlen (key), vlen = strlen (value);
        buf [n++] = (unsigned char) klen;
        memcpy (buf + n, key, klen);
        n += klen;
        buf [n++] = (unsigned char) (vlen >> 24);
        buf [n++] = (unsigned char) (vlen >> 16);
        buf [n++] = (unsigned char) (vlen >> 8);
        buf [n++] = (unsigned char) vlen;
        memcpy (buf + n, value, vlen);
        n += vlen;
        memset (buf + n, 0, 4);     //  ttl
        n += 4;
    }
    return n;
}

//  Prints a PUBLISH; returns the message id (0 if not ZGP)
static int
s_show (const unsigned char *data, size_t size)
{
    if (size < 4 || data [0] != 0xAA || data [1] != 0xA0)
        return 0;
    if (data [2] == 2 && size >= 5) {
        size_t klen = data [4];
        if (size < 5 + klen + 4)
            return 0;
        const unsigned char *v = data + 5 + klen;
        size_t vlen = ((size_t) v [0] << 24) | ((size_t) v [1] << 16)
                    | ((size_t) v [2] << 8) | v [3];
        if (size < 5 + klen + 4 + vlen)
            return 0;
        printf ("PUBLISH %.*s %.*s\n", (int) klen, data + 5, (int) vlen, v + 4);
        fflush (stdout);
    }
    return data [2];
}

int
main (int argc, char *argv [])
{
    int server = argc == 4 && strcmp (argv [1], "server") == 0;
    int client = argc == 6 && strcmp (argv [1], "client") == 0;
    if (!server && !client) {
        fprintf (stderr, "usage: curve_peer server SECRET PUBLIC | "
                         "client ENDPOINT SERVER_PUBLIC PUBLIC SECRET\n");
        return 2;
    }
    zsys_handler_set (NULL);
    zsock_t *sock = zsock_new (server? ZMQ_ROUTER: ZMQ_DEALER);
    zsock_set_linger (sock, 0);
    unsigned char buf [1024];
    if (server) {
        //  Note: libzmq sends as-server = 0 in its greeting even so.
        zsock_set_curve_publickey (sock, argv [3]);
        zsock_set_curve_secretkey (sock, argv [2]);
        zsock_set_curve_server (sock, 1);
        int port = zsock_bind (sock, "tcp://127.0.0.1:*");
        if (port < 0) {
            fprintf (stderr, "curve_peer: cannot bind\n");
            return 1;
        }
        printf ("PORT %d\n", port);
        fflush (stdout);
    }
    else {
        zsock_set_curve_serverkey (sock, argv [3]);
        zsock_set_curve_publickey (sock, argv [4]);
        zsock_set_curve_secretkey (sock, argv [5]);
        if (zsock_connect (sock, "%s", argv [2])) {
            fprintf (stderr, "curve_peer: cannot connect\n");
            return 1;
        }
        size_t n = s_zgp (buf, 1, NULL, NULL);
        zframe_t *f = zframe_new (buf, n);
        zframe_send (&f, sock, 0);
        n = s_zgp (buf, 2, "from-dealer", "libzmq");
        f = zframe_new (buf, n);
        zframe_send (&f, sock, 0);
    }
    //  Serve for at most 10 s, or until stdin closes
    zpoller_t *poller = zpoller_new (sock, NULL);
    for (int tick = 0; tick < 100; tick++) {
        struct pollfd in = { 0, POLLIN, 0 };
        if (poll (&in, 1, 0) > 0) {
            char c;
            if (read (0, &c, 1) <= 0)
                break;
        }
        if (!zpoller_wait (poller, 100))
            continue;
        zframe_t *id = server? zframe_recv (sock): NULL;
        zframe_t *frame = zframe_recv (sock);
        if (!frame)
            break;
        int msg_id = s_show (zframe_data (frame), zframe_size (frame));
        if (server && msg_id == 1 && id) {
            size_t n = s_zgp (buf, 2, "from-router", "libzmq");
            zframe_send (&id, sock, ZFRAME_MORE);
            zframe_t *f = zframe_new (buf, n);
            zframe_send (&f, sock, 0);
        }
        zframe_destroy (&id);
        zframe_destroy (&frame);
    }
    zpoller_destroy (&poller);
    zsock_destroy (&sock);
    return 0;
}
